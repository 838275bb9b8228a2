#include "services/projects/domain/project_catalog.h"

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

}  // namespace
}  // namespace orchestrator::projects
