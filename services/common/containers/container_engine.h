#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace orchestrator::containers {

// The labels an image or a container carries.
using Labels = std::map<std::string, std::string>;

// One condition of a listing: the label `key` is there, with `value` when
// one is given.
struct LabelMatch {
  std::string key;
  std::optional<std::string> value;
};

struct BuildSpec {
  // The directory sent as the build context (any `.git` in it left out).
  std::string context_dir;
  // The Containerfile, relative to context_dir.
  std::string dockerfile = "Containerfile";
  // What the image is tagged, e.g. "localhost/shop:3f2a1c9".
  std::string tag;
  // Values of the Containerfile's ARGs.
  std::map<std::string, std::string> build_args;
  Labels labels;
};

struct ImageInfo {
  std::string id;                 // "sha256:<hex>"
  std::vector<std::string> tags;  // "repository:tag"
  Labels labels;
  absl::Time created = absl::InfinitePast();
  int64_t size_bytes = 0;
};

enum class RestartPolicy { kNo, kAlways, kUnlessStopped, kOnFailure };

struct ContainerSpec {
  std::string name;
  // A reference or an image id.
  std::string image;
  // "KEY=VALUE" each.
  std::vector<std::string> env;
  Labels labels;
  // The container's TCP port published on 127.0.0.1:host_port; 0 publishes
  // none.
  int container_port = 0;
  // 0: the engine picks a free port (InspectContainer tells which).
  int host_port = 0;
  RestartPolicy restart_policy = RestartPolicy::kNo;
  // For kOnFailure: restarts before the engine gives up; 0 for no limit.
  int max_restarts = 0;
  // A hard limit; 0 for none.
  int64_t memory_limit_bytes = 0;
};

struct ContainerInfo {
  std::string id;
  std::string name;      // without Docker's leading '/'
  std::string image;     // the reference it was created from
  std::string image_id;  // "sha256:<hex>"
  bool running = false;
  // The engine's word: "created", "running", "paused", "restarting",
  // "exited", ...
  std::string status;
  int exit_code = 0;
  // The kernel killed it for using more memory than it may (its last exit).
  bool oom_killed = false;
  // How often its restart policy started it again.
  int restart_count = 0;
  std::optional<absl::Time> started_at;   // none while never started
  std::optional<absl::Time> finished_at;  // its last exit; none while it never exited
  Labels labels;
  // Where the published port is on 127.0.0.1; 0 for none.
  int host_port = 0;
};

// A container as a listing shows it.
struct ContainerSummary {
  std::string id;
  std::string name;
  std::string image;
  std::string status;  // as ContainerInfo::status
  Labels labels;
  int host_port = 0;
};

struct LogOptions {
  // The last lines only; -1 for all.
  int tail_lines = -1;
  // The lines written from then on (to the second); InfinitePast for all.
  absl::Time since = absl::InfinitePast();
  // Goes on with new lines until the container stops or the caller cancels.
  bool follow = false;
  // With follow: ends (OK) after this long, whatever the container does.
  absl::Duration follow_for = absl::InfiniteDuration();
  // Asks the engine for each line's time (LogLine::time; Podman 4.3 gives
  // whole seconds).
  bool timestamps = false;
  // When set: called each time the lines received so far have all been
  // handed to on_line, before the call waits for more (e.g. to send what
  // was gathered while a follow is idle).
  std::function<void()> on_pause = nullptr;
};

struct LogLine {
  enum class Source { kStdout, kStderr };
  Source source = Source::kStdout;
  // Without its line end. A line longer than the engine's bound comes in
  // pieces of that size.
  std::string text;
  // With LogOptions::timestamps.
  std::optional<absl::Time> time;
};

struct MemoryStats {
  // Without the page cache when the engine reports it.
  int64_t usage_bytes = 0;
  // The container's limit, or the host's memory when it has none.
  int64_t limit_bytes = 0;
};

