-- Failed health probes in a row since a release went live (the
-- deploy.releases.watch task counts them here, so that whichever replica
-- runs the next probe goes on counting).
ALTER TABLE deploy.releases ADD COLUMN probe_failures int NOT NULL DEFAULT 0;
