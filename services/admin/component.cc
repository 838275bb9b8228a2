#include "services/admin/component.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/admin/api/admin_service.h"
#include "services/admin/peers/mesh_pipeline_peers.h"
#include "services/admin/store/pg_user_store.h"
#include "spdlog/spdlog.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, bootstrap_token_file, "",
          "on an install without users, the first admin token is written here (mode 0600)");

namespace orchestrator::admin {
namespace {

// Hands the first admin token to the operator: a file only they can read.
absl::Status WriteBootstrapToken(const std::string& path, const std::string& token) {
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "this install has no users yet: pass --bootstrap_token_file so the first admin token can "
        "be handed to you");
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::fchmod(fd, 0600) != 0) {
    if (fd >= 0) ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("--bootstrap_token_file: cannot write '", path, "'"));
  }
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) return absl::UnavailableError("--bootstrap_token_file: write failed");
  spdlog::info("bootstrap admin token written to {} (mode 0600)", path);
  return absl::OkStatus();
}

class AdminComponent final : public Component {
 public:
  explicit AdminComponent(ComponentContext& ctx)
      : directory_(std::make_shared<UserDirectory>(std::make_shared<PgUserStore>(ctx.pool))),
        steps_executor_(std::make_shared<BoundedExecutor>(2, 64)) {
    // The pipeline steps reach their components only when called: admin is
    // built first, and runs alone too (a step whose component is not part
    // of the mesh answers UNAVAILABLE naming it), so none is a peer it
    // needs to start.
    MeshPipelinePeers::Options peers;
    peers.channel_to = ctx.channel_to;
    peers.reaches = [&config = ctx.config](const std::string& component) {
      return config.Hosts(component) || config.remote_addrs.contains(component);
    };
    peers.mesh = ctx.mesh;
    peers.call_deadline = ctx.call_deadline;
    Serve(ctx.host,
          std::make_unique<AdminServiceImpl>(
              directory_, ctx.executor,
              std::make_shared<PipelineConsole>(
                  std::make_shared<MeshPipelinePeers>(std::move(peers))),
              steps_executor_),
          v1::AdminService::service_full_name());
  }

  // After the gRPC drain: what is queued runs, then its threads go.
  void Stop() override { steps_executor_->Shutdown(); }

  absl::Status Bootstrap(const std::string& token_file) {
    auto bootstrapped = directory_->Bootstrap(
        [&](const std::string& token) { return WriteBootstrapToken(token_file, token); });
    return bootstrapped.status();
  }

  TokenVerifierPtr LocalTokenVerifier() override { return directory_; }
  void OnCredentialsChanged(std::function<void()> forget) override {
    directory_->OnCredentialsChanged(std::move(forget));
  }

 private:
  std::shared_ptr<UserDirectory> directory_;
  BoundedExecutorPtr steps_executor_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.bootstrap_token_file = absl::GetFlag(FLAGS_bootstrap_token_file);
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "admin",
          .service = v1::AdminService::service_full_name(),
          .peers = {},
          .migrations = &db::AdminMigrations,
          .read_flags = &ReadFlags,
          .build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
            auto admin = std::make_unique<AdminComponent>(ctx);
            if (auto s = admin->Bootstrap(ctx.config.bootstrap_token_file); !s.ok()) return s;
            return admin;
          }};
}

}  // namespace orchestrator::admin
