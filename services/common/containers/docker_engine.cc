#include "services/common/containers/docker_engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/containers/build_context.h"
#include "services/common/containers/build_output.h"
#include "services/common/containers/engine_errors.h"
#include "services/common/containers/engine_inputs.h"
#include "services/common/containers/json_fields.h"
#include "services/common/containers/log_stream.h"

namespace orchestrator::containers {
namespace {

using nlohmann::json;

constexpr char kApi[] = "/v1.41";
// Lists of many images or containers are the largest answers.
constexpr size_t kMaxAnswerBytes = 16 << 20;
// Docker refuses less.
constexpr int64_t kMinMemoryLimit = 6 << 20;
constexpr absl::Duration kMaxStopGrace = absl::Hours(1);

std::string ContainerPath(const std::string& container, absl::string_view rest = "") {
  return absl::StrCat(kApi, "/containers/", PathEscape(container), rest);
}

std::string ImagePath(const std::string& image, absl::string_view rest = "") {
  return absl::StrCat(kApi, "/images/", PathEscape(image), rest);
}

absl::Status WithContext(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

std::vector<std::string> StringsField(const json& object, const char* key) {
  std::vector<std::string> strings;
  const json* field = Field(object, key);
  if (field == nullptr || !field->is_array()) return strings;
  for (const json& value : *field) {
    if (value.is_string()) strings.push_back(value.get<std::string>());
  }
  return strings;
}

// An image's tags without the "<none>:<none>" Docker writes for none.
std::vector<std::string> TagsField(const json& object) {
  std::vector<std::string> tags = StringsField(object, "RepoTags");
  tags.erase(std::remove(tags.begin(), tags.end(), "<none>:<none>"), tags.end());
  return tags;
}

// A published port: the first binding's host port in {"8080/tcp":
// [{"HostIp": ..., "HostPort": "34567"}]}.
int HostPortOf(const json* ports) {
  if (ports == nullptr || !ports->is_object()) return 0;
  for (const auto& [port, bindings] : ports->items()) {
    if (!bindings.is_array()) continue;
    for (const json& binding : bindings) {
      int host_port = 0;
      if (absl::SimpleAtoi(StringField(binding, "HostPort"), &host_port) && host_port > 0) {
        return host_port;
      }
    }
  }
  return 0;
}

bool HasLabels(const Labels& labels, const std::vector<LabelMatch>& matches) {
  return std::all_of(matches.begin(), matches.end(), [&](const LabelMatch& match) {
    auto it = labels.find(match.key);
    return it != labels.end() && (!match.value.has_value() || it->second == *match.value);
  });
}

const char* RestartPolicyName(RestartPolicy policy) {
  switch (policy) {
    case RestartPolicy::kAlways:
      return "always";
    case RestartPolicy::kUnlessStopped:
      return "unless-stopped";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kNo:
      break;
  }
  return "no";
}

absl::Status ValidateContainerSpec(const ContainerSpec& spec) {
  if (auto s = ValidateContainerName("name", spec.name); !s.ok()) return s;
  if (auto s = ValidateImageRef("image", spec.image); !s.ok()) return s;
  if (auto s = ValidateEnv("env", spec.env); !s.ok()) return s;
  if (auto s = ValidateLabels("labels", spec.labels); !s.ok()) return s;
  if (spec.container_port < 0 || spec.container_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("container_port: ", spec.container_port, " is not a port (0 for none)"));
  }
  if (spec.host_port < 0 || spec.host_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("host_port: ", spec.host_port, " is not a port (0 for one the engine picks)"));
  }
  if (spec.host_port != 0 && spec.container_port == 0) {
    return absl::InvalidArgumentError("host_port: given without a container_port to publish");
  }
  if (spec.max_restarts < 0 ||
      (spec.max_restarts != 0 && spec.restart_policy != RestartPolicy::kOnFailure)) {
    return absl::InvalidArgumentError(
        "max_restarts: a count of at least 0, and only with the on-failure restart policy");
  }
  if (spec.memory_limit_bytes != 0 && spec.memory_limit_bytes < kMinMemoryLimit) {
    return absl::InvalidArgumentError(absl::StrCat("memory_limit_bytes: ", spec.memory_limit_bytes,
                                                   " is below the engine's minimum of ",
                                                   kMinMemoryLimit, " (0 for no limit)"));
  }
  return absl::OkStatus();
}

// All of `bytes` to `fd`; the error names `path`.
absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// What POST /images/load answers: JSON lines (Docker: one per image,
// {"stream": "Loaded image: NAME\n"} or "Loaded image ID: ID"; Podman 4.3:
// one for all, the names joined by ','), or {"error": ...} when the
// archive was refused (Docker, with 200). The names loaded.
absl::StatusOr<std::vector<std::string>> LoadedImages(absl::string_view body,
                                                      const std::string& what) {
  std::vector<std::string> images;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipWhitespace())) {
    const json message = ParseJson(line);
    if (!message.is_object()) continue;
    if (Field(message, "error") != nullptr || Field(message, "errorDetail") != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": the engine refused the archive: ",
                       StringField(message, "error").substr(0, kMaxEngineMessageBytes)));
    }
    const std::string stream = StringField(message, "stream");
    absl::string_view loaded = absl::StripAsciiWhitespace(stream);
    if (!absl::ConsumePrefix(&loaded, "Loaded image ID: ") &&
        !absl::ConsumePrefix(&loaded, "Loaded image: ")) {
      continue;
    }
    for (absl::string_view name : absl::StrSplit(loaded, ',', absl::SkipWhitespace())) {
      images.emplace_back(absl::StripAsciiWhitespace(name));
    }
  }
  if (images.empty()) {
    return absl::InternalError(absl::StrCat(what, ": the engine's answer names no image loaded"));
  }
  return images;
}

