#include "services/admin/domain/pipeline_console.h"

#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "services/common/config/agent_names.h"
#include "services/common/validation/fields.h"

namespace orchestrator::admin {
namespace {

constexpr absl::string_view kAnswerPrefix = "answer.";

v1::StepParameter Parameter(std::string name, std::string description, bool required = false) {
  v1::StepParameter p;
  p.set_name(std::move(name));
  p.set_description(std::move(description));
  p.set_required(required);
  return p;
}

v1::PipelineStep Step(std::string name, std::string component, std::string job_kind,
                      bool per_project, std::string description,
                      std::vector<v1::StepParameter> parameters) {
  v1::PipelineStep s;
  s.set_name(std::move(name));
  s.set_component(std::move(component));
  s.set_job_kind(std::move(job_kind));
  s.set_per_project(per_project);
  s.set_description(std::move(description));
  for (auto& p : parameters) *s.add_parameters() = std::move(p);
  return s;
}

std::vector<v1::PipelineStep> BuildFixedSteps() {
  return {
      Step("scaffold", "scaffolder", "scaffold", true,
           "creates the project's repository from a template (ScaffolderService.Scaffold)",
           {Parameter("template_id",
                      "the built-in template, e.g. python-http; required unless git_url is given"),
            Parameter("git_url",
                      "a template from a git repository (https://) instead, with git_tag"),
            Parameter("git_tag", "the tag of git_url's template"),
            Parameter("repository_name",
                      "the repository's name on the git host (default: the project's name)"),
            Parameter("replace_repository",
                      "true: a new repository replaces the one the project has (default false)"),
            Parameter("answer.*",
                      "answer.<question>: an answer to one of the template's "
                      "questions (unanswered ones take their defaults)")}),
      Step("engineering", "engineering", "engineering", true,
           "a coding agent changes the project's code and its tests verify it "
           "(EngineeringService.TriggerEngineering)",
           {Parameter("instructions", "what to build or fix, for the agent", true),
            Parameter("agent_type",
                      "scripted, claude-code, codex or factory-droid (default: the platform's)"),
            Parameter("max_iterations",
                      "attempts before the run asks for a human, 1 to 10 (default: the "
                      "platform's)")}),
      Step("deploy", "deploy", "deploy", true,
           "builds, starts and health-checks a commit, then switches traffic to it "
           "(DeployService.TriggerDeploy)",
           {Parameter("commit_sha", "the commit to deploy (default: the default branch's head)")}),
      Step("rollback", "deploy", "rollback", true,
           "makes an earlier release live again (DeployService.Rollback)",
           {Parameter("release_id",
                      "the release to make live again (default: the one live before the "
                      "current one)")}),
      Step("provision", "infra", "provision", false,
           "installs what deploys need on a server (InfraService.ProvisionServer); not per "
           "project",
           {Parameter("server_id", "the server to provision", true)}),
  };
}

const v1::PipelineStep* FindFixedStep(absl::string_view name) {
  for (const auto& s : PipelineConsole::FixedSteps()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

std::string ParameterField(absl::string_view key) {
  return absl::StrCat("parameters[\"", key.substr(0, 64), "\"]");
}

// Every key must be one the step takes, and every required one given.
absl::Status CheckParameters(const v1::PipelineStep& step,
                             const google::protobuf::Map<std::string, std::string>& given) {
  std::vector<std::string> names;
  for (const auto& p : step.parameters()) names.push_back(p.name());
  for (const auto& [key, value] : given) {
    bool known = false;
    for (const auto& p : step.parameters()) {
      if (absl::EndsWith(p.name(), ".*")) {
        const absl::string_view prefix = absl::StripSuffix(p.name(), "*");
        known = known || (absl::StartsWith(key, prefix) && key.size() > prefix.size());
      } else {
        known = known || key == p.name();
      }
    }
    if (!known) {
      return InvalidField(ParameterField(key),
                          names.empty() ? absl::StrCat("step ", step.name(), " takes no parameters")
                                        : absl::StrCat("step ", step.name(),
                                                       " takes no such "
                                                       "parameter (it takes ",
                                                       absl::StrJoin(names, ", "), ")"));
    }
  }
  for (const auto& p : step.parameters()) {
    if (p.required() && (!given.contains(p.name()) || given.at(p.name()).empty())) {
      return InvalidField(ParameterField(p.name()),
                          absl::StrCat("step ", step.name(), " requires it: ", p.description()));
    }
  }
  return absl::OkStatus();
}

std::string Get(const google::protobuf::Map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

absl::StatusOr<scaffolder::v1::ScaffoldRequest> ScaffoldRequestOf(
    const v1::TriggerStepRequest& req) {
  const auto& p = req.parameters();
  scaffolder::v1::ScaffoldRequest out;
  out.set_project_id(req.project_id());
  out.set_request_id(req.request_id());
  out.set_template_id(Get(p, "template_id"));
  const std::string git_url = Get(p, "git_url");
  const std::string git_tag = Get(p, "git_tag");
  if (git_url.empty() && !git_tag.empty()) {
    return InvalidField(ParameterField("git_url"), "required with git_tag");
  }
  if (!git_url.empty()) {
    out.mutable_template_source()->set_git_url(git_url);
    out.mutable_template_source()->set_git_tag(git_tag);
  } else if (out.template_id().empty()) {
    return InvalidField(ParameterField("template_id"),
                        "step scaffold requires it (or git_url and git_tag)");
  }
  out.set_repository_name(Get(p, "repository_name"));
  const std::string replace = Get(p, "replace_repository");
  if (!replace.empty() && replace != "true" && replace != "false") {
    return InvalidField(ParameterField("replace_repository"), "must be true or false");
  }
  out.set_replace_repository(replace == "true");
  for (const auto& [key, value] : p) {
    if (absl::StartsWith(key, kAnswerPrefix)) {
      (*out.mutable_answers())[key.substr(kAnswerPrefix.size())] = value;
    }
  }
  return out;
}

absl::StatusOr<engineering::v1::TriggerEngineeringRequest> EngineeringRequestOf(
    const v1::TriggerStepRequest& req) {
  const auto& p = req.parameters();
  engineering::v1::TriggerEngineeringRequest out;
  out.set_project_id(req.project_id());
  out.set_request_id(req.request_id());
  out.set_instructions(Get(p, "instructions"));
  if (const std::string agent = Get(p, "agent_type"); !agent.empty()) {
    auto type = AgentTypeNamed(agent);
    if (!type) {
      return InvalidField(ParameterField("agent_type"),
                          "must be scripted, claude-code, codex or factory-droid");
    }
    out.set_agent_type(*type);
  }
  if (const std::string n = Get(p, "max_iterations"); !n.empty()) {
    int iterations = 0;
    if (!absl::SimpleAtoi(n, &iterations) || iterations < 1 || iterations > 10) {
      return InvalidField(ParameterField("max_iterations"), "must be a whole number from 1 to 10");
    }
    out.set_max_iterations(iterations);
  }
  return out;
}

// The user a job runs for when no project names one: the caller, unless the
// mesh itself calls.
std::string ActorOf(const Principal& caller) {
  return caller.kind == PrincipalKind::kMesh && caller.admin ? std::string() : caller.user_id;
}

std::string Count(int64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

}  // namespace

const std::vector<v1::PipelineStep>& PipelineConsole::FixedSteps() {
  static const auto* steps = new std::vector<v1::PipelineStep>(BuildFixedSteps());
  return *steps;
}

absl::StatusOr<v1::ListPipelineStepsResponse> PipelineConsole::ListSteps(const Principal&) {
  v1::ListPipelineStepsResponse out;
  for (const auto& s : FixedSteps()) *out.add_steps() = s;
  if (!peers_->Reaches("scheduler")) {
    out.add_notes("scheduler tasks not listed: the scheduler is not part of this mesh");
    return out;
  }
  auto tasks = peers_->SchedulerTasks();
  if (!tasks.ok()) {
    // The scheduler may not be built yet (UNIMPLEMENTED) or be down: the
    // other steps are still worth listing.
    out.add_notes(absl::StrCat("scheduler tasks not listed: the scheduler answered ",
                               absl::StatusCodeToString(tasks.status().code()), ": ",
                               tasks.status().message()));
    return out;
  }
  for (const auto& task : *tasks) {
    *out.add_steps() =
        Step(absl::StrCat(kTaskStepPrefix, task.id()), "scheduler", task.job_kind(), false,
             absl::StrCat(task.description(), " (scheduler task, run now)"), {});
  }
  return out;
}

absl::StatusOr<jobs::v1::Job> PipelineConsole::TriggerStep(const Principal& caller,
                                                           const v1::TriggerStepRequest& req) {
  if (auto s = RequireNonEmpty("step", req.step()); !s.ok()) return s;
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  if (auto s = CheckToken("project_id", req.project_id()); !s.ok()) return s;
  const bool no_project = req.project_id().empty() || req.project_id() == "-";

  if (absl::StartsWith(req.step(), kTaskStepPrefix)) {
    const std::string task_id(absl::StripPrefix(req.step(), kTaskStepPrefix));
    if (task_id.empty()) return absl::NotFoundError("step 'task:' names no scheduler task");
    if (!req.parameters().empty()) {
      return InvalidField(ParameterField(req.parameters().begin()->first),
                          absl::StrCat("step ", req.step(), " takes no parameters"));
    }
    if (!no_project) {
      return InvalidField("project_id", "a scheduler task is not per project: leave it empty");
    }
    if (!peers_->Reaches("scheduler")) {
      return absl::NotFoundError(absl::StrCat("step '", req.step(),
                                              "' not found: the scheduler is not part of this "
                                              "mesh"));
    }
    scheduler::v1::RunTaskNowRequest run;
    run.set_task_id(task_id);
    run.set_request_id(req.request_id());
    return peers_->RunTaskNow(ActorOf(caller), run);
  }

  const v1::PipelineStep* step = FindFixedStep(req.step());
  if (step == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "step '", req.step().substr(0, 64),
        "' not found: see ListPipelineSteps (scaffold, engineering, deploy, rollback, provision, "
        "task:<task id>)"));
  }
  if (auto s = CheckParameters(*step, req.parameters()); !s.ok()) return s;
  if (!step->per_project()) {
    if (!no_project) {
      return InvalidField(
          "project_id", absl::StrCat("step ", step->name(), " is not per project: leave it empty"));
    }
    infra::v1::ProvisionServerRequest provision;
    provision.set_server_id(Get(req.parameters(), "server_id"));
    provision.set_request_id(req.request_id());
    return peers_->ProvisionServer(ActorOf(caller), provision);
  }
  if (no_project) {
    return InvalidField("project_id", absl::StrCat("step ", step->name(), " runs for a project"));
  }
  // What the component's own RPC would get: built before the project is
  // looked up, so bad parameters are told first.
  const std::string& name = step->name();
  absl::StatusOr<scaffolder::v1::ScaffoldRequest> scaffold;
  absl::StatusOr<engineering::v1::TriggerEngineeringRequest> engineering;
  if (name == "scaffold") {
    scaffold = ScaffoldRequestOf(req);
    if (!scaffold.ok()) return scaffold.status();
  } else if (name == "engineering") {
    engineering = EngineeringRequestOf(req);
    if (!engineering.ok()) return engineering.status();
  }
  auto owner = peers_->ProjectOwner(req.project_id());
  if (!owner.ok()) return owner.status();
  if (name == "scaffold") return peers_->Scaffold(*owner, *scaffold);
  if (name == "engineering") return peers_->TriggerEngineering(*owner, *engineering);
  if (name == "deploy") {
    deploy::v1::TriggerDeployRequest d;
    d.set_project_id(req.project_id());
    d.set_commit_sha(Get(req.parameters(), "commit_sha"));
    d.set_request_id(req.request_id());
    return peers_->TriggerDeploy(*owner, d);
  }
  deploy::v1::RollbackRequest r;
  r.set_project_id(req.project_id());
  r.set_release_id(Get(req.parameters(), "release_id"));
  r.set_request_id(req.request_id());
  return peers_->Rollback(*owner, r);
}

// Batches of (at most 1000) ended jobs one ClearProjectState deletes.
constexpr int kMaxClearBatches = 100;

absl::StatusOr<v1::ClearProjectStateResponse> PipelineConsole::ClearProjectState(
    const Principal&, const v1::ClearProjectStateRequest& req, absl::Time wait_until) {
  if (auto s = RequireNonEmpty("project_id", req.project_id()); !s.ok()) return s;
  if (auto s = CheckToken("project_id", req.project_id()); !s.ok()) return s;
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  if (!req.confirm()) {
    return absl::FailedPreconditionError(
        "clearing a project's state cancels its jobs and deletes them with their history: pass "
        "confirm=true (--confirm) to go ahead");
  }
  auto owner = peers_->ProjectOwner(req.project_id());
  if (!owner.ok()) return owner.status();
  // Nothing is deleted unless the notifications about it can be dropped
  // too: a sessions component that cannot be reached refuses before.
  const bool sessions = peers_->Reaches("sessions");
  if (sessions) {
    if (auto ping = peers_->DropJobNotifications({}); !ping.ok()) return ping.status();
  }

  jobs::v1::ClearProjectJobsRequest clear;
  clear.set_project_id(req.project_id());
  clear.set_reason("an admin cleared the project's state");
  auto first = peers_->ClearProjectJobs(clear);
  if (!first.ok()) return first.status();
  int64_t cancelled = first->jobs_cancelled();
  std::vector<std::string> running(first->running_job_ids().begin(),
                                   first->running_job_ids().end());
  if (!running.empty()) {
    // Cancellation reaches a running handler at once (or at its next
    // heartbeat); its row goes only once it has ended, never under it.
    auto still = peers_->AwaitJobsEnded(running, wait_until);
    if (!still.ok()) return still.status();
  }

  // In batches: the ended jobs listed, the notifications about them dropped,
  // then exactly those jobs deleted. A call cut off anywhere leaves nothing
  // that refers to a deleted job: made again, it picks up where it stopped.
  std::vector<std::string> deleted;
  int64_t events = 0;
  int64_t dropped = 0;
  for (int batch = 0; batch < kMaxClearBatches; ++batch) {
    auto listed = peers_->ClearProjectJobs(clear);
    if (!listed.ok()) return listed.status();
    cancelled += listed->jobs_cancelled();
    running.assign(listed->running_job_ids().begin(), listed->running_job_ids().end());
    if (listed->ended_job_ids().empty()) break;
    const std::vector<std::string> ended(listed->ended_job_ids().begin(),
                                         listed->ended_job_ids().end());
    if (sessions) {
      auto n = peers_->DropJobNotifications(ended);
      if (!n.ok()) {
        return absl::Status(
            n.status().code(),
            absl::StrCat("the notifications about the project's jobs could not be dropped (",
                         deleted.size(),
                         " jobs deleted so far; call again to go on): ", n.status().message()));
      }
      dropped += *n;
    }
    jobs::v1::ClearProjectJobsRequest remove = clear;
    for (const auto& id : ended) remove.add_delete_job_ids(id);
    auto removed = peers_->ClearProjectJobs(remove);
    if (!removed.ok()) return removed.status();
    deleted.insert(deleted.end(), removed->deleted_job_ids().begin(),
                   removed->deleted_job_ids().end());
    events += removed->events_deleted();
    if (removed->deleted_job_ids().empty()) break;  // nothing more this call can delete
  }

  v1::ClearProjectStateResponse out;
  out.set_jobs_cancelled(static_cast<int32_t>(cancelled));
  out.set_jobs_deleted(static_cast<int32_t>(deleted.size()));
  out.set_events_deleted(events);
  out.set_notifications_dropped(static_cast<int32_t>(dropped));
  for (const auto& id : running) out.add_jobs_still_running(id);
  out.add_cleared(absl::StrCat(Count(cancelled, "job", "jobs"), " cancelled"));
  out.add_cleared(absl::StrCat(Count(static_cast<int64_t>(deleted.size()), "job", "jobs"),
                               " deleted with ", Count(events, "event", "events")));
  out.add_cleared(sessions ? absl::StrCat(Count(dropped, "notification", "notifications"),
                                          " about them dropped")
                           : "no notifications dropped: no sessions component in this mesh");
  if (!running.empty()) {
    out.add_cleared(absl::StrCat(Count(static_cast<int64_t>(running.size()), "job", "jobs"),
                                 " still running after the cancel (", absl::StrJoin(running, ", "),
                                 "): kept; call again once they ended to delete them"));
  }
  return out;
}

}  // namespace orchestrator::admin
