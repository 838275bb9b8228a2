#pragma once

#include <grpcpp/client_context.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"

namespace orchestrator::testing {

// What a SendMessage caller received.
struct Turn {
  std::vector<sessions::v1::SendMessageResponse> steps;
  grpc::Status status;
  // The first reply ("" when none).
  std::string reply() const {
    for (const auto& s : steps) {
      if (s.has_reply()) return s.reply().text();
    }
    return "";
  }
  // Every reply the user received, in order.
  std::vector<std::string> replies() const {
    std::vector<std::string> out;
    for (const auto& s : steps) {
      if (s.has_reply()) out.push_back(s.reply().text());
    }
    return out;
  }
  std::string message_id() const {
    return !steps.empty() && steps[0].has_accepted() ? steps[0].accepted().message().id() : "";
  }
};

// A SendMessage stream read on its own thread; steps are visible as they
// arrive, and the caller may leave (Cancel).
class SendMessageStream final {
 public:
  SendMessageStream(sessions::v1::SessionService::Stub& stub, const std::string& token,
                    const std::string& text, const std::string& request_id,
                    absl::Duration deadline = absl::Seconds(120)) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    sessions::v1::SendMessageRequest req;
    req.set_text(text);
    req.set_request_id(request_id);
    reader_ = stub.SendMessage(&ctx_, req);
    thread_ = std::thread([this] {
      sessions::v1::SendMessageResponse r;
      while (reader_->Read(&r)) {
        absl::MutexLock lock(&mu_);
        turn_.steps.push_back(r);
      }
      grpc::Status s = reader_->Finish();
      absl::MutexLock lock(&mu_);
      turn_.status = s;
      done_ = true;
    });
  }
  ~SendMessageStream() {
    ctx_.TryCancel();
    thread_.join();
  }
  void Cancel() { ctx_.TryCancel(); }

  // Waits until a step matches; false after `timeout`.
  bool WaitFor(const std::function<bool(const sessions::v1::SendMessageResponse&)>& match,
               absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& s : turn_.steps) {
        if (match(s)) return true;
      }
      return done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
    for (const auto& s : turn_.steps) {
      if (match(s)) return true;
    }
    return false;
  }
  // The turn once the stream ended; `ended` false when it had not after `timeout`.
  Turn Finish(absl::Duration timeout = absl::Seconds(90), bool* ended = nullptr) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
    if (ended != nullptr) *ended = done_;
    return turn_;
  }
  // What arrived so far.
  Turn Snapshot() {
    absl::MutexLock lock(&mu_);
    return turn_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<sessions::v1::SendMessageResponse>> reader_;
  absl::Mutex mu_;
  Turn turn_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace orchestrator::testing