json ContainerBody(const ContainerSpec& spec) {
  json body = json::object();
  body["Image"] = spec.image;
  body["Env"] = spec.env;
  body["Labels"] = spec.labels;
  json& host_config = body["HostConfig"];
  host_config["RestartPolicy"]["Name"] = RestartPolicyName(spec.restart_policy);
  host_config["RestartPolicy"]["MaximumRetryCount"] = spec.max_restarts;
  if (spec.container_port != 0) {
    const std::string port = absl::StrCat(spec.container_port, "/tcp");
    body["ExposedPorts"][port] = json::object();
    json binding = json::object();
    binding["HostIp"] = "127.0.0.1";
    // Empty: the engine picks a free port.
    binding["HostPort"] = spec.host_port == 0 ? "" : absl::StrCat(spec.host_port);
    host_config["PortBindings"][port] = json::array({binding});
  }
  if (spec.memory_limit_bytes != 0) host_config["Memory"] = spec.memory_limit_bytes;
  return body;
}

ContainerInfo ContainerInfoOf(const json& object) {
  ContainerInfo info;
  info.id = StringField(object, "Id");
  info.name = std::string(absl::StripPrefix(StringField(object, "Name"), "/"));
  info.image_id = StringField(object, "Image");
  info.restart_count = static_cast<int>(IntField(object, "RestartCount"));
  if (const json* config = Field(object, "Config"); config != nullptr) {
    info.image = StringField(*config, "Image");
    info.labels = LabelsField(*config, "Labels");
  }
  if (const json* state = Field(object, "State"); state != nullptr) {
    info.running = BoolField(*state, "Running");
    info.status = StringField(*state, "Status");
    info.exit_code = static_cast<int>(IntField(*state, "ExitCode"));
    info.oom_killed = BoolField(*state, "OOMKilled");
    info.started_at = TimeField(*state, "StartedAt");
    info.finished_at = TimeField(*state, "FinishedAt");
  }
  // Where the engine bound the port (after a start); what was asked before.
  const json* network = Field(object, "NetworkSettings");
  info.host_port = network != nullptr ? HostPortOf(Field(*network, "Ports")) : 0;
  if (info.host_port == 0) {
    const json* host_config = Field(object, "HostConfig");
    if (host_config != nullptr) info.host_port = HostPortOf(Field(*host_config, "PortBindings"));
  }
  return info;
}

