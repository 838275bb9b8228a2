CREATE TABLE projects.projects (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  name text NOT NULL,
  display_name text NOT NULL DEFAULT '',
  description text NOT NULL DEFAULT '',
  -- orchestrator.projects.v1.ProjectStatus number (never renumbered)
  status integer NOT NULL,
  repository_url text NOT NULL DEFAULT '',
  template_id text NOT NULL DEFAULT '',
  create_request_id text,
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT projects_owner_name_key UNIQUE (owner_id, name)
);

CREATE UNIQUE INDEX projects_owner_request_key
  ON projects.projects (owner_id, create_request_id) WHERE create_request_id IS NOT NULL;
CREATE INDEX projects_owner_recent ON projects.projects (owner_id, create_time DESC, id DESC);
CREATE INDEX projects_recent ON projects.projects (create_time DESC, id DESC);

CREATE TABLE projects.secrets (
  project_id text NOT NULL REFERENCES projects.projects (id) ON DELETE CASCADE,
  name text NOT NULL,
  -- base64(nonce || XChaCha20-Poly1305 ciphertext), bound to project_id and name
  sealed_value text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, name)
);
