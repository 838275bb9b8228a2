#include "services/common/containers/image_copy.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace orchestrator::containers {
namespace {

absl::Status InEngine(const absl::Status& status, const std::string& image,
                      absl::string_view engine) {
  return absl::Status(status.code(), absl::StrCat("copy image ", image, ": the ", engine,
                                                  " engine: ", status.message()));
}

// A file that is removed when it goes out of scope.
class ScratchFile final {
 public:
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  ~ScratchFile() { unlink(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  const std::string path_;
};

}  // namespace

absl::Status CopyImage(ContainerEngine& from, ContainerEngine& to, const std::string& image,
                       const std::string& scratch_dir, const std::atomic<bool>* cancel) {
  auto source = from.InspectImage(image);
  if (!source.ok()) return InEngine(source.status(), image, "source");
  auto present = to.InspectImage(image);
  if (present.ok() && present->id == source->id) return absl::OkStatus();
  if (!present.ok() && present.status().code() != absl::StatusCode::kNotFound) {
    return InEngine(present.status(), image, "destination");
  }

  std::string dir = scratch_dir;
  if (dir.empty()) {
    std::error_code ec;
    dir = std::filesystem::temp_directory_path(ec).string();
    if (ec) dir = "/tmp";
  }
  // mkstemps makes it 0600: an image may hold what its builder put in it.
  std::string path = absl::StrCat(dir, "/orchestrator-image-XXXXXX.tar");
  const int fd = mkstemps(path.data(), 4);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "copy image ", image, ": cannot make a scratch file in ", dir, ": ", std::strerror(errno)));
  }
  close(fd);
  const ScratchFile archive(path);
  if (auto saved = from.SaveImage(image, archive.path(), cancel); !saved.ok()) {
    return InEngine(saved, image, "source");
  }
  auto loaded = to.LoadImages(archive.path(), cancel);
  if (!loaded.ok()) return InEngine(loaded.status(), image, "destination");

  // The archive carries the tags the image had; the load must have kept them.
  auto copied = to.InspectImage(image);
  if (!copied.ok() && copied.status().code() == absl::StatusCode::kNotFound) {
    return absl::InternalError(absl::StrCat("copy image ", image,
                                            ": the destination engine loaded ",
                                            absl::StrJoin(*loaded, ", "), " but has no ", image));
  }
  if (!copied.ok()) return InEngine(copied.status(), image, "destination");
  if (copied->id != source->id) {
    return absl::InternalError(absl::StrCat("copy image ", image,
                                            ": the destination engine has it as ", copied->id,
                                            " after loading, not ", source->id));
  }
  return absl::OkStatus();
}

}  // namespace orchestrator::containers
