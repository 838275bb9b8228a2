-- How engineering runs deliver a project's changes
-- (orchestrator.projects.v1.ChangeDelivery number, never renumbered; 0 =
-- unspecified, which is a fast-forward).
ALTER TABLE projects.projects ADD COLUMN change_delivery integer NOT NULL DEFAULT 0;
