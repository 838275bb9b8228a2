// CopyImage between two real Podman services that share no image storage:
// the source on the machine's storage (where tools/setup made the base
// images), the destination on its own, empty one under the test's
// directory, as a remote server's engine would be.
#include "services/common/containers/image_copy.h"

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/containers/docker_engine.h"
#include "tests/mocks/mock_container_engine.h"
#include "tests/support/podman_service.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::containers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using testing::PodmanService;
using testing::PodmanStorage;
using ::testing::StrictMock;
using testing::TempDir;

// The smallest of the template bases (about 124 MB).
constexpr char kBaseImage[] = "localhost/orchestrator-template-python:bookworm";

constexpr char kContainerfile[] = R"cf(FROM localhost/orchestrator-template-python:bookworm
CMD ["python3", "-c", "print('hello from the copied base')"]
)cf";

// Each test starts its own pair, so the destination starts empty.
class ImageCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string conf = absl::StrCat(SOURCE_DIR, "/tools/image/containers.conf");
    std::filesystem::create_directories(dir_.Path("source"));
    std::filesystem::create_directories(dir_.Path("destination"));
    source_service_ = std::make_unique<PodmanService>(dir_.Path("source"), conf);
    destination_service_ =
        std::make_unique<PodmanService>(dir_.Path("destination"), conf, PodmanStorage::kPrivate);
    source_ = Connect(*source_service_);
    destination_ = Connect(*destination_service_);
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(destination_, nullptr);
    auto base = source_->InspectImage(kBaseImage);
    ASSERT_TRUE(base.ok()) << base.status() << " (tools/setup makes " << kBaseImage << ")";
    base_id_ = base->id;
    ASSERT_EQ(destination_->InspectImage(kBaseImage).status().code(), absl::StatusCode::kNotFound)
        << "the destination's storage is not its own";
  }

  void TearDown() override {
    // Before the services go: a container outlives its engine's service.
    if (!container_.empty()) (void)destination_->RemoveContainer(container_, true);
    destination_.reset();
    source_.reset();
    destination_service_.reset();
    source_service_.reset();
  }

  // An engine on `service` once it answers; null when it never does.
  static std::unique_ptr<DockerEngine> Connect(const PodmanService& service) {
    auto engine = DockerEngine::FromConfig({.url = service.url()});
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return nullptr;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::Status ping = (*engine)->Ping();
    while (!ping.ok() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
      ping = (*engine)->Ping();
    }
    EXPECT_TRUE(ping.ok()) << ping << "\npodman's log:\n" << service.Log();
    return ping.ok() ? *std::move(engine) : nullptr;
  }

  bool ScratchIsEmpty() const { return std::filesystem::is_empty(scratch_.path()); }

  TempDir dir_;
  TempDir scratch_;
  std::unique_ptr<PodmanService> source_service_;
  std::unique_ptr<PodmanService> destination_service_;
  std::unique_ptr<DockerEngine> source_;
  std::unique_ptr<DockerEngine> destination_;
  std::string base_id_;
  std::string container_;
};

TEST_F(ImageCopyTest, TheDestinationBuildsAndRunsOnTheCopiedImage) {
  const absl::Status copied = CopyImage(*source_, *destination_, kBaseImage, scratch_.path());
  ASSERT_TRUE(copied.ok()) << copied;
  EXPECT_TRUE(ScratchIsEmpty());

  // The same image under the same name: the load kept the tag.
  auto image = destination_->InspectImage(kBaseImage);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->id, base_id_);
  EXPECT_THAT(image->tags, Contains(kBaseImage));

  TempDir context;
  context.Write("Containerfile", kContainerfile);
  BuildSpec build;
  build.context_dir = context.path();
  build.tag = "localhost/orch-it-image-copy:v1";
  auto built = destination_->BuildImage(
      build, [](const std::string&) {}, nullptr);
  ASSERT_TRUE(built.ok()) << built.status();
  ContainerSpec spec;
  spec.name = "orch-it-image-copy";
  spec.image = *built;
  auto id = destination_->CreateContainer(spec);
  ASSERT_TRUE(id.ok()) << id.status();
  container_ = *id;
  ASSERT_TRUE(destination_->StartContainer(container_).ok());
  // A followed log ends when the container does.
  std::string output;
  const absl::Status logs = destination_->Logs(
      container_, {.follow = true, .follow_for = absl::Seconds(60)},
      [&](const LogLine& line) {
        absl::StrAppend(&output, line.text, "\n");
        return true;
      },
      nullptr);
  ASSERT_TRUE(logs.ok()) << logs;
  EXPECT_THAT(output, HasSubstr("hello from the copied base"));
  auto info = destination_->InspectContainer(container_);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->exit_code, 0);
}

TEST_F(ImageCopyTest, CopyingAgainOnlyLooksTheImageUp) {
  ASSERT_TRUE(CopyImage(*source_, *destination_, kBaseImage, scratch_.path()).ok());

  // Strict mocks over the real engines: a save or a load would fail the test.
  StrictMock<MockContainerEngine> from;
  StrictMock<MockContainerEngine> to;
  EXPECT_CALL(from, InspectImage(kBaseImage)).WillOnce([&](const std::string& image) {
    return source_->InspectImage(image);
  });
  EXPECT_CALL(to, InspectImage(kBaseImage)).WillOnce([&](const std::string& image) {
    return destination_->InspectImage(image);
  });
  const absl::Status again = CopyImage(from, to, kBaseImage, scratch_.path());
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_TRUE(ScratchIsEmpty());
}

TEST_F(ImageCopyTest, AnImageTheSourceLacksIsNotFoundNamingIt) {
  const std::string missing = "localhost/orch-it-image-copy-missing:v1";
  const absl::Status copied = CopyImage(*source_, *destination_, missing, scratch_.path());
  EXPECT_EQ(copied.code(), absl::StatusCode::kNotFound) << copied;
  EXPECT_THAT(copied.message(), HasSubstr(missing));
  EXPECT_THAT(copied.message(), HasSubstr("source engine"));
  EXPECT_TRUE(ScratchIsEmpty());
}

TEST_F(ImageCopyTest, SaveRefusesAMissingImageAndLoadANonArchive) {
  const std::string archive = scratch_.Path("archive.tar");
  const absl::Status saved =
      source_->SaveImage("localhost/orch-it-image-copy-missing:v1", archive, nullptr);
  EXPECT_EQ(saved.code(), absl::StatusCode::kNotFound) << saved;

  scratch_.Write("not-an-archive.tar", "no tar here");
  auto loaded = destination_->LoadImages(scratch_.Path("not-an-archive.tar"), nullptr);
  EXPECT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("load images from"));

  auto absent = destination_->LoadImages(scratch_.Path("absent.tar"), nullptr);
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kFailedPrecondition) << absent.status();
}

}  // namespace
}  // namespace orchestrator::containers