ContainerSummary ContainerSummaryOf(const json& object) {
  ContainerSummary summary;
  summary.id = StringField(object, "Id");
  const std::vector<std::string> names = StringsField(object, "Names");
  if (!names.empty()) summary.name = std::string(absl::StripPrefix(names.front(), "/"));
  summary.image = StringField(object, "Image");
  summary.status = StringField(object, "State");
  summary.labels = LabelsField(object, "Labels");
  if (const json* ports = Field(object, "Ports"); ports != nullptr && ports->is_array()) {
    for (const json& port : *ports) {
      const int64_t public_port = IntField(port, "PublicPort");
      if (public_port > 0 && public_port <= 65535) {
        summary.host_port = static_cast<int>(public_port);
        break;
      }
    }
  }
  return summary;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DockerEngine>> DockerEngine::FromConfig(DockerEngineConfig config) {
  std::string url = config.url;
  if (absl::StartsWith(url, "tcp://")) url = absl::StrCat("http://", url.substr(6));
  auto base = http::BaseUrl::Parse(url);
  if (!base.ok()) return absl::InvalidArgumentError(absl::StrCat("url: ", base.status().message()));
  if (config.timeout <= absl::ZeroDuration() || config.build_timeout <= absl::ZeroDuration() ||
      config.logs_timeout <= absl::ZeroDuration() ||
      config.image_transfer_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "timeout, build_timeout, logs_timeout, image_transfer_timeout: must be positive");
  }
  if (config.max_context_bytes == 0 || config.max_log_line_bytes == 0) {
    return absl::InvalidArgumentError("max_context_bytes, max_log_line_bytes: must be positive");
  }
  return std::unique_ptr<DockerEngine>(new DockerEngine(std::move(config), *std::move(base)));
}

DockerEngine::DockerEngine(DockerEngineConfig config, http::BaseUrl base)
    : config_(std::move(config)),
      client_(std::move(base), http::ClientOptions{.user_agent = "codegen-orchestrator",
                                                   .max_response_bytes = kMaxAnswerBytes}) {}

absl::StatusOr<http::Response> DockerEngine::Call(const std::string& method,
                                                  const std::string& target,
                                                  const std::string& what, absl::Duration timeout,
                                                  const json* body) const {
  http::Request request;
  request.method = method;
  request.target = target;
  request.timeout = timeout;
  if (body != nullptr) {
    request.headers = {{"Content-Type", "application/json"}};
    request.body = DumpJson(*body);
  }
  auto response = client_.Send(request);
  if (!response.ok()) {
    return ExchangeStatus(response.status(), client_.base().Authority(), method, what);
  }
  return response;
}

absl::StatusOr<json> DockerEngine::List(const std::string& target, const std::string& what) const {
  // Podman reads each image or container after listing it, and fails the
  // whole list (500, "image not known") when one was removed meanwhile: a
  // list is only read, so it is asked again.
  constexpr int kAttempts = 3;
  absl::StatusOr<http::Response> response;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    response = Call("GET", target, what, config_.timeout);
    if (!response.ok() || response->status != 500) break;
  }
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, what);
  json list = ParseJson(response->body);
  if (!list.is_array()) {
    return absl::InternalError(absl::StrCat(what, ": the engine's answer is not a list"));
  }
  return list;
}

absl::Status DockerEngine::Ping() {
  auto response = Call("GET", "/_ping", "ping", config_.timeout);
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, "ping");
  return absl::OkStatus();
}

