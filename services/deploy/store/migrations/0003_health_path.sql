-- The path a release's health is checked at, so that what watches a live
-- release (and diagnostics) probe what its deploy gated on.
ALTER TABLE deploy.releases ADD COLUMN health_path text NOT NULL DEFAULT '';
