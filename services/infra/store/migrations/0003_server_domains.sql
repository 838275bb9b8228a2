-- Where an SSH server serves its projects: releases' URLs are
-- http://<project>.<domain>[:port], its Caddy listening at router_listen
-- ("" = ":80"). The local server keeps the mesh's flags.
ALTER TABLE infra.servers
  ADD COLUMN domain text NOT NULL DEFAULT '',
  ADD COLUMN router_listen text NOT NULL DEFAULT '';
