-- Claimed jobs stay QUEUED, reserved by a worker (lease_owner, lease_expires)
-- until a handler starts them. What the reaper scans for lapsed reservations.
CREATE INDEX jobs_reservations ON jobs.jobs (lease_expires) WHERE state = 1 AND lease_expires IS NOT NULL;
