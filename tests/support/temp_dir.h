#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace orchestrator::testing {

// A fresh directory under the system's temporary directory, removed with
// everything in it when the object goes.
class TempDir final {
 public:
  TempDir() {
    std::string name =
        (std::filesystem::temp_directory_path() / "orchestrator-test-XXXXXX").string();
    if (mkdtemp(name.data()) != nullptr) path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `relative` under it.
  std::string Path(const std::string& relative) const { return absl::StrCat(path_, "/", relative); }

  // Writes `content` to `relative` (its directories made as needed); the path.
  std::string Write(const std::string& relative, const std::string& content) const {
    const std::string file = Path(relative);
    std::filesystem::create_directories(std::filesystem::path(file).parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    return file;
  }

 private:
  std::string path_;
};

// The whole content of `file` ("" when it cannot be read).
inline std::string ReadFile(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace orchestrator::testing