absl::StatusOr<std::string> DockerEngine::BuildImage(
    const BuildSpec& spec, const std::function<void(const std::string& line)>& on_output,
    const std::atomic<bool>* cancel) {
  if (spec.context_dir.empty()) return absl::InvalidArgumentError("context_dir: required");
  if (auto s = ValidateRelativePath("dockerfile", spec.dockerfile); !s.ok()) return s;
  if (auto s = ValidateImageRef("tag", spec.tag); !s.ok()) return s;
  if (absl::StrContains(spec.tag, '@') || absl::StartsWith(spec.tag, "sha256:")) {
    return absl::InvalidArgumentError("tag: a name[:tag], not a digest or an image id");
  }
  if (auto s = ValidateBuildArgs("build_args", spec.build_args); !s.ok()) return s;
  if (auto s = ValidateLabels("labels", spec.labels); !s.ok()) return s;
  std::error_code ec;
  const auto dockerfile = std::filesystem::symlink_status(
      std::filesystem::path(spec.context_dir) / spec.dockerfile, ec);
  if (!std::filesystem::exists(dockerfile)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dockerfile: ", spec.dockerfile, " is not in the build context ", spec.context_dir));
  }
  auto context = TarBuildContext(spec.context_dir, config_.max_context_bytes);
  if (!context.ok()) return context.status();

  const std::string what = absl::StrCat("build image ", spec.tag);
  http::Request request;
  request.method = "POST";
  request.target = absl::StrCat(
      kApi, "/build?t=", QueryEscape(spec.tag), "&dockerfile=", QueryEscape(spec.dockerfile),
      "&buildargs=", QueryEscape(DumpJson(json(spec.build_args))),
      "&labels=", QueryEscape(DumpJson(json(spec.labels))), "&rm=1&forcerm=1");
  request.headers = {{"Content-Type", "application/x-tar"}};
  request.body = *std::move(context);
  request.timeout = config_.build_timeout;
  request.cancel = cancel;
  BuildOutputReader output(on_output);
  absl::StatusOr<http::Response> response;
  {
    absl::ReaderMutexLock lock(&images_mu_);
    response = client_.Stream(request, [&](absl::string_view piece) {
      output.Feed(piece);
      return true;
    });
  }
  if (!response.ok()) {
    return ExchangeStatus(response.status(), client_.base().Authority(), "POST", what);
  }
  if (!response->ok()) return AnswerStatus(*response, what);
  auto id = output.Finish();
  if (!id.ok()) return WithContext(id.status(), what);
  if (!id->empty()) return *id;
  // An engine that reports no id: the tag has it.
  auto image = InspectImage(spec.tag);
  if (!image.ok()) return WithContext(image.status(), what);
  return image->id;
}

absl::StatusOr<ImageInfo> DockerEngine::InspectImage(const std::string& image) {
  if (auto s = ValidateImageRef("image", image); !s.ok()) return s;
  const std::string what = absl::StrCat("inspect image ", image);
  auto response = Call("GET", ImagePath(image, "/json"), what, config_.timeout);
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, what);
  const json object = ParseJson(response->body);
  ImageInfo info;
  info.id = StringField(object, "Id");
  if (info.id.empty()) {
    return absl::InternalError(absl::StrCat(what, ": the engine's answer has no image id"));
  }
  info.tags = TagsField(object);
  if (const json* config = Field(object, "Config"); config != nullptr) {
    info.labels = LabelsField(*config, "Labels");
  }
  info.created = TimeField(object, "Created").value_or(absl::InfinitePast());
  info.size_bytes = IntField(object, "Size");
  return info;
}

