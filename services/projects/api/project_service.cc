#include "services/projects/api/project_service.h"

#include "services/common/rpc/serve_unary.h"

namespace orchestrator::projects {
grpc::ServerUnaryReactor* ProjectServiceImpl::CreateProject(grpc::CallbackServerContext* ctx,
                                                            const v1::CreateProjectRequest* req,
                                                            v1::CreateProjectResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->Create(caller, *req),
                        [resp](v1::Project p) { *resp->mutable_project() = std::move(p); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::GetProject(grpc::CallbackServerContext* ctx,
                                                         const v1::GetProjectRequest* req,
                                                         v1::GetProjectResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->Get(caller, *req),
                        [resp](v1::Project p) { *resp->mutable_project() = std::move(p); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::ListProjects(grpc::CallbackServerContext* ctx,
                                                           const v1::ListProjectsRequest* req,
                                                           v1::ListProjectsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->List(caller, *req),
                        [resp](v1::ListProjectsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::UpdateProject(grpc::CallbackServerContext* ctx,
                                                            const v1::UpdateProjectRequest* req,
                                                            v1::UpdateProjectResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->Update(caller, *req),
                        [resp](v1::Project p) { *resp->mutable_project() = std::move(p); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::DeleteProject(grpc::CallbackServerContext* ctx,
                                                            const v1::DeleteProjectRequest* req,
                                                            v1::DeleteProjectResponse*) {
  return ServeUnary(ctx, *executor_, [this, req](const Principal& caller) {
    return catalog_->Delete(caller, *req);
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::SetSecret(grpc::CallbackServerContext* ctx,
                                                        const v1::SetSecretRequest* req,
                                                        v1::SetSecretResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->SetSecret(caller, *req),
                        [resp](v1::Secret s) { *resp->mutable_secret() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::ListSecrets(grpc::CallbackServerContext* ctx,
                                                          const v1::ListSecretsRequest* req,
                                                          v1::ListSecretsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->ListSecrets(caller, *req),
                        [resp](v1::ListSecretsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::RevealSecrets(grpc::CallbackServerContext* ctx,
                                                            const v1::RevealSecretsRequest* req,
                                                            v1::RevealSecretsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(catalog_->RevealSecrets(caller, *req),
                        [resp](v1::RevealSecretsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* ProjectServiceImpl::DeleteSecret(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteSecretRequest* req,
                                                           v1::DeleteSecretResponse*) {
  return ServeUnary(ctx, *executor_, [this, req](const Principal& caller) {
    return catalog_->DeleteSecret(caller, *req);
  });
}

}  // namespace orchestrator::projects
