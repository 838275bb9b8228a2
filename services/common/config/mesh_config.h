#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace orchestrator {

// Everything orchestratord is configured with. Filled from flags in main()
// only, validated once, then handed down; nothing below main reads flags.
struct MeshConfig {
  std::string listen = "127.0.0.1:50051";
  std::vector<std::string> services;                // component names hosted here
  std::map<std::string, std::string> remote_addrs;  // component → host:port
  std::string database_url;                         // libpq conninfo; "" = PG* environment
  std::string secrets_key_file;
  std::string bootstrap_token_file;
  // The mesh's shared secret (see MeshCredential); "" = a random one, which
  // only a process hosting every component may use.
  std::string mesh_credential_file;
  std::chrono::milliseconds drain_deadline{10000};
  std::chrono::milliseconds call_deadline{10000};
  std::chrono::milliseconds token_cache_ttl{5000};
  // Calls per second and burst, per token and per user ({0, 0} = unlimited).
  std::pair<double, double> rate_limit_per_token{50, 100};
  std::pair<double, double> rate_limit_per_user{100, 200};
  int executor_threads = 8;
  int executor_queue = 4096;
  int db_pool_size = 8;
  // Job engine (when jobs is hosted).
  bool demo_jobs = false;
  int job_concurrency = 8;
  std::chrono::milliseconds job_lease{30000};
  // kind → RUNNING jobs allowed per owner (--job_owner_limits=deploy=3,...).
  std::map<std::string, int> job_owner_limits{{"deploy", 3}};
  // Agent spawner (when agents is hosted).
  std::string agents_dir;                    // workspaces and worker logs; "" = a temp dir
  std::string agent_runtime = "sandboxed";   // or "unsandboxed" (no bubblewrap), "kubernetes"
  std::string agent_bin_dir;                 // orchestrator-runner's directory; "" = ours
  std::vector<std::string> agent_tool_dirs;  // agent CLI installs (node_modules), read-only inside
  std::chrono::milliseconds agent_connect_timeout{30000};
  // host:port every networked worker may reach through the egress proxy,
  // at any address (e.g. an internal git server); the model APIs come from
  // session_agent_env's ANTHROPIC_BASE_URL / OPENAI_BASE_URL.
  std::vector<std::string> agent_egress_allow;
  // Workers as Pods (agent_runtime "kubernetes"): the product image, the
  // address Pods reach the mesh on, the mesh Pods' labels (for the workers'
  // NetworkPolicy), each workspace's claim.
  std::string kubernetes_worker_image;
  std::string kubernetes_mesh_address;
  std::string kubernetes_workers_listen = "0.0.0.0:50070";
  std::map<std::string, std::string> kubernetes_mesh_labels;
  std::string kubernetes_workspace_size = "1Gi";
  std::string kubernetes_storage_class;
  // Kubernetes' API: a kubeconfig file (JSON); "" = in-cluster (the Pod's
  // service account).
  std::string kubeconfig;
  // Session manager (when sessions is hosted; needs agents here too).
  std::string session_agent = "scripted";  // scripted, claude-code, codex or factory-droid
  std::map<std::string, std::string> session_agent_env;  // e.g. ANTHROPIC_BASE_URL
  std::chrono::milliseconds session_idle_pause{5 * 60 * 1000};
  std::chrono::milliseconds session_end_after{24 * 60 * 60 * 1000};

  // Scaffolder (when scaffolder is hosted).
  std::string templates_dir;   // the built-in templates; "" = the ones next to the binary
  std::string scaffolder_dir;  // local repositories, scratch trees, fetched templates; "" = temp
  std::string git_host = "local";  // where repositories are made: "local" or "github"
  // The local git host's smart HTTP listener, and the base of its
  // repositories' URLs ("" = http://<listener>).
  std::string git_http_listen = "127.0.0.1:0";
  std::string git_public_url;
  std::string github_api_url = "https://api.github.com";
  std::string github_owner;  // an organisation; "" = the token's own account
  std::string github_token_file;

  // Infra (when infra is hosted): the ports the machine the mesh runs on
  // (server "local") allocates, and the domain routes' host names are under
  // (<project>.<deploy_domain>).
  int local_port_first = 30000;
  int local_port_last = 32767;
  std::string deploy_domain = "localhost";

  // Deploy (when deploy is hosted): the container engine (Docker Engine
  // API), the router (Caddy's admin API) and the HTTP listener it serves
  // projects on, the local base images' table, scratch checkouts.
  std::string container_engine_url = "unix:///run/podman/podman.sock";
  std::string caddy_admin_url = "http://127.0.0.1:2019";
  std::string router_listen = "127.0.0.1:8090";
  std::string template_bases_file;  // "" = the one installed with the binary
  std::string deploy_dir;           // "" = temp
  // After a switch, a release is probed at each run of the scheduler's
  // deploy.releases.watch for deploy_watch_window; deploy_watch_failures
  // failed probes in a row roll it back (0 = never).
  std::chrono::milliseconds deploy_watch_window{60 * 1000};
  int deploy_watch_failures = 3;

  // Engineering (when engineering is hosted): the agent a run uses unless
  // it names one, its attempts, how long a turn and the tests may take, and
  // the token budget per user (0 = none) over a sliding window.
  std::string engineering_dir;  // bundles on their way to the remote; "" = temp
  std::string engineering_agent = "scripted";
  int engineering_max_iterations = 3;
  std::chrono::milliseconds engineering_task_timeout{30 * 60 * 1000};
  std::chrono::milliseconds engineering_test_timeout{10 * 60 * 1000};
  int64_t engineering_token_budget = 0;
  std::chrono::milliseconds engineering_budget_window{30LL * 24 * 60 * 60 * 1000};
  // The scheduler: its replicas share a leader lease that lapses after
  // scheduler_lease_ttl without renewal (the leader renews it every third).
  std::chrono::milliseconds scheduler_lease_ttl{15 * 1000};
  // How long finished jobs and their events are kept (the jobs.prune task).
  std::chrono::milliseconds job_retention{7LL * 24 * 60 * 60 * 1000};

  bool Hosts(absl::string_view component) const;

  // INVALID_ARGUMENT naming the flag at fault; `known` is every component
  // of the mesh.
  absl::Status Validate(const std::vector<std::string>& known) const;
};

// A flag's Duration as the config keeps it.
inline std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// Parses --services: "all" or a comma-separated list of the `known`
// components' names.
absl::Status ParseServices(absl::string_view spec, const std::vector<std::string>& known,
                           std::vector<std::string>* out);

// Parses a rate limit: "RATE/BURST" calls (e.g. "50/100"), or "0" for none.
absl::Status ParseRateLimit(absl::string_view flag, absl::string_view spec,
                            std::pair<double, double>* out);

// Parses --job_owner_limits: "kind=N,kind=N" ("" = none).
absl::Status ParseJobOwnerLimits(absl::string_view spec, std::map<std::string, int>* out);

}  // namespace orchestrator
