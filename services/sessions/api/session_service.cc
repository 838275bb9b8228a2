#include "services/sessions/api/session_service.h"

#include "services/common/rpc/call_context.h"
#include "services/common/rpc/queued_writer.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::sessions {

grpc::ServerWriteReactor<v1::SendMessageResponse>* SessionServiceImpl::SendMessage(
    grpc::CallbackServerContext* ctx, const v1::SendMessageRequest* req) {
  auto writer = QueuedWriter<v1::SendMessageResponse>::Create();
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    writer->End(caller.status());
    return writer.get();
  }
  std::weak_ptr<QueuedWriter<v1::SendMessageResponse>> weak = writer;
  TurnListener listener{[weak](const v1::SendMessageResponse& r) {
                          if (auto w = weak.lock()) w->Push(r);
                        },
                        [weak](const absl::Status& s) {
                          if (auto w = weak.lock()) w->End(s);
                        }};
  absl::Status queued = executor_->Submit(
      [this, writer, caller = *caller, req = *req, listener = std::move(listener)]() mutable {
        std::string session_id;
        auto handle = manager_->Send(caller, req, std::move(listener), &session_id);
        if (!handle.ok()) return writer->End(handle.status());
        // The caller leaving does not stop the turn: its reply becomes a notification.
        writer->OnFinished(
            [manager = manager_, session_id, h = *handle] { manager->Detach(session_id, h); });
      });
  if (!queued.ok()) writer->End(queued);
  return writer.get();
}

grpc::ServerWriteReactor<v1::WatchNotificationsResponse>* SessionServiceImpl::WatchNotifications(
    grpc::CallbackServerContext* ctx, const v1::WatchNotificationsRequest* req) {
  // The replay of stored notifications is queued at once: room for a long
  // history (a client further behind resumes with a later after_sequence).
  auto writer = QueuedWriter<v1::WatchNotificationsResponse>::Create(size_t{64} << 20);
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    writer->End(caller.status());
    return writer.get();
  }
  std::weak_ptr<QueuedWriter<v1::WatchNotificationsResponse>> weak = writer;
  absl::Status queued = executor_->Submit([this, writer, weak, caller = *caller, req = *req] {
    auto handle = manager_->Watch(caller, req, [weak](const v1::Notification& n) {
      if (auto w = weak.lock()) {
        v1::WatchNotificationsResponse r;
        *r.mutable_notification() = n;
        w->Push(std::move(r));
      }
    });
    if (!handle.ok()) return writer->End(handle.status());
    writer->OnFinished([manager = manager_, h = *handle] { manager->Unwatch(h); });
  });
  if (!queued.ok()) writer->End(queued);
  return writer.get();
}

grpc::ServerUnaryReactor* SessionServiceImpl::Respond(grpc::CallbackServerContext* ctx,
                                                      const v1::RespondRequest* req,
                                                      v1::RespondResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->Respond(caller, *req),
                        [resp](v1::SessionMessage m) { *resp->mutable_message() = std::move(m); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::GetSession(grpc::CallbackServerContext* ctx,
                                                         const v1::GetSessionRequest* req,
                                                         v1::GetSessionResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->Get(caller, req->session_id()),
                        [resp](v1::Session s) { *resp->mutable_session() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::ListSessions(grpc::CallbackServerContext* ctx,
                                                           const v1::ListSessionsRequest* req,
                                                           v1::ListSessionsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->List(caller, *req),
                        [resp](v1::ListSessionsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::PauseSession(grpc::CallbackServerContext* ctx,
                                                           const v1::PauseSessionRequest* req,
                                                           v1::PauseSessionResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->Pause(caller, req->session_id()),
                        [resp](v1::Session s) { *resp->mutable_session() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::ResumeSession(grpc::CallbackServerContext* ctx,
                                                            const v1::ResumeSessionRequest* req,
                                                            v1::ResumeSessionResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->Resume(caller, req->session_id()),
                        [resp](v1::Session s) { *resp->mutable_session() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::EndSession(grpc::CallbackServerContext* ctx,
                                                         const v1::EndSessionRequest* req,
                                                         v1::EndSessionResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->End(caller, req->session_id()),
                        [resp](v1::Session s) { *resp->mutable_session() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::DropJobNotifications(
    grpc::CallbackServerContext* ctx, const v1::DropJobNotificationsRequest* req,
    v1::DropJobNotificationsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->DropJobNotifications(caller, *req),
                        [resp](v1::DropJobNotificationsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::LookupMessages(grpc::CallbackServerContext* ctx,
                                                             const v1::LookupMessagesRequest* req,
                                                             v1::LookupMessagesResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(manager_->LookupMessages(caller, *req),
                        [resp](v1::LookupMessagesResponse r) { *resp = std::move(r); });
  });
}

}  // namespace orchestrator::sessions
