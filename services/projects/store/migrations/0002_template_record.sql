-- What a project was scaffolded from: the template's version, the answers it
-- was rendered with (a JSON object, question to answer; never a secret's) and
-- its run contract (orchestrator.common.v1.RunContract in protobuf's JSON
-- mapping; '{}' = none).
ALTER TABLE projects.projects
  ADD COLUMN template_version text NOT NULL DEFAULT '',
  ADD COLUMN template_answers jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN run_contract jsonb NOT NULL DEFAULT '{}';
