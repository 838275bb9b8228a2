#include "services/projects/domain/project_catalog.h"

#include <functional>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/auth/mesh_identity.h"
#include "tests/mocks/mock_project_store.h"

namespace orchestrator::projects {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Not;
using ::testing::Return;
using ::testing::StrictMock;

class ProjectCatalogTest : public ::testing::Test {
 protected:
  ProjectCatalogTest()
      : store_(std::make_shared<StrictMock<MockProjectStore>>()),
        catalog_(store_, *SecretBox::FromBase64Key(GenerateSecretKeyBase64())) {}

  static v1::Project Owned(const std::string& id, const std::string& owner) {
    v1::Project p;
    p.set_id(id);
    p.set_owner_id(owner);
    p.set_name("demo");
    return p;
  }

  std::shared_ptr<StrictMock<MockProjectStore>> store_;
  ProjectCatalog catalog_;
  Principal alice_{.user_id = "alice"};
  Principal root_{.user_id = "root", .admin = true};
};

TEST_F(ProjectCatalogTest, NamesAreCheckedBeforeAnythingIsStored) {
  for (const char* bad : {"", "ab", "Demo", "9lives", "my_app", "demo-", "a.b.c",
                          "x234567890123456789012345678901234567890123456789012345678901234"}) {
    v1::CreateProjectRequest req;
    req.mutable_project()->set_name(bad);
    auto created = catalog_.Create(alice_, req);
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(created.status().message(), HasSubstr("project.name")) << bad;
  }
}

TEST_F(ProjectCatalogTest, CreateBelongsToTheCallerAndStartsCreated) {
  EXPECT_CALL(*store_, Insert(_, absl::string_view("req-1")))
      .WillOnce([](const v1::Project& p, absl::string_view) { return p; });
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->set_owner_id("mallory");  // ignored
  req.set_request_id("req-1");
  auto created = catalog_.Create(alice_, req);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->owner_id(), "alice");
  EXPECT_EQ(created->status(), v1::PROJECT_STATUS_CREATED);
  EXPECT_THAT(created->id(), HasSubstr("prj_"));
}

TEST_F(ProjectCatalogTest, UnknownStatusNumberIsRefusedNamingTheField) {
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->set_status(static_cast<v1::ProjectStatus>(42));
  auto created = catalog_.Create(alice_, req);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(created.status().message(), HasSubstr("project.status"));
}

TEST_F(ProjectCatalogTest, AnotherOwnersProjectIsNotFoundForUsersButVisibleToAdmins) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_b")))
      .WillRepeatedly(Return(Owned("prj_b", "bob")));
  v1::GetProjectRequest req;
  req.set_project_id("prj_b");
  auto hidden = catalog_.Get(alice_, req);
  EXPECT_EQ(hidden.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(hidden.status().message(), Not(HasSubstr("bob")));
  EXPECT_TRUE(catalog_.Get(root_, req).ok());
}

TEST_F(ProjectCatalogTest, UpdateWritesOnlyTheMaskedFields) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a"))).WillOnce(Return(Owned("prj_a", "alice")));
  EXPECT_CALL(*store_, Update(_, ElementsAre("repository_url", "status")))
      .WillOnce([](const v1::Project& p, const std::vector<std::string>&) { return p; });
  v1::UpdateProjectRequest req;
  req.mutable_project()->set_id("prj_a");
  req.mutable_project()->set_repository_url("https://git.example.com/alice/shop.git");
  req.mutable_project()->set_status(v1::PROJECT_STATUS_READY);
  req.mutable_project()->set_description("not in the mask");
  req.mutable_update_mask()->add_paths("repository_url");
  req.mutable_update_mask()->add_paths("status");
  EXPECT_TRUE(catalog_.Update(alice_, req).ok());
}