// The container engine (Docker, or Podman's Docker-compatible API) the
// mesh builds images and runs containers with. Errors name what was asked:
// UNAVAILABLE when the engine cannot be reached (naming where it was
// looked for), NOT_FOUND for an absent image or container (callers that
// remove something may take it as done), ALREADY_EXISTS for a container
// name in use, FAILED_PRECONDITION for what the engine refuses in the
// current state (an image in use, a failed build), INVALID_ARGUMENT naming
// the field for input it cannot take. Implementations are safe to use from
// many threads.
class ContainerEngine {
 public:
  virtual ~ContainerEngine() = default;

  // OK when the engine answers.
  virtual absl::Status Ping() = 0;

  // Builds `spec.tag` from the context, handing each line of the build's
  // output to `on_output` as it comes; the image id. A failed build is
  // FAILED_PRECONDITION carrying the engine's error and the output's last
  // lines; a context over the bound is RESOURCE_EXHAUSTED. Once `cancel`
  // (may be null) turns true the call ends with CANCELLED.
  virtual absl::StatusOr<std::string> BuildImage(
      const BuildSpec& spec, const std::function<void(const std::string& line)>& on_output,
      const std::atomic<bool>* cancel) = 0;
  virtual absl::StatusOr<ImageInfo> InspectImage(const std::string& image) = 0;
  // FAILED_PRECONDITION while a container uses it, unless `force`.
  virtual absl::Status RemoveImage(const std::string& image, bool force) = 0;
  // The images carrying every label in `labels`, newest first.
  virtual absl::StatusOr<std::vector<ImageInfo>> ListImages(
      const std::vector<LabelMatch>& labels) = 0;
  // Writes `image` with its tags as a tar archive (`docker save`) to the
  // file at `path`, created (0600) or truncated, as it arrives: images are
  // hundreds of MiB, never held in memory. On an error the file may hold
  // part of the archive. CANCELLED once `cancel` (may be null) turns true.
  virtual absl::Status SaveImage(const std::string& image, const std::string& path,
                                 const std::atomic<bool>* cancel) = 0;
  // Loads the images of the tar archive at `path` (as SaveImage writes
  // it; `docker load`), sent as it is read; what the engine says it loaded
  // ("repository:tag", or an image id for an untagged one). CANCELLED once
  // `cancel` (may be null) turns true.
  virtual absl::StatusOr<std::vector<std::string>> LoadImages(const std::string& path,
                                                              const std::atomic<bool>* cancel) = 0;

  // Creates (does not start) a container; its id.
  virtual absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) = 0;
  // `container` is an id or a name. Starting a running container, or
  // stopping a stopped one, is OK.
  virtual absl::Status StartContainer(const std::string& container) = 0;
  // SIGTERM, then SIGKILL after `grace`.
  virtual absl::Status StopContainer(const std::string& container, absl::Duration grace) = 0;
  // `force` stops a running one first.
  virtual absl::Status RemoveContainer(const std::string& container, bool force) = 0;
  virtual absl::StatusOr<ContainerInfo> InspectContainer(const std::string& container) = 0;
  // The containers carrying every label in `labels`; only running ones
  // unless `include_stopped`.
  virtual absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      const std::vector<LabelMatch>& labels, bool include_stopped) = 0;

  // The container's output (stdout and stderr), line by line to `on_line`
  // (returning false ends the call: OK). With `options.follow` it ends when
  // the container stops or `options.follow_for` has passed, or with
  // CANCELLED once `cancel` (may be null) turns true.
  virtual absl::Status Logs(const std::string& container, const LogOptions& options,
                            const std::function<bool(const LogLine& line)>& on_line,
                            const std::atomic<bool>* cancel) = 0;

  // FAILED_PRECONDITION when the container is not running.
  virtual absl::StatusOr<MemoryStats> MemoryUsage(const std::string& container) = 0;
};

using ContainerEnginePtr = std::shared_ptr<ContainerEngine>;

}  // namespace orchestrator::containers