absl::Status DockerEngine::RemoveImage(const std::string& image, bool force) {
  if (auto s = ValidateImageRef("image", image); !s.ok()) return s;
  const std::string what = absl::StrCat("remove image ", image);
  absl::MutexLock lock(&images_mu_);
  auto response = Call("DELETE", ImagePath(image, force ? "?force=true" : "?force=false"), what,
                       config_.timeout);
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, what);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ImageInfo>> DockerEngine::ListImages(
    const std::vector<LabelMatch>& labels) {
  if (auto s = ValidateLabelMatches("labels", labels); !s.ok()) return s;
  const std::string what = "list images";
  // Podman 4.3 lists no image for two label filters or more: the engine
  // narrows by the first, the rest are checked here.
  const std::vector<LabelMatch> first(labels.begin(),
                                      labels.begin() + std::min<size_t>(1, labels.size()));
  auto list =
      List(absl::StrCat(kApi, "/images/json?filters=", QueryEscape(LabelFilters(first))), what);
  if (!list.ok()) return list.status();
  std::vector<ImageInfo> images;
  for (const json& object : *list) {
    ImageInfo info;
    info.id = StringField(object, "Id");
    info.tags = TagsField(object);
    info.labels = LabelsField(object, "Labels");
    info.created = absl::FromUnixSeconds(IntField(object, "Created"));
    info.size_bytes = IntField(object, "Size");
    if (!info.id.empty() && HasLabels(info.labels, labels)) images.push_back(std::move(info));
  }
  std::sort(images.begin(), images.end(), [](const ImageInfo& a, const ImageInfo& b) {
    return a.created != b.created ? a.created > b.created : a.id < b.id;
  });
  return images;
}

absl::Status DockerEngine::SaveImage(const std::string& image, const std::string& path,
                                     const std::atomic<bool>* cancel) {
  if (auto s = ValidateImageRef("image", image); !s.ok()) return s;
  if (path.empty()) return absl::InvalidArgumentError("path: required");
  const std::string what = absl::StrCat("save image ", image);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot open ", path, ": ", std::strerror(errno)));
  }
  http::Request request;
  request.target = ImagePath(image, "/get");
  request.timeout = config_.image_transfer_timeout;
  request.cancel = cancel;
  // Each piece (HttpClient reads 16 KiB at a time) goes to the file as it
  // arrives: the archive is never in memory.
  absl::Status written;
  auto response = client_.Stream(request, [&](absl::string_view piece) {
    written = WriteAll(fd, piece, path);
    return written.ok();
  });
  const int closed = close(fd);
  const int close_errno = errno;
  if (!response.ok()) {
    return ExchangeStatus(response.status(), client_.base().Authority(), "GET", what);
  }
  if (!response->ok()) return AnswerStatus(*response, what);
  if (!written.ok()) return WithContext(written, what);
  if (closed != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot write ", path, ": ", std::strerror(close_errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> DockerEngine::LoadImages(const std::string& path,
                                                                  const std::atomic<bool>* cancel) {
  if (path.empty()) return absl::InvalidArgumentError("path: required");
  const std::string what = absl::StrCat("load images from ", path);
  http::Request request;
  request.method = "POST";
  request.target = absl::StrCat(kApi, "/images/load?quiet=1");
  request.headers = {{"Content-Type", "application/x-tar"}};
  // Sent from the file as it is read, a few KiB at a time.
  request.body_file = path;
  request.timeout = config_.image_transfer_timeout;
  request.cancel = cancel;
  absl::StatusOr<http::Response> response;
  {
    absl::ReaderMutexLock lock(&images_mu_);
    response = client_.Send(request);
  }
  // FAILED_PRECONDITION: the file could not be opened, before any exchange.
  if (!response.ok() && response.status().code() == absl::StatusCode::kFailedPrecondition) {
    return WithContext(response.status(), what);
  }
  if (!response.ok()) {
    return ExchangeStatus(response.status(), client_.base().Authority(), "POST", what);
  }
  if (!response->ok()) return AnswerStatus(*response, what);
  return LoadedImages(response->body, what);
}