TEST_F(ProjectCatalogTest, UpdateMaskProblemsNameTheMask) {
  v1::UpdateProjectRequest req;
  req.mutable_project()->set_id("prj_a");
  req.mutable_update_mask()->add_paths("name");
  EXPECT_THAT(catalog_.Update(alice_, req).status().message(), HasSubstr("update_mask"));
  req.mutable_update_mask()->set_paths(0, "colour");
  EXPECT_THAT(catalog_.Update(alice_, req).status().message(), HasSubstr("'colour'"));
  req.clear_update_mask();
  EXPECT_THAT(catalog_.Update(alice_, req).status().message(), HasSubstr("update_mask"));
  req.mutable_update_mask()->add_paths("status");  // masked but unset
  EXPECT_THAT(catalog_.Update(alice_, req).status().message(), HasSubstr("project.status"));
}

TEST_F(ProjectCatalogTest, RepositoryUrlsAreChecked) {
  for (const char* ok :
       {"https://github.com/a/b.git", "https://git.example.com:8443/a/b", "ssh://git@host.io/a.git",
        "ssh://host.io:2222/srv/a.git", "git@github.com:a/b.git", "https://[2001:db8::1]/a.git",
        "https://93.184.216.34/a.git"}) {
    EXPECT_TRUE(ValidateRepositoryUrl("project.repository_url", ok).ok()) << ok;
  }
  for (const char* bad : {"github.com/a/b", "https://", "ftp://x/y", "https://a b",
                          "@:", "git://github.com/a/b.git", "https://github.com", "host:a/b.git",
                          "https://github.com:99999/a", "git@-oProxyCommand=x:a", "git@host:-x"}) {
    auto s = ValidateRepositoryUrl("project.repository_url", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("project.repository_url")) << bad;
  }
}

TEST_F(ProjectCatalogTest, RepositoryUrlsNeverReachLocalFilesHostsOrCarryPasswords) {
  // Every spelling of this machine, its network and local files is refused by default.
  for (const char* bad : {"file:///etc/passwd",       "http://127.0.0.1:54329/",
                          "https://127.0.0.1/a.git",  "https://localhost/a.git",
                          "https://db.localhost/a",   "https://127.1/a.git",
                          "https://2130706433/a.git", "https://0x7f000001/a",
                          "https://[::1]/a.git",      "https://[::ffff:127.0.0.1]/a",
                          "https://[fe80::1]/a",      "https://[fd00::1]/a",
                          "https://10.0.0.5/a.git",   "https://172.16.3.4/a",
                          "https://192.168.1.1/a",    "https://169.254.169.254/latest/meta-data",
                          "https://0.0.0.0/a",        "ssh://git@10.1.2.3/a",
                          "git@192.168.0.2:a.git",    "http://github.com/a/b.git"}) {
    auto s = ValidateRepositoryUrl("project.repository_url", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("project.repository_url")) << bad;
  }
  for (const char* bad : {"https://user:hunter2@github.com/a/b.git", "https://hunter2@github.com/a",
                          "ssh://git:hunter2@github.com/a.git"}) {
    auto s = ValidateRepositoryUrl("project.repository_url", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), Not(HasSubstr("hunter2"))) << "the message must not echo credentials";
  }
  // An operator running its own git server opts in; passwords stay out anyway.
  RepositoryUrlPolicy local{.allow_local_hosts = true};
  EXPECT_TRUE(
      ValidateRepositoryUrl("project.repository_url", "http://127.0.0.1:54329/a.git", local).ok());
  EXPECT_TRUE(ValidateRepositoryUrl("project.repository_url", "ssh://git@10.0.0.5/a", local).ok());
  EXPECT_FALSE(ValidateRepositoryUrl("project.repository_url", "file:///etc/passwd", local).ok());
  EXPECT_FALSE(ValidateRepositoryUrl("project.repository_url", "http://github.com/a", local).ok());
  EXPECT_FALSE(
      ValidateRepositoryUrl("project.repository_url", "https://u:p@127.0.0.1/a", local).ok());
}

TEST_F(ProjectCatalogTest, TemplateIdsAreNamesNotPaths) {
  for (const char* ok : {"", "python-http", "node_api", "python-http@1.2.0", "go@v2"}) {
    EXPECT_TRUE(ValidateTemplateId("project.template_id", ok).ok()) << ok;
  }
  for (const char* bad : {"../../etc/passwd", "..", ".", "a/b", "/etc", "python-http@../x",
                          "python-http@", "@1.0", "Python", "a@1..2", "a@.1"}) {
    auto s = ValidateTemplateId("project.template_id", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("project.template_id")) << bad;
  }
  v1::CreateProjectRequest req;  // refused before the store sees it (the mock is strict)
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->set_template_id("../../etc/passwd");
  EXPECT_THAT(catalog_.Create(alice_, req).status().message(), HasSubstr("project.template_id"));
}

