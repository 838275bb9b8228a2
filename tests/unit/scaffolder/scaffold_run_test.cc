#include "services/scaffolder/domain/scaffold_run.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace orchestrator::scaffolder {
namespace {
namespace fs = std::filesystem;

class FakeProjects final : public ProjectDirectory {
 public:
  absl::StatusOr<projects::v1::Project> Get(const std::string& owner,
                                            const std::string& id) override {
    if (owner != project.owner_id() || id != project.id()) return absl::NotFoundError("no");
    return project;
  }
  absl::Status Record(const std::string&, const projects::v1::Project& outcome) override {
    ++records;
    project.set_repository_url(outcome.repository_url());
    project.set_template_id(outcome.template_id());
    project.set_template_version(outcome.template_version());
    *project.mutable_template_answers() = outcome.template_answers();
    *project.mutable_run_contract() = outcome.run_contract();
    return absl::OkStatus();
  }
  absl::Status StoreSecret(const std::string&, const std::string&, const std::string& name,
                           const std::string& value) override {
    secrets[name] = value;
    return absl::OkStatus();
  }
  projects::v1::Project project;
  std::map<std::string, std::string> secrets;
  int records = 0;
};

class FakeLedger final : public RepositoryLedger {
 public:
  absl::StatusOr<std::optional<Entry>> Find(const std::string& job_id) override {
    if (!entries.count(job_id)) return std::nullopt;
    return entries[job_id];
  }
  absl::Status Intend(const Entry& e) override {
    entries.emplace(e.job_id, e);
    return absl::OkStatus();
  }
  std::map<std::string, Entry> entries;
};

// Commits are named by their message and time, kept by work tree.
class FakeGit final : public GitWorktree {
 public:
  absl::StatusOr<std::string> CommitAll(const std::string& dir, const std::string& message,
                                        absl::Time when) override {
    EXPECT_TRUE(fs::exists(fs::path(dir) / ".orchestrator-answers.json"));
    return heads[dir] = "sha-" + std::to_string(absl::ToUnixSeconds(when)) + "-" +
                        std::to_string(message.size());
  }
  std::map<std::string, std::string> heads;
};

// Repositories by name; a push lands the work tree's commit in `remote`.
class FakeHost final : public git::GitHost {
 public:
  FakeHost(std::string kind, std::shared_ptr<FakeGit> git)
      : kind_(std::move(kind)), git_(std::move(git)) {}
  std::string Kind() const override { return kind_; }
  absl::StatusOr<std::optional<git::Repository>> Find(const std::string& name) override {
    if (!repos.count(name)) return std::nullopt;
    return repos[name];
  }
  absl::StatusOr<git::Repository> Create(const git::NewRepository& r) override {
    ++creates;
    if (repos.count(r.name)) return absl::AlreadyExistsError("taken");
    repos[r.name] = {"http://git.test/" + r.name + ".git", "", r.name};
    return repos[r.name];
  }
  absl::StatusOr<git::GitCredentials> PushCredentials(const git::Repository&) override {
    return git::GitCredentials{"Authorization: Bearer x"};
  }
  absl::Status Push(const git::Repository& repository, const std::string& dir,
                    const std::string& branch) override {
    if (!refuse.empty()) return absl::FailedPreconditionError(refuse);
    EXPECT_EQ(branch, "main");
    ++pushes;
    remote[repository.clone_url] = git_->heads[dir];
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Head(const git::Repository& repository, const std::string&) override {
    if (!remote.count(repository.clone_url)) return absl::NotFoundError("no ref");
    return remote[repository.clone_url];
  }
  std::map<std::string, git::Repository> repos;
  std::map<std::string, std::string> remote;  // clone_url -> head
  std::string refuse;
  int creates = 0;
  int pushes = 0;

 private:
  std::string kind_;
  std::shared_ptr<FakeGit> git_;
};

class ScaffoldRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("scaffold-run-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "builtin" / "hello" / "files");
    std::ofstream(root_ / "builtin" / "hello" / "template.json") << R"({
      "id": "hello", "version": "2.0.0",
      "questions": [{"name": "greeting", "defaultValue": "hi", "pattern": "[a-z ]+"},
                    {"name": "token", "secret": true, "secretName": "TOKEN"}],
      "runContract": {"buildFile": "Containerfile", "port": 8080, "healthPath": "/healthz",
                      "testCommand": ["true"]}})";
    std::ofstream(root_ / "builtin" / "hello" / "files" / "hello.txt") << "{{greeting}}\n";
    catalog_ = std::make_shared<TemplateCatalog>((root_ / "builtin").string(),
                                                 (root_ / "cache").string(), nullptr);
    ASSERT_TRUE(catalog_->LoadBuiltins().ok());
    projects_ = std::make_shared<FakeProjects>();
    projects_->project.set_id("prj_1");
    projects_->project.set_owner_id("alice");
    projects_->project.set_name("shop");
    ledger_ = std::make_shared<FakeLedger>();
    git_ = std::make_shared<FakeGit>();
  }
  void TearDown() override { fs::remove_all(root_); }

  std::shared_ptr<FakeHost> Host(const std::string& kind) {
    return std::make_shared<FakeHost>(kind, git_);
  }
  std::unique_ptr<Scaffolder> Make(std::shared_ptr<FakeHost> host) {
    host_ = host;
    return std::make_unique<Scaffolder>(catalog_, host, projects_, ledger_, git_,
                                        Scaffolder::Options{(root_ / "work").string()});
  }
  ScaffoldJob Job(const ScaffoldPlan& plan, const std::string& id = "job_1") {
    ScaffoldJob job{id, "alice", absl::FromUnixSeconds(1700000000), plan};
    return job;
  }
  absl::StatusOr<google::protobuf::Struct> Run(const Scaffolder& s, const ScaffoldJob& job) {
    return s.Run(
        job, [this](int, const std::string& m) { progress_.push_back(m); }, [] { return false; });
  }
  v1::ScaffoldRequest Request() {
    v1::ScaffoldRequest r;
    r.set_project_id("prj_1");
    r.set_template_id("hello");
    (*r.mutable_answers())["token"] = "s3cret";
    return r;
  }

  fs::path root_;
  TemplateCatalogPtr catalog_;
  std::shared_ptr<FakeHost> host_;
  std::shared_ptr<FakeProjects> projects_;
  std::shared_ptr<FakeLedger> ledger_;
  std::shared_ptr<FakeGit> git_;
  std::vector<std::string> progress_;
};

