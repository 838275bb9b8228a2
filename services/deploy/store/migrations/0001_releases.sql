-- Releases: each deploy or rollback makes one, numbered per project. At
-- most one LIVE per project; a job makes at most one (a re-run after a
-- crash finds it by job_id).
CREATE TABLE deploy.releases (
  id text PRIMARY KEY,
  project_id text NOT NULL,
  owner_id text NOT NULL,
  version bigint NOT NULL,
  commit_sha text NOT NULL,
  status int NOT NULL,
  url text NOT NULL DEFAULT '',
  job_id text NOT NULL UNIQUE,
  rollback_of_release_id text NOT NULL DEFAULT '',
  server_id text NOT NULL DEFAULT '',
  image text NOT NULL DEFAULT '',
  container_name text NOT NULL DEFAULT '',
  port int NOT NULL DEFAULT 0,
  failure_reason text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL DEFAULT now(),
  live_time timestamptz,
  superseded_time timestamptz,
  UNIQUE (project_id, version)
);
CREATE UNIQUE INDEX releases_one_live ON deploy.releases (project_id) WHERE status = 2;
CREATE INDEX releases_owner ON deploy.releases (owner_id, project_id, version DESC);
