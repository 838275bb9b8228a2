// DockerEngine against a real Podman: its Docker-compatible service started
// by the test on a private socket, images built from the locally made
// Python base, containers run on loopback ports, everything this run made
// (it carries the run's label) removed at the end, also after a failure.
#include "services/common/containers/docker_engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/http/http_client.h"
#include "tests/support/free_port.h"
#include "tests/support/podman_service.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::containers {
namespace {

using ::testing::Contains;
using testing::FreePort;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::PodmanService;
using ::testing::StartsWith;
using testing::TempDir;

constexpr char kBaseImage[] = "localhost/orchestrator-template-python:bookworm";
constexpr char kRunLabel[] = "org.codegen-orchestrator.test-run";
constexpr int kServerPort = 8080;

// build-id differs on every build, so no layer after FROM comes from the
// cache: the RUN step's output shows, and no other run (which removes its
// images at the end, cached parents included) shares a layer with this one.
constexpr char kContainerfile[] = R"(ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY build-id server.py /srv/
RUN echo "hello from the build" && cat /srv/build-id
CMD ["python3", "/srv/server.py"]
)";

// Answers /healthz; says on stdout what it served and something on stderr;
// stops at once on SIGTERM.
constexpr char kServer[] = R"(import http.server, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/healthz"
        body = b"ok\n" if ok else b"no\n"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("served", self.path, flush=True)
        print("warning on stderr", file=sys.stderr, flush=True)
    def log_message(self, *args):
        pass
print("starting on 8080", flush=True)
http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
)";

std::string RandomHex(int bytes) {
  std::random_device random;
  std::string hex;
  for (int i = 0; i < bytes; ++i)
    absl::StrAppend(&hex, absl::Hex(random() & 0xff, absl::kZeroPad2));
  return hex;
}