absl::StatusOr<std::string> DockerEngine::CreateContainer(const ContainerSpec& spec) {
  if (auto s = ValidateContainerSpec(spec); !s.ok()) return s;
  const std::string what = absl::StrCat("create container ", spec.name);
  const json body = ContainerBody(spec);
  auto response =
      Call("POST", absl::StrCat(kApi, "/containers/create?name=", QueryEscape(spec.name)), what,
           config_.timeout, &body);
  if (!response.ok()) return response.status();
  // Podman 4.3 answers a name in use with 500 ("that name is already in use").
  if (response->status == 409 ||
      (response->status == 500 && absl::StrContains(EngineMessage(*response), "already in use"))) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": ", EngineMessage(*response)));
  }
  if (!response->ok()) return AnswerStatus(*response, what);
  const std::string id = StringField(ParseJson(response->body), "Id");
  if (id.empty()) {
    return absl::InternalError(absl::StrCat(what, ": the engine's answer has no container id"));
  }
  return id;
}

absl::Status DockerEngine::StartContainer(const std::string& container) {
  if (auto s = ValidateContainerRef("container", container); !s.ok()) return s;
  const std::string what = absl::StrCat("start container ", container);
  auto response = Call("POST", ContainerPath(container, "/start"), what, config_.timeout);
  if (!response.ok()) return response.status();
  // 304: already running.
  if (!response->ok() && response->status != 304) return AnswerStatus(*response, what);
  return absl::OkStatus();
}

absl::Status DockerEngine::StopContainer(const std::string& container, absl::Duration grace) {
  if (auto s = ValidateContainerRef("container", container); !s.ok()) return s;
  if (grace < absl::ZeroDuration() || grace > kMaxStopGrace) {
    return absl::InvalidArgumentError(
        absl::StrCat("grace: ", absl::FormatDuration(grace), " is not between 0 and 1h"));
  }
  const int64_t seconds = absl::ToInt64Seconds(absl::Ceil(grace, absl::Seconds(1)));
  const std::string what = absl::StrCat("stop container ", container);
  // The engine answers once the container has stopped: after the grace at most.
  auto response = Call("POST", ContainerPath(container, absl::StrCat("/stop?t=", seconds)), what,
                       absl::Seconds(seconds) + config_.timeout);
  if (!response.ok()) return response.status();
  // 304: already stopped.
  if (!response->ok() && response->status != 304) return AnswerStatus(*response, what);
  return absl::OkStatus();
}

absl::Status DockerEngine::RemoveContainer(const std::string& container, bool force) {
  if (auto s = ValidateContainerRef("container", container); !s.ok()) return s;
  const std::string what = absl::StrCat("remove container ", container);
  auto response =
      Call("DELETE", ContainerPath(container, force ? "?force=true&v=true" : "?force=false&v=true"),
           what, config_.timeout);
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, what);
  return absl::OkStatus();
}

absl::StatusOr<json> DockerEngine::InspectJson(const std::string& container,
                                               const std::string& what) const {
  if (auto s = ValidateContainerRef("container", container); !s.ok()) return s;
  auto response = Call("GET", ContainerPath(container, "/json"), what, config_.timeout);
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, what);
  json object = ParseJson(response->body);
  if (StringField(object, "Id").empty()) {
    return absl::InternalError(absl::StrCat(what, ": the engine's answer has no container id"));
  }
  return object;
}

absl::StatusOr<ContainerInfo> DockerEngine::InspectContainer(const std::string& container) {
  auto object = InspectJson(container, absl::StrCat("inspect container ", container));
  if (!object.ok()) return object.status();
  return ContainerInfoOf(*object);
}

absl::StatusOr<std::vector<ContainerSummary>> DockerEngine::ListContainers(
    const std::vector<LabelMatch>& labels, bool include_stopped) {
  if (auto s = ValidateLabelMatches("labels", labels); !s.ok()) return s;
  const std::string what = "list containers";
  auto list = List(absl::StrCat(kApi, "/containers/json?all=", include_stopped ? "true" : "false",
                                "&filters=", QueryEscape(LabelFilters(labels))),
                   what);
  if (!list.ok()) return list.status();
  std::vector<ContainerSummary> containers;
  for (const json& object : *list) {
    ContainerSummary summary = ContainerSummaryOf(object);
    if (!summary.id.empty()) containers.push_back(std::move(summary));
  }
  return containers;
}

