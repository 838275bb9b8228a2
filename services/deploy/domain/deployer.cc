#include "services/deploy/domain/deployer.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/common/containers/image_copy.h"
#include "services/common/containers/log_tail.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::deploy {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

// A project id as a name part of containers, images and routes.
std::string NamePart(const std::string& project_id) {
  return absl::AsciiStrToLower(absl::StrReplaceAll(project_id, {{"_", "-"}}));
}

absl::Duration Or(const google::protobuf::Duration& d, absl::Duration fallback, absl::Duration lo,
                  absl::Duration hi) {
  if (d.seconds() == 0 && d.nanos() == 0) return fallback;
  const absl::Duration v = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  return std::clamp(v, lo, hi);
}

// The default of the build file's `ARG BASE_IMAGE=...`, "" when none.
std::string BaseImageDefault(const std::string& build_file) {
  std::ifstream in(build_file);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (!absl::StartsWithIgnoreCase(l, "ARG ")) continue;
    l = absl::StripAsciiWhitespace(l.substr(4));
    if (!absl::ConsumePrefix(&l, "BASE_IMAGE=")) continue;
    return std::string(
        absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripPrefix(l, "\""), "\"")));
  }
  return "";
}

google::protobuf::Struct ResultOf(const v1::Release& release) {
  google::protobuf::Struct result;
  auto& f = *result.mutable_fields();
  f["release_id"].set_string_value(release.id());
  f["url"].set_string_value(release.url());
  f["version"].set_number_value(static_cast<double>(release.version()));
  f["commit_sha"].set_string_value(release.commit_sha());
  if (!release.rollback_of_release_id().empty()) {
    f["rollback_of_release_id"].set_string_value(release.rollback_of_release_id());
  }
  return result;
}