TEST_F(ProjectCatalogTest, SecretValuesAreSealedBeforeTheStoreSeesThem) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a")))
      .WillRepeatedly(Return(Owned("prj_a", "alice")));
  std::string stored;
  EXPECT_CALL(*store_, PutSecret(absl::string_view("prj_a"), absl::string_view("DB_PASSWORD"), _))
      .WillOnce([&](absl::string_view, absl::string_view name, absl::string_view sealed) {
        stored = std::string(sealed);
        v1::Secret s;
        s.set_name(std::string(name));
        return s;
      });
  v1::SetSecretRequest req;
  req.set_project_id("prj_a");
  req.set_name("DB_PASSWORD");
  req.set_value("correct horse battery staple");
  auto secret = catalog_.SetSecret(alice_, req);
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(stored.find("horse"), std::string::npos);

  EXPECT_CALL(*store_,
              GetSealedSecret(absl::string_view("prj_a"), absl::string_view("DB_PASSWORD")))
      .WillOnce(Return(stored));
  v1::RevealSecretsRequest reveal;
  reveal.set_project_id("prj_a");
  reveal.add_names("DB_PASSWORD");
  // Only the mesh reveals, acting for the project's owner.
  EXPECT_EQ(catalog_.RevealSecrets(alice_, reveal).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto revealed = catalog_.RevealSecrets(MeshPrincipal(alice_.user_id), reveal);
  ASSERT_TRUE(revealed.ok()) << revealed.status();
  EXPECT_EQ(revealed->values().at("DB_PASSWORD"), "correct horse battery staple");
}

TEST_F(ProjectCatalogTest, SecretNamesAndSizesAreChecked) {
  v1::SetSecretRequest req;
  req.set_project_id("prj_a");
  req.set_name("db-password");
  req.set_value("x");
  EXPECT_THAT(catalog_.SetSecret(alice_, req).status().message(), HasSubstr("name"));
  req.set_name("DB_PASSWORD");
  req.set_value(std::string(64 * 1024 + 1, 'x'));
  auto big = catalog_.SetSecret(alice_, req);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("value"));
  req.set_value("");
  EXPECT_THAT(catalog_.SetSecret(alice_, req).status().message(), HasSubstr("value"));
}

// A run contract a template would declare.
common::v1::RunContract PythonContract() {
  common::v1::RunContract c;
  c.set_build_file("Containerfile");
  c.set_port(8080);
  c.set_health_path("/healthz");
  c.add_test_command("python3");
  c.add_test_command("-m");
  c.add_test_command("unittest");
  c.add_required_secrets("API_KEY");
  return c;
}

TEST_F(ProjectCatalogTest, CreateRecordsWhatTheProjectWasScaffoldedFrom) {
  v1::Project stored;
  EXPECT_CALL(*store_, Insert(_, _)).WillOnce([&](const v1::Project& p, absl::string_view) {
    stored = p;
    return p;
  });
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->set_template_id("python-http");
  req.mutable_project()->set_template_version("1.2.0");
  (*req.mutable_project()->mutable_template_answers())["service_name"] = "shop";
  *req.mutable_project()->mutable_run_contract() = PythonContract();
  ASSERT_TRUE(catalog_.Create(alice_, req).ok());
  EXPECT_EQ(stored.template_version(), "1.2.0");
  EXPECT_EQ(stored.template_answers().at("service_name"), "shop");
  EXPECT_EQ(stored.run_contract().port(), 8080);
  EXPECT_THAT(stored.run_contract().test_command(), ElementsAre("python3", "-m", "unittest"));
}

