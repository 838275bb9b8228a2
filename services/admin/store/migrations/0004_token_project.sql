-- A worker's agent token may be limited to the project its worker was
-- started for ('' = not limited): ProjectService shows it no other.
ALTER TABLE admin.tokens ADD COLUMN project_id text NOT NULL DEFAULT '';
