-- PO sessions, their messages and the notifications they send. Rows keep
-- their protobuf message as JSON next to the columns queries need.
CREATE TABLE sessions.sessions (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  -- orchestrator.sessions.v1.SessionState number (never renumbered)
  state integer NOT NULL,
  session jsonb NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
-- One open (not ENDED) session per user.
CREATE UNIQUE INDEX sessions_one_open ON sessions.sessions (owner_id) WHERE state <> 3;
CREATE INDEX sessions_owner_recent ON sessions.sessions (owner_id, create_time DESC, id DESC);

CREATE TABLE sessions.messages (
  id text PRIMARY KEY,
  session_id text NOT NULL REFERENCES sessions.sessions (id) ON DELETE CASCADE,
  request_id text,
  message jsonb NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX messages_session_request_key
  ON sessions.messages (session_id, request_id) WHERE request_id IS NOT NULL;

CREATE TABLE sessions.notifications (
  owner_id text NOT NULL,
  sequence bigint NOT NULL,
  notification jsonb NOT NULL,
  PRIMARY KEY (owner_id, sequence)
);
