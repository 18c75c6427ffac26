-- Who did what inside the tenant; payloads are free-form, searched by containment.
CREATE TABLE audit_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor_id    bigint REFERENCES users (id) ON DELETE SET NULL,
  action      text NOT NULL,
  payload     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at DESC);
CREATE INDEX audit_events_payload_idx ON audit_events USING gin (payload jsonb_path_ops);
