-- What started each job (orchestrator.jobs.v1.JobOrigin as JSON): a
-- project's history walks from a release back to the message that asked
-- for it. NULL for jobs from before origins were kept.
ALTER TABLE jobs.jobs ADD COLUMN origin jsonb;
-- A project's history, newest first.
CREATE INDEX jobs_project_recent ON jobs.jobs (project_id, create_time DESC, id DESC)
  WHERE project_id <> '';
