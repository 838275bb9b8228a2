-- The token a token was created with: revoking one revokes what it made.
ALTER TABLE admin.tokens ADD COLUMN parent_token_id text REFERENCES admin.tokens (id);
CREATE INDEX tokens_parent ON admin.tokens (parent_token_id) WHERE parent_token_id IS NOT NULL;
