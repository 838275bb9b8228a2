-- A worker's agent token names its worker, so a component can tell which
-- worker a call comes from without asking the agent spawner.
ALTER TABLE admin.tokens ADD COLUMN worker_id text NOT NULL DEFAULT '';