absl::Status DockerEngine::Logs(const std::string& container, const LogOptions& options,
                                const std::function<bool(const LogLine& line)>& on_line,
                                const std::atomic<bool>* cancel) {
  if (options.tail_lines < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tail_lines: ", options.tail_lines, " (-1 for all, or a count)"));
  }
  const std::string what = absl::StrCat("logs of container ", container);
  // With a TTY the engine sends the output as it is, unframed.
  auto object = InspectJson(container, what);
  if (!object.ok()) return object.status();
  const json* config = Field(*object, "Config");
  const bool tty = config != nullptr && BoolField(*config, "Tty");

  http::Request request;
  request.target = ContainerPath(
      container,
      absl::StrCat("/logs?stdout=true&stderr=true&follow=", options.follow ? "true" : "false",
                   "&timestamps=", options.timestamps ? "true" : "false",
                   "&tail=", options.tail_lines < 0 ? "all" : absl::StrCat(options.tail_lines)));
  if (options.since != absl::InfinitePast()) {
    absl::StrAppend(&request.target, "&since=", absl::ToUnixSeconds(options.since));
  }
  if (options.follow && options.follow_for <= absl::ZeroDuration()) return absl::OkStatus();
  request.timeout = options.follow ? options.follow_for : config_.logs_timeout;
  request.cancel = cancel;
  const absl::Time asked = absl::Now();
  LogStreamDecoder decoder(
      tty ? LogStreamDecoder::Framing::kRaw : LogStreamDecoder::Framing::kMultiplexed,
      options.timestamps, config_.max_log_line_bytes, on_line);
  absl::Status decoded;
  auto response = client_.Stream(request, [&](absl::string_view piece) {
    decoded = decoder.Feed(piece);
    const bool more = decoded.ok() && !decoder.stopped();
    if (more && options.on_pause) options.on_pause();
    return more;
  });
  // A follow that lasted its time ends like one the container ended.
  const bool followed_out = options.follow && !response.ok() &&
                            response.status().code() == absl::StatusCode::kUnavailable &&
                            absl::Now() - asked >= options.follow_for;
  if (!response.ok() && !followed_out) {
    return ExchangeStatus(response.status(), client_.base().Authority(), "GET", what);
  }
  if (response.ok() && !response->ok()) return AnswerStatus(*response, what);
  if (!decoded.ok()) return WithContext(decoded, what);
  if (!decoder.stopped()) decoder.Finish();
  return absl::OkStatus();
}

absl::StatusOr<MemoryStats> DockerEngine::MemoryUsage(const std::string& container) {
  if (auto s = ValidateContainerRef("container", container); !s.ok()) return s;
  const std::string what = absl::StrCat("memory use of container ", container);
  auto response = Call("GET", ContainerPath(container, "/stats?stream=false&one-shot=true"), what,
                       config_.timeout);
  if (!response.ok()) return response.status();
  if (!response->ok()) return AnswerStatus(*response, what);
  // A stopped container's stats: Docker's have an empty memory_stats,
  // Podman's are an empty body.
  const json stats = ParseJson(response->body);
  const json* memory = Field(stats, "memory_stats");
  if (memory == nullptr || Field(*memory, "usage") == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": the container is not running"));
  }
  MemoryStats result;
  result.usage_bytes = IntField(*memory, "usage");
  result.limit_bytes = IntField(*memory, "limit");
  // What `docker stats` shows: less the inactive page cache (cgroup v2's
  // inactive_file, v1's total_inactive_file).
  if (const json* details = Field(*memory, "stats"); details != nullptr) {
    int64_t inactive = IntField(*details, "inactive_file");
    if (inactive == 0) inactive = IntField(*details, "total_inactive_file");
    if (inactive > 0 && inactive < result.usage_bytes) result.usage_bytes -= inactive;
  }
  return result;
}

}  // namespace orchestrator::containers
