#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "services/common/config/mesh_config.h"
#include "services/orchestratord/mesh.h"
#include "tests/support/test_database.h"

namespace orchestrator::testing {

// orchestratord's mesh hosted in the test process on 127.0.0.1:0 over its own
// fresh database, reached through a real TCP channel like any client.
class TestMesh final {
 public:
  // `services` as for --services ("all" or a list).
  explicit TestMesh(const std::string& services = "all",
                    const std::function<void(MeshConfig&)>& tweak = nullptr);
  ~TestMesh();

  const std::string& admin_token() const { return admin_token_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::string address() const { return mesh_->address(); }
  const TestDatabase& database() const { return db_; }
  const MeshConfig& config() const { return config_; }

  // Starts the mesh again over the same database (a restart).
  void Restart();
  void Stop();

  // A client context carrying `token` and a deadline.
  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token);

  // A new user with ROLE_USER and a token limited to `permissions` (empty =
  // whatever the role grants). Returns {user_id, token}.
  std::pair<std::string, std::string> NewUser(const std::string& name,
                                              const std::vector<std::string>& permissions = {});

  // The mesh credential (what its components call each other with).
  std::string mesh_credential() const;

  // A worker's agent token for `user_id`, limited to `project_id` and
  // `permissions` (empty = what the role grants), minted as the agents
  // component does (AdminService.MintWorkerToken with the mesh credential).
  std::string MintWorkerToken(const std::string& user_id, const std::string& project_id,
                              const std::vector<std::string>& permissions = {});

 private:
  void StartMesh();

  TestDatabase db_;
  MeshConfig config_;
  std::string dir_;
  std::unique_ptr<Mesh> mesh_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string admin_token_;
};

}  // namespace orchestrator::testing
