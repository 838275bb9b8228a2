-- Engineering runs. Each row keeps its EngineeringRun as JSON (the source of
-- truth for what users see) next to the columns queries need, and the
-- platform's own progress: what a run re-started after a crash resumes from.
CREATE TABLE engineering.runs (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  project_id text NOT NULL,
  -- a job makes at most one run (a re-run after a crash finds it by job_id)
  job_id text NOT NULL UNIQUE,
  -- orchestrator.engineering.v1.EngineeringRunStatus number (never renumbered)
  status integer NOT NULL,
  run jsonb NOT NULL,
  -- the developer worker's workspace: a re-run resumes the agent's session there
  workspace_id text NOT NULL DEFAULT '',
  -- the clone's default branch and the commit the change is made on
  default_branch text NOT NULL DEFAULT '',
  base_commit_sha text NOT NULL DEFAULT '',
  -- the commit made for the run, recorded before any push; with its time,
  -- so the same tree and parent make the same commit again
  commit_sha text NOT NULL DEFAULT '',
  commit_time timestamptz,
  create_time timestamptz NOT NULL DEFAULT now(),
  end_time timestamptz
);
CREATE INDEX runs_project_recent ON engineering.runs (project_id, create_time DESC, id DESC);
-- GetLatestChange: the project's newest SUCCEEDED run
CREATE INDEX runs_project_changes ON engineering.runs (project_id, end_time DESC) WHERE status = 4;

-- Model usage, one row per agent task (usage is cumulative within a task:
-- a replayed update keeps the larger numbers, so nothing counts twice).
CREATE TABLE engineering.usage (
  task_id text PRIMARY KEY,
  run_id text NOT NULL REFERENCES engineering.runs (id) ON DELETE CASCADE,
  owner_id text NOT NULL,
  project_id text NOT NULL,
  input_tokens bigint NOT NULL DEFAULT 0,
  output_tokens bigint NOT NULL DEFAULT 0,
  cache_read_tokens bigint NOT NULL DEFAULT 0,
  cache_write_tokens bigint NOT NULL DEFAULT 0,
  cost_usd_micros bigint NOT NULL DEFAULT 0,
  turns integer NOT NULL DEFAULT 0,
  update_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_owner_recent ON engineering.usage (owner_id, update_time);
CREATE INDEX usage_project ON engineering.usage (project_id);
CREATE INDEX usage_run ON engineering.usage (run_id);
