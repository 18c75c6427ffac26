-- Audit rows name the caller by what cannot be reused: the token's id and the kind of caller
-- (api-token, bootstrap, auth-disabled, cli). Rows written before this file have neither.
ALTER TABLE control_plane.audit_log
  ADD COLUMN actor_kind varchar(20),
  ADD COLUMN actor_token_id uuid,
  -- The input was larger than the audit cap; `input` holds its first part as a JSON string.
  ADD COLUMN input_truncated boolean NOT NULL DEFAULT false;
CREATE INDEX idx_audit_log_actor_token_id ON control_plane.audit_log (actor_token_id);

-- Token names become unique. Older duplicates keep working under a suffixed name (the oldest
-- token keeps the name), so this file applies to any existing control plane.
UPDATE control_plane.api_tokens t
   SET name = left(t.name, 246) || '-' || left(t.id::text, 8)
 WHERE EXISTS (
   SELECT 1 FROM control_plane.api_tokens o
    WHERE o.name = t.name AND (o.created_at, o.id) < (t.created_at, t.id)
 );
ALTER TABLE control_plane.api_tokens ADD CONSTRAINT api_tokens_name_key UNIQUE (name);

-- 1: issued before tokens carried a keyed check (accepted while any of them is live);
-- 2: `cpt_` + 32 random bytes + a 6-byte HMAC of them under token_signing_key.
ALTER TABLE control_plane.api_tokens ADD COLUMN format integer NOT NULL DEFAULT 1;
ALTER TABLE control_plane.api_tokens ALTER COLUMN format SET DEFAULT 2;

-- The key of that HMAC, one per control plane: it lets the API refuse a made-up token without
-- a query. It authenticates nothing by itself (the token's hash still has to match a row).
CREATE TABLE control_plane.token_signing_key (
  id         integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  -- 32 bytes, hex.
  secret     char(64) NOT NULL CHECK (secret ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);
-- 32 bytes from two v4 UUIDs (244 bits from the server's strong random source; no pgcrypto needed).
INSERT INTO control_plane.token_signing_key (secret)
VALUES (substr(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 1, 64));
