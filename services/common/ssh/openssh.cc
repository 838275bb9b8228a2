#include "services/common/ssh/openssh.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace orchestrator::ssh {
namespace {

namespace fs = std::filesystem;

constexpr char kLoginDirPrefix[] = "orchestrator-ssh-";

std::string ScratchBase(const std::string& scratch_dir) {
  return scratch_dir.empty() ? fs::temp_directory_path().string() : scratch_dir;
}

}  // namespace

std::vector<std::string> OpenSshOptions(const std::string& login_dir,
                                        absl::Duration connect_timeout) {
  return {
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      absl::StrCat("ConnectTimeout=", std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout))),
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-o",
      absl::StrCat("UserKnownHostsFile=", login_dir, "/", kKnownHostsFile),
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "PasswordAuthentication=no",
      "-o",
      "KbdInteractiveAuthentication=no",
      "-o",
      "LogLevel=ERROR",
      "-i",
      absl::StrCat(login_dir, "/", kKeyFile)};
}

absl::StatusOr<std::unique_ptr<LoginDir>> LoginDir::Make(const std::string& scratch_dir,
                                                         const SshLogin* login) {
  const std::string base = ScratchBase(scratch_dir);
  // The pid names the process the key belongs to: a directory whose
  // process died (killed mid-call) is swept by the next one.
  std::string templ = absl::StrCat(base, "/", kLoginDirPrefix, ::getpid(), "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot make a directory under ", base));
  }
  auto dir = std::unique_ptr<LoginDir>(new LoginDir(templ));
  if (login != nullptr) {
    if (auto s = dir->Write(kKeyFile, login->private_key); !s.ok()) return s;
    if (auto s = dir->Write(kKnownHostsFile, login->known_hosts); !s.ok()) return s;
  }
  return dir;
}

LoginDir::~LoginDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string LoginDir::File(const std::string& name) const { return absl::StrCat(path_, "/", name); }

absl::Status LoginDir::Write(const std::string& name, const std::string& content) const {
  const std::string file = File(name);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", file));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", file));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

std::string LoginDir::Read(const std::string& name) const {
  std::ifstream in(File(name));
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void SweepAbandonedLoginDirs(const std::string& scratch_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ScratchBase(scratch_dir), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kLoginDirPrefix, 0) != 0) continue;
    const std::string rest = name.substr(sizeof(kLoginDirPrefix) - 1);
    const size_t dash = rest.find('-');
    int pid = 0;
    if (dash == std::string::npos || !absl::SimpleAtoi(rest.substr(0, dash), &pid) || pid <= 0) {
      continue;
    }
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to tell)
    std::error_code removed;
    fs::remove_all(entry.path(), removed);
  }
}

std::string SshErrorText(const ChildExit& exit) {
  std::string error(absl::StripAsciiWhitespace(exit.stderr_tail));
  if (exit.timed_out) return "ssh timed out";
  if (error.empty()) return absl::StrCat("ssh exited with ", exit.exit_code);
  return absl::StrReplaceAll(error, {{"\r", ""}});
}

}  // namespace orchestrator::ssh