TEST_F(ProjectCatalogTest, AnEmptyRunContractIsNoContract) {
  v1::Project stored;
  EXPECT_CALL(*store_, Insert(_, _)).WillOnce([&](const v1::Project& p, absl::string_view) {
    stored = p;
    return p;
  });
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->mutable_run_contract();  // present, all empty
  ASSERT_TRUE(catalog_.Create(alice_, req).ok());
  EXPECT_FALSE(stored.has_run_contract());
  EXPECT_TRUE(ValidateRunContract("project.run_contract", {}).ok());
}

TEST_F(ProjectCatalogTest, UpdateReplacesTheTemplateRecordThroughTheMask) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a"))).WillOnce(Return(Owned("prj_a", "alice")));
  EXPECT_CALL(*store_,
              Update(_, ElementsAre("template_version", "template_answers", "run_contract")))
      .WillOnce([](const v1::Project& p, const std::vector<std::string>&) { return p; });
  v1::UpdateProjectRequest req;
  req.mutable_project()->set_id("prj_a");
  req.mutable_project()->set_template_version("2.0.0");
  // An empty map and an empty contract in the mask clear them.
  req.mutable_update_mask()->add_paths("template_version");
  req.mutable_update_mask()->add_paths("template_answers");
  req.mutable_update_mask()->add_paths("run_contract");
  EXPECT_TRUE(catalog_.Update(alice_, req).ok());
}

TEST_F(ProjectCatalogTest, UpdateWithoutAMaskWritesTheTemplateRecordItSets) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a"))).WillOnce(Return(Owned("prj_a", "alice")));
  EXPECT_CALL(*store_, Update(_, ElementsAre("template_answers", "run_contract")))
      .WillOnce([](const v1::Project& p, const std::vector<std::string>&) { return p; });
  v1::UpdateProjectRequest req;
  req.mutable_project()->set_id("prj_a");
  (*req.mutable_project()->mutable_template_answers())["port"] = "8080";
  *req.mutable_project()->mutable_run_contract() = PythonContract();
  EXPECT_TRUE(catalog_.Update(alice_, req).ok());
}

TEST_F(ProjectCatalogTest, TemplateVersionsAreShortTokens) {
  for (const char* ok : {"", "1.2.0", "v2", "1.0.0-rc.1+build.5", "2024_01"}) {
    EXPECT_TRUE(ValidateTemplateVersion("project.template_version", ok).ok()) << ok;
  }
  for (const std::string& bad :
       {std::string("1.0 beta"), std::string("../1"), std::string(".1"), std::string("1..2"),
        std::string("a/b"), std::string(65, '1'), std::string("1\n2")}) {
    auto s = ValidateTemplateVersion("project.template_version", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("project.template_version")) << bad;
  }
}

