DROP TABLE IF EXISTS control_plane.token_signing_key;
ALTER TABLE control_plane.api_tokens DROP COLUMN IF EXISTS format;
ALTER TABLE control_plane.api_tokens DROP CONSTRAINT IF EXISTS api_tokens_name_key;
DROP INDEX IF EXISTS control_plane.idx_audit_log_actor_token_id;
ALTER TABLE control_plane.audit_log
  DROP COLUMN IF EXISTS input_truncated,
  DROP COLUMN IF EXISTS actor_token_id,
  DROP COLUMN IF EXISTS actor_kind;
