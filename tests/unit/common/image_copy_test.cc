// CopyImage against mock engines: what it asks each, and that its scratch
// file never outlives it.
#include "services/common/containers/image_copy.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mocks/mock_container_engine.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::containers {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::Return;
using ::testing::StrictMock;
using testing::TempDir;

constexpr char kImage[] = "localhost/orchestrator-template-python:bookworm";

ImageInfo Image(const std::string& id) {
  ImageInfo info;
  info.id = id;
  info.tags = {kImage};
  return info;
}

class ImageCopyUnitTest : public ::testing::Test {
 protected:
  bool ScratchIsEmpty() const { return std::filesystem::is_empty(scratch_.path()); }

  StrictMock<MockContainerEngine> from_;
  StrictMock<MockContainerEngine> to_;
  TempDir scratch_;
};

TEST_F(ImageCopyUnitTest, AnotherImageUnderTheNameIsReplacedThroughAPrivateScratchFile) {
  EXPECT_CALL(from_, InspectImage(kImage)).WillOnce(Return(Image("sha256:new")));
  EXPECT_CALL(to_, InspectImage(kImage))
      .WillOnce(Return(Image("sha256:old")))
      .WillOnce(Return(Image("sha256:new")));
  std::string archive;
  EXPECT_CALL(from_, SaveImage(kImage, _, nullptr))
      .WillOnce([&](const std::string&, const std::string& path, const std::atomic<bool>*) {
        archive = path;
        struct stat st = {};
        EXPECT_EQ(stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        EXPECT_EQ(std::filesystem::path(path).parent_path(), scratch_.path());
        return absl::OkStatus();
      });
  EXPECT_CALL(to_, LoadImages(_, nullptr))
      .WillOnce([&](const std::string& path, const std::atomic<bool>*) {
        EXPECT_EQ(path, archive);
        return std::vector<std::string>{kImage};
      });
  const absl::Status copied = CopyImage(from_, to_, kImage, scratch_.path());
  EXPECT_TRUE(copied.ok()) << copied;
  EXPECT_TRUE(ScratchIsEmpty());
}

TEST_F(ImageCopyUnitTest, AFailedSaveLeavesNoScratchFile) {
  EXPECT_CALL(from_, InspectImage(kImage)).WillOnce(Return(Image("sha256:a")));
  EXPECT_CALL(to_, InspectImage(kImage)).WillOnce(Return(absl::NotFoundError("no such image")));
  EXPECT_CALL(from_, SaveImage(kImage, _, nullptr))
      .WillOnce([](const std::string&, const std::string& path, const std::atomic<bool>*) {
        std::ofstream(path) << "half an archive";
        return absl::UnavailableError("the container engine at unix:///x.sock: gone");
      });
  const absl::Status copied = CopyImage(from_, to_, kImage, scratch_.path());
  EXPECT_EQ(copied.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(copied.message(), HasSubstr(kImage));
  EXPECT_THAT(copied.message(), HasSubstr("source engine"));
  EXPECT_TRUE(ScratchIsEmpty());
}

TEST_F(ImageCopyUnitTest, AFailedLoadLeavesNoScratchFile) {
  EXPECT_CALL(from_, InspectImage(kImage)).WillOnce(Return(Image("sha256:a")));
  EXPECT_CALL(to_, InspectImage(kImage)).WillOnce(Return(absl::NotFoundError("no such image")));
  EXPECT_CALL(from_, SaveImage(kImage, _, nullptr)).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(to_, LoadImages(_, nullptr))
      .WillOnce(Return(absl::InternalError("load images: payload does not match")));
  const absl::Status copied = CopyImage(from_, to_, kImage, scratch_.path());
  EXPECT_EQ(copied.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(copied.message(), HasSubstr("destination engine"));
  EXPECT_TRUE(ScratchIsEmpty());
}

TEST_F(ImageCopyUnitTest, ALoadThatLosesTheNameIsAnError) {
  EXPECT_CALL(from_, InspectImage(kImage)).WillOnce(Return(Image("sha256:a")));
  EXPECT_CALL(to_, InspectImage(kImage))
      .WillOnce(Return(absl::NotFoundError("no such image")))
      .WillOnce(Return(absl::NotFoundError("no such image")));
  EXPECT_CALL(from_, SaveImage(kImage, _, nullptr)).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(to_, LoadImages(_, nullptr)).WillOnce(Return(std::vector<std::string>{"sha256:a"}));
  const absl::Status copied = CopyImage(from_, to_, kImage, scratch_.path());
  EXPECT_EQ(copied.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(copied.message(), HasSubstr("loaded sha256:a but has no"));
}

TEST_F(ImageCopyUnitTest, TheDestinationUnreachableIsItsErrorBeforeAnySave) {
  EXPECT_CALL(from_, InspectImage(kImage)).WillOnce(Return(Image("sha256:a")));
  EXPECT_CALL(to_, InspectImage(kImage))
      .WillOnce(Return(absl::UnavailableError("the container engine at unix:///r.sock: refused")));
  const absl::Status copied = CopyImage(from_, to_, kImage, scratch_.path());
  EXPECT_EQ(copied.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(copied.message(), HasSubstr("destination engine"));
}

}  // namespace
}  // namespace orchestrator::containers
