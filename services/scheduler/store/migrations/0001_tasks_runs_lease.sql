-- The state of the platform's periodic tasks (their definitions are in
-- code: each component declares its own). next_run_time is the first due
-- time not handled yet, computed by the schedule named in schedule_key.
CREATE TABLE scheduler.tasks (
  id text PRIMARY KEY,
  -- orchestrator.scheduler.v1.TaskState number: 1 active, 2 paused
  state smallint NOT NULL DEFAULT 1,
  pause_note text NOT NULL DEFAULT '',
  cron_override text NOT NULL DEFAULT '',
  interval_override_seconds bigint NOT NULL DEFAULT 0,
  overlap_override smallint NOT NULL DEFAULT 0,
  next_run_time timestamptz NOT NULL,
  schedule_key text NOT NULL,
  skipped_count bigint NOT NULL DEFAULT 0,
  missed_count bigint NOT NULL DEFAULT 0,
  last_job_id text NOT NULL DEFAULT '',
  update_time timestamptz NOT NULL DEFAULT now()
);

-- Runs: at most one per task and due time, whichever replica leads
-- (manual runs have none). A skipped run has no job.
CREATE TABLE scheduler.runs (
  id text PRIMARY KEY,
  task_id text NOT NULL REFERENCES scheduler.tasks (id),
  job_id text NOT NULL DEFAULT '',
  -- orchestrator.scheduler.v1.RunTrigger number: 1 schedule, 2 manual
  run_trigger smallint NOT NULL,
  scheduled_time timestamptz,
  skipped boolean NOT NULL DEFAULT false,
  requested_by text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL
);
CREATE UNIQUE INDEX runs_one_per_tick ON scheduler.runs (task_id, scheduled_time)
  WHERE scheduled_time IS NOT NULL;
CREATE UNIQUE INDEX runs_job ON scheduler.runs (job_id) WHERE job_id <> '';
CREATE INDEX runs_recent ON scheduler.runs (task_id, create_time DESC, id DESC);

-- The leader lease: one row per lease name. Only its holder starts
-- scheduled runs, and only while it has not expired; a replica takes it
-- over once it has.
CREATE TABLE scheduler.leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  term bigint NOT NULL,
  acquire_time timestamptz NOT NULL,
  expire_time timestamptz NOT NULL
);
