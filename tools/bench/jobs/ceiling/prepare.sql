-- Loads :jobs queued no-op jobs into jobs.jobs, as PgJobStore::Enqueue
-- (kEnqueue) would leave them: state 1, last_event_sequence 1, one QUEUED
-- event each, ids "job_" + 20 hex digits (NewId), run_after = create_time,
-- one enqueue per microsecond, all in the past.
-- Run after `CREATE SCHEMA jobs` and services/jobs/store/migrations/*.sql:
--   psql -v ON_ERROR_STOP=1 -v jobs=100000 -f prepare.sql
\set ON_ERROR_STOP on
INSERT INTO jobs.jobs (id, kind, owner_id, project_id, priority, run_after, request_id,
                       concurrency_key, params, max_attempts, create_time, update_time,
                       last_event_sequence)
SELECT 'job_' || substr(md5(random()::text || i::text), 1, 20), 'noop', 'bench-owner', '', 0,
       t0 + i * interval '1 microsecond', NULL, NULL, '{}'::jsonb, 5,
       t0 + i * interval '1 microsecond', t0 + i * interval '1 microsecond', 1
FROM generate_series(1, :jobs) AS i,
     (SELECT now() - interval '10 minutes' AS t0) AS base;

INSERT INTO jobs.events (job_id, sequence, type, create_time, body)
SELECT id, 1, 1, create_time, jsonb_build_object('toState', 'JOB_STATE_QUEUED')
FROM jobs.jobs;

ANALYZE jobs.jobs;
ANALYZE jobs.events;
SELECT count(*) AS queued_jobs FROM jobs.jobs WHERE state = 1;
