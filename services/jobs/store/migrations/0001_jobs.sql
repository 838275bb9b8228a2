CREATE TABLE jobs.jobs (
  id text PRIMARY KEY,
  kind text NOT NULL,
  owner_id text NOT NULL,
  project_id text NOT NULL DEFAULT '',
  -- orchestrator.jobs.v1.JobState number: 1 queued, 2 running, 3 succeeded, 4 failed, 5 cancelled
  state smallint NOT NULL DEFAULT 1,
  attempt integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 5,
  priority integer NOT NULL DEFAULT 0,
  run_after timestamptz NOT NULL,
  request_id text,
  -- at most one RUNNING job per key (e.g. one deploy per project); NULL = no limit
  concurrency_key text,
  params jsonb NOT NULL DEFAULT '{}',
  result jsonb,
  error_code integer,
  error_message text,
  cancel_requested boolean NOT NULL DEFAULT false,
  lease_owner text,
  lease_expires timestamptz,
  progress_percent integer NOT NULL DEFAULT 0,
  progress_message text NOT NULL DEFAULT '',
  last_event_sequence bigint NOT NULL DEFAULT 0,
  create_time timestamptz NOT NULL,
  start_time timestamptz,
  end_time timestamptz,
  update_time timestamptz NOT NULL
);

CREATE UNIQUE INDEX jobs_owner_request_key ON jobs.jobs (owner_id, request_id)
  WHERE request_id IS NOT NULL;
-- What a claim scans: queued jobs by priority, then age.
CREATE INDEX jobs_ready ON jobs.jobs (priority DESC, run_after, id) WHERE state = 1;
-- What the limited claim scans: keyed jobs, and queued jobs by kind.
CREATE INDEX jobs_ready_keyed ON jobs.jobs (priority DESC, run_after, id)
  WHERE state = 1 AND concurrency_key IS NOT NULL;
CREATE INDEX jobs_ready_kind ON jobs.jobs (kind, priority DESC, run_after, id) WHERE state = 1;
-- What the reaper scans.
CREATE INDEX jobs_leases ON jobs.jobs (lease_expires) WHERE state = 2;
-- What limits count.
CREATE INDEX jobs_running_owner ON jobs.jobs (owner_id, kind) WHERE state = 2;
CREATE INDEX jobs_running_key ON jobs.jobs (concurrency_key)
  WHERE state = 2 AND concurrency_key IS NOT NULL;
CREATE INDEX jobs_owner_recent ON jobs.jobs (owner_id, create_time DESC, id DESC);
CREATE INDEX jobs_recent ON jobs.jobs (create_time DESC, id DESC);
CREATE INDEX jobs_finished ON jobs.jobs (end_time) WHERE state IN (3, 4, 5);

-- Append-only history, numbered from 1 per job. type: JobEventType number;
-- body: the event's payload message in proto3 JSON (JobStateChange,
-- JobProgress, LogLine, JobResult or JobCancelRequested).
CREATE TABLE jobs.events (
  job_id text NOT NULL REFERENCES jobs.jobs (id) ON DELETE CASCADE,
  sequence bigint NOT NULL,
  type smallint NOT NULL,
  create_time timestamptz NOT NULL,
  body jsonb NOT NULL,
  PRIMARY KEY (job_id, sequence)
);
