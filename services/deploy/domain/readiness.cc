#include "services/deploy/domain/readiness.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace orchestrator::deploy {
namespace {

void Add(v1::CheckReadinessResponse& report, const std::string& name,
         const std::string& description, v1::CheckStatus status, const std::string& message,
         const std::string& remedy = "") {
  auto* check = report.add_checks();
  check->set_name(name);
  check->set_description(description);
  check->set_status(status);
  check->set_message(message);
  if (status != v1::CHECK_STATUS_PASSED) check->set_remedy(remedy);
}

bool IsCommitId(const std::string& s) {
  return s.size() >= 7 && s.size() <= 64 &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

absl::Status Readiness::AsStatus() const {
  if (report.ready()) return absl::OkStatus();
  std::vector<std::string> failed;
  for (const auto& check : report.checks()) {
    if (check.status() == v1::CHECK_STATUS_FAILED) {
      failed.push_back(absl::StrCat(check.name(), ": ", check.message(),
                                    check.remedy().empty() ? "" : " (", check.remedy(),
                                    check.remedy().empty() ? "" : ")"));
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "project ", project.id(), " is not ready to deploy: ", absl::StrJoin(failed, "; ")));
}

absl::StatusOr<Readiness> ReadinessChecker::Check(const std::string& owner_id,
                                                  const std::string& project_id,
                                                  const std::string& commit_sha,
                                                  const std::string& server_id) const {
  if (project_id.empty()) return absl::InvalidArgumentError("project_id: required");
  if (!commit_sha.empty() && !IsCommitId(commit_sha)) {
    return absl::InvalidArgumentError("commit_sha: a commit id (7 to 64 of 0-9a-f)");
  }
  auto project = projects_->Get(owner_id, project_id);
  if (!project.ok()) return project.status();
  Readiness out;
  out.project = *project;
  auto& report = out.report;
  const auto& contract = project->run_contract();

  // The repository and the commit.
  const std::string& url = project->repository_url();
  if (url.empty()) {
    Add(report, "repository", "the project has a repository", v1::CHECK_STATUS_FAILED,
        "no repository is recorded",
        absl::StrCat("scaffold it: orchestrator scaffold run ", project_id, " --template ID"));
    Add(report, "commit", "the commit to deploy exists", v1::CHECK_STATUS_FAILED,
        "no repository to look in", "scaffold the project first");
  } else if (auto head = source_->Head(url); !head.ok()) {
    Add(report, "repository", "the project has a repository", v1::CHECK_STATUS_FAILED,
        absl::StrCat(url, " cannot be read: ", head.status().message()),
        "check the repository URL and that the git host is up");
    Add(report, "commit", "the commit to deploy exists", v1::CHECK_STATUS_FAILED,
        "the repository cannot be read", "fix the repository first");
  } else {
    Add(report, "repository", "the project has a repository", v1::CHECK_STATUS_PASSED,
        absl::StrCat(url, " (default branch at ", head->substr(0, 12), ")"));
    out.commit_sha = commit_sha.empty() ? *head : commit_sha;
    if (commit_sha.empty() || absl::StartsWith(*head, commit_sha)) {
      if (!commit_sha.empty()) out.commit_sha = *head;
      Add(report, "commit", "the commit to deploy exists", v1::CHECK_STATUS_PASSED,
          absl::StrCat(out.commit_sha, " is the default branch's head"));
    } else if (commit_sha.size() != 40) {
      Add(report, "commit", "the commit to deploy exists", v1::CHECK_STATUS_FAILED,
          absl::StrCat(commit_sha, " is not the default branch's head"),
          "give the full 40-character commit id");
    } else {
      Add(report, "commit", "the commit to deploy exists", v1::CHECK_STATUS_WARNING,
          absl::StrCat(commit_sha,
                       " is not the default branch's head: it is fetched when the deploy runs"),
          "deploy the head unless you mean an older commit");
    }
  }

  // The run contract.
  std::vector<std::string> missing;
  if (contract.build_file().empty()) missing.push_back("build_file");
  if (contract.port() <= 0) missing.push_back("port");
  if (contract.health_path().empty() || contract.health_path()[0] != '/') {
    missing.push_back("health_path");
  }
  if (missing.empty()) {
    Add(report, "run_contract", "the project says how it builds and runs", v1::CHECK_STATUS_PASSED,
        absl::StrCat("builds ", contract.build_file(), ", serves port ", contract.port(),
                     ", healthy when ", contract.health_path(), " answers 200"));
  } else {
    Add(report, "run_contract", "the project says how it builds and runs", v1::CHECK_STATUS_FAILED,
        absl::StrCat("the run contract lacks ", absl::StrJoin(missing, ", ")),
        "scaffold the project from a template, which records its run contract");
  }

  // Secrets.
  if (contract.required_secrets().empty()) {
    Add(report, "secrets", "the secrets it needs are set", v1::CHECK_STATUS_PASSED,
        "it needs none");
  } else if (auto names = projects_->SecretNames(owner_id, project_id); !names.ok()) {
    Add(report, "secrets", "the secrets it needs are set", v1::CHECK_STATUS_FAILED,
        absl::StrCat("cannot list them: ", names.status().message()), "try again");
  } else {
    const std::set<std::string> have(names->begin(), names->end());
    std::vector<std::string> absent;
    for (const auto& name : contract.required_secrets()) {
      if (!have.count(name)) absent.push_back(name);
    }
    if (absent.empty()) {
      Add(report, "secrets", "the secrets it needs are set", v1::CHECK_STATUS_PASSED,
          absl::StrCat("set: ", absl::StrJoin(contract.required_secrets(), ", ")));
    } else {
      Add(report, "secrets", "the secrets it needs are set", v1::CHECK_STATUS_FAILED,
          absl::StrCat("not set: ", absl::StrJoin(absent, ", ")),
          absl::StrCat("orchestrator project secret set ", project_id, " ", absent.front(),
                       " VALUE"));
    }
  }

  // A server and ports.
  auto slots = allocations_->Slots(owner_id, project_id, server_id);
  if (!slots.ok()) {
    Add(report, "allocation", "a server and port are allocated", v1::CHECK_STATUS_FAILED,
        std::string(slots.status().message()),
        "release an allocation you no longer need (orchestrator infra allocations)");
  } else {
    out.slots = *slots;
    Add(report, "allocation", "a server and port are allocated", v1::CHECK_STATUS_PASSED,
        absl::StrCat("ports ", slots->live.port(), " and ", slots->next.port(), " on server ",
                     slots->live.server_id(), ", routed at ", slots->live.hostname()));
  }

  // The parts a deploy drives, on the server it runs on.
  // (The server is the one the ports are on: when there are none, the
  // local one's parts are checked, never a server named in the request.)
  auto at = servers_->For(owner_id, slots.ok() ? slots->live.server_id() : "");
  if (!at.ok()) {
    Add(report, "server", "the server is reachable", v1::CHECK_STATUS_FAILED,
        std::string(at.status().message()),
        "check the server (orchestrator infra server SERVER; infra provision SERVER)");
  } else if (auto s = at->engine->Ping(); !s.ok()) {
    Add(report, "container_engine", "the container engine answers", v1::CHECK_STATUS_FAILED,
        std::string(s.message()), "start it (tools/up starts Podman's service)");
  } else {
    Add(report, "container_engine", "the container engine answers", v1::CHECK_STATUS_PASSED,
        "it answers");
  }
  if (!at.ok()) {
    // Said above.
  } else if (auto routes = at->router->ListRoutes(); !routes.ok()) {
    Add(report, "router", "the router (Caddy) answers", v1::CHECK_STATUS_FAILED,
        std::string(routes.status().message()), "start Caddy (tools/up starts it)");
  } else {
    Add(report, "router", "the router (Caddy) answers", v1::CHECK_STATUS_PASSED, "it answers");
  }

  // One deploy at a time.
  if (auto busy = in_flight_(project_id); !busy.ok()) {
    Add(report, "no_deploy_running", "no other deploy of the project is running",
        v1::CHECK_STATUS_FAILED, std::string(busy.status().message()), "try again");
  } else if (*busy) {
    Add(report, "no_deploy_running", "no other deploy of the project is running",
        v1::CHECK_STATUS_FAILED, "a deploy or rollback of the project is queued or running",
        "wait for it to end (orchestrator jobs list --project)");
  } else {
    Add(report, "no_deploy_running", "no other deploy of the project is running",
        v1::CHECK_STATUS_PASSED, "none is");
  }

  bool ready = true;
  for (const auto& check : report.checks()) ready &= check.status() != v1::CHECK_STATUS_FAILED;
  report.set_ready(ready);
  return out;
}

}  // namespace orchestrator::deploy
