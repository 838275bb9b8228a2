// The command table: every command of the CLI, the RPC it calls and how its
// answer is shown. Parsing, --help, output and the skills export all read
// it; the permission each command needs is its RPC's, from the contract.
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/common/v1/options.pb.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/commands/command.h"
#include "services/common/commands/format.h"
#include "services/common/commands/job_event_text.h"

namespace orchestrator::commands {
namespace {

namespace admin = ::orchestrator::admin::v1;
namespace agents = ::orchestrator::agents::v1;
namespace deploy = ::orchestrator::deploy::v1;
namespace engineering = ::orchestrator::engineering::v1;
namespace infra = ::orchestrator::infra::v1;
namespace jobs = ::orchestrator::jobs::v1;
namespace projects = ::orchestrator::projects::v1;
namespace scaffolder = ::orchestrator::scaffolder::v1;
namespace scheduler = ::orchestrator::scheduler::v1;
namespace sessions = ::orchestrator::sessions::v1;

Param Arg(std::string name, std::string field, std::string help) {
  return Param{std::move(name), std::move(field), std::move(help), true, true};
}
Param Flag(std::string name, std::string field, std::string help) {
  return Param{std::move(name), std::move(field), std::move(help), false, false};
}
Param Required(std::string name, std::string field, std::string help) {
  return Param{std::move(name), std::move(field), std::move(help), false, true};
}
Param Switch(std::string name, std::string field, std::string help) {
  Param p{std::move(name), std::move(field), std::move(help), false, false};
  p.is_switch = true;
  return p;
}
std::vector<Param> Paging() {
  return {Flag("page-size", "page_size", "at most this many (server default 50)"),
          Flag("page-token", "page_token", "continue from a previous page")};
}
std::vector<Param> With(std::vector<Param> a, const std::vector<Param>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A repeated flag whose values are phrases: commas are kept.
Param Phrases(Param p) {
  p.one_item_each = true;
  return p;
}

Param DeployFixFlag() {
  return Flag("deploy-fix", "project.deploy_fix",
              "on (default): a deploy that fails its health gate, or is rolled back, gets one "
              "engineering run with the failure and a redeploy; off: only reported");
}

Param ChangeDeliveryFlag() {
  return Flag("change-delivery", "project.change_delivery",
              "how engineering runs deliver changes: fast-forward (the default branch; default) "
              "or pull-request (repositories on GitHub)");
}

std::vector<Column> JobColumns() {
  return {{"ID", "id"},
          {"KIND", "kind"},
          {"STATE", "state"},
          {"PROGRESS", "",
           [](const Message& m, absl::Time) {
             const auto& job = static_cast<const jobs::Job&>(m);
             return job.progress_percent() > 0 ? absl::StrCat(job.progress_percent(), "%")
                                               : std::string();
           }},
          {"PROJECT", "project_id"},
          {"UPDATED", "update_time"}};
}

// An engineering run at a glance: attempts made of its most, its latest
// tests (passed of all), the tokens it used (input plus output, what the
// budget counts), the commit it pushed.
std::vector<Column> EngineeringRunColumns() {
  using Run = engineering::EngineeringRun;
  return {
      {"ID", "id"},
      {"STATUS", "status"},
      {"ITERATIONS", "",
       [](const Message& m, absl::Time) {
         const auto& run = static_cast<const Run&>(m);
         return run.max_iterations() > 0 ? absl::StrCat(run.iterations(), "/", run.max_iterations())
                                         : std::string();
       }},
      {"TESTS", "",
       [](const Message& m, absl::Time) {
         const auto& run = static_cast<const Run&>(m);
         if (!run.has_last_test_report()) return std::string();
         const auto& report = run.last_test_report();
         const int total = report.passed_count() + report.failed_count() + report.skipped_count();
         // No counts (a runner that prints none): the outcome alone.
         if (total == 0 || report.outcome() == engineering::TEST_OUTCOME_NOT_RUN) {
           const auto* outcome =
               engineering::TestOutcome_descriptor()->FindValueByNumber(report.outcome());
           return outcome != nullptr && outcome->number() != 0 ? EnumLabel(outcome) : std::string();
         }
         return absl::StrCat(report.passed_count(), "/", total);
       }},
      {"TOKENS", "",
       [](const Message& m, absl::Time) {
         const auto& run = static_cast<const Run&>(m);
         return run.has_usage()
                    ? CountText(run.usage().input_tokens() + run.usage().output_tokens())
                    : std::string();
       }},
      {"COMMIT", "",
       [](const Message& m, absl::Time) {
         return static_cast<const Run&>(m).change().commit_sha().substr(0, 7);
       }},
      {"CREATED", "create_time"}};
}

// A project's history, one step a row: when, what, its id and the step it
// came from, who, how it ended, what it made, and its model usage.
std::vector<Column> HistoryStepColumns() {
  using Step = jobs::HistoryStep;
  return {{"WHEN", "create_time"},
          {"STEP", "",
           [](const Message& m, absl::Time) {
             const auto& step = static_cast<const Step&>(m);
             switch (step.kind()) {
               case jobs::HISTORY_STEP_KIND_USER_MESSAGE:
                 return std::string("message");
               case jobs::HISTORY_STEP_KIND_JOB_NEWS:
                 return std::string("news");
               default:
                 return step.job_kind();
             }
           }},
          {"ID", "id"},
          {"FROM", "parent_id"},
          {"BY", "actor"},
          {"OUTCOME", "",
           [](const Message& m, absl::Time) {
             const auto& step = static_cast<const Step&>(m);
             // One line per step (the table cuts it to its width).
             return absl::StrReplaceAll(step.summary(), {{"\n", " "}, {"\r", " "}, {"\t", " "}});
           }},
          {"MADE", "",
           [](const Message& m, absl::Time) {
             const auto& made = static_cast<const Step&>(m).made();
             std::vector<std::string> parts;
             for (const char* key : {"url", "commit_sha", "release_id", "run_id"}) {
               auto it = made.find(key);
               if (it == made.end()) continue;
               parts.push_back(std::string(key) == "commit_sha" ? it->second.substr(0, 12)
                                                                : it->second);
             }
             return absl::StrJoin(parts, " ");
           }},
          {"TOKENS", "",
           [](const Message& m, absl::Time) {
             const auto& usage = static_cast<const Step&>(m).usage();
             const int64_t tokens = usage.input_tokens() + usage.output_tokens();
             return tokens > 0 ? CountText(tokens) : std::string();
           }},
          {"COST", "", [](const Message& m, absl::Time) {
             const int64_t micros = static_cast<const Step&>(m).usage().cost_usd_micros();
             return micros > 0 ? absl::StrFormat("$%.4f", static_cast<double>(micros) / 1e6)
                               : std::string();
           }}};
}

std::string LogLineText(const Message& m, absl::Time) {
  const auto& line = static_cast<const common::v1::LogLine&>(m);
  std::string source = line.source().empty() ? "" : line.source() + " ";
  return absl::StrCat(line.has_emit_time()
                          ? ClockText(absl::FromUnixSeconds(line.emit_time().seconds()))
                          : std::string("--:--:--"),
                      "  ", source, line.text());
}

std::vector<Command> Build() {
  std::vector<Command> c;
  auto add = [&c](Command command) { c.push_back(std::move(command)); };

  // --- project ---------------------------------------------------------------
  add({.group = "project",
       .name = "create",
       .summary = "create a project",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::CreateProject),
       .params = {Arg("NAME", "project.name", "lower-case name, unique per owner (my-app)"),
                  Flag("display-name", "project.display_name", "name for people"),
                  Flag("description", "project.description", "what it is"),
                  Flag("repository-url", "project.repository_url", "its git repository"),
                  Flag("template", "project.template_id", "scaffold from this template"),
                  ChangeDeliveryFlag(), DeployFixFlag()},
       .show_field = "project"});
  add({.group = "project",
       .name = "list",
       .summary = "list projects",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::ListProjects),
       .params = With({Flag("status", "status", "only this status"),
                       Flag("owner", "owner_id", "another owner's (admins)")},
                      Paging()),
       .list_field = "projects",
       .columns = {{"ID", "id"},
                   {"NAME", "name"},
                   {"STATUS", "status"},
                   {"REPOSITORY", "repository_url"},
                   {"UPDATED", "update_time"}}});
  add({.group = "project",
       .name = "get",
       .summary = "show a project",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::GetProject),
       .params = {Arg("PROJECT", "project_id", "the project's id")},
       .show_field = "project"});
  add({.group = "project",
       .name = "update",
       .summary = "change a project's fields (only those given)",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::UpdateProject),
       .params = {Arg("PROJECT", "project.id", "the project's id"),
                  Flag("display-name", "project.display_name", "name for people"),
                  Flag("description", "project.description", "what it is"),
                  Flag("repository-url", "project.repository_url", "its git repository"),
                  Flag("status", "project.status", "the new status"), ChangeDeliveryFlag(),
                  DeployFixFlag()},
       .show_field = "project",
       .details = "The update mask is the set of flags given."});
  add({.group = "project",
       .name = "delete",
       .summary = "delete a project",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::DeleteProject),
       .params = {Arg("PROJECT", "project_id", "the project's id")}});
  {
    Param value = Flag("value", "value", "the value; without it, read from standard input");
    value.stdin_if_absent = true;
    add({.group = "project",
         .name = "set-secret",
         .summary = "store a secret for a project (write-only)",
         .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::SetSecret),
         .params = {Arg("PROJECT", "project_id", "the project's id"),
                    Arg("NAME", "name", "upper-case name (DATABASE_URL)"), value},
         .show_field = "secret",
         .details = "Prefer standard input to --value: values on a command line stay in the "
                    "shell's history.\n  printf %s \"$URL\" | orchestrator project set-secret "
                    "PROJECT DATABASE_URL"});
  }
  add({.group = "project",
       .name = "secrets",
       .summary = "list a project's secret names (values never leave)",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::ListSecrets),
       .params = With({Arg("PROJECT", "project_id", "the project's id")}, Paging()),
       .list_field = "secrets",
       .columns = {{"NAME", "name"}, {"UPDATED", "update_time"}}});
  add({.group = "project",
       .name = "delete-secret",
       .summary = "delete a project's secret",
       .rpc = Unary<projects::ProjectService>(&projects::ProjectService::Stub::DeleteSecret),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Arg("NAME", "name", "the secret's name")}});

  add({.group = "project",
       .name = "history",
       .summary = "what led from a message to what runs: the project's steps, oldest first",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::ListProjectHistory),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Flag("leading-to", "leading_to",
                       "only the steps that led to this job or release (job_…, rel_…)"),
                  Flag("limit", "page_size", "at most this many of the newest steps (200)")},
       .list_field = "steps",
       .columns = HistoryStepColumns(),
       .details = "Each step is a message to the PO (message), the platform's news of a job the "
                  "PO acted on (news), or a job (scaffold, engineering, deploy, ...); FROM is the "
                  "step that led to it. TOKENS and COST are the model usage of an engineering "
                  "run's agent or of the PO's turn on a message; total_usage sums them.\n"
                  "  orchestrator project history PROJECT --leading-to rel_...   which message "
                  "asked for this release?"});

  // --- jobs ------------------------------------------------------------------
  // --- scaffold --------------------------------------------------------------
  add({.group = "scaffold",
       .name = "templates",
       .summary = "list the built-in project templates",
       .rpc = Unary<scaffolder::ScaffolderService>(
           &scaffolder::ScaffolderService::Stub::ListTemplates),
       .params =
           With({Flag("language", "language", "only this language's (python, node, …)")}, Paging()),
       .list_field = "templates",
       .columns = {{"ID", "id"},
                   {"VERSION", "version"},
                   {"LANGUAGE", "language"},
                   {"DESCRIPTION", "display_name"}}});
  add({.group = "scaffold",
       .name = "template",
       .summary = "show a template: its questions and run contract",
       .rpc =
           Unary<scaffolder::ScaffolderService>(&scaffolder::ScaffolderService::Stub::GetTemplate),
       .params = {Arg("TEMPLATE", "template_id", "the template's id"),
                  Flag("git-url", "source.git_url", "a template from this git repository instead"),
                  Flag("git-tag", "source.git_tag", "the tag of --git-url to use")},
       .show_field = "template"});
  add({.group = "scaffold",
       .name = "run",
       .summary = "make a project's repository from a template (a job)",
       .rpc = Unary<scaffolder::ScaffolderService>(&scaffolder::ScaffolderService::Stub::Scaffold),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Flag("template", "template_id", "the template's id (scaffold templates)"),
                  Flag("answer", "answers",
                       "NAME=VALUE: an answer to one of the template's questions (repeat it)"),
                  Flag("git-url", "template_source.git_url",
                       "a template from this git repository instead"),
                  Flag("git-tag", "template_source.git_tag", "the tag of --git-url to use"),
                  Flag("repository-name", "repository_name",
                       "the repository's name on the git host (default: the project's name)"),
                  Switch("replace-repository", "replace_repository",
                         "make a new repository for a project that has one")},
       .show_field = "job",
       .job_id_path = "job.id",
       .details = "The job renders the template with the answers, commits, creates the\n"
                  "repository, pushes and verifies it, then records it on the project.\n"
                  "Example:\n"
                  "  orchestrator scaffold run prj_1 --template python-http \\\n"
                  "      --answer service_title=Shop --follow"});
  add({.group = "jobs",
       .name = "list",
       .summary = "list jobs, newest first",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::ListJobs),
       .params = With({Flag("owner", "owner_id", "another owner's (admins)"),
                       Flag("project", "project_id", "only this project's"),
                       Flag("kind", "kind", "only this kind (deploy, engineering, …)"),
                       Flag("state", "state", "only this state")},
                      Paging()),
       .list_field = "jobs",
       .columns = JobColumns()});
  add({.group = "jobs",
       .name = "get",
       .summary = "show a job",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::GetJob),
       .params = {Arg("JOB", "job_id", "the job's id")},
       .show_field = "job"});
  add({.group = "jobs",
       .name = "events",
       .summary = "list a job's events (the record of what happened)",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::ListJobEvents),
       .params = With({Arg("JOB", "job_id", "the job's id"),
                       Flag("after", "after_sequence", "only events after this sequence")},
                      Paging()),
       .list_field = "events",
       .columns = {{"SEQ", "sequence"},
                   {"TIME", "create_time"},
                   {"TYPE", "type"},
                   {"DETAIL", "", [](const Message& m, absl::Time now) {
                      return EventDetail(static_cast<const jobs::JobEvent&>(m), now);
                    }}}});
  add({.group = "jobs",
       .name = "watch",
       .summary = "stream a job's events until it ends; exits with its outcome",
       .rpc = ServerStream<jobs::JobService>(&jobs::JobService::Stub::WatchJob),
       .params = {Arg("JOB", "job_id", "the job's id"),
                  Flag("after", "after_sequence", "resume after this sequence")},
       .job_id_path = "job_id",
       .details = "Exit status: 0 when the job succeeded, 1 when it failed or was cancelled."});
  add({.group = "jobs",
       .name = "cancel",
       .summary = "cancel a job (a running one stops at its next heartbeat)",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::CancelJob),
       .params = {Arg("JOB", "job_id", "the job's id"), Flag("reason", "reason", "why")},
       .show_field = "job",
       .job_id_path = "job.id"});
  add({.group = "jobs",
       .name = "retry",
       .summary = "run a failed or cancelled job again",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::RetryJob),
       .params = {Arg("JOB", "job_id", "the job's id")},
       .show_field = "job",
       .job_id_path = "job.id"});
  add({.group = "jobs",
       .name = "demo",
       .summary = "start a demo job (servers started with --demo_jobs)",
       .rpc = Unary<jobs::JobService>(&jobs::JobService::Stub::EnqueueDemoJob),
       .params = {Arg("KIND", "kind", "demo.sleep, demo.fail or demo.noop"),
                  Flag("params", "params", "JSON, e.g. '{\"seconds\":2,\"steps\":4}'"),
                  Flag("project", "project_id", "attach it to a project"),
                  Flag("max-attempts", "max_attempts", "retries before FAILED")},
       .show_field = "job",
       .job_id_path = "job.id"});

  // --- engineering -----------------------------------------------------------
  add({.group = "engineering",
       .name = "trigger",
       .summary = "have a coding agent implement a change, tested and pushed (a job)",
       .rpc = Unary<engineering::EngineeringService>(
           &engineering::EngineeringService::Stub::TriggerEngineering),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Arg("TASK", "instructions", "what to build or fix, for the agent"),
                  Flag("agent", "agent_type",
                       "claude-code, codex, factory-droid or scripted (default: the platform's)"),
                  Flag("max-iterations", "max_iterations",
                       "attempts (agent turn, then tests) before it asks for a human: 1-10 "
                       "(default 3)")},
       .show_field = "run",
       .job_id_path = "job.id",
       .details =
           "The agent works in a sandbox on a clone of the project's repository; the\n"
           "platform runs the project's tests on each attempt and feeds failures back.\n"
           "A change that passes is committed and pushed (see project update\n"
           "--change-delivery); one that never passes fails the job asking for a human,\n"
           "with the last attempt on the branch orchestrator/<run>. A retry with the same\n"
           "--request-id returns the same run. Example:\n"
           "  orchestrator engineering trigger prj_1 \"make the greeting say Howdy\" --follow"});
  add({.group = "engineering",
       .name = "status",
       .summary = "show an engineering run: its attempts, tests, usage and change",
       .rpc = Unary<engineering::EngineeringService>(
           &engineering::EngineeringService::Stub::GetEngineeringRun),
       .params = {Arg("RUN", "run_id", "the run's id")},
       .show_field = "run",
       .job_id_path = "run.job_id"});
  add({.group = "engineering",
       .name = "latest",
       .summary = "show the latest change produced for a project",
       .rpc = Unary<engineering::EngineeringService>(
           &engineering::EngineeringService::Stub::GetLatestChange),
       .params = {Arg("PROJECT", "project_id", "the project's id")},
       .show_field = "change"});
  add({.group = "engineering",
       .name = "runs",
       .summary = "list a project's engineering runs, newest first",
       .rpc = Unary<engineering::EngineeringService>(
           &engineering::EngineeringService::Stub::ListEngineeringRuns),
       .params = With({Arg("PROJECT", "project_id", "the project's id"),
                       Flag("status", "status", "only this status")},
                      Paging()),
       .list_field = "runs",
       .columns = EngineeringRunColumns()});
  add({.group = "engineering",
       .name = "usage",
       .summary = "show the model usage of your engineering runs, and the token budget",
       .rpc = Unary<engineering::EngineeringService>(
           &engineering::EngineeringService::Stub::GetEngineeringUsage),
       .params = {Flag("project", "project_id", "only this project's runs")},
       .details = "window_tokens counts input plus output tokens within budget_window; a run\n"
                  "is refused while it is at or over budget_tokens (0: no budget)."});

  // --- deploy ----------------------------------------------------------------
  add({.group = "deploy",
       .name = "check",
       .summary = "check whether a project is ready to deploy, and what to fix",
       .rpc = Unary<deploy::DeployService>(&deploy::DeployService::Stub::CheckReadiness),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Flag("server", "server_id",
                       "for this server (its ports are allocated there if it has none)")},
       .list_field = "checks",
       .columns = {
           {"CHECK", "name"}, {"STATUS", "status"}, {"MESSAGE", "message"}, {"REMEDY", "remedy"}}});
  add({.group = "deploy",
       .name = "trigger",
       .summary = "deploy a project",
       .rpc = Unary<deploy::DeployService>(&deploy::DeployService::Stub::TriggerDeploy),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Flag("commit", "commit_sha", "this commit (default: the branch's head)"),
                  Flag("server", "server_id",
                       "to this server (default: where its ports are, else local)")},
       .show_field = "job",
       .job_id_path = "job.id"});
  add({.group = "deploy",
       .name = "status",
       .summary = "show a release",
       .rpc = Unary<deploy::DeployService>(&deploy::DeployService::Stub::GetRelease),
       .params = {Arg("RELEASE", "release_id", "the release's id")},
       .show_field = "release",
       .job_id_path = "release.job_id"});
  add({.group = "deploy",
       .name = "logs",
       .summary = "show a deploy's log",
       .rpc = Unary<deploy::DeployService>(&deploy::DeployService::Stub::GetDeployLogs),
       .params = With({Arg("PROJECT", "project_id", "the project's id"),
                       Flag("release", "release_id", "this release's deploy (default: latest)"),
                       Flag("job", "job_id", "this deploy job's")},
                      Paging()),
       .list_field = "lines",
       .columns =
           {{"TIME", "emit_time"}, {"STREAM", "stream"}, {"SOURCE", "source"}, {"TEXT", "text"}},
       .job_id_path = "job_id",
       .follow_replaces_answer = true});
  add({.group = "deploy",
       .name = "rollback",
       .summary = "go back to an earlier release",
       .rpc = Unary<deploy::DeployService>(&deploy::DeployService::Stub::Rollback),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Flag("release", "release_id", "to this release (default: the previous one)")},
       .show_field = "job",
       .job_id_path = "job.id"});
  add({.group = "deploy",
       .name = "releases",
       .summary = "list a project's releases",
       .rpc = Unary<deploy::DeployService>(&deploy::DeployService::Stub::ListReleases),
       .params = With({Arg("PROJECT", "project_id", "the project's id"),
                       Flag("status", "status", "only this status")},
                      Paging()),
       .list_field = "releases",
       .columns = {{"ID", "id"},
                   {"VERSION", "version"},
                   {"STATUS", "status"},
                   {"COMMIT", "commit_sha"},
                   {"URL", "url"},
                   {"CREATED", "create_time"}}});

  // --- infra -----------------------------------------------------------------
  add({.group = "infra",
       .name = "servers",
       .summary = "list servers",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::ListServers),
       .params = With({Flag("status", "status", "only this status")}, Paging()),
       .list_field = "servers",
       .columns = {{"ID", "id"},
                   {"NAME", "name"},
                   {"KIND", "kind"},
                   {"ADDRESS", "address"},
                   {"STATUS", "status"},
                   {"LAST SEEN", "last_seen_time"}}});
  add({.group = "infra",
       .name = "server",
       .summary = "show a server (its status, and why)",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::GetServer),
       .params = {Arg("SERVER", "server_id", "the server's id")},
       .show_field = "server",
       .job_id_path = "server.provision_job_id"});
  {
    Param key = Flag("ssh-key-file", "ssh_private_key", "the SSH private key, from this file");
    key.from_file = true;
    add({.group = "infra",
         .name = "register",
         .summary = "register a server to deploy to",
         .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::RegisterServer),
         .params = {Arg("NAME", "server.name", "a name for it"),
                    Required("address", "server.address", "host name or IP"),
                    Flag("kind", "server.kind", "what it is"),
                    Flag("ssh-user", "server.ssh_user", "user to log in as"),
                    Flag("port-range-start", "server.port_range_start", "first port to allocate"),
                    Flag("port-range-end", "server.port_range_end", "last port to allocate"),
                    Flag("domain", "server.domain",
                         "its projects are served at http://PROJECT.DOMAIN"),
                    Flag("router-listen", "server.router_listen",
                         "where its Caddy serves them (default :80)"),
                    key},
         .show_field = "server"});
  }
  add({.group = "infra",
       .name = "provision",
       .summary = "install what a server needs to host projects",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::ProvisionServer),
       .params = {Arg("SERVER", "server_id", "the server's id")},
       .show_field = "job",
       .job_id_path = "job.id",
       .details = "Runs the platform's Ansible playbook over SSH (container engine, Caddy, the "
                  "deploy user with the mesh's key); --follow shows its tasks as they run."});
  add({.group = "infra",
       .name = "allocate",
       .summary = "allocate a port (and host name) for a project's service",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::AllocatePort),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Required("service", "service", "the service's name (web, api)"),
                  Flag("server", "server_id", "on this server (default: the local one)"),
                  Flag("port", "preferred_port", "this port if free")},
       .show_field = "allocation"});
  add({.group = "infra",
       .name = "allocations",
       .summary = "list port allocations",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::ListAllocations),
       .params = With({Flag("owner", "owner_id", "another owner's (admins)"),
                       Flag("project", "project_id", "only this project's"),
                       Flag("server", "server_id", "only on this server")},
                      Paging()),
       .list_field = "allocations",
       .columns = {{"ID", "id"},
                   {"PROJECT", "project_id"},
                   {"SERVICE", "service"},
                   {"SERVER", "server_id"},
                   {"PORT", "port"},
                   {"HOSTNAME", "hostname"},
                   {"CREATED", "create_time"}}});
  add({.group = "infra",
       .name = "release",
       .summary = "release a port allocation (its service stops being reachable)",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::ReleaseAllocation),
       .params = {Arg("ALLOCATION", "allocation_id", "the allocation's id"),
                  Switch("force", "force", "even the port its project's LIVE release uses")},
       .show_field = "allocation",
       .needs_confirm = true});

  // --- diagnose --------------------------------------------------------------
  add({.group = "diagnose",
       .name = "logs",
       .summary = "show a project's service logs",
       .rpc = ServerStream<infra::InfraService>(&infra::InfraService::Stub::GetServiceLogs),
       .params = {Arg("PROJECT", "project_id", "the project's id"),
                  Flag("service", "service", "only this service"),
                  Flag("tail", "tail_lines", "the last N lines (default 100)"),
                  Flag("since", "since_time", "from this time or age (10m)"),
                  Switch("follow", "follow", "keep streaming new lines until interrupted")},
       .line = [](const Message& m, absl::Time now) {
         const auto& r = static_cast<const infra::GetServiceLogsResponse&>(m);
         std::string out;
         for (const auto& line : r.lines()) out += LogLineText(line, now) + "\n";
         return out;
       }});
  add({.group = "diagnose",
       .name = "health",
       .summary = "check a project's deployed service",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::CheckServiceHealth),
       .params = {Arg("PROJECT", "project_id", "the project's id")},
       .list_field = "checks",
       .columns = {{"CHECK", "name"},
                   {"PASSED", "passed"},
                   {"LATENCY", "latency"},
                   {"MESSAGE", "message"}}});
  add({.group = "diagnose",
       .name = "errors",
       .summary = "list a project's recent errors",
       .rpc = Unary<infra::InfraService>(&infra::InfraService::Stub::GetErrorHistory),
       .params = With({Arg("PROJECT", "project_id", "the project's id"),
                       Flag("since", "since_time", "from this time or age (24h)"),
                       Flag("kind", "kind", "only this kind")},
                      Paging()),
       .list_field = "errors",
       .columns = {{"LAST SEEN", "last_seen_time"},
                   {"KIND", "kind"},
                   {"SERVICE", "service"},
                   {"COUNT", "occurrence_count"},
                   {"MESSAGE", "message"}}});

  // --- session ---------------------------------------------------------------
  add({.group = "session",
       .name = "list",
       .summary = "list Product-Owner sessions",
       .rpc = Unary<sessions::SessionService>(&sessions::SessionService::Stub::ListSessions),
       .params = With({Flag("owner", "owner_id", "another owner's (admins)"),
                       Flag("state", "state", "only this state")},
                      Paging()),
       .list_field = "sessions",
       .columns = {{"ID", "id"},
                   {"STATE", "state"},
                   {"AGENT", "agent_type"},
                   {"QUEUED", "queued_messages"},
                   {"LAST ACTIVITY", "last_activity_time"}}});
  add({.group = "session",
       .name = "send",
       .summary = "send a message to your Product-Owner agent and stream the turn",
       .rpc = ServerStream<sessions::SessionService>(&sessions::SessionService::Stub::SendMessage),
       .params = {Arg("TEXT", "text", "the message"),
                  Flag("session", "session_id", "this session (default: yours)")},
       .line = [](const Message& m, absl::Time) -> std::string {
         const auto& r = static_cast<const sessions::SendMessageResponse&>(m);
         switch (r.payload_case()) {
           case sessions::SendMessageResponse::kAccepted:
             return r.accepted().queue_position() > 0
                        ? absl::StrCat("… queued behind ", r.accepted().queue_position(),
                                       " message(s)\n")
                        : std::string();
           case sessions::SendMessageResponse::kProgress:
             return absl::StrCat("… ", r.progress().message(), "\n");
           case sessions::SendMessageResponse::kReply:
             return r.reply().text() + "\n";
           default:
             return "";
         }
       }});
  add({.group = "session",
       .name = "watch",
       .summary = "print your notifications as they come (what your PO tells you between turns)",
       .rpc = ServerStream<sessions::SessionService>(
           &sessions::SessionService::Stub::WatchNotifications),
       .params = {Flag("after", "after_sequence",
                       "only those after this sequence number (default: all you have)")},
       .details = "Runs until you stop it (Ctrl-C). After `session send \"build a python service "
                  "called\nhello that answers Hello\"` it shows each step of the chain, the last "
                  "one with the URL.",
       .line = [](const Message& m, absl::Time) -> std::string {
         const auto& n = static_cast<const sessions::WatchNotificationsResponse&>(m).notification();
         return absl::StrCat("#", n.sequence(), " ", n.text(), "\n");
       }});
  for (const auto& [name, summary] :
       std::vector<std::pair<std::string, std::string>>{{"pause", "pause a session"},
                                                        {"resume", "resume a paused session"},
                                                        {"end", "end a session"}}) {
    RpcCall rpc =
        name == "pause"
            ? Unary<sessions::SessionService>(&sessions::SessionService::Stub::PauseSession)
        : name == "resume"
            ? Unary<sessions::SessionService>(&sessions::SessionService::Stub::ResumeSession)
            : Unary<sessions::SessionService>(&sessions::SessionService::Stub::EndSession);
    add({.group = "session",
         .name = name,
         .summary = summary,
         .rpc = rpc,
         .params = {Arg("SESSION", "session_id", "the session's id")},
         .show_field = "session"});
  }

  // --- scheduler -------------------------------------------------------------
  add({.group = "scheduler",
       .name = "tasks",
       .summary = "list the platform's periodic tasks",
       .rpc = Unary<scheduler::SchedulerService>(&scheduler::SchedulerService::Stub::ListTasks),
       .params = Paging(),
       .list_field = "tasks",
       .columns = {{"ID", "id"},
                   {"JOB KIND", "job_kind"},
                   {"STATE", "state"},
                   {"LAST RUN", "last_run_time"},
                   {"NEXT RUN", "next_run_time"}}});
  add({.group = "scheduler",
       .name = "task",
       .summary = "show a periodic task: its schedule, next and recent runs, skipped and missed",
       .rpc = Unary<scheduler::SchedulerService>(&scheduler::SchedulerService::Stub::GetTask),
       .params = {Arg("TASK", "task_id", "the task's id, e.g. jobs.prune")},
       .show_field = "task"});
  add({.group = "scheduler",
       .name = "run",
       .summary = "run a periodic task now, even when paused",
       .rpc = Unary<scheduler::SchedulerService>(&scheduler::SchedulerService::Stub::RunTaskNow),
       .params = {Arg("TASK", "task_id", "the task's id"),
                  Flag("request-id", "request_id", "idempotency key: a retry gets the same job")},
       .show_field = "job",
       .job_id_path = "job.id"});
  add({.group = "scheduler",
       .name = "pause",
       .summary = "stop a periodic task's schedule until resumed",
       .rpc = Unary<scheduler::SchedulerService>(&scheduler::SchedulerService::Stub::PauseTask),
       .params = {Arg("TASK", "task_id", "the task's id"),
                  Flag("note", "note", "why, shown on the task until it is resumed")},
       .show_field = "task"});
  add({.group = "scheduler",
       .name = "resume",
       .summary = "put a paused task back on its schedule (missed runs are not made up)",
       .rpc = Unary<scheduler::SchedulerService>(&scheduler::SchedulerService::Stub::ResumeTask),
       .params = {Arg("TASK", "task_id", "the task's id")},
       .show_field = "task"});
  add({.group = "scheduler",
       .name = "schedule",
       .summary = "change when a periodic task runs, or what a run due while one runs does",
       .rpc = Unary<scheduler::SchedulerService>(
           &scheduler::SchedulerService::Stub::UpdateTaskSchedule),
       .params = {Arg("TASK", "task_id", "the task's id"),
                  Flag("every", "interval", "a fixed interval, e.g. 30s or 1h (1s to 31 days)"),
                  Flag("cron", "cron", "a five-field cron expression in UTC, e.g. '0 3 * * *'"),
                  Flag("overlap", "overlap_policy",
                       "skip (a run due while one runs is skipped) or allow-all"),
                  Switch("reset", "reset_to_default", "back to the platform's default")},
       .show_field = "task"});
  add({.group = "scheduler",
       .name = "runs",
       .summary = "list a periodic task's runs, newest first",
       .rpc = Unary<scheduler::SchedulerService>(&scheduler::SchedulerService::Stub::ListTaskRuns),
       .params = With({Arg("TASK", "task_id", "the task's id")}, Paging()),
       .list_field = "runs",
       .columns = {{"ID", "id"},
                   {"TRIGGER", "trigger"},
                   {"DUE", "scheduled_time"},
                   {"SKIPPED", "skipped"},
                   {"STATE", "state"},
                   {"JOB", "job_id"},
                   {"STARTED", "start_time"}}});

  // --- admin -----------------------------------------------------------------
  add({.group = "admin",
       .name = "users",
       .summary = "list users",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::ListUsers),
       .params = Paging(),
       .list_field = "users",
       .columns = {{"ID", "id"},
                   {"NAME", "name"},
                   {"ROLE", "role"},
                   {"DISABLED", "disabled"},
                   {"CREATED", "create_time"}}});
  add({.group = "admin",
       .name = "create-user",
       .summary = "create a user",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::CreateUser),
       .params = {Arg("NAME", "user.name", "login name (alice)"),
                  Flag("display-name", "user.display_name", "name for people"),
                  Flag("role", "user.role", "user (default) or admin")},
       .show_field = "user"});
  add({.group = "admin",
       .name = "tokens",
       .summary = "list a user's tokens",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::ListTokens),
       .params = With({Arg("USER", "user_id", "the user's id")}, Paging()),
       .list_field = "tokens",
       .columns = {{"ID", "id"},
                   {"KIND", "kind"},
                   {"DESCRIPTION", "description"},
                   {"PERMISSIONS", "permissions"},
                   {"EXPIRES", "expire_time"},
                   {"REVOKED", "revoke_time"}}});
  add({.group = "admin",
       .name = "create-token",
       .summary = "create a token for a user (its value is shown once)",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::CreateToken),
       .params = {Arg("USER", "user_id", "the user's id"),
                  Flag("kind", "kind", "user (default) or agent"),
                  Flag("description", "description", "what it is for"),
                  Flag("permissions", "permissions", "limit it to these grants (deploy.*,job.get)"),
                  Flag("ttl", "ttl", "expire after (24h, 30d)")}});
  add({.group = "admin",
       .name = "revoke-token",
       .summary = "revoke a token",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::RevokeToken),
       .params = {Arg("TOKEN", "token_id", "the token's id (not its value)")},
       .show_field = "token"});
  add({.group = "admin",
       .name = "steps",
       .summary = "list the pipeline steps an admin can trigger, with their parameters",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::ListPipelineSteps),
       .list_field = "steps",
       .columns = {{"NAME", "name"},
                   {"JOB KIND", "job_kind"},
                   {"PER PROJECT", "per_project"},
                   {"PARAMETERS", "",
                    [](const Message& m, absl::Time) {
                      std::vector<std::string> names;
                      for (const auto& p :
                           static_cast<const admin::PipelineStep&>(m).parameters()) {
                        names.push_back(p.required() ? p.name() + " (required)" : p.name());
                      }
                      return absl::StrJoin(names, ", ");
                    }},
                   {"DESCRIPTION", "description"}}});
  add({.group = "admin",
       .name = "trigger-step",
       .summary = "run one pipeline step (for a project, as its owner) as a job",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::TriggerStep),
       .params = {Arg("PROJECT", "project_id",
                      "the project's id (\"-\" for a step that is not per project)"),
                  Arg("STEP", "step", "the step's name (see admin steps)"),
                  Flag("param", "parameters",
                       "NAME=VALUE: one of the step's parameters (repeat it)")},
       .show_field = "job",
       .job_id_path = "job.id",
       .details = "Example:\n"
                  "  orchestrator admin trigger-step prj_123 engineering \\\n"
                  "      --param instructions='add a /version endpoint' --follow\n"
                  "  orchestrator admin trigger-step - provision --param server_id=web-1"});
  add({.group = "admin",
       .name = "clear-project",
       .summary = "cancel a project's jobs, delete them with their events, drop notifications",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::ClearProjectState),
       .params = {Arg("PROJECT", "project_id", "the project's id")},
       .needs_confirm = true,
       .details = "Running jobs are asked to stop and deleted once they have ended (the\n"
                  "command waits up to 10 s; any still running are listed, and running it\n"
                  "again deletes them)."});

  // --- for agents, and anyone ------------------------------------------------
  add({.name = "respond",
       .summary = "answer the user of your session (Product-Owner agents)",
       .rpc = Unary<sessions::SessionService>(&sessions::SessionService::Stub::Respond),
       .params = {Arg("TEXT", "text", "the answer"),
                  Flag("session", "session_id", "this session (default: your own)"),
                  Phrases(Flag("choice", "choices",
                               "an answer the user may pick (repeat it; buttons on Telegram): "
                               "ask this way before a destructive step"))},
       .show_field = "message",
       .details = "  orchestrator respond \"Delete project shop? It cannot be undone.\" "
                  "--choice \"Yes, delete shop\" --choice \"No, keep it\"\n"
                  "The user's pick comes back as their next message, in the choice's words."});
  add({.name = "finish",
       .summary = "declare your task done, with a summary (developer agents)",
       .rpc = Unary<agents::AgentService>(&agents::AgentService::Stub::FinishTask),
       .params = {Required("summary", "summary", "what was done, or why it could not be"),
                  Flag("status", "status", "succeeded (default) or failed"),
                  Flag("payload", "payload", "structured output as JSON"),
                  Flag("task", "task_id", "this task (default: your running one)"),
                  Flag("worker", "worker_id", "this worker (default: your own)")}});
  add({.name = "whoami",
       .summary = "show who the token acts for and what it may do",
       .rpc = Unary<admin::AdminService>(&admin::AdminService::Stub::GetIdentity)});
  return c;
}

}  // namespace

