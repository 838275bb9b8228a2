-- SSH servers users register: the private key the mesh logs in with
-- (sealed with --secrets_key_file's key, base64; never returned), the host
-- keys accepted on first contact (ssh's known_hosts lines), and the request
-- that registered it (a retry answers the same server).
ALTER TABLE infra.servers
  ADD COLUMN sealed_private_key text NOT NULL DEFAULT '',
  ADD COLUMN known_hosts text NOT NULL DEFAULT '',
  ADD COLUMN request_id text;
CREATE UNIQUE INDEX servers_request ON infra.servers (owner_id, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX servers_kind_status ON infra.servers (kind, status);

-- The mesh's own SSH key pair (ed25519, made once by whichever process
-- starts first): provisioning installs its public key for the deploy user
-- of every server. The private key is sealed like servers' keys.
CREATE TABLE infra.mesh_keys (
  name text PRIMARY KEY,
  public_key text NOT NULL,
  sealed_private_key text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
