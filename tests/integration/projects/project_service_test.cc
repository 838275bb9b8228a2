// ProjectService through a real gRPC server on port 0 over a real PostgreSQL,
// called the way a client would.
#include <functional>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::projects {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::LogCapture;
using ::testing::Not;
using testing::TestMesh;

class ProjectServiceTest : public ::testing::Test {
 protected:
  ProjectServiceTest() : stub_(v1::ProjectService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
    std::tie(bob_id_, bob_) = mesh_.NewUser("bob");
  }

  grpc::Status Create(const std::string& token, const std::string& name, v1::Project* out,
                      const std::string& request_id = "") {
    v1::CreateProjectRequest req;
    req.mutable_project()->set_name(name);
    req.mutable_project()->set_description("a shop");
    req.set_request_id(request_id);
    v1::CreateProjectResponse resp;
    grpc::Status s = stub_->CreateProject(TestMesh::Context(token).get(), req, &resp);
    if (out) *out = resp.project();
    return s;
  }

  grpc::Status Get(const std::string& token, const std::string& id, v1::Project* out) {
    v1::GetProjectRequest req;
    req.set_project_id(id);
    v1::GetProjectResponse resp;
    grpc::Status s = stub_->GetProject(TestMesh::Context(token).get(), req, &resp);
    if (out) *out = resp.project();
    return s;
  }

  // Projects and the component verifying its callers' tokens: nothing else
  // (no sandboxes, no job engine).
  TestMesh mesh_{"admin,projects"};
  std::unique_ptr<v1::ProjectService::Stub> stub_;
  std::string alice_id_, alice_, bob_id_, bob_;
};

TEST_F(ProjectServiceTest, CreateGetUpdateDelete) {
  v1::Project created;
  ASSERT_TRUE(Create(alice_, "shop-api", &created).ok());
  EXPECT_EQ(created.owner_id(), alice_id_);
  EXPECT_EQ(created.status(), v1::PROJECT_STATUS_CREATED);
  EXPECT_TRUE(created.has_create_time());

  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.id(), &got).ok());
  EXPECT_EQ(got.name(), "shop-api");
  EXPECT_EQ(got.description(), "a shop");

  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(created.id());
  update.mutable_project()->set_display_name("Shop API");
  update.mutable_update_mask()->add_paths("display_name");
  v1::UpdateProjectResponse updated;
  ASSERT_TRUE(stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated).ok());
  EXPECT_EQ(updated.project().display_name(), "Shop API");

  v1::DeleteProjectRequest del;
  del.set_project_id(created.id());
  v1::DeleteProjectResponse deleted;
  ASSERT_TRUE(stub_->DeleteProject(TestMesh::Context(alice_).get(), del, &deleted).ok());
  EXPECT_EQ(Get(alice_, created.id(), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(stub_->DeleteProject(TestMesh::Context(alice_).get(), del, &deleted).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ProjectServiceTest, AStuckProjectIsRepairedThroughTheFieldMask) {
  v1::Project created;
  ASSERT_TRUE(Create(alice_, "stuck", &created).ok());
  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(created.id());
  update.mutable_project()->set_repository_url("https://git.example.com/alice/stuck.git");
  update.mutable_project()->set_status(v1::PROJECT_STATUS_READY);
  update.mutable_project()->set_description("this must not be written");
  update.mutable_update_mask()->add_paths("repository_url");
  update.mutable_update_mask()->add_paths("status");
  v1::UpdateProjectResponse updated;
  grpc::Status s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.id(), &got).ok());
  EXPECT_EQ(got.repository_url(), "https://git.example.com/alice/stuck.git");
  EXPECT_EQ(got.status(), v1::PROJECT_STATUS_READY);
  EXPECT_EQ(got.description(), "a shop");  // outside the mask: untouched
  EXPECT_GT(got.update_time().seconds() * 1000000000LL + got.update_time().nanos(),
            got.create_time().seconds() * 1000000000LL + got.create_time().nanos());
}