std::string Command::permission() const {
  if (rpc.method == nullptr) return "";
  const auto& access = rpc.method->options().GetExtension(common::v1::access);
  return access.any_authenticated() ? "" : access.permission();
}

std::string Command::rpc_path() const {
  if (rpc.method == nullptr) return "";
  return absl::StrCat(rpc.method->service()->full_name(), "/", rpc.method->name());
}

std::string Command::usage() const {
  std::string out = "orchestrator " + path();
  for (const auto& p : params) {
    if (p.positional) out += " " + p.name;
  }
  for (const auto& p : params) {
    if (p.positional) continue;
    const std::string flag = p.is_switch ? "--" + p.name : "--" + p.name + " VALUE";
    out += p.required ? " " + flag : " [" + flag + "]";
  }
  if (!job_id_path.empty() && !rpc.streaming()) out += " [--follow]";
  if (needs_confirm) out += " --confirm";
  return out;
}

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>(Build());
  return *commands;
}

const std::vector<Group>& Groups() {
  static const auto* groups = new std::vector<Group>{
      {"project", "projects and their secrets"},
      {"scaffold", "project templates, and new repositories made from them"},
      {"jobs", "long-running work: list, follow, cancel, retry"},
      {"engineering", "coding agents implementing changes"},
      {"deploy", "readiness, deploys, releases, rollbacks"},
      {"infra", "servers, provisioning, port allocations"},
      {"diagnose", "service logs, health, errors"},
      {"session", "Product-Owner sessions"},
      {"scheduler", "the platform's periodic tasks"},
      {"admin", "users, tokens, pipeline steps"},
  };
  return *groups;
}

const Command* FindCommand(const std::string& group, const std::string& name) {
  for (const auto& c : Commands()) {
    if (c.group == group && c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace orchestrator::commands