TEST_F(ScaffoldRunTest, PrepareChecksAndKeepsSecretsOutOfTheJob) {
  auto s = Make(Host("local"));
  auto plan = s->Prepare("alice", Request());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->secrets.at("TOKEN"), "s3cret");
  const std::string params = plan->ToParams().DebugString();
  EXPECT_EQ(params.find("s3cret"), std::string::npos) << params;

  auto r = Request();
  r.set_template_id("nope");
  EXPECT_EQ(s->Prepare("alice", r).status().code(), absl::StatusCode::kNotFound);
  r = Request();
  (*r.mutable_answers())["greeting"] = "HELLO!";
  auto bad = s->Prepare("alice", r);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("answers.greeting"), std::string::npos);
  EXPECT_EQ(s->Prepare("bob", Request()).status().code(), absl::StatusCode::kNotFound);
  projects_->project.set_repository_url("http://elsewhere/x.git");
  EXPECT_EQ(s->Prepare("alice", Request()).status().code(), absl::StatusCode::kFailedPrecondition);
  r = Request();
  r.set_replace_repository(true);
  EXPECT_TRUE(s->Prepare("alice", r).ok());
}

TEST_F(ScaffoldRunTest, RunsEveryStepAndRecordsOnTheProject) {
  auto s = Make(Host("local"));
  auto plan = s->Prepare("alice", Request());
  ASSERT_TRUE(plan.ok());
  auto result = Run(*s, Job(*plan));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->fields().at("repository_url").string_value(), "http://git.test/prj_1.git");
  EXPECT_EQ(result->fields().at("commit_sha").string_value(),
            host_->remote["http://git.test/prj_1.git"]);
  EXPECT_EQ(projects_->project.repository_url(), "http://git.test/prj_1.git");
  EXPECT_EQ(projects_->project.template_id(), "hello");
  EXPECT_EQ(projects_->project.template_version(), "2.0.0");
  EXPECT_EQ(projects_->project.template_answers().at("greeting"), "hi");
  EXPECT_EQ(projects_->project.template_answers().count("token"), 0u);
  EXPECT_EQ(projects_->project.run_contract().health_path(), "/healthz");
  EXPECT_GE(progress_.size(), 5u);
  EXPECT_FALSE(fs::exists(root_ / "work" / "job_1"));  // the scratch tree is gone
}

TEST_F(ScaffoldRunTest, ARerunReusesItsRepositoryAndMakesNoSecond) {
  auto s = Make(Host("github"));
  auto plan = s->Prepare("alice", Request());
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(Run(*s, Job(*plan)).ok());
  // As if killed after recording: the job runs again.
  auto again = Run(*s, Job(*plan));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(host_->creates, 1);
  EXPECT_EQ(host_->repos.size(), 1u);
  // Killed after the ledger's intent but before the host made it.
  host_->repos.clear();
  auto third = Run(*s, Job(*plan));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(host_->repos.size(), 1u);
}

TEST_F(ScaffoldRunTest, ANameTakenBySomeoneElseIsAClearError) {
  auto host = Host("github");
  host->repos["shop"] = {"http://git.test/shop.git", "", "someone/shop"};
  auto s = Make(host);
  auto plan = s->Prepare("alice", Request());
  ASSERT_TRUE(plan.ok());
  auto r = Run(*s, Job(*plan));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("already exists"), std::string::npos) << r.status();
  EXPECT_EQ(projects_->records, 0);
}

TEST_F(ScaffoldRunTest, ARefusedPushFailsWithTheRemotesMessageAndRecordsNothing) {
  auto s = Make(Host("local"));
  host_->refuse = "remote: pushes are frozen";
  auto plan = s->Prepare("alice", Request());
  ASSERT_TRUE(plan.ok());
  auto r = Run(*s, Job(*plan));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("pushes are frozen"), std::string::npos);
  EXPECT_EQ(projects_->records, 0);
  EXPECT_TRUE(projects_->project.repository_url().empty());
}

TEST_F(ScaffoldRunTest, ReplacingALocalRepositoryMakesTheNextOne) {
  auto host = Host("local");
  host->repos["prj_1"] = {"http://git.test/prj_1.git", "", "prj_1"};
  projects_->project.set_repository_url("http://git.test/prj_1.git");
  auto s = Make(host);
  auto req = Request();
  req.set_replace_repository(true);
  auto plan = s->Prepare("alice", req);
  ASSERT_TRUE(plan.ok());
  auto r = Run(*s, Job(*plan));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(projects_->project.repository_url(), "http://git.test/prj_1-2.git");
}

}  // namespace
}  // namespace orchestrator::scaffolder