TEST_F(ProjectServiceTest, BadInputIsInvalidArgumentNamingTheFieldAndChangesNothing) {
  v1::Project created;
  ASSERT_TRUE(Create(alice_, "keep-me", &created).ok());
  grpc::Status s = Create(alice_, "Bad Name", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("project.name"));

  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(created.id());
  update.mutable_project()->set_status(static_cast<v1::ProjectStatus>(77));
  update.mutable_project()->set_repository_url("https://example.com/x.git");
  update.mutable_update_mask()->add_paths("repository_url");
  update.mutable_update_mask()->add_paths("status");
  v1::UpdateProjectResponse updated;
  s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("project.status"));
  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.id(), &got).ok());
  EXPECT_EQ(got.repository_url(), "");  // nothing of the refused update was written

  v1::ListProjectsRequest list;
  list.set_page_size(-5);
  v1::ListProjectsResponse page;
  s = stub_->ListProjects(TestMesh::Context(alice_).get(), list, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_size"));
}

TEST_F(ProjectServiceTest, LocalFilesLocalHostsPasswordsAndPathTemplatesAreRefused) {
  v1::Project created;
  ASSERT_TRUE(Create(alice_, "careful", &created).ok());
  for (const char* url : {"file:///etc/passwd", "http://127.0.0.1:54329/",
                          "https://user:hunter2@git.example.com/a.git", "https://[::1]/a.git",
                          "https://169.254.169.254/latest"}) {
    v1::CreateProjectRequest create;
    create.mutable_project()->set_name("other");
    create.mutable_project()->set_repository_url(url);
    v1::CreateProjectResponse made;
    grpc::Status s = stub_->CreateProject(TestMesh::Context(alice_).get(), create, &made);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
    EXPECT_THAT(s.error_message(), HasSubstr("project.repository_url")) << url;
    EXPECT_THAT(s.error_message(), Not(HasSubstr("hunter2")));

    v1::UpdateProjectRequest update;
    update.mutable_project()->set_id(created.id());
    update.mutable_project()->set_repository_url(url);
    update.mutable_update_mask()->add_paths("repository_url");
    v1::UpdateProjectResponse updated;
    s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
  }
  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(created.id());
  update.mutable_project()->set_template_id("../../etc/passwd");
  update.mutable_update_mask()->add_paths("template_id");
  v1::UpdateProjectResponse updated;
  grpc::Status s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("project.template_id"));

  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.id(), &got).ok());
  EXPECT_EQ(got.repository_url(), "");
  EXPECT_EQ(got.template_id(), "");
  update.mutable_project()->set_template_id("python-http@1.2.0");
  update.mutable_project()->set_repository_url("git@github.com:alice/careful.git");
  update.mutable_update_mask()->add_paths("repository_url");
  s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.project().template_id(), "python-http@1.2.0");
  EXPECT_EQ(updated.project().repository_url(), "git@github.com:alice/careful.git");
}

TEST_F(ProjectServiceTest, DuplicateNamesPerOwnerAreAlreadyExistsButOtherOwnersMayReuseThem) {
  ASSERT_TRUE(Create(alice_, "blog", nullptr).ok());
  grpc::Status dup = Create(alice_, "blog", nullptr);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(dup.error_message(), HasSubstr("blog"));
  EXPECT_TRUE(Create(bob_, "blog", nullptr).ok());
}

TEST_F(ProjectServiceTest, RetryingACreateWithTheSameRequestIdReturnsTheSameProject) {
  v1::Project first, second;
  ASSERT_TRUE(Create(alice_, "retry-me", &first, "req-42").ok());
  ASSERT_TRUE(Create(alice_, "retry-me", &second, "req-42").ok());
  EXPECT_EQ(first.id(), second.id());
}

