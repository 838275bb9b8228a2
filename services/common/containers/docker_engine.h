#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/containers/container_engine.h"
#include "services/common/http/http_client.h"

namespace orchestrator::containers {

struct DockerEngineConfig {
  // unix:///PATH.sock (Podman: `podman system service --time=0
  // unix:///PATH.sock`), tcp://host:port or http://host:port.
  std::string url = "unix:///run/podman/podman.sock";
  // Each call's deadline, but for those below.
  absl::Duration timeout = absl::Seconds(30);
  // A whole image build, the context's upload included.
  absl::Duration build_timeout = absl::Minutes(30);
  // Logs without follow (with follow there is none).
  absl::Duration logs_timeout = absl::Minutes(2);
  // A whole image save or load (an image is hundreds of MiB, maybe over an
  // SSH tunnel).
  absl::Duration image_transfer_timeout = absl::Minutes(30);
  // Larger build contexts are refused (RESOURCE_EXHAUSTED).
  size_t max_context_bytes = 256 << 20;
  // Longer log lines come in pieces.
  size_t max_log_line_bytes = 16 << 10;
};

// The Docker Engine API v1.41 over HTTP, as Docker and Podman (4.x, its
// Docker-compatible service) serve it; what differs between the two is
// handled here (Podman 4.3 answers a taken container name with 500, and
// a stopped container's stats with an empty body). Image removals wait for
// the builds and loads in flight: Podman 4.3 fails a build whose layer-cache
// lookup meets an image being removed ("layer not known"). Other processes
// that remove images from the same storage can still cause that.
class DockerEngine final : public ContainerEngine {
 public:
  // INVALID_ARGUMENT for a malformed url or a bound that is not positive.
  static absl::StatusOr<std::unique_ptr<DockerEngine>> FromConfig(DockerEngineConfig config);

  absl::Status Ping() override;
  absl::StatusOr<std::string> BuildImage(
      const BuildSpec& spec, const std::function<void(const std::string& line)>& on_output,
      const std::atomic<bool>* cancel) override;
  absl::StatusOr<ImageInfo> InspectImage(const std::string& image) override;
  absl::Status RemoveImage(const std::string& image, bool force) override;
  absl::StatusOr<std::vector<ImageInfo>> ListImages(const std::vector<LabelMatch>& labels) override;
  absl::Status SaveImage(const std::string& image, const std::string& path,
                         const std::atomic<bool>* cancel) override;
  absl::StatusOr<std::vector<std::string>> LoadImages(const std::string& path,
                                                      const std::atomic<bool>* cancel) override;
  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) override;
  absl::Status StartContainer(const std::string& container) override;
  absl::Status StopContainer(const std::string& container, absl::Duration grace) override;
  absl::Status RemoveContainer(const std::string& container, bool force) override;
  absl::StatusOr<ContainerInfo> InspectContainer(const std::string& container) override;
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      const std::vector<LabelMatch>& labels, bool include_stopped) override;
  absl::Status Logs(const std::string& container, const LogOptions& options,
                    const std::function<bool(const LogLine& line)>& on_line,
                    const std::atomic<bool>* cancel) override;
  absl::StatusOr<MemoryStats> MemoryUsage(const std::string& container) override;

 private:
  DockerEngine(DockerEngineConfig config, http::BaseUrl base);

  // One call (`what` names it in errors, e.g. "inspect container web-1"):
  // the engine's answer, whatever its status; a failed exchange as the
  // engine's status.
  absl::StatusOr<http::Response> Call(const std::string& method, const std::string& target,
                                      const std::string& what, absl::Duration timeout,
                                      const nlohmann::json* body = nullptr) const;
  // A listing's JSON array (GET `target`).
  absl::StatusOr<nlohmann::json> List(const std::string& target, const std::string& what) const;
  // The container's JSON (GET /containers/{id}/json).
  absl::StatusOr<nlohmann::json> InspectJson(const std::string& container,
                                             const std::string& what) const;

  const DockerEngineConfig config_;
  const http::HttpClient client_;
  // Held shared by each build and load, exclusively by each image removal.
  absl::Mutex images_mu_;
};

}  // namespace orchestrator::containers