// ctest runs each test in its own process, each with its own engine, all
// on one image storage: a lock file keeps image removals (exclusive) apart
// from builds (shared) across them, as DockerEngine does within a process.
class ImageStorageLock final {
 public:
  explicit ImageStorageLock(int operation) {
    fd_ = open("/tmp/orchestrator-docker-engine-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) flock(fd_, operation);
  }
  ~ImageStorageLock() {
    if (fd_ >= 0) close(fd_);
  }
  ImageStorageLock(const ImageStorageLock&) = delete;
  ImageStorageLock& operator=(const ImageStorageLock&) = delete;

 private:
  int fd_ = -1;
};

class DockerEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    run_ = RandomHex(4);
    dir_ = new TempDir();
    service_ =
        new PodmanService(dir_->path(), absl::StrCat(SOURCE_DIR, "/tools/image/containers.conf"));
    auto engine = DockerEngine::FromConfig(
        {.url = service_->url(), .timeout = absl::Seconds(30), .build_timeout = absl::Minutes(2)});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
    // The service answers within a second or two of starting.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::Status ping = engine_->Ping();
    while (!ping.ok() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
      ping = engine_->Ping();
    }
    ASSERT_TRUE(ping.ok()) << ping << "\npodman's log:\n" << service_->Log();
    auto base = engine_->InspectImage(kBaseImage);
    ASSERT_TRUE(base.ok()) << base.status() << " (tools/setup builds " << kBaseImage << ")";
    ready_ = true;
  }

  static void TearDownTestSuite() {
    if (engine_ != nullptr) {
      SweepContainers();
      auto images = engine_->ListImages({{kRunLabel, run_}});
      EXPECT_TRUE(images.ok()) << images.status();
      if (images.ok()) {
        for (const ImageInfo& image : *images) {
          const absl::Status removed = RemoveImage(image.id, true);
          EXPECT_TRUE(removed.ok()) << removed;
        }
      }
    }
    delete engine_;
    engine_ = nullptr;
    delete service_;
    service_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(ready_) << "the Podman service is not up (see above)"; }
  void TearDown() override { SweepContainers(); }

  static void SweepContainers() {
    if (engine_ == nullptr) return;
    auto containers = engine_->ListContainers({{kRunLabel, run_}}, /*include_stopped=*/true);
    if (!containers.ok()) return;
    for (const ContainerSummary& c : *containers) (void)engine_->RemoveContainer(c.id, true);
  }

  static absl::Status RemoveImage(const std::string& image, bool force) {
    ImageStorageLock lock(LOCK_EX);
    return engine_->RemoveImage(image, force);
  }

  // Unique to this run: "orch-it-<run>-<what>".
  static std::string Name(absl::string_view what) {
    return absl::StrCat("orch-it-", run_, "-", what);
  }

  // The test server's image, built once per run; its id.
  static std::string ServerImage() {
    static std::string* const id = [] {
      auto built = Build(Name("server"), kContainerfile, nullptr);
      EXPECT_TRUE(built.ok()) << built.status();
      return new std::string(built.ok() ? *built : "");
    }();
    return *id;
  }

  static absl::StatusOr<std::string> Build(const std::string& name,
                                           const std::string& containerfile,
                                           std::vector<std::string>* output) {
    TempDir context;
    context.Write("Containerfile", containerfile);
    context.Write("server.py", kServer);
    context.Write("build-id", RandomHex(8));
    BuildSpec spec;
    spec.context_dir = context.path();
    spec.tag = absl::StrCat("localhost/", name, ":v1");
    spec.build_args = {{"BASE_IMAGE", kBaseImage}};
    spec.labels = {{kRunLabel, run_}, {"org.codegen-orchestrator.project", name}};
    ImageStorageLock lock(LOCK_SH);
    return engine_->BuildImage(
        spec,
        [&](const std::string& line) {
          if (output != nullptr) output->push_back(line);
        },
        nullptr);
  }

  // A started container of the server image, its port on `host_port`.
  static std::string RunServer(const std::string& name, int host_port,
                               int64_t memory_limit_bytes = 0) {
    ContainerSpec spec;
    spec.name = name;
    spec.image = ServerImage();
    spec.env = {"GREETING=hello"};
    spec.labels = {{kRunLabel, run_}, {"org.codegen-orchestrator.slot", name}};
    spec.container_port = kServerPort;
    spec.host_port = host_port;
    spec.restart_policy = RestartPolicy::kUnlessStopped;
    spec.memory_limit_bytes = memory_limit_bytes;
    auto id = engine_->CreateContainer(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return "";
    const absl::Status started = engine_->StartContainer(*id);
    EXPECT_TRUE(started.ok()) << started;
    return *id;
  }

  // GET /healthz on 127.0.0.1:port until the server answers (bounded).
  static absl::StatusOr<http::Response> Healthz(int port) {
    http::HttpClient client(*http::BaseUrl::Parse(absl::StrCat("http://127.0.0.1:", port)));
    http::Request request;
    request.target = "/healthz";
    request.timeout = absl::Seconds(2);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    absl::StatusOr<http::Response> response = client.Send(request);
    while ((!response.ok() || response->status != 200) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
      response = client.Send(request);
    }
    return response;
  }

  static inline std::string run_;
  static inline bool ready_ = false;
  static inline TempDir* dir_ = nullptr;
  static inline PodmanService* service_ = nullptr;
  static inline DockerEngine* engine_ = nullptr;
};