// OK when no container but `name` (about to be made) publishes `port`: one
// of another installation, or left by anything else, would take the port's
// traffic or silently leave the new container unreachable there, and the
// health gate would blame the project's code for it.
absl::Status PortIsOurs(const ServerTarget& at, int port, const std::string& name) {
  auto running = at.engine->ListContainers({}, false);
  if (!running.ok()) return running.status();
  for (const auto& c : *running) {
    if (c.host_port != port || c.name == name) continue;
    const auto installation = c.labels.find(kInstallationLabel);
    return absl::FailedPreconditionError(absl::StrCat(
        "host port ", port, " is published by container ", c.name,
        installation == c.labels.end() ? ", which no orchestrator made"
                                       : absl::StrCat(", of installation ", installation->second),
        ": remove it there (podman rm -f ", c.name, ") or release this project's ports ",
        "so it gets others, then deploy again"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string RouteIdOf(const std::string& project_id) {
  return absl::StrCat("orchestrator-", NamePart(project_id));
}

router::Route RouteOf(const v1::Release& release, const std::string& hostname) {
  return {RouteIdOf(release.project_id()), {hostname}, absl::StrCat("127.0.0.1:", release.port())};
}

absl::StatusOr<v1::Release> PreviousRelease(ReleaseStore& releases, const std::string& project_id) {
  PageRequest page;
  page.page_size = 50;
  auto superseded = releases.List(project_id, v1::RELEASE_STATUS_SUPERSEDED, page);
  if (!superseded.ok()) return superseded.status();
  if (superseded->items.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "project ", project_id, " has no earlier release to roll back to (none was superseded)"));
  }
  // The one most recently live: superseded last.
  const auto latest = std::max_element(
      superseded->items.begin(), superseded->items.end(), [](const auto& a, const auto& b) {
        return TimeUtil::TimestampToMicroseconds(a.superseded_time()) <
               TimeUtil::TimestampToMicroseconds(b.superseded_time());
      });
  return *latest;
}

absl::StatusOr<v1::Release> Deployer::BeginRelease(const DeployJob& job,
                                                   const std::string& commit_sha,
                                                   const std::string& rollback_of) {
  v1::Release wanted;
  wanted.set_project_id(job.project_id);
  wanted.set_owner_id(job.owner_id);
  wanted.set_commit_sha(commit_sha);
  wanted.set_job_id(job.id);
  wanted.set_rollback_of_release_id(rollback_of);
  auto release = releases_->EnsureForJob(wanted);
  if (!release.ok()) return release.status();
  if (release->status() == v1::RELEASE_STATUS_LIVE) return release;
  if (release->status() != v1::RELEASE_STATUS_DEPLOYING) {
    return absl::FailedPreconditionError(absl::StrCat("release ", release->version(), " ",
                                                      v1::ReleaseStatus_Name(release->status()),
                                                      ": ", release->failure_reason()));
  }
  if (auto s = releases_->FailAbandoned(job.project_id, release->id(),
                                        "its deploy ended before it went live");
      !s.ok()) {
    return s;
  }
  return release;
}

absl::StatusOr<google::protobuf::Struct> Deployer::Deploy(const DeployJob& job,
                                                          const JobHooks& hooks) {
  auto project = projects_->Get(job.owner_id, job.project_id);
  if (!project.ok()) return project.status();
  auto release = BeginRelease(job, job.commit_sha, "");
  if (!release.ok()) return release.status();
  if (release->status() == v1::RELEASE_STATUS_LIVE) return Resume(job, *release, hooks);
  // The server first: the image is built there.
  auto placed = Place(job, job.server_id);
  absl::StatusOr<std::string> image = absl::UnknownError("not built");
  if (!placed.ok()) {
    image = placed.status();
  } else {
    hooks.progress(
        5, absl::StrCat("release ", release->version(), " of ", job.project_id, " at ",
                        job.commit_sha.substr(0, 12), " on server ", placed->at.server_name));
    image = EnsureImage(job, placed->at, *project, hooks);
  }
  if (!image.ok()) {
    if (!jobs::IsTransient(image.status().code()) &&
        image.status().code() != absl::StatusCode::kCancelled) {
      (void)releases_->MarkFailed(release->id(), std::string(image.status().message()));
    }
    return image.status();
  }
  return Launch(job, placed->at, placed->slots, *project, *release, *image, hooks);
}

absl::StatusOr<Deployer::Placement> Deployer::Place(const DeployJob& job,
                                                    const std::string& server_id) {
  auto slots = allocations_->Slots(job.owner_id, job.project_id, server_id);
  if (!slots.ok()) return slots.status();
  auto at = servers_->For(job.owner_id, slots->live.server_id());
  if (!at.ok()) return at.status();
  return Placement{*std::move(slots), *std::move(at)};
}

absl::StatusOr<google::protobuf::Struct> Deployer::Rollback(const DeployJob& job,
                                                            const JobHooks& hooks) {
  auto project = projects_->Get(job.owner_id, job.project_id);
  if (!project.ok()) return project.status();
  auto target = releases_->Get(job.target_release_id);
  if (!target.ok()) return target.status();
  if (target->project_id() != job.project_id || target->image().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("release ", job.target_release_id,
                                                      " of project ", job.project_id,
                                                      " has no image to roll back to"));
  }
  if (!job.only_while_live.empty()) {
    auto live = releases_->Live(job.project_id);
    if (!live.ok()) return live.status();
    // Unless this job's own release went LIVE before a crash.
    if (!*live || ((*live)->id() != job.only_while_live && (*live)->job_id() != job.id)) {
      const std::string why =
          absl::StrCat("release ", job.only_while_live, " is no longer live: nothing to roll back");
      hooks.progress(100, why);
      google::protobuf::Struct result;
      (*result.mutable_fields())["skipped"].set_string_value(why);
      return result;
    }
  }
  auto release = BeginRelease(job, target->commit_sha(), target->id());
  if (!release.ok()) return release.status();
  if (release->status() == v1::RELEASE_STATUS_LIVE) return Resume(job, *release, hooks);
  hooks.progress(5, absl::StrCat("release ", release->version(), " rolls back to release ",
                                 target->version(), " (", target->commit_sha().substr(0, 12), ")"));
  // Where the project's ports are now, which kept the image if the target
  // ran there.
  auto placed = Place(job, "");
  if (!placed.ok()) return placed.status();
  const ServerTarget& at = placed->at;
  const bool moved = !target->server_id().empty() && target->server_id() != at.server_id;
  auto kept = moved ? absl::StatusOr<containers::ImageInfo>(absl::NotFoundError(""))
                    : at.engine->InspectImage(target->image());
  if (!kept.ok()) {
    if (kept.status().code() != absl::StatusCode::kNotFound) return kept.status();
    const std::string why =
        absl::StrCat("the image of release ", target->version(), " (", target->image(),
                     ") is no longer kept", moved ? " on the project's server" : "",
                     ": deploy commit ", target->commit_sha(), " instead");
    (void)releases_->MarkFailed(release->id(), why);
    return absl::FailedPreconditionError(why);
  }
  hooks.progress(30, absl::StrCat("image ", target->image(), " kept: no build"));
  return Launch(job, at, placed->slots, *project, *release, target->image(), hooks);
}

absl::StatusOr<std::string> Deployer::EnsureImage(const DeployJob& job, const ServerTarget& at,
                                                  const projects::v1::Project& project,
                                                  const JobHooks& hooks) {
  const std::string tag = absl::StrCat("localhost/orchestrator-", NamePart(job.project_id), ":",
                                       job.commit_sha.substr(0, 12));
  if (auto built = at.engine->InspectImage(tag); built.ok()) {
    hooks.progress(30, absl::StrCat("image ", tag, " already built"));
    return tag;
  } else if (built.status().code() != absl::StatusCode::kNotFound) {
    return built.status();
  }
  const fs::path checkout = fs::path(options_.work_dir) / job.id;
  std::error_code ec;
  fs::remove_all(checkout, ec);
  struct RemoveTree {
    fs::path path;
    ~RemoveTree() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{checkout};
  if (auto s = source_->Checkout(project.repository_url(), job.commit_sha, checkout.string());
      !s.ok()) {
    return s;
  }
  hooks.progress(15, absl::StrCat("fetched ", job.commit_sha.substr(0, 12)));
  containers::BuildSpec spec;
  spec.context_dir = checkout.string();
  spec.dockerfile = project.run_contract().build_file();
  spec.tag = tag;
  spec.labels = {{kProjectLabel, job.project_id},
                 {kInstallationLabel, options_.installation},
                 {"orchestrator.commit", job.commit_sha}};
  const std::string base = BaseImageDefault((checkout / spec.dockerfile).string());
  if (auto local = options_.base_images.find(base); local != options_.base_images.end()) {
    spec.build_args["BASE_IMAGE"] = local->second;
    hooks.log(absl::StrCat("build: on ", local->second, ", the local image of ", base));
    if (at.remote) {
      // Built from Debian's archive here; the server has no registry to
      // pull it from either.
      std::atomic<bool> stop{false};
      std::atomic<bool> copying{true};
      std::thread watch([&] {
        while (copying && !stop) {
          if (hooks.cancelled()) stop = true;
          absl::SleepFor(absl::Milliseconds(200));
        }
      });
      absl::Status copied = containers::CopyImage(*servers_->Local().engine, *at.engine,
                                                  local->second, options_.work_dir, &stop);
      copying = false;
      watch.join();
      if (!copied.ok()) return copied;
      hooks.log(absl::StrCat("build: ", local->second, " is on server ", at.server_name));
    }
  } else if (!base.empty()) {
    hooks.log(absl::StrCat("build: on ", base, " (no local image stands in for it)"));
  }
  std::atomic<bool> cancel{false};
  auto id = at.engine->BuildImage(
      spec,
      [&](const std::string& line) {
        hooks.log(absl::StrCat("build: ", line));
        if (hooks.cancelled()) cancel = true;
      },
      &cancel);
  if (!id.ok()) return id.status();
  hooks.progress(30, absl::StrCat("built ", tag));
  return tag;
}

absl::StatusOr<google::protobuf::Struct> Deployer::Launch(
    const DeployJob& job, const ServerTarget& at, const PortSlots& slots,
    const projects::v1::Project& project, const v1::Release& release, const std::string& image,
    const JobHooks& hooks) {
  auto launched = LaunchSteps(job, at, slots, project, release, image, hooks);
  // A failure the job will not retry ends the release: its container goes,
  // the live release stays.
  if (!launched.ok() && !jobs::IsTransient(launched.status().code()) &&
      launched.status().code() != absl::StatusCode::kCancelled) {
    auto now = releases_->Get(release.id());
    if (now.ok() && now->status() == v1::RELEASE_STATUS_DEPLOYING) {
      if (!now->container_name().empty())
        (void)at.engine->RemoveContainer(now->container_name(), true);
      const std::string why(launched.status().message());
      (void)releases_->MarkFailed(release.id(), why);
      // A deploy's only: a rollback to a release that fails now is no code
      // to fix (its environment changed).
      if (options_.on_failed_gate && job.target_release_id.empty() &&
          absl::StartsWith(why, kHealthGateFailed)) {
        now->set_status(v1::RELEASE_STATUS_FAILED);
        now->set_failure_reason(why);
        const std::string told = options_.on_failed_gate(
            {.release = *now, .why = why, .came_of_fix = !job.after_fix.empty()});
        if (!told.empty()) {
          // On the error's first line, where people (and agents) read it,
          // before the log lines it quotes.
          size_t at = why.find(kLastLinesMark);
          if (at == std::string::npos) at = std::min(why.find('\n'), why.size());
          return absl::Status(launched.status().code(),
                              absl::StrCat(why.substr(0, at), ". ", told, why.substr(at)));
        }
      }
    }
  }
  return launched;
}

absl::StatusOr<google::protobuf::Struct> Deployer::LaunchSteps(
    const DeployJob& job, const ServerTarget& at, const PortSlots& slots,
    const projects::v1::Project& project, v1::Release release, const std::string& image,
    const JobHooks& hooks) {
  const auto& contract = project.run_contract();
  auto live = releases_->Live(job.project_id);
  if (!live.ok()) return live.status();
  // Next to the live release: on the slot it does not use.
  int port = release.port();
  if (port == 0) {
    port = *live && (*live)->port() == slots.live.port() ? slots.next.port() : slots.live.port();
  }
  const std::string name = absl::StrCat("orch-", NamePart(job.project_id), "-r", release.version());
  release.set_image(image);
  release.set_container_name(name);
  release.set_port(port);
  release.set_server_id(slots.live.server_id());
  release.set_health_path(contract.health_path());
  if (auto s = releases_->SetRuntime(release); !s.ok()) return s;

  // The container: the one a previous attempt started when it still runs
  // this image, else a fresh one.
  bool reuse = false;
  if (auto running = at.engine->InspectContainer(name); running.ok()) {
    reuse = running->running && running->host_port == port &&
            running->labels.count(kReleaseLabel) &&
            running->labels.at(kReleaseLabel) == release.id();
    if (!reuse) {
      if (auto s = at.engine->RemoveContainer(name, true);
          !s.ok() && s.code() != absl::StatusCode::kNotFound) {
        return s;
      }
    }
  } else if (running.status().code() != absl::StatusCode::kNotFound) {
    return running.status();
  }
  if (!reuse) {
    // What a deploy that ended before going live left on this port.
    auto others = at.engine->ListContainers(
        {{kProjectLabel, job.project_id}, {kInstallationLabel, options_.installation}}, true);
    if (!others.ok()) return others.status();
    for (const auto& c : *others) {
      const bool live_one = *live && c.name == (*live)->container_name();
      if (!live_one && c.name != name && c.host_port == port) {
        (void)at.engine->RemoveContainer(c.id, true);
        hooks.log(absl::StrCat("removed ", c.name, ", left on port ", port));
      }
    }
    if (auto s = PortIsOurs(at, port, name); !s.ok()) return s;
    containers::ContainerSpec spec;
    spec.name = name;
    spec.image = image;
    spec.labels = {{kProjectLabel, job.project_id},
                   {kReleaseLabel, release.id()},
                   {kOwnerLabel, job.owner_id},
                   {kInstallationLabel, options_.installation}};
    spec.container_port = contract.port();
    spec.host_port = port;
    spec.restart_policy = containers::RestartPolicy::kUnlessStopped;
    std::vector<std::string> names(contract.required_secrets().begin(),
                                   contract.required_secrets().end());
    if (!names.empty()) {
      auto secrets = projects_->RevealSecrets(job.owner_id, job.project_id, names);
      if (!secrets.ok()) return secrets.status();
      for (const auto& [key, value] : *secrets) spec.env.push_back(absl::StrCat(key, "=", value));
    }
    spec.env.push_back(absl::StrCat("PORT=", contract.port()));
    if (auto id = at.engine->CreateContainer(spec); !id.ok()) return id.status();
    if (auto s = at.engine->StartContainer(name); !s.ok()) return s;
  }
  hooks.progress(45, absl::StrCat(reuse ? "container " : "started ", name, " on 127.0.0.1:", port));

  if (auto s = HealthGate(at, contract, port, name, hooks); !s.ok()) return s;
  hooks.progress(65, absl::StrCat(contract.health_path(), " answers 200"));

  return Switch(job, at, std::move(release), slots.live.hostname(), hooks);
}

absl::StatusOr<google::protobuf::Struct> Deployer::Resume(const DeployJob& job, v1::Release release,
                                                          const JobHooks& hooks) {
  // Where it runs, at the URL it went live with (its ports may have moved
  // since the crash).
  auto at = servers_->For(job.owner_id, release.server_id());
  if (!at.ok()) return at.status();
  const std::string hostname = router::HostOfUrl(release.url());
  return Switch(job, *at, std::move(release), hostname, hooks);
}

absl::StatusOr<google::protobuf::Struct> Deployer::Switch(const DeployJob& job,
                                                          const ServerTarget& at,
                                                          v1::Release release,
                                                          const std::string& hostname,
                                                          const JobHooks& hooks) {
  // LIVE first, then the route: whoever reconciles routes from the LIVE
  // releases meanwhile (under the same lock) agrees with this switch, and a
  // job run again after a crash in between switches the route again.
  // Caddy sends new requests to the new container; those in flight finish
  // on the old one.
  const std::string url = absl::StrCat(options_.url_scheme, hostname, at.url_port_suffix);
  std::optional<v1::Release> moved_from;  // the release it replaced, on another server
  {
    absl::MutexLock lock(route_mu_.get());
    // An attempt whose lease lapsed must not undo the one that took over.
    if (hooks.cancelled()) return absl::CancelledError("the deploy was stopped before its switch");
    if (release.status() != v1::RELEASE_STATUS_LIVE) {
      auto superseded = releases_->MakeLive(release.id(), url, absl::Now());
      if (!superseded.ok()) return superseded.status();
      if (*superseded && !(*superseded)->server_id().empty() &&
          (*superseded)->server_id() != release.server_id()) {
        moved_from = **superseded;
      }
      release.set_url(url);
      release.set_status(v1::RELEASE_STATUS_LIVE);
    }
    if (auto s = at.router->PutRoute(RouteOf(release, hostname)); !s.ok()) return s;
  }
  hooks.progress(80, absl::StrCat("live at ", release.url()));
  if (moved_from) {
    // The project moved: its route and containers go from the old server
    // (which the reconciler no longer visits once nothing runs there).
    auto old = servers_->For(job.owner_id, moved_from->server_id());
    if (old.ok()) {
      (void)old->router->RemoveRoute(RouteIdOf(job.project_id));
      RetireOthers(*old, job.project_id, "", hooks);
      PruneImages(*old, job.project_id, "", hooks);
      hooks.log(absl::StrCat("removed it from server ", old->server_name, " it moved from"));
    } else {
      hooks.log(absl::StrCat("server ", moved_from->server_id(), " it moved from: ",
                             old.status().message(), " (its old release still runs there)"));
    }
  }

  if (!release.container_name().empty()) {
    RetireOthers(at, job.project_id, release.container_name(), hooks);
  }
  PruneImages(at, job.project_id, release.image(), hooks);
  hooks.progress(100, absl::StrCat("release ", release.version(), " live at ", release.url()));
  return ResultOf(release);
}

absl::Status Deployer::HealthGate(const ServerTarget& at, const common::v1::RunContract& contract,
                                  int port, const std::string& container, const JobHooks& hooks) {
  const auto& gate = contract.health_gate();
  const absl::Duration interval =
      Or(gate.interval(), absl::Milliseconds(200), absl::Milliseconds(50), absl::Seconds(60));
  const absl::Duration timeout =
      Or(gate.timeout(), absl::Seconds(2), absl::Milliseconds(100), absl::Seconds(60));
  const absl::Duration start_period =
      Or(gate.start_period(), absl::Seconds(30), absl::ZeroDuration(), absl::Minutes(10));
  const int retries = gate.retries() > 0 ? std::min(gate.retries(), 100) : 3;
  const absl::Time started = absl::Now();
  int failures = 0;
  std::string last;
  while (true) {
    if (hooks.cancelled()) return absl::CancelledError("the deploy was stopped");
    auto status = at.probe->Get(port, contract.health_path(), timeout);
    if (status.ok() && *status == 200) return absl::OkStatus();
    last = status.ok() ? absl::StrCat(contract.health_path(), " answered ", *status)
                       : std::string(status.status().message());
    // Failures count once the start period is over (or once it answers).
    if (absl::Now() - started >= start_period || status.ok()) ++failures;
    if (failures >= retries) break;
    // A container that exited (even one its restart policy brought back)
    // will not become healthy by waiting.
    auto inspected = at.engine->InspectContainer(container);
    if (inspected.ok() &&
        (inspected->restart_count > 0 || (!inspected->running && inspected->status != "created"))) {
      last = absl::StrCat("the container exited (code ", inspected->exit_code, ")");
      break;
    }
    absl::SleepFor(interval);
  }
  hooks.log(absl::StrCat("health gate: ", last));
  return absl::FailedPreconditionError(absl::StrCat(kHealthGateFailed, ": ", last, kLastLinesMark,
                                                    "\n", LastLines(at, container, 20)));
}

std::string Deployer::LastLines(const ServerTarget& at, const std::string& container, int lines) {
  auto last = containers::LastLogLines(*at.engine, container, lines, 500);
  return last.ok() ? absl::StrJoin(*last, "\n") : "";
}

void Deployer::RetireOthers(const ServerTarget& at, const std::string& project_id,
                            const std::string& keep, const JobHooks& hooks) {
  auto others = at.engine->ListContainers(
      {{kProjectLabel, project_id}, {kInstallationLabel, options_.installation}}, true);
  if (!others.ok()) {
    hooks.log(absl::StrCat("listing the old containers: ", others.status().message()));
    return;
  }
  bool drained = false;
  for (const auto& c : *others) {
    if (c.name == keep) continue;
    if (!drained && c.status == "running") {
      absl::SleepFor(options_.drain);  // requests in flight on it finish
      drained = true;
    }
    (void)at.engine->StopContainer(c.name, options_.stop_grace);
    if (auto s = at.engine->RemoveContainer(c.name, true);
        s.ok() || s.code() == absl::StatusCode::kNotFound) {
      hooks.log(absl::StrCat("removed ", c.name));
    } else {
      hooks.log(absl::StrCat("removing ", c.name, ": ", s.message()));
    }
  }
}

void Deployer::PruneImages(const ServerTarget& at, const std::string& project_id,
                           const std::string& live_image, const JobHooks& hooks) {
  // Kept: the live release's image and those of the last releases it
  // superseded (what rollbacks take), newest first.
  std::set<std::string> kept = {live_image};
  PageRequest page;
  page.page_size = 100;
  auto superseded = releases_->List(project_id, v1::RELEASE_STATUS_SUPERSEDED, page);
  if (!superseded.ok()) return;
  auto items = superseded->items;
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return TimeUtil::TimestampToMicroseconds(a.superseded_time()) >
           TimeUtil::TimestampToMicroseconds(b.superseded_time());
  });
  for (const auto& r : items) {
    if (static_cast<int>(kept.size()) > options_.keep_images) break;
    if (!r.image().empty()) kept.insert(r.image());
  }
  auto images = at.engine->ListImages({{kProjectLabel, project_id}});
  if (!images.ok()) return;
  for (const auto& image : *images) {
    const bool keep = std::any_of(image.tags.begin(), image.tags.end(),
                                  [&](const std::string& tag) { return kept.count(tag) > 0; });
    if (keep) continue;
    if (at.engine->RemoveImage(image.id, false).ok()) {
      hooks.log(absl::StrCat("pruned image ", absl::StrJoin(image.tags, ", ")));
    }
  }
}

}  // namespace orchestrator::deploy
