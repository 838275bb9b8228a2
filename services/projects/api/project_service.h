#pragma once

#include <memory>

#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/projects/domain/project_catalog.h"

namespace orchestrator::projects {

// Wires ProjectService's RPCs to the ProjectCatalog; nothing else.
class ProjectServiceImpl final : public v1::ProjectService::CallbackService {
 public:
  ProjectServiceImpl(std::shared_ptr<ProjectCatalog> catalog, BoundedExecutorPtr executor)
      : catalog_(std::move(catalog)), executor_(std::move(executor)) {}

  grpc::ServerUnaryReactor* CreateProject(grpc::CallbackServerContext* ctx,
                                          const v1::CreateProjectRequest* req,
                                          v1::CreateProjectResponse* resp) override;
  grpc::ServerUnaryReactor* GetProject(grpc::CallbackServerContext* ctx,
                                       const v1::GetProjectRequest* req,
                                       v1::GetProjectResponse* resp) override;
  grpc::ServerUnaryReactor* ListProjects(grpc::CallbackServerContext* ctx,
                                         const v1::ListProjectsRequest* req,
                                         v1::ListProjectsResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateProject(grpc::CallbackServerContext* ctx,
                                          const v1::UpdateProjectRequest* req,
                                          v1::UpdateProjectResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteProject(grpc::CallbackServerContext* ctx,
                                          const v1::DeleteProjectRequest* req,
                                          v1::DeleteProjectResponse* resp) override;
  grpc::ServerUnaryReactor* SetSecret(grpc::CallbackServerContext* ctx,
                                      const v1::SetSecretRequest* req,
                                      v1::SetSecretResponse* resp) override;
  grpc::ServerUnaryReactor* ListSecrets(grpc::CallbackServerContext* ctx,
                                        const v1::ListSecretsRequest* req,
                                        v1::ListSecretsResponse* resp) override;
  grpc::ServerUnaryReactor* RevealSecrets(grpc::CallbackServerContext* ctx,
                                          const v1::RevealSecretsRequest* req,
                                          v1::RevealSecretsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteSecret(grpc::CallbackServerContext* ctx,
                                         const v1::DeleteSecretRequest* req,
                                         v1::DeleteSecretResponse* resp) override;

 private:
  std::shared_ptr<ProjectCatalog> catalog_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::projects
