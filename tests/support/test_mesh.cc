#include "tests/support/test_mesh.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/crypto/secret_box.h"
#include "services/orchestratord/components.h"

namespace orchestrator::testing {

TestMesh::TestMesh(const std::string& services, const std::function<void(MeshConfig&)>& tweak) {
  dir_ = (std::filesystem::temp_directory_path() / NewId("mesh_")).string();
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/key") << GenerateSecretKeyBase64() << "\n";
  config_.listen = "127.0.0.1:0";
  EXPECT_TRUE(ParseServices(services, ComponentNames(), &config_.services).ok());
  // Every process of a split mesh shares one mesh credential.
  std::ofstream(dir_ + "/mesh.credential") << MeshCredential::NewSecret() << "\n";
  config_.mesh_credential_file = dir_ + "/mesh.credential";
  config_.database_url = db_.conninfo();
  config_.secrets_key_file = dir_ + "/key";
  config_.bootstrap_token_file = dir_ + "/admin.token";
  config_.agents_dir = dir_ + "/agents";
  config_.scaffolder_dir = dir_ + "/scaffolder";
  config_.git_http_listen = "127.0.0.1:0";  // meshes run side by side
  // No container engine or Caddy unless a test starts its own: never the
  // machine's (a Caddy installed from Debian answers on 127.0.0.1:2019).
  config_.container_engine_url = "unix://" + dir_ + "/no-engine.sock";
  config_.caddy_admin_url = "http://127.0.0.1:1";
  config_.deploy_dir = dir_ + "/deploy";
  config_.executor_threads = 4;
  config_.db_pool_size = 4;
  config_.drain_deadline = std::chrono::milliseconds(2000);
  // Tests call as fast as they can; the tests of rate limits turn them on.
  config_.rate_limit_per_token = {0, 0};
  config_.rate_limit_per_user = {0, 0};
  if (tweak) tweak(config_);
  StartMesh();
  std::ifstream in(config_.bootstrap_token_file);
  std::getline(in, admin_token_);
  EXPECT_FALSE(admin_token_.empty()) << "the mesh wrote no bootstrap admin token";
}

TestMesh::~TestMesh() {
  Stop();
  std::filesystem::remove_all(dir_);
}

void TestMesh::StartMesh() {
  auto mesh = Mesh::Create(config_);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  mesh_ = std::move(*mesh);
  ASSERT_TRUE(mesh_->Start().ok());
  channel_ = grpc::CreateChannel(mesh_->address(), grpc::InsecureChannelCredentials());
}

void TestMesh::Stop() {
  if (mesh_) {
    mesh_->Shutdown();
    mesh_.reset();
  }
}

void TestMesh::Restart() {
  Stop();
  StartMesh();
}

std::unique_ptr<grpc::ClientContext> TestMesh::Context(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  return ctx;
}

std::pair<std::string, std::string> TestMesh::NewUser(const std::string& name,
                                                      const std::vector<std::string>& permissions) {
  auto admin = admin::v1::AdminService::NewStub(channel_);
  admin::v1::CreateUserRequest create;
  create.mutable_user()->set_name(name);
  admin::v1::CreateUserResponse user;
  grpc::Status s = admin->CreateUser(Context(admin_token_).get(), create, &user);
  EXPECT_TRUE(s.ok()) << s.error_message();
  admin::v1::CreateTokenRequest token_req;
  token_req.set_user_id(user.user().id());
  for (const auto& p : permissions) token_req.add_permissions(p);
  admin::v1::CreateTokenResponse token;
  s = admin->CreateToken(Context(admin_token_).get(), token_req, &token);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return {user.user().id(), token.value()};
}

std::string TestMesh::mesh_credential() const {
  std::ifstream in(config_.mesh_credential_file);
  std::string credential;
  std::getline(in, credential);
  return credential;
}

std::string TestMesh::MintWorkerToken(const std::string& user_id, const std::string& project_id,
                                      const std::vector<std::string>& permissions) {
  auto admin = admin::v1::AdminService::NewStub(channel_);
  admin::v1::MintWorkerTokenRequest mint;
  mint.set_user_id(user_id);
  mint.set_worker_id(NewId("wrk_"));
  mint.set_project_id(project_id);
  for (const auto& p : permissions) mint.add_permissions(p);
  admin::v1::MintWorkerTokenResponse minted;
  grpc::Status s = admin->MintWorkerToken(Context(mesh_credential()).get(), mint, &minted);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(minted.token().project_id(), project_id);
  return minted.value();
}

}  // namespace orchestrator::testing
