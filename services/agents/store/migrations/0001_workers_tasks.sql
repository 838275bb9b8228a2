-- Workers and their tasks. Each row keeps its protobuf message as JSON (the source of
-- truth for every field) next to the columns queries need.
CREATE TABLE agents.workers (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  -- orchestrator.agents.v1.WorkerState number (never renumbered)
  state integer NOT NULL,
  create_request_id text,
  -- the worker's agent token, revoked when the worker ends
  token_id text NOT NULL DEFAULT '',
  worker jsonb NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workers_owner_request_key
  ON agents.workers (owner_id, create_request_id) WHERE create_request_id IS NOT NULL;
CREATE INDEX workers_owner_recent ON agents.workers (owner_id, create_time DESC, id DESC);
-- STARTING, READY, BUSY, PAUSED: what a restart must clean up
CREATE INDEX workers_live ON agents.workers (state) WHERE state IN (1, 2, 3, 4);

CREATE TABLE agents.tasks (
  id text PRIMARY KEY,
  worker_id text NOT NULL REFERENCES agents.workers (id) ON DELETE CASCADE,
  create_request_id text,
  task jsonb NOT NULL,
  -- TaskResult once it ended; NULL while it runs
  result jsonb,
  -- what the agent declared with FinishTask, if it did
  finish jsonb,
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tasks_worker_request_key
  ON agents.tasks (worker_id, create_request_id) WHERE create_request_id IS NOT NULL;
CREATE INDEX tasks_running ON agents.tasks (worker_id) WHERE result IS NULL;
