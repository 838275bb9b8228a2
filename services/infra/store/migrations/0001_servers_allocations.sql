-- The servers deploys run on. owner_id '' is the platform's own: the
-- machine the mesh runs on ("local"), which every user deploys to.
CREATE TABLE infra.servers (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  name text NOT NULL,
  kind int NOT NULL,
  address text NOT NULL DEFAULT '',
  ssh_user text NOT NULL DEFAULT '',
  port_range_start int NOT NULL,
  port_range_end int NOT NULL,
  status int NOT NULL,
  status_reason text NOT NULL DEFAULT '',
  provision_job_id text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  last_seen_time timestamptz,
  UNIQUE (owner_id, name),
  CHECK (port_range_start BETWEEN 1 AND port_range_end AND port_range_end <= 65535)
);

-- Ports reserved on a server for a project's service. A released
-- allocation keeps its row (release_time set) so that a retried release
-- answers as the first did; the uniqueness of ports and of a project's
-- service holds among the allocations still held.
CREATE TABLE infra.allocations (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  project_id text NOT NULL,
  service text NOT NULL,
  server_id text NOT NULL REFERENCES infra.servers (id),
  port int NOT NULL CHECK (port BETWEEN 1 AND 65535),
  hostname text NOT NULL DEFAULT '',
  request_id text,
  create_time timestamptz NOT NULL DEFAULT now(),
  release_time timestamptz,
  release_request_id text
);
CREATE UNIQUE INDEX allocations_port_held ON infra.allocations (server_id, port)
  WHERE release_time IS NULL;
CREATE UNIQUE INDEX allocations_service_held ON infra.allocations (project_id, service)
  WHERE release_time IS NULL;
CREATE UNIQUE INDEX allocations_request ON infra.allocations (owner_id, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX allocations_owner ON infra.allocations (owner_id, id) WHERE release_time IS NULL;