TEST_F(DockerEngineTest, BuildsAnImageStreamingItsOutputAndListsItByLabel) {
  std::vector<std::string> output;
  auto id = Build(Name("build"), kContainerfile, &output);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_THAT(*id, StartsWith("sha256:"));
  EXPECT_THAT(output, Contains(HasSubstr("FROM localhost/orchestrator-template-python")));
  EXPECT_THAT(output, Contains("hello from the build"));
  for (const std::string& line : output) EXPECT_THAT(line, Not(HasSubstr("\n")));

  auto images =
      engine_->ListImages({{kRunLabel, run_}, {"org.codegen-orchestrator.project", Name("build")}});
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_EQ(images->size(), 1u);
  const ImageInfo& image = images->front();
  EXPECT_EQ(image.id, *id);
  EXPECT_THAT(image.tags, Contains(absl::StrCat("localhost/", Name("build"), ":v1")));
  EXPECT_EQ(image.labels.at(kRunLabel), run_);
  EXPECT_GT(image.created, absl::Now() - absl::Minutes(5));
  EXPECT_GT(image.size_bytes, 0);

  auto inspected = engine_->InspectImage(absl::StrCat("localhost/", Name("build"), ":v1"));
  ASSERT_TRUE(inspected.ok()) << inspected.status();
  EXPECT_EQ(inspected->id, *id);
  EXPECT_EQ(inspected->labels.at("org.codegen-orchestrator.project"), Name("build"));

  ASSERT_TRUE(RemoveImage(*id, /*force=*/false).ok());
  EXPECT_EQ(engine_->InspectImage(*id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RemoveImage(*id, false).code(), absl::StatusCode::kNotFound);
}

TEST_F(DockerEngineTest, AFailingBuildIsAFailedPreconditionCarryingTheOutputTail) {
  std::vector<std::string> output;
  auto id = Build(Name("broken"),
                  "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY build-id /\n"
                  "RUN echo before-the-failure $(cat /build-id) && false\n",
                  &output);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(id.status().message(),
              HasSubstr(absl::StrCat("build image localhost/", Name("broken"))));
  EXPECT_THAT(id.status().message(), HasSubstr("exit status 1"));
  EXPECT_THAT(id.status().message(), HasSubstr("before-the-failure"));
  EXPECT_THAT(output, Contains(StartsWith("before-the-failure ")));
}

TEST_F(DockerEngineTest, AContainerfileOutsideTheContextIsRefusedBeforeTheEngine) {
  TempDir context;
  context.Write("Containerfile", kContainerfile);
  BuildSpec spec;
  spec.context_dir = context.path();
  spec.dockerfile = "../Containerfile";
  spec.tag = absl::StrCat("localhost/", Name("x"), ":v1");
  EXPECT_EQ(engine_
                ->BuildImage(
                    spec, [](const std::string&) {}, nullptr)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  spec.dockerfile = "Missing";
  auto missing = engine_->BuildImage(
      spec, [](const std::string&) {}, nullptr);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("dockerfile: Missing"));
}

TEST_F(DockerEngineTest, RunsAContainerOnAPublishedLoopbackPortThenStopsAndRemovesIt) {
  const int port = FreePort();
  const std::string name = Name("web");
  const std::string id = RunServer(name, port);
  ASSERT_FALSE(id.empty());

  auto healthz = Healthz(port);
  ASSERT_TRUE(healthz.ok()) << healthz.status();
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, "ok\n");

  auto info = engine_->InspectContainer(name);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, id);
  EXPECT_EQ(info->name, name);
  EXPECT_EQ(info->image_id, ServerImage());
  EXPECT_TRUE(info->running);
  EXPECT_EQ(info->status, "running");
  EXPECT_EQ(info->host_port, port);
  EXPECT_EQ(info->restart_count, 0);
  ASSERT_TRUE(info->started_at.has_value());
  EXPECT_LT(absl::Now() - *info->started_at, absl::Minutes(1));
  EXPECT_EQ(info->labels.at("org.codegen-orchestrator.slot"), name);

  auto listed = engine_->ListContainers({{kRunLabel, run_}}, /*include_stopped=*/false);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, id);
  EXPECT_EQ(listed->front().name, name);
  EXPECT_EQ(listed->front().status, "running");
  EXPECT_EQ(listed->front().host_port, port);
  auto other = engine_->ListContainers({{kRunLabel, "another-run"}}, true);
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(*other, IsEmpty());

  // Starting a running container, stopping a stopped one: nothing to do.
  EXPECT_TRUE(engine_->StartContainer(id).ok());
  ASSERT_TRUE(engine_->StopContainer(id, absl::Seconds(5)).ok());
  EXPECT_TRUE(engine_->StopContainer(id, absl::Seconds(5)).ok());
  info = engine_->InspectContainer(id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->status, "exited");
  EXPECT_EQ(info->exit_code, 0);  // it exits on SIGTERM
  auto running = engine_->ListContainers({{kRunLabel, run_}}, /*include_stopped=*/false);
  ASSERT_TRUE(running.ok());
  EXPECT_THAT(*running, IsEmpty());
  auto all = engine_->ListContainers({{kRunLabel, run_}}, /*include_stopped=*/true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);

  ASSERT_TRUE(engine_->RemoveContainer(id, /*force=*/false).ok());
  EXPECT_EQ(engine_->InspectContainer(id).status().code(), absl::StatusCode::kNotFound);
  const absl::Status again = engine_->RemoveContainer(id, true);
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(again.message(), HasSubstr(absl::StrCat("remove container ", id)));
}

