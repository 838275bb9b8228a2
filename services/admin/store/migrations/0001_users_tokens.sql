CREATE TABLE admin.users (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  display_name text NOT NULL DEFAULT '',
  -- orchestrator.admin.v1.Role number (never renumbered)
  role integer NOT NULL,
  disabled boolean NOT NULL DEFAULT false,
  create_request_id text UNIQUE,
  create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin.tokens (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES admin.users (id),
  -- BLAKE2b-256 of the token value; the value itself is never stored
  token_hash text NOT NULL UNIQUE,
  -- orchestrator.admin.v1.TokenKind number
  kind integer NOT NULL,
  description text NOT NULL DEFAULT '',
  -- space-separated grants; '' = whatever the role allows
  permissions text NOT NULL DEFAULT '',
  create_request_id text,
  create_time timestamptz NOT NULL DEFAULT now(),
  expire_time timestamptz,
  revoke_time timestamptz
);

CREATE UNIQUE INDEX tokens_user_request_key
  ON admin.tokens (user_id, create_request_id) WHERE create_request_id IS NOT NULL;
CREATE INDEX tokens_user_recent ON admin.tokens (user_id, create_time DESC, id DESC);
