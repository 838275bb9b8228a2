-- Every accepted message is answered once, across restarts: a user's (or
-- the platform's) message stays pending until its turn ends, which records
-- how; the agent's replies name the message whose turn they answer.
ALTER TABLE sessions.messages ADD COLUMN seq bigserial;
ALTER TABLE sessions.messages ADD COLUMN pending boolean NOT NULL DEFAULT false;
-- How many times its turn started (a turn a restart cut off runs again).
ALTER TABLE sessions.messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;
-- When its turn ended: absl::StatusCode number (0 = answered) and message.
ALTER TABLE sessions.messages ADD COLUMN outcome_code integer;
ALTER TABLE sessions.messages ADD COLUMN outcome_message text;
ALTER TABLE sessions.messages ADD COLUMN reply_to text;
CREATE INDEX messages_pending ON sessions.messages (session_id, seq) WHERE pending;
CREATE INDEX messages_reply_to ON sessions.messages (reply_to, seq) WHERE reply_to IS NOT NULL;