TEST_F(DockerEngineTest, TheEnginePicksAPortWhenAskedForNone) {
  const std::string id = RunServer(Name("any-port"), 0);
  ASSERT_FALSE(id.empty());
  auto info = engine_->InspectContainer(id);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_GT(info->host_port, 0);
  auto healthz = Healthz(info->host_port);
  ASSERT_TRUE(healthz.ok()) << healthz.status();
  EXPECT_EQ(healthz->status, 200);
}

TEST_F(DockerEngineTest, ANameInUseIsAlreadyExistsAndAnImageInUseNeedsForce) {
  std::vector<std::string> output;
  auto image = Build(Name("in-use"), kContainerfile, &output);
  ASSERT_TRUE(image.ok()) << image.status();
  ContainerSpec spec;
  spec.name = Name("twice");
  spec.image = *image;
  spec.labels = {{kRunLabel, run_}};
  ASSERT_TRUE(engine_->CreateContainer(spec).ok());
  const auto second = engine_->CreateContainer(spec);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr(spec.name));

  EXPECT_EQ(RemoveImage(*image, /*force=*/false).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(engine_->RemoveContainer(spec.name, true).ok());
  EXPECT_TRUE(RemoveImage(*image, false).ok());

  spec.name = Name("no-image");
  spec.image = "localhost/orch-it-absent:v1";
  EXPECT_EQ(engine_->CreateContainer(spec).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DockerEngineTest, LogsTailAndFollowUntilTheContainerStops) {
  const int port = FreePort();
  const std::string id = RunServer(Name("logs"), port);
  ASSERT_FALSE(id.empty());

  absl::Mutex mu;
  std::vector<std::string> followed;  // guarded by mu
  absl::Notification started, served;
  absl::Status follow_status;
  std::thread follower([&] {
    follow_status = engine_->Logs(
        id, LogOptions{.follow = true},
        [&](const LogLine& line) {
          absl::MutexLock lock(&mu);
          followed.push_back(
              absl::StrCat(line.source == LogLine::Source::kStdout ? "O:" : "E:", line.text));
          if (line.text == "starting on 8080" && !started.HasBeenNotified()) started.Notify();
          if (line.text == "served /healthz" && !served.HasBeenNotified()) served.Notify();
          return true;
        },
        nullptr);
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(Healthz(port).ok());
  // A line written while the follower waits reaches it.
  ASSERT_TRUE(served.WaitForNotificationWithTimeout(absl::Seconds(20)));

  // A second follower, cancelled by its caller.
  std::atomic<bool> cancel{false};
  absl::Status cancelled_status;
  std::thread cancelled([&] {
    cancelled_status = engine_->Logs(
        id, LogOptions{.follow = true},
        [&](const LogLine&) {
          cancel = true;
          return true;
        },
        &cancel);
  });
  cancelled.join();
  EXPECT_EQ(cancelled_status.code(), absl::StatusCode::kCancelled);

  ASSERT_TRUE(engine_->StopContainer(id, absl::Seconds(5)).ok());
  follower.join();  // ends with the container
  ASSERT_TRUE(follow_status.ok()) << follow_status;
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(followed, Contains("O:starting on 8080"));
    EXPECT_THAT(followed, Contains("O:served /healthz"));
    EXPECT_THAT(followed, Contains("E:warning on stderr"));
  }

  std::vector<LogLine> all;
  ASSERT_TRUE(engine_
                  ->Logs(
                      id, LogOptions{.timestamps = true},
                      [&](const LogLine& line) {
                        all.push_back(line);
                        return true;
                      },
                      nullptr)
                  .ok());
  ASSERT_GE(all.size(), 3u);
  EXPECT_EQ(all.front().text, "starting on 8080");
  for (const LogLine& line : all) {
    ASSERT_TRUE(line.time.has_value()) << line.text;
    EXPECT_LT(absl::Now() - *line.time, absl::Minutes(2)) << line.text;
  }

  std::vector<std::string> tail;
  ASSERT_TRUE(engine_
                  ->Logs(
                      id, LogOptions{.tail_lines = 1},
                      [&](const LogLine& line) {
                        tail.push_back(line.text);
                        return true;
                      },
                      nullptr)
                  .ok());
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail.front(), all.back().text);

  // `since` counts in whole seconds.
  for (const auto& [since, expected] :
       {std::pair{absl::Now() - absl::Minutes(5), all.size()}, {absl::Now() + absl::Hours(1), 0}}) {
    size_t count = 0;
    ASSERT_TRUE(engine_
                    ->Logs(
                        id, LogOptions{.since = since},
                        [&](const LogLine&) {
                          ++count;
                          return true;
                        },
                        nullptr)
                    .ok());
    EXPECT_EQ(count, expected);
  }

  std::vector<std::string> first;
  ASSERT_TRUE(engine_
                  ->Logs(
                      id, LogOptions{},
                      [&](const LogLine& line) {
                        first.push_back(line.text);
                        return false;
                      },
                      nullptr)
                  .ok());
  EXPECT_EQ(first, std::vector<std::string>{"starting on 8080"});

  EXPECT_EQ(engine_
                ->Logs(
                    Name("absent"), LogOptions{}, [](const LogLine&) { return true; }, nullptr)
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DockerEngineTest, MemoryUsageOfARunningContainerAndNoneOfAStoppedOne) {
  const int port = FreePort();
  const std::string id = RunServer(Name("memory"), port, 64 << 20);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(Healthz(port).ok());
  auto memory = engine_->MemoryUsage(id);
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_GT(memory->usage_bytes, 1 << 20);  // a Python process at least
  EXPECT_LT(memory->usage_bytes, 64 << 20);
  EXPECT_EQ(memory->limit_bytes, 64 << 20);

  ASSERT_TRUE(engine_->StopContainer(id, absl::Seconds(5)).ok());
  EXPECT_EQ(engine_->MemoryUsage(id).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DockerEngineTest, RefusesInputItCannotPutInARequest) {
  ContainerSpec spec;
  spec.name = "web?all=true";
  spec.image = ServerImage();
  const auto bad_name = engine_->CreateContainer(spec);
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_name.status().message()), StartsWith("name: "));
  spec.name = Name("bad-env");
  spec.env = {"NOT A VARIABLE"};
  EXPECT_THAT(std::string(engine_->CreateContainer(spec).status().message()),
              StartsWith("env[0]: "));
  EXPECT_EQ(engine_->InspectContainer("../../images/json").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->InspectImage("Upper/Case").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DockerEngine, AnAbsentEngineSocketIsUnavailableNamingIt) {
  TempDir dir;
  const std::string url = absl::StrCat("unix://", dir.path(), "/absent.sock");
  auto engine = DockerEngine::FromConfig({.url = url});
  ASSERT_TRUE(engine.ok()) << engine.status();
  const absl::Status ping = (*engine)->Ping();
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(ping.message(), HasSubstr(absl::StrCat("the container engine at ", url)));
  const auto info = (*engine)->InspectContainer("web");
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(info.status().message(), HasSubstr("inspect container web"));
}

TEST(DockerEngine, RefusesAUrlItCannotReach) {
  EXPECT_EQ(DockerEngine::FromConfig({.url = "unix://relative.sock"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DockerEngine::FromConfig({.url = "ftp://host"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DockerEngine::FromConfig({.url = "tcp://127.0.0.1:2375"}).ok());
}

}  // namespace
}  // namespace orchestrator::containers
