#pragma once

#include <memory>

#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/sessions/domain/session_manager.h"

namespace orchestrator::sessions {

// SessionService over the session manager: SendMessage and
// WatchNotifications as queued server streams, the rest unary.
class SessionServiceImpl final : public v1::SessionService::CallbackService {
 public:
  SessionServiceImpl(std::shared_ptr<SessionManager> manager, BoundedExecutorPtr executor)
      : manager_(std::move(manager)), executor_(std::move(executor)) {}

  grpc::ServerWriteReactor<v1::SendMessageResponse>* SendMessage(
      grpc::CallbackServerContext* ctx, const v1::SendMessageRequest* req) override;
  grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* ctx, const v1::RespondRequest* req,
                                    v1::RespondResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchNotificationsResponse>* WatchNotifications(
      grpc::CallbackServerContext* ctx, const v1::WatchNotificationsRequest* req) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* ctx,
                                       const v1::GetSessionRequest* req,
                                       v1::GetSessionResponse* resp) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* ctx,
                                         const v1::ListSessionsRequest* req,
                                         v1::ListSessionsResponse* resp) override;
  grpc::ServerUnaryReactor* PauseSession(grpc::CallbackServerContext* ctx,
                                         const v1::PauseSessionRequest* req,
                                         v1::PauseSessionResponse* resp) override;
  grpc::ServerUnaryReactor* ResumeSession(grpc::CallbackServerContext* ctx,
                                          const v1::ResumeSessionRequest* req,
                                          v1::ResumeSessionResponse* resp) override;
  grpc::ServerUnaryReactor* EndSession(grpc::CallbackServerContext* ctx,
                                       const v1::EndSessionRequest* req,
                                       v1::EndSessionResponse* resp) override;
  grpc::ServerUnaryReactor* DropJobNotifications(grpc::CallbackServerContext* ctx,
                                                 const v1::DropJobNotificationsRequest* req,
                                                 v1::DropJobNotificationsResponse* resp) override;
  grpc::ServerUnaryReactor* LookupMessages(grpc::CallbackServerContext* ctx,
                                           const v1::LookupMessagesRequest* req,
                                           v1::LookupMessagesResponse* resp) override;

 private:
  std::shared_ptr<SessionManager> manager_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::sessions
