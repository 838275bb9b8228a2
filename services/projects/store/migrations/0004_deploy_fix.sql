-- Whether a failed deploy of a project starts a fix run
-- (orchestrator.projects.v1.DeployFix number, never renumbered; 0 =
-- unspecified, which is on).
ALTER TABLE projects.projects ADD COLUMN deploy_fix integer NOT NULL DEFAULT 0;