TEST_F(ProjectCatalogTest, TemplateAnswersAreNamedLikeQuestionsAndOneLineEach) {
  google::protobuf::Map<std::string, std::string> answers;
  answers["service_name"] = "shop";
  answers["a"] = "";
  answers["greeting"] = "Hello, wörld!";
  answers[std::string(64, 'x')] = "long name";
  EXPECT_TRUE(ValidateTemplateAnswers("project.template_answers", answers).ok());
  for (const std::string& bad_name :
       {std::string("Service"), std::string("9lives"), std::string("my-app"), std::string(""),
        std::string("_x"), std::string(65, 'x'), std::string("a b")}) {
    google::protobuf::Map<std::string, std::string> bad;
    bad[bad_name] = "v";
    auto s = ValidateTemplateAnswers("project.template_answers", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad_name;
    EXPECT_THAT(s.message(), HasSubstr("project.template_answers")) << bad_name;
  }
  for (const std::string& bad_value : {std::string("two\nlines"), std::string("cr\r"),
                                       std::string("bell\a"), std::string(1025, 'v')}) {
    google::protobuf::Map<std::string, std::string> bad;
    bad["name"] = bad_value;
    auto s = ValidateTemplateAnswers("project.template_answers", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("project.template_answers[\"name\"]"));
  }
}

TEST_F(ProjectCatalogTest, ARunContractNamesTheMemberItGetsWrong) {
  EXPECT_TRUE(ValidateRunContract("project.run_contract", PythonContract()).ok());
  common::v1::RunContract minimal;  // no build file, no health path, no secrets
  minimal.set_port(1);
  minimal.add_test_command("make");
  minimal.add_test_command("test");
  EXPECT_TRUE(ValidateRunContract("project.run_contract", minimal).ok());

  struct Case {
    std::function<void(common::v1::RunContract&)> spoil;
    const char* field;
  };
  const std::vector<Case> cases = {
      {[](auto& c) { c.set_port(0); }, "project.run_contract.port"},
      {[](auto& c) { c.set_port(65536); }, "project.run_contract.port"},
      {[](auto& c) { c.set_port(-1); }, "project.run_contract.port"},
      {[](auto& c) { c.set_health_path("healthz"); }, "project.run_contract.health_path"},
      {[](auto& c) { c.set_health_path("/health z"); }, "project.run_contract.health_path"},
      {[](auto& c) { c.set_build_file("/etc/passwd"); }, "project.run_contract.build_file"},
      {[](auto& c) { c.set_build_file("../Containerfile"); }, "project.run_contract.build_file"},
      {[](auto& c) { c.set_build_file("docker/../../x"); }, "project.run_contract.build_file"},
      {[](auto& c) { c.set_build_file("a\\..\\b"); }, "project.run_contract.build_file"},
      {[](auto& c) { c.set_build_file("My Containerfile"); }, "project.run_contract.build_file"},
      {[](auto& c) { c.clear_test_command(); }, "project.run_contract.test_command"},
      {[](auto& c) { c.set_test_command(0, ""); }, "project.run_contract.test_command"},
      {[](auto& c) { c.set_test_command(1, "a\nb"); }, "project.run_contract.test_command[1]"},
      {[](auto& c) { c.add_required_secrets("api-key"); },
       "project.run_contract.required_secrets[1]"},
      {[](auto& c) { c.add_required_secrets("API_KEY"); },
       "project.run_contract.required_secrets[1]"},
  };
  for (const auto& test : cases) {
    common::v1::RunContract c = PythonContract();
    test.spoil(c);
    auto s = ValidateRunContract("project.run_contract", c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << test.field;
    EXPECT_THAT(s.message(), HasSubstr(std::string(test.field) + ":")) << s.message();
  }
  // Any member set makes it a contract, which then needs a port and a test command.
  common::v1::RunContract only_health;
  only_health.set_health_path("/healthz");
  EXPECT_THAT(ValidateRunContract("project.run_contract", only_health).message(),
              HasSubstr("project.run_contract.port"));
}

TEST_F(ProjectCatalogTest, AnInvalidTemplateRecordIsRefusedBeforeTheStoreSeesIt) {
  v1::CreateProjectRequest create;
  create.mutable_project()->set_name("shop-api");
  create.mutable_project()->mutable_run_contract()->set_port(8080);  // no test command
  auto created = catalog_.Create(alice_, create);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(created.status().message(), HasSubstr("project.run_contract.test_command"));

  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id("prj_a");
  (*update.mutable_project()->mutable_template_answers())["Bad-Name"] = "x";
  update.mutable_update_mask()->add_paths("template_answers");
  auto updated = catalog_.Update(alice_, update);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(updated.status().message(), HasSubstr("project.template_answers"));
}

TEST_F(ProjectCatalogTest, AProjectScopedCallerReachesOnlyItsProject) {
  const Principal agent{.user_id = "alice", .kind = PrincipalKind::kAgent, .project_id = "prj_a"};
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a")))
      .WillRepeatedly(Return(Owned("prj_a", "alice")));
  // prj_b is alice's too, but the store is never even asked for it (strict mock).
  v1::GetProjectRequest get;
  get.set_project_id("prj_a");
  EXPECT_TRUE(catalog_.Get(agent, get).ok());
  get.set_project_id("prj_b");
  auto hidden = catalog_.Get(agent, get);
  EXPECT_EQ(hidden.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(hidden.status().message(), "project 'prj_b' not found");

  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id("prj_b");
  update.mutable_project()->set_description("x");
  EXPECT_EQ(catalog_.Update(agent, update).status().code(), absl::StatusCode::kNotFound);
  v1::DeleteProjectRequest del;
  del.set_project_id("prj_b");
  EXPECT_EQ(catalog_.Delete(agent, del).code(), absl::StatusCode::kNotFound);
  v1::SetSecretRequest set;
  set.set_project_id("prj_b");
  set.set_name("X");
  set.set_value("y");
  EXPECT_EQ(catalog_.SetSecret(agent, set).status().code(), absl::StatusCode::kNotFound);
  v1::ListSecretsRequest secrets;
  secrets.set_project_id("prj_b");
  EXPECT_EQ(catalog_.ListSecrets(agent, secrets).status().code(), absl::StatusCode::kNotFound);
  v1::DeleteSecretRequest del_secret;
  del_secret.set_project_id("prj_b");
  del_secret.set_name("X");
  EXPECT_EQ(catalog_.DeleteSecret(agent, del_secret).code(), absl::StatusCode::kNotFound);

  // The list is that one project (the store's list is never asked).
  v1::ListProjectsRequest list;
  auto listed = catalog_.List(agent, list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->projects_size(), 1);
  EXPECT_EQ(listed->projects(0).id(), "prj_a");
  EXPECT_TRUE(listed->next_page_token().empty());
  list.set_status(v1::PROJECT_STATUS_READY);  // prj_a is not READY
  listed = catalog_.List(agent, list);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->projects_size(), 0);

  v1::CreateProjectRequest create;
  create.mutable_project()->set_name("another");
  EXPECT_EQ(catalog_.Create(agent, create).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ProjectCatalogTest, AProjectScopedCallerStillNeedsToOwnItsProject) {
  // A token scoped to another owner's project (it cannot be minted, but
  // scoping only ever narrows) finds nothing.
  const Principal agent{.user_id = "alice", .kind = PrincipalKind::kAgent, .project_id = "prj_b"};
  EXPECT_CALL(*store_, Get(absl::string_view("prj_b")))
      .WillRepeatedly(Return(Owned("prj_b", "bob")));
  v1::GetProjectRequest get;
  get.set_project_id("prj_b");
  EXPECT_EQ(catalog_.Get(agent, get).status().code(), absl::StatusCode::kNotFound);
  auto listed = catalog_.List(agent, {});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->projects_size(), 0);
}

// A catalog whose platform opens pull requests on github.com.
class ChangeDeliveryTest : public ProjectCatalogTest {
 protected:
  ChangeDeliveryTest()
      : github_(store_, *SecretBox::FromBase64Key(GenerateSecretKeyBase64()),
                CatalogOptions{.repository_urls = {},
                               .pull_requests = {.name = "https://github.com/…",
                                                 .holds = [](absl::string_view url) {
                                                   return absl::StartsWith(url,
                                                                           "https://github.com/");
                                                 }}}) {}

  static v1::Project OnHost(const std::string& url, v1::ChangeDelivery delivery) {
    v1::Project p = Owned("prj_a", "alice");
    p.set_repository_url(url);
    p.set_change_delivery(delivery);
    return p;
  }
  static v1::UpdateProjectRequest SetDelivery(v1::ChangeDelivery delivery) {
    v1::UpdateProjectRequest req;
    req.mutable_project()->set_id("prj_a");
    req.mutable_project()->set_change_delivery(delivery);
    req.mutable_update_mask()->add_paths("change_delivery");
    return req;
  }

  ProjectCatalog github_;
};

TEST_F(ChangeDeliveryTest, AProjectOnGitHubIsCreatedTakingChangesByPullRequest) {
  v1::Project stored;
  EXPECT_CALL(*store_, Insert(_, _)).WillOnce([&](const v1::Project& p, absl::string_view) {
    stored = p;
    return p;
  });
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->set_repository_url("https://github.com/alice/shop.git");
  req.mutable_project()->set_change_delivery(v1::CHANGE_DELIVERY_PULL_REQUEST);
  ASSERT_TRUE(github_.Create(alice_, req).ok());
  EXPECT_EQ(stored.change_delivery(), v1::CHANGE_DELIVERY_PULL_REQUEST);
}

TEST_F(ChangeDeliveryTest, PullRequestsElsewhereAreRefusedSayingWhatToFixBeforeAnythingIsStored) {
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop-api");
  req.mutable_project()->set_change_delivery(v1::CHANGE_DELIVERY_PULL_REQUEST);
  auto no_repository = github_.Create(alice_, req);
  EXPECT_EQ(no_repository.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_repository.status().message(), HasSubstr("no repository yet"));

  req.mutable_project()->set_repository_url("https://git.example.com/alice/shop.git");
  auto elsewhere = github_.Create(alice_, req);
  EXPECT_EQ(elsewhere.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(elsewhere.status().message(), HasSubstr("project.change_delivery"));
  EXPECT_THAT(elsewhere.status().message(), HasSubstr("https://github.com/…"));
  EXPECT_THAT(elsewhere.status().message(), HasSubstr("CHANGE_DELIVERY_FAST_FORWARD"));
  EXPECT_THAT(elsewhere.status().message(), Not(HasSubstr("git.example.com")));

  // A platform with no GitHub takes no pull requests at all.
  req.mutable_project()->set_repository_url("https://github.com/alice/shop.git");
  auto no_github = catalog_.Create(alice_, req);
  EXPECT_EQ(no_github.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_github.status().message(), HasSubstr("the platform's GitHub"));

  req.mutable_project()->set_change_delivery(static_cast<v1::ChangeDelivery>(7));
  auto unknown = github_.Create(alice_, req);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("project.change_delivery"));
}

TEST_F(ChangeDeliveryTest, UpdateSetsTheDeliveryThroughTheMaskOrWithoutOne) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a")))
      .WillRepeatedly(
          Return(OnHost("https://github.com/alice/shop.git", v1::CHANGE_DELIVERY_UNSPECIFIED)));
  EXPECT_CALL(*store_, Update(_, ElementsAre("change_delivery")))
      .Times(2)
      .WillRepeatedly([](const v1::Project& p, const std::vector<std::string>&) { return p; });
  auto updated = github_.Update(alice_, SetDelivery(v1::CHANGE_DELIVERY_PULL_REQUEST));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->change_delivery(), v1::CHANGE_DELIVERY_PULL_REQUEST);
  v1::UpdateProjectRequest no_mask = SetDelivery(v1::CHANGE_DELIVERY_FAST_FORWARD);
  no_mask.clear_update_mask();
  EXPECT_TRUE(github_.Update(alice_, no_mask).ok());
}

