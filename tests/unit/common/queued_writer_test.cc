// QueuedWriter over a real in-process gRPC server: what waits for a client
// that does not read is bounded; past the cap the stream ends with
// RESOURCE_EXHAUSTED and the producer hears at once that nobody listens.
#include "services/common/rpc/queued_writer.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"

namespace orchestrator {
namespace {

namespace v1 = ::orchestrator::sessions::v1;
using Writer = QueuedWriter<v1::WatchNotificationsResponse>;
using ::testing::HasSubstr;

constexpr size_t kCap = 256 * 1024;

// Hands each WatchNotifications call's writer to the test.
class StreamingService final : public v1::SessionService::CallbackService {
 public:
  grpc::ServerWriteReactor<v1::WatchNotificationsResponse>* WatchNotifications(
      grpc::CallbackServerContext*, const v1::WatchNotificationsRequest*) override {
    auto w = Writer::Create(kCap);
    absl::MutexLock lock(&mu_);
    writer_ = w;
    return w.get();
  }

  std::shared_ptr<Writer> Await() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](std::shared_ptr<Writer>* w) { return *w != nullptr; }, &writer_),
                         absl::Seconds(10));
    return writer_;
  }

 private:
  absl::Mutex mu_;
  std::shared_ptr<Writer> writer_ ABSL_GUARDED_BY(mu_);
};

class QueuedWriterTest : public ::testing::Test {
 protected:
  QueuedWriterTest() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    stub_ = v1::SessionService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                            grpc::InsecureChannelCredentials()));
  }
  ~QueuedWriterTest() override { server_->Shutdown(); }

  static v1::WatchNotificationsResponse Message(int i) {
    v1::WatchNotificationsResponse r;
    r.mutable_notification()->set_sequence(i);
    r.mutable_notification()->set_text(std::string(4096, 'x'));
    return r;
  }

  StreamingService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::SessionService::Stub> stub_;
};

TEST_F(QueuedWriterTest, AClientThatDoesNotReadEndsWithResourceExhaustedNotUnboundedMemory) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub_->WatchNotifications(&ctx, v1::WatchNotificationsRequest());
  std::shared_ptr<Writer> writer = service_.Await();
  ASSERT_NE(writer, nullptr);
  absl::Notification left;
  writer->OnFinished([&] { left.Notify(); });

  // Far more than the transport and the cap hold together, while the client
  // reads nothing.
  const int kMessages = 64 * 1024 * 1024 / 4096;
  size_t most = 0;
  for (int i = 1; i <= kMessages; ++i) {
    writer->Push(Message(i));
    most = std::max(most, writer->queued_bytes());
  }
  EXPECT_LE(most, kCap + 8192) << "the queue grew past its cap";
  // The producer hears at once that nobody listens (the client has not
  // read nor left).
  EXPECT_TRUE(left.WaitForNotificationWithTimeout(absl::Seconds(10)));
  writer->Push(Message(kMessages + 1));  // ignored: the stream has ended
  EXPECT_LE(writer->queued_bytes(), kCap + 8192);

  // Once the client reads: what was written before, then the end.
  v1::WatchNotificationsResponse r;
  int read = 0;
  int64_t last = 0;
  while (reader->Read(&r)) {
    ++read;
    EXPECT_EQ(r.notification().sequence(), last + 1) << "messages out of order or skipped";
    last = r.notification().sequence();
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("the client is not reading"));
  EXPECT_GT(read, 0);
  EXPECT_LT(read, kMessages);
}

TEST_F(QueuedWriterTest, AReadingClientGetsEverythingThenTheEnd) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub_->WatchNotifications(&ctx, v1::WatchNotificationsRequest());
  std::shared_ptr<Writer> writer = service_.Await();
  ASSERT_NE(writer, nullptr);
  // Under the cap at any time: all of it arrives, in order.
  for (int i = 1; i <= 32; ++i) writer->Push(Message(i));
  writer->End(absl::OkStatus());
  v1::WatchNotificationsResponse r;
  int read = 0;
  while (reader->Read(&r)) EXPECT_EQ(r.notification().sequence(), ++read);
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(read, 32);
}

}  // namespace
}  // namespace orchestrator
