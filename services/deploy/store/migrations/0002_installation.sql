-- This installation's id, labelled on the containers and images it makes:
-- a container engine may serve other installations too, whose containers
-- the reconciler must never take for orphans.
CREATE TABLE deploy.installation (
  id text NOT NULL,
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton)
);