TEST_F(ChangeDeliveryTest, NeitherTheDeliveryNorTheRepositoryMayLeavePullRequestsOffGitHub) {
  EXPECT_CALL(*store_, Get(absl::string_view("prj_a")))
      .WillOnce(Return(OnHost("https://git.example.com/a/b.git", v1::CHANGE_DELIVERY_UNSPECIFIED)))
      .WillOnce(Return(OnHost("https://github.com/a/b.git", v1::CHANGE_DELIVERY_PULL_REQUEST)))
      .WillOnce(Return(OnHost("https://github.com/a/b.git", v1::CHANGE_DELIVERY_PULL_REQUEST)));
  // Pull requests for a repository that is not on GitHub.
  EXPECT_EQ(github_.Update(alice_, SetDelivery(v1::CHANGE_DELIVERY_PULL_REQUEST)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Moving a project that takes pull requests off GitHub.
  v1::UpdateProjectRequest move;
  move.mutable_project()->set_id("prj_a");
  move.mutable_project()->set_repository_url("https://git.example.com/a/b.git");
  move.mutable_update_mask()->add_paths("repository_url");
  EXPECT_EQ(github_.Update(alice_, move).status().code(), absl::StatusCode::kFailedPrecondition);
  // Both at once, back to fast-forwards: fine.
  EXPECT_CALL(*store_, Update(_, ElementsAre("repository_url", "change_delivery")))
      .WillOnce([](const v1::Project& p, const std::vector<std::string>&) { return p; });
  move.mutable_project()->set_change_delivery(v1::CHANGE_DELIVERY_FAST_FORWARD);
  move.mutable_update_mask()->add_paths("change_delivery");
  EXPECT_TRUE(github_.Update(alice_, move).ok());
}

}  // namespace
}  // namespace orchestrator::projects