TEST_F(ProjectServiceTest, OwnersSeeOnlyTheirOwnProjects) {
  v1::Project alices;
  ASSERT_TRUE(Create(alice_, "private", &alices).ok());
  grpc::Status s = Get(bob_, alices.id(), nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(alices.id());
  update.mutable_project()->set_description("pwned");
  v1::UpdateProjectResponse updated;
  EXPECT_EQ(stub_->UpdateProject(TestMesh::Context(bob_).get(), update, &updated).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::SetSecretRequest secret;
  secret.set_project_id(alices.id());
  secret.set_name("X");
  secret.set_value("y");
  v1::SetSecretResponse set;
  EXPECT_EQ(stub_->SetSecret(TestMesh::Context(bob_).get(), secret, &set).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::ListProjectsRequest list;
  v1::ListProjectsResponse bobs;
  ASSERT_TRUE(stub_->ListProjects(TestMesh::Context(bob_).get(), list, &bobs).ok());
  EXPECT_EQ(bobs.projects_size(), 0);
  v1::ListProjectsResponse everyone;
  ASSERT_TRUE(
      stub_->ListProjects(TestMesh::Context(mesh_.admin_token()).get(), list, &everyone).ok());
  EXPECT_EQ(everyone.projects_size(), 1);  // admins see every owner's
}

TEST_F(ProjectServiceTest, NamingAnotherOwnerIsRefusedTheSameWhetherOrNotTheyExist) {
  v1::Project bobs;
  ASSERT_TRUE(Create(bob_, "bobs-own", &bobs).ok());
  v1::Project alices;
  ASSERT_TRUE(Create(alice_, "alices", &alices).ok());
  // Never bob's own projects passed off as the answer, never alice's.
  grpc::Status answers[2];
  int i = 0;
  for (const std::string& owner : {alice_id_, std::string("usr_nobody")}) {
    v1::ListProjectsRequest list;
    list.set_owner_id(owner);
    v1::ListProjectsResponse resp;
    answers[i] = stub_->ListProjects(TestMesh::Context(bob_).get(), list, &resp);
    EXPECT_EQ(answers[i].error_code(), grpc::StatusCode::PERMISSION_DENIED) << owner;
    EXPECT_THAT(answers[i].error_message(), HasSubstr("owner_id"));
    EXPECT_EQ(resp.projects_size(), 0);
    ++i;
  }
  EXPECT_EQ(answers[0].error_message(), answers[1].error_message());

  v1::ListProjectsRequest own;
  own.set_owner_id(bob_id_);  // naming oneself is fine
  v1::ListProjectsResponse resp;
  ASSERT_TRUE(stub_->ListProjects(TestMesh::Context(bob_).get(), own, &resp).ok());
  ASSERT_EQ(resp.projects_size(), 1);
  EXPECT_EQ(resp.projects(0).id(), bobs.id());
  v1::ListProjectsRequest by_admin;
  by_admin.set_owner_id(alice_id_);
  ASSERT_TRUE(
      stub_->ListProjects(TestMesh::Context(mesh_.admin_token()).get(), by_admin, &resp).ok());
  ASSERT_EQ(resp.projects_size(), 1);
  EXPECT_EQ(resp.projects(0).id(), alices.id());
}

TEST_F(ProjectServiceTest, PaginationWalksEveryProjectOnceNewestFirst) {
  std::vector<std::string> created;
  for (int i = 0; i < 7; ++i) {
    v1::Project p;
    ASSERT_TRUE(Create(alice_, "app-" + std::to_string(i), &p).ok());
    created.push_back(p.id());
  }
  ASSERT_TRUE(Create(bob_, "not-alices", nullptr).ok());

  std::vector<std::string> seen;
  std::vector<int> page_sizes;
  v1::ListProjectsRequest req;
  req.set_page_size(3);
  do {
    v1::ListProjectsResponse resp;
    grpc::Status s = stub_->ListProjects(TestMesh::Context(alice_).get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    page_sizes.push_back(resp.projects_size());
    for (const auto& p : resp.projects()) seen.push_back(p.id());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty() && page_sizes.size() < 10);
  EXPECT_EQ(page_sizes, (std::vector<int>{3, 3, 1}));
  std::vector<std::string> newest_first(created.rbegin(), created.rend());
  EXPECT_EQ(seen, newest_first);
}

TEST_F(ProjectServiceTest, StatusFilterAndATokenReplayedWithAnotherFilter) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create(alice_, "p-" + std::to_string(i), nullptr).ok());
  v1::Project ready;
  ASSERT_TRUE(Create(alice_, "ready-one", &ready).ok());
  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(ready.id());
  update.mutable_project()->set_status(v1::PROJECT_STATUS_READY);
  v1::UpdateProjectResponse updated;
  ASSERT_TRUE(stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated).ok());

  v1::ListProjectsRequest req;
  req.set_status(v1::PROJECT_STATUS_READY);
  v1::ListProjectsResponse resp;
  ASSERT_TRUE(stub_->ListProjects(TestMesh::Context(alice_).get(), req, &resp).ok());
  ASSERT_EQ(resp.projects_size(), 1);
  EXPECT_EQ(resp.projects(0).id(), ready.id());

  v1::ListProjectsRequest all;
  all.set_page_size(1);
  ASSERT_TRUE(stub_->ListProjects(TestMesh::Context(alice_).get(), all, &resp).ok());
  req.set_page_token(resp.next_page_token());
  grpc::Status s = stub_->ListProjects(TestMesh::Context(alice_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_token"));
}

TEST_F(ProjectServiceTest, SecretValuesNeverLeaveAndNeverReachTheLog) {
  LogCapture log;
  const std::string value = "s3cr3t-" + std::string(40, 'q');
  v1::Project p;
  ASSERT_TRUE(Create(alice_, "with-secrets", &p).ok());
  for (const char* name : {"DB_PASSWORD", "API_KEY", "STRIPE_KEY"}) {
    v1::SetSecretRequest set;
    set.set_project_id(p.id());
    set.set_name(name);
    set.set_value(value);
    v1::SetSecretResponse resp;
    ASSERT_TRUE(stub_->SetSecret(TestMesh::Context(alice_).get(), set, &resp).ok());
    EXPECT_EQ(resp.secret().name(), name);
    EXPECT_EQ(resp.DebugString().find("s3cr3t"), std::string::npos);
  }
  v1::ListSecretsRequest list;
  list.set_project_id(p.id());
  list.set_page_size(2);
  v1::ListSecretsResponse page1, page2;
  ASSERT_TRUE(stub_->ListSecrets(TestMesh::Context(alice_).get(), list, &page1).ok());
  list.set_page_token(page1.next_page_token());
  ASSERT_TRUE(stub_->ListSecrets(TestMesh::Context(alice_).get(), list, &page2).ok());
  ASSERT_EQ(page1.secrets_size(), 2);
  ASSERT_EQ(page2.secrets_size(), 1);
  EXPECT_EQ(page1.secrets(0).name(), "API_KEY");  // by name
  EXPECT_EQ(page2.secrets(0).name(), "STRIPE_KEY");
  for (const auto* r : {&page1, &page2}) {
    EXPECT_EQ(r->DebugString().find("s3cr3t"), std::string::npos);
  }
  v1::Project got;
  ASSERT_TRUE(Get(alice_, p.id(), &got).ok());
  EXPECT_EQ(got.DebugString().find("s3cr3t"), std::string::npos);

  v1::DeleteSecretRequest del;
  del.set_project_id(p.id());
  del.set_name("API_KEY");
  v1::DeleteSecretResponse deleted;
  ASSERT_TRUE(stub_->DeleteSecret(TestMesh::Context(alice_).get(), del, &deleted).ok());
  EXPECT_EQ(stub_->DeleteSecret(TestMesh::Context(alice_).get(), del, &deleted).error_code(),
            grpc::StatusCode::NOT_FOUND);

  const std::string logged = log.text();
  EXPECT_THAT(logged, HasSubstr("rpc=SetSecret"));  // the capture really saw the calls
  EXPECT_THAT(logged, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(logged, Not(HasSubstr(alice_)));  // nor the bearer token
}

TEST_F(ProjectServiceTest, SecretsAreEncryptedAtRest) {
  v1::Project p;
  ASSERT_TRUE(Create(alice_, "at-rest", &p).ok());
  v1::SetSecretRequest set;
  set.set_project_id(p.id());
  set.set_name("DB_PASSWORD");
  set.set_value("plaintext-must-not-be-stored");
  v1::SetSecretResponse resp;
  ASSERT_TRUE(stub_->SetSecret(TestMesh::Context(alice_).get(), set, &resp).ok());
  auto pool = mesh_.database().NewPool(1);
  auto rows = pool->Exec(db::Statement{"dump", "SELECT sealed_value FROM projects.secrets"});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows(), 1);
  EXPECT_EQ(std::string(rows->Get(0, 0)).find("plaintext"), std::string::npos);
}

TEST_F(ProjectServiceTest, OversizedSecretIsRefusedNamingTheValue) {
  v1::Project p;
  ASSERT_TRUE(Create(alice_, "big-secret", &p).ok());
  v1::SetSecretRequest set;
  set.set_project_id(p.id());
  set.set_name("BLOB");
  set.set_value(std::string(70 * 1024, 'x'));
  v1::SetSecretResponse resp;
  grpc::Status s = stub_->SetSecret(TestMesh::Context(alice_).get(), set, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("value"));
}

TEST_F(ProjectServiceTest, NoTokenIsUnauthenticatedAndAMissingPermissionIsNamed) {
  grpc::Status none = Create("", "anon", nullptr);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status forged = Create("orc_forged", "anon", nullptr);
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  auto [reader_id, reader] = mesh_.NewUser("reader", {"project.get", "project.list"});
  grpc::Status denied = Create(reader, "nope", nullptr);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("project.create"));
  v1::ListProjectsRequest list;
  v1::ListProjectsResponse resp;
  EXPECT_TRUE(stub_->ListProjects(TestMesh::Context(reader).get(), list, &resp).ok());
}

// What a template's scaffold records on a project.
v1::Project Scaffolded(const std::string& name) {
  v1::Project p;
  p.set_name(name);
  p.set_template_id("python-http");
  p.set_template_version("1.2.0");
  (*p.mutable_template_answers())["service_name"] = "shop";
  (*p.mutable_template_answers())["greeting"] = "Hello, wörld";
  common::v1::RunContract* c = p.mutable_run_contract();
  c->set_build_file("deploy/Containerfile");
  c->set_port(8080);
  c->set_health_path("/healthz");
  c->add_test_command("python3");
  c->add_test_command("-m");
  c->add_test_command("unittest");
  c->add_required_secrets("API_KEY");
  return p;
}

TEST_F(ProjectServiceTest, TheTemplateRecordRoundTripsThroughTheStore) {
  v1::CreateProjectRequest create;
  *create.mutable_project() = Scaffolded("scaffolded");
  v1::CreateProjectResponse created;
  grpc::Status s = stub_->CreateProject(TestMesh::Context(alice_).get(), create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Read back from the database, after a restart for good measure.
  mesh_.Restart();
  stub_ = v1::ProjectService::NewStub(mesh_.channel());
  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.project().id(), &got).ok());
  EXPECT_EQ(got.template_version(), "1.2.0");
  EXPECT_EQ(got.template_answers().size(), 2u);
  EXPECT_EQ(got.template_answers().at("service_name"), "shop");
  EXPECT_EQ(got.template_answers().at("greeting"), "Hello, wörld");
  ASSERT_TRUE(got.has_run_contract());
  EXPECT_EQ(got.run_contract().build_file(), "deploy/Containerfile");
  EXPECT_EQ(got.run_contract().port(), 8080);
  EXPECT_EQ(got.run_contract().health_path(), "/healthz");
  EXPECT_THAT(got.run_contract().test_command(), ElementsAre("python3", "-m", "unittest"));
  EXPECT_THAT(got.run_contract().required_secrets(), ElementsAre("API_KEY"));

  // The list carries it too; a project made without a template has none.
  v1::Project plain;
  ASSERT_TRUE(Create(alice_, "plain", &plain).ok());
  EXPECT_FALSE(plain.has_run_contract());
  EXPECT_TRUE(plain.template_answers().empty());
  v1::ListProjectsRequest list;
  v1::ListProjectsResponse listed;
  ASSERT_TRUE(stub_->ListProjects(TestMesh::Context(alice_).get(), list, &listed).ok());
  ASSERT_EQ(listed.projects_size(), 2);
  EXPECT_FALSE(listed.projects(0).has_run_contract());  // newest first: "plain"
  EXPECT_EQ(listed.projects(1).run_contract().port(), 8080);
}

TEST_F(ProjectServiceTest, TheMaskReplacesTheTemplateRecordWhole) {
  v1::CreateProjectRequest create;
  *create.mutable_project() = Scaffolded("rescaffolded");
  v1::CreateProjectResponse created;
  ASSERT_TRUE(stub_->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());

  // A new scaffold: new answers replace the old ones (not merged), a new
  // contract replaces the old one (members left empty are empty after).
  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(created.project().id());
  update.mutable_project()->set_template_version("2.0.0");
  (*update.mutable_project()->mutable_template_answers())["port"] = "9000";
  update.mutable_project()->mutable_run_contract()->set_port(9000);
  update.mutable_project()->mutable_run_contract()->add_test_command("make");
  update.mutable_project()->set_description("outside the mask");
  for (const char* path : {"template_version", "template_answers", "run_contract"}) {
    update.mutable_update_mask()->add_paths(path);
  }
  v1::UpdateProjectResponse updated;
  grpc::Status s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.project().id(), &got).ok());
  EXPECT_EQ(got.template_version(), "2.0.0");
  EXPECT_EQ(got.template_answers().size(), 1u);
  EXPECT_EQ(got.template_answers().at("port"), "9000");
  EXPECT_EQ(got.run_contract().port(), 9000);
  EXPECT_THAT(got.run_contract().test_command(), ElementsAre("make"));
  EXPECT_EQ(got.run_contract().build_file(), "");
  EXPECT_TRUE(got.run_contract().required_secrets().empty());
  EXPECT_EQ(got.template_id(), "python-http");  // outside the mask: untouched
  EXPECT_EQ(got.description(), "");

  // Masked and empty: cleared.
  v1::UpdateProjectRequest clear;
  clear.mutable_project()->set_id(created.project().id());
  clear.mutable_update_mask()->add_paths("template_answers");
  clear.mutable_update_mask()->add_paths("run_contract");
  ASSERT_TRUE(stub_->UpdateProject(TestMesh::Context(alice_).get(), clear, &updated).ok());
  ASSERT_TRUE(Get(alice_, created.project().id(), &got).ok());
  EXPECT_TRUE(got.template_answers().empty());
  EXPECT_FALSE(got.has_run_contract());
  EXPECT_EQ(got.template_version(), "2.0.0");
}

