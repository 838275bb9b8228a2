#include "services/common/containers/build_context.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace orchestrator::containers {
namespace {

// The archive being written, and whether it outgrew its bound.
struct Output {
  std::string bytes;
  size_t max_bytes = 0;
  bool too_large = false;
};

la_ssize_t WriteToOutput(struct archive*, void* client, const void* buffer, size_t length) {
  auto* output = static_cast<Output*>(client);
  if (output->bytes.size() + length > output->max_bytes) {
    output->too_large = true;
    return -1;
  }
  output->bytes.append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFreer {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

class ContextWriter final {
 public:
  ContextWriter(std::string dir, size_t max_bytes)
      : dir_(std::move(dir)), archive_(archive_write_new()) {
    output_.max_bytes = max_bytes;
  }

  absl::StatusOr<std::string> Write() {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir_, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("context_dir: ", dir_, " is not a directory"));
    }
    if (archive_write_set_format_pax_restricted(archive_.get()) < ARCHIVE_WARN ||
        archive_write_set_bytes_in_last_block(archive_.get(), 1) < ARCHIVE_WARN ||
        archive_write_open2(archive_.get(), &output_, nullptr, &WriteToOutput, nullptr, nullptr) <
            ARCHIVE_WARN) {
      return ArchiveError("starting the archive");
    }
    // Depth first, each directory's entries in name order; a stack rather
    // than recursion, since a tree may be deep.
    std::vector<std::string> directories = {""};
    while (!directories.empty()) {
      const std::string relative = std::move(directories.back());
      directories.pop_back();
      auto entries = Entries(relative);
      if (!entries.ok()) return entries.status();
      std::vector<std::string> subdirectories;
      for (const std::string& name : *entries) {
        const std::string path = relative.empty() ? name : absl::StrCat(relative, "/", name);
        bool is_directory = false;
        if (auto s = Add(path, &is_directory); !s.ok()) return s;
        if (is_directory) subdirectories.push_back(path);
      }
      directories.insert(directories.end(), subdirectories.rbegin(), subdirectories.rend());
    }
    if (archive_write_close(archive_.get()) < ARCHIVE_WARN) return ArchiveError("ending it");
    return std::move(output_.bytes);
  }

 private:
  // The names in `relative` (under dir_), sorted, .git left out.
  absl::StatusOr<std::vector<std::string>> Entries(const std::string& relative) {
    std::vector<std::string> names;
    std::error_code ec;
    const std::filesystem::path directory =
        relative.empty() ? std::filesystem::path(dir_) : std::filesystem::path(dir_) / relative;
    for (std::filesystem::directory_iterator it(directory, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name != ".git") names.push_back(std::move(name));
    }
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "build context: cannot list ", relative.empty() ? "." : relative, ": ", ec.message()));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status Add(const std::string& relative, bool* is_directory) {
    const std::string path = absl::StrCat(dir_, "/", relative);
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return FileError(relative, errno);
    std::unique_ptr<struct archive_entry, EntryFreer> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), relative.c_str());
    archive_entry_set_perm(entry.get(), st.st_mode & 07777);
    archive_entry_set_mtime(entry.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    int fd = -1;
    if (S_ISDIR(st.st_mode)) {
      *is_directory = true;
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(PATH_MAX, '\0');
      const ssize_t n = readlink(path.c_str(), target.data(), target.size());
      if (n < 0) return FileError(relative, errno);
      if (static_cast<size_t>(n) >= target.size()) {
        return absl::FailedPreconditionError(
            absl::StrCat("build context: ", relative, " changed while it was read"));
      }
      target.resize(static_cast<size_t>(n));
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      if (output_.bytes.size() + static_cast<size_t>(st.st_size) > output_.max_bytes) {
        return TooLarge();
      }
      fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return FileError(relative, errno);
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_size(entry.get(), st.st_size);
    } else {
      return absl::OkStatus();  // a socket, FIFO or device
    }
    const absl::Status status = WriteEntry(entry.get(), fd, relative, st.st_size);
    if (fd >= 0) close(fd);
    return status;
  }

  absl::Status WriteEntry(struct archive_entry* entry, int fd, const std::string& relative,
                          off_t size) {
    if (archive_write_header(archive_.get(), entry) < ARCHIVE_WARN) return ArchiveError(relative);
    // At most the size the header announced, should the file grow meanwhile
    // (libarchive pads a file that shrank).
    std::vector<char> buffer(64 << 10);
    off_t left = fd >= 0 ? size : 0;
    while (left > 0) {
      const ssize_t n =
          read(fd, buffer.data(), static_cast<size_t>(std::min<off_t>(left, buffer.size())));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return FileError(relative, errno);
      if (n == 0) break;
      if (archive_write_data(archive_.get(), buffer.data(), static_cast<size_t>(n)) < 0) {
        return ArchiveError(relative);
      }
      left -= n;
    }
    if (archive_write_finish_entry(archive_.get()) < ARCHIVE_WARN) return ArchiveError(relative);
    return absl::OkStatus();
  }

  absl::Status FileError(const std::string& relative, int error) const {
    return absl::FailedPreconditionError(
        absl::StrCat("build context: cannot read ", relative, ": ", std::strerror(error)));
  }

  absl::Status TooLarge() const {
    const size_t max = output_.max_bytes;
    return absl::ResourceExhaustedError(absl::StrCat(
        "build context ", dir_, " is larger than the limit of ",
        max % (1 << 20) == 0 ? absl::StrCat(max >> 20, " MiB") : absl::StrCat(max, " bytes")));
  }

  absl::Status ArchiveError(const std::string& what) {
    if (output_.too_large) return TooLarge();
    const char* message = archive_error_string(archive_.get());
    return absl::InternalError(absl::StrCat("build context: archiving ", what, ": ",
                                            message != nullptr ? message : "unknown error"));
  }

  const std::string dir_;
  Output output_;
  std::unique_ptr<struct archive, ArchiveCloser> archive_;
};

}  // namespace

absl::StatusOr<std::string> TarBuildContext(const std::string& dir, size_t max_bytes) {
  return ContextWriter(dir, max_bytes).Write();
}

}  // namespace orchestrator::containers
