-- The repository each scaffold job creates, written before the git host is
-- asked: a job run again after a crash finds it and reuses the repository.
CREATE TABLE scaffolder.repository_ledger (
  job_id text PRIMARY KEY,
  project_id text NOT NULL,
  host text NOT NULL,
  name text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX repository_ledger_project ON scaffolder.repository_ledger (project_id);
