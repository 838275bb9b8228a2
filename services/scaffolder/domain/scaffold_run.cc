#include "services/scaffolder/domain/scaffold_run.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/scaffolder/domain/renderer.h"

namespace orchestrator::scaffolder {
namespace fs = std::filesystem;
namespace {

constexpr int kMaxReplacements = 50;  // local repositories <project>-2 .. -50

std::string StringField(const google::protobuf::Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? "" : it->second.string_value();
}

ProjectFacts FactsOf(const projects::v1::Project& project) {
  return {project.id(), project.name()};
}

// The project's answers as a map, for ResolveAnswers.
absl::StatusOr<ResolvedAnswers> Resolve(const LoadedTemplate& loaded, const ScaffoldPlan& plan,
                                        const projects::v1::Project& project) {
  return ResolveAnswers(loaded.manifest, plan.answers, FactsOf(project));
}

}  // namespace

google::protobuf::Struct ScaffoldPlan::ToParams() const {
  google::protobuf::Struct params;
  auto& f = *params.mutable_fields();
  f["template_id"].set_string_value(template_id);
  f["git_url"].set_string_value(source.git_url());
  f["git_tag"].set_string_value(source.git_tag());
  f["replace_repository"].set_bool_value(replace_repository);
  f["repository_name"].set_string_value(repository_name);
  auto& a = *f["answers"].mutable_struct_value()->mutable_fields();
  for (const auto& [name, value] : answers) a[name].set_string_value(value);
  return params;
}

absl::StatusOr<ScaffoldPlan> ScaffoldPlan::FromParams(const std::string& project_id,
                                                      const google::protobuf::Struct& params) {
  ScaffoldPlan plan;
  plan.project_id = project_id;
  plan.template_id = StringField(params, "template_id");
  plan.source.set_git_url(StringField(params, "git_url"));
  plan.source.set_git_tag(StringField(params, "git_tag"));
  plan.repository_name = StringField(params, "repository_name");
  if (auto it = params.fields().find("replace_repository"); it != params.fields().end()) {
    plan.replace_repository = it->second.bool_value();
  }
  if (auto it = params.fields().find("answers"); it != params.fields().end()) {
    for (const auto& [name, value] : it->second.struct_value().fields()) {
      plan.answers[name] = value.string_value();
    }
  }
  if (plan.project_id.empty()) return absl::InvalidArgumentError("the job names no project");
  return plan;
}

Scaffolder::Scaffolder(TemplateCatalogPtr catalog, git::GitHostPtr host,
                       std::shared_ptr<ProjectDirectory> projects,
                       std::shared_ptr<RepositoryLedger> ledger, std::shared_ptr<GitWorktree> git,
                       Options options)
    : catalog_(std::move(catalog)),
      host_(std::move(host)),
      projects_(std::move(projects)),
      ledger_(std::move(ledger)),
      git_(std::move(git)),
      options_(std::move(options)) {}

absl::StatusOr<ScaffoldPlan> Scaffolder::Prepare(const std::string& owner_id,
                                                 const v1::ScaffoldRequest& request) const {
  if (request.project_id().empty()) return absl::InvalidArgumentError("project_id: required");
  auto loaded = catalog_->Find(request.template_id(), request.template_source(), "template_source");
  if (!loaded.ok()) return loaded.status();
  auto project = projects_->Get(owner_id, request.project_id());
  if (!project.ok()) return project.status();
  if (!project->repository_url().empty() && !request.replace_repository()) {
    return absl::FailedPreconditionError(
        absl::StrCat("project ", project->id(), " already has a repository (",
                     project->repository_url(), "); set replace_repository to scaffold a new one"));
  }
  ScaffoldPlan plan;
  plan.project_id = project->id();
  plan.template_id = loaded->manifest.id();
  plan.source = request.template_source();
  plan.replace_repository = request.replace_repository();
  plan.repository_name = request.repository_name();
  for (const auto& [name, value] : request.answers()) plan.answers[name] = value;
  auto resolved = Resolve(*loaded, plan, *project);
  if (!resolved.ok()) return resolved.status();
  // Secret answers leave the plan here: they never reach the job's record.
  plan.secrets = resolved->secrets;
  for (const auto& q : loaded->manifest.questions()) {
    if (q.secret()) plan.answers.erase(q.name());
  }
  return plan;
}

absl::StatusOr<git::Repository> Scaffolder::EnsureRepository(
    const ScaffoldJob& job, const projects::v1::Project& project) const {
  const std::string kind = host_->Kind();
  auto entry = ledger_->Find(job.id);
  if (!entry.ok()) return entry.status();
  if (*entry) {
    // This job asked for it before (and may have been cut off after).
    auto found = host_->Find((*entry)->name);
    if (!found.ok()) return found.status();
    if (*found) return **found;
    auto created = host_->Create({(*entry)->name, project.id(), project.display_name()});
    if (created.ok() || created.status().code() != absl::StatusCode::kAlreadyExists) return created;
    found = host_->Find((*entry)->name);
    if (!found.ok()) return found.status();
    if (*found) return **found;
    return created.status();
  }
  // Local repositories are named by the project (a replacement gets the
  // next free suffix); on GitHub the name is the request's or the project's.
  std::vector<std::string> names;
  if (kind == "local") {
    names.push_back(project.id());
    for (int i = 2; i <= kMaxReplacements; ++i) names.push_back(absl::StrCat(project.id(), "-", i));
  } else {
    names.push_back(job.plan.repository_name.empty() ? project.name() : job.plan.repository_name);
  }
  for (const auto& name : names) {
    auto found = host_->Find(name);
    if (!found.ok()) return found.status();
    if (*found) continue;
    if (auto s = ledger_->Intend({job.id, project.id(), kind, name}); !s.ok()) return s;
    auto created = host_->Create({name, project.id(), project.display_name()});
    if (created.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::FailedPreconditionError(absl::StrCat(
          "repository '", name, "' was created on the ", kind,
          " git host by someone else meanwhile; scaffold again with another repository_name"));
    }
    return created;
  }
  if (kind == "local") {
    return absl::FailedPreconditionError(
        absl::StrCat("project ", project.id(), " has ", kMaxReplacements, " repositories already"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("repository '", names.front(), "' already exists on ", kind,
                   " and was not made by this scaffold; choose another repository_name"));
}

absl::StatusOr<google::protobuf::Struct> Scaffolder::Run(
    const ScaffoldJob& job, const ProgressFn& progress,
    const std::function<bool()>& cancelled) const {
  const ScaffoldPlan& plan = job.plan;
  auto stop = [&]() -> absl::Status {
    return cancelled() ? absl::CancelledError("the scaffold was stopped") : absl::OkStatus();
  };

  auto loaded = catalog_->Find(plan.template_id, plan.source, "template_source");
  if (!loaded.ok()) return loaded.status();
  const v1::Template& manifest = loaded->manifest;
  progress(5, absl::StrCat("template ", manifest.id(), " v", manifest.version()));

  auto project = projects_->Get(job.owner_id, plan.project_id);
  if (!project.ok()) return project.status();
  auto entry = ledger_->Find(job.id);
  if (!entry.ok()) return entry.status();
  if (!project->repository_url().empty() && !plan.replace_repository && !*entry) {
    return absl::FailedPreconditionError(
        absl::StrCat("project ", project->id(), " already has a repository (",
                     project->repository_url(), "); set replace_repository to scaffold a new one"));
  }
  auto answers = Resolve(*loaded, plan, *project);
  if (!answers.ok()) return answers.status();
  if (auto s = stop(); !s.ok()) return s;

  // Render into this job's scratch tree (fresh on every attempt).
  const fs::path tree = fs::path(options_.work_dir) / job.id;
  std::error_code ec;
  fs::remove_all(tree, ec);
  struct RemoveTree {
    fs::path path;
    ~RemoveTree() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{tree};
  if (auto s = RenderProject(*loaded, *answers, FactsOf(*project), tree.string()); !s.ok()) {
    return s;
  }
  progress(25, absl::StrCat("rendered ", manifest.files_size(), " files"));

  auto sha = git_->CommitAll(
      tree.string(), absl::StrCat("from template ", manifest.id(), " v", manifest.version()),
      job.create_time);
  if (!sha.ok()) return sha.status();
  progress(40, absl::StrCat("committed ", sha->substr(0, 12)));
  if (auto s = stop(); !s.ok()) return s;

  auto repository = EnsureRepository(job, *project);
  if (!repository.ok()) return repository.status();
  progress(55, absl::StrCat("repository ", repository->full_name, " on the ", host_->Kind(),
                            " git host"));
  if (auto s = host_->Push(*repository, tree.string(), options_.default_branch); !s.ok()) {
    return s;
  }
  auto head = host_->Head(*repository, options_.default_branch);
  if (!head.ok()) return head.status();
  if (*head != *sha) {
    return absl::FailedPreconditionError(
        absl::StrCat("the remote's ", options_.default_branch, " is ", *head, " after pushing ",
                     *sha, ": someone else pushed to ", repository->full_name));
  }
  progress(80, absl::StrCat("pushed and verified ", sha->substr(0, 12)));

  projects::v1::Project outcome;
  outcome.set_id(project->id());
  outcome.set_repository_url(repository->clone_url);
  outcome.set_template_id(manifest.id());
  outcome.set_template_version(manifest.version());
  for (const auto& [name, value] : answers->values) {
    (*outcome.mutable_template_answers())[name] = value;
  }
  *outcome.mutable_run_contract() = manifest.run_contract();
  if (auto s = projects_->Record(job.owner_id, outcome); !s.ok()) return s;
  progress(100, absl::StrCat("recorded on project ", project->id()));

  google::protobuf::Struct result;
  auto& r = *result.mutable_fields();
  r["repository_url"].set_string_value(repository->clone_url);
  r["commit_sha"].set_string_value(*sha);
  r["repository"].set_string_value(repository->full_name);
  r["git_host"].set_string_value(host_->Kind());
  r["template_id"].set_string_value(manifest.id());
  r["template_version"].set_string_value(manifest.version());
  if (!repository->web_url.empty()) r["web_url"].set_string_value(repository->web_url);
  return result;
}

}  // namespace orchestrator::scaffolder