TEST_F(ProjectServiceTest, AProjectOnGitHubTakesChangesByPullRequestAndNoOtherMay) {
  // On github.com (the default --github_api_url's): stored, and read back
  // after a restart.
  v1::CreateProjectRequest create;
  create.mutable_project()->set_name("reviewed");
  create.mutable_project()->set_repository_url("https://github.com/alice/reviewed.git");
  create.mutable_project()->set_change_delivery(v1::CHANGE_DELIVERY_PULL_REQUEST);
  v1::CreateProjectResponse created;
  grpc::Status s = stub_->CreateProject(TestMesh::Context(alice_).get(), create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  mesh_.Restart();
  stub_ = v1::ProjectService::NewStub(mesh_.channel());
  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.project().id(), &got).ok());
  EXPECT_EQ(got.change_delivery(), v1::CHANGE_DELIVERY_PULL_REQUEST);

  // Elsewhere: FAILED_PRECONDITION saying what to fix, and nothing made.
  create.mutable_project()->set_name("elsewhere");
  create.mutable_project()->set_repository_url("https://git.example.com/alice/elsewhere.git");
  s = stub_->CreateProject(TestMesh::Context(alice_).get(), create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("https://github.com/"));
  v1::ListProjectsResponse listed;
  ASSERT_TRUE(
      stub_->ListProjects(TestMesh::Context(alice_).get(), v1::ListProjectsRequest(), &listed)
          .ok());
  EXPECT_EQ(listed.projects_size(), 1);

  // Moving the repository off GitHub is refused while it takes pull
  // requests; going back to fast-forwards with it is fine.
  v1::UpdateProjectRequest move;
  move.mutable_project()->set_id(got.id());
  move.mutable_project()->set_repository_url("https://git.example.com/alice/reviewed.git");
  move.mutable_update_mask()->add_paths("repository_url");
  v1::UpdateProjectResponse updated;
  EXPECT_EQ(stub_->UpdateProject(TestMesh::Context(alice_).get(), move, &updated).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  move.mutable_project()->set_change_delivery(v1::CHANGE_DELIVERY_FAST_FORWARD);
  move.mutable_update_mask()->add_paths("change_delivery");
  s = stub_->UpdateProject(TestMesh::Context(alice_).get(), move, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(Get(alice_, got.id(), &got).ok());
  EXPECT_EQ(got.change_delivery(), v1::CHANGE_DELIVERY_FAST_FORWARD);
  EXPECT_EQ(got.repository_url(), "https://git.example.com/alice/reviewed.git");
}

TEST_F(ProjectServiceTest, AnInvalidTemplateRecordIsRefusedNamingTheFieldAndChangesNothing) {
  v1::CreateProjectRequest create;
  *create.mutable_project() = Scaffolded("kept");
  v1::CreateProjectResponse created;
  ASSERT_TRUE(stub_->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());
  struct Case {
    std::function<void(v1::Project&)> spoil;
    const char* path;
    const char* field;
  };
  const std::vector<Case> cases = {
      {[](v1::Project& p) { p.mutable_run_contract()->set_port(0); }, "run_contract",
       "project.run_contract.port"},
      {[](v1::Project& p) { p.mutable_run_contract()->set_port(70000); }, "run_contract",
       "project.run_contract.port"},
      {[](v1::Project& p) { p.mutable_run_contract()->set_health_path("healthz"); }, "run_contract",
       "project.run_contract.health_path"},
      {[](v1::Project& p) { p.mutable_run_contract()->set_build_file("../../etc/passwd"); },
       "run_contract", "project.run_contract.build_file"},
      {[](v1::Project& p) { p.mutable_run_contract()->set_build_file("/etc/passwd"); },
       "run_contract", "project.run_contract.build_file"},
      {[](v1::Project& p) { p.mutable_run_contract()->clear_test_command(); }, "run_contract",
       "project.run_contract.test_command"},
      {[](v1::Project& p) { p.mutable_run_contract()->add_required_secrets("lower"); },
       "run_contract", "project.run_contract.required_secrets[1]"},
      {[](v1::Project& p) { (*p.mutable_template_answers())["Bad-Name"] = "x"; },
       "template_answers", "project.template_answers"},
      {[](v1::Project& p) { (*p.mutable_template_answers())["name"] = "two\nlines"; },
       "template_answers", "project.template_answers[\"name\"]"},
      {[](v1::Project& p) { p.set_template_version("1.0 beta"); }, "template_version",
       "project.template_version"},
  };
  for (const auto& c : cases) {
    v1::Project bad = Scaffolded("refused");
    c.spoil(bad);
    v1::CreateProjectRequest refused_create;
    *refused_create.mutable_project() = bad;
    v1::CreateProjectResponse none;
    grpc::Status s = stub_->CreateProject(TestMesh::Context(alice_).get(), refused_create, &none);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(s.error_message(), HasSubstr(std::string(c.field) + ":")) << s.error_message();

    v1::UpdateProjectRequest update;
    *update.mutable_project() = bad;
    update.mutable_project()->set_id(created.project().id());
    update.mutable_project()->clear_name();
    update.mutable_update_mask()->add_paths(c.path);
    v1::UpdateProjectResponse updated;
    s = stub_->UpdateProject(TestMesh::Context(alice_).get(), update, &updated);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(s.error_message(), HasSubstr(std::string(c.field) + ":")) << s.error_message();
  }
  v1::Project got;
  ASSERT_TRUE(Get(alice_, created.project().id(), &got).ok());
  EXPECT_EQ(got.run_contract().SerializeAsString(),
            Scaffolded("kept").run_contract().SerializeAsString());
  EXPECT_EQ(got.template_answers().size(), 2u);
  v1::ListProjectsRequest list;
  v1::ListProjectsResponse listed;
  ASSERT_TRUE(stub_->ListProjects(TestMesh::Context(alice_).get(), list, &listed).ok());
  EXPECT_EQ(listed.projects_size(), 1);  // no refused create slipped through
}

// A worker's agent token, minted as the agents component mints it: through
// AdminService.MintWorkerToken with the mesh credential, for the worker's
// project.
class ProjectScopedTokenTest : public ProjectServiceTest {
 protected:
  std::string MintWorkerToken(const std::string& user_id, const std::string& project_id) {
    return mesh_.MintWorkerToken(user_id, project_id, {"project.*"});
  }

  std::vector<std::string> ListIds(const std::string& token) {
    v1::ListProjectsRequest list;
    v1::ListProjectsResponse listed;
    grpc::Status s = stub_->ListProjects(TestMesh::Context(token).get(), list, &listed);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const auto& p : listed.projects()) ids.push_back(p.id());
    return ids;
  }
};

