-- Existing tasks get the default priority; the check keeps the scale closed.
ALTER TABLE tasks
  ADD COLUMN priority smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 1 AND 4);
CREATE INDEX tasks_project_id_priority_idx ON tasks (project_id, priority) WHERE NOT done;
