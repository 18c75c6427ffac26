DROP INDEX tasks_project_id_priority_idx;
ALTER TABLE tasks DROP COLUMN priority;