TEST_F(ProjectScopedTokenTest, AnAgentTokenReachesOnlyItsWorkersProject) {
  v1::Project a, b;
  ASSERT_TRUE(Create(alice_, "project-a", &a).ok());
  ASSERT_TRUE(Create(alice_, "project-b", &b).ok());
  v1::SetSecretRequest secret;
  secret.set_project_id(b.id());
  secret.set_name("DB_PASSWORD");
  secret.set_value("b's");
  v1::SetSecretResponse set;
  ASSERT_TRUE(stub_->SetSecret(TestMesh::Context(alice_).get(), secret, &set).ok());
  const std::string agent = MintWorkerToken(alice_id_, a.id());

  v1::Project got;
  grpc::Status s = Get(agent, a.id(), &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.name(), "project-a");
  EXPECT_THAT(ListIds(agent), ElementsAre(a.id()));

  // B is alice's, but not her worker's: as if it did not exist.
  grpc::Status hidden = Get(agent, b.id(), nullptr);
  EXPECT_EQ(hidden.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(hidden.error_message(), "project '" + b.id() + "' not found");
  v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(b.id());
  update.mutable_project()->set_description("changed by a stray agent");
  v1::UpdateProjectResponse updated;
  EXPECT_EQ(stub_->UpdateProject(TestMesh::Context(agent).get(), update, &updated).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListSecretsRequest secrets;
  secrets.set_project_id(b.id());
  v1::ListSecretsResponse names;
  EXPECT_EQ(stub_->ListSecrets(TestMesh::Context(agent).get(), secrets, &names).error_code(),
            grpc::StatusCode::NOT_FOUND);
  secret.set_value("overwritten");
  EXPECT_EQ(stub_->SetSecret(TestMesh::Context(agent).get(), secret, &set).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::DeleteSecretRequest del_secret;
  del_secret.set_project_id(b.id());
  del_secret.set_name("DB_PASSWORD");
  v1::DeleteSecretResponse del_secret_done;
  EXPECT_EQ(stub_->DeleteSecret(TestMesh::Context(agent).get(), del_secret, &del_secret_done)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::DeleteProjectRequest del;
  del.set_project_id(b.id());
  v1::DeleteProjectResponse deleted;
  EXPECT_EQ(stub_->DeleteProject(TestMesh::Context(agent).get(), del, &deleted).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Nor does it make projects it could not see.
  EXPECT_EQ(Create(agent, "project-c", nullptr).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Alice's own token is not limited: both, untouched.
  EXPECT_THAT(ListIds(alice_), ElementsAre(b.id(), a.id()));
  ASSERT_TRUE(Get(alice_, b.id(), &got).ok());
  EXPECT_EQ(got.description(), "a shop");
  v1::ListSecretsResponse still;
  ASSERT_TRUE(stub_->ListSecrets(TestMesh::Context(alice_).get(), secrets, &still).ok());
  EXPECT_EQ(still.secrets_size(), 1);
}

TEST_F(ProjectScopedTokenTest, AnAgentTokenForAnotherOwnersProjectSeesNothing) {
  v1::Project bobs;
  ASSERT_TRUE(Create(bob_, "bobs", &bobs).ok());
  // The limit narrows what the user sees; it never widens it.
  const std::string agent = MintWorkerToken(alice_id_, bobs.id());
  EXPECT_EQ(Get(agent, bobs.id(), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(ListIds(agent).empty());
}

TEST_F(ProjectServiceTest, ProjectsSurviveARestartAndMigrationsRunOnceMore) {
  v1::Project p;
  ASSERT_TRUE(Create(alice_, "durable", &p).ok());
  mesh_.Restart();
  stub_ = v1::ProjectService::NewStub(mesh_.channel());
  v1::Project got;
  ASSERT_TRUE(Get(alice_, p.id(), &got).ok());
  EXPECT_EQ(got.name(), "durable");
  auto pool = mesh_.database().NewPool(1);
  auto applied =
      pool->Exec(db::Statement{"applied", "SELECT count(*) FROM projects.schema_migrations"});
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->GetInt64(0, 0), 4);  // each of projects' migrations once
}

}  // namespace
}  // namespace orchestrator::projects
