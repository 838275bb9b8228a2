-- A notification dropped (AdminService.ClearProjectState) stays as a row
-- without its text: it is no longer replayed, and its sequence is never
-- handed out again (the next one is numbered after the owner's last row).
ALTER TABLE sessions.notifications ADD COLUMN dropped boolean NOT NULL DEFAULT false;
-- What dropping by job scans.
CREATE INDEX notifications_job ON sessions.notifications ((notification->>'jobId'));
