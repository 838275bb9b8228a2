#include "gateway/routing/route_table.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/api/annotations.pb.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"

namespace orchestrator::gateway {
namespace {

bool ValidFieldPath(absl::string_view f) {
  if (f.empty()) return false;
  for (absl::string_view part : absl::StrSplit(f, '.')) {
    if (part.empty() || !absl::ascii_islower(part[0])) return false;
    for (char c : part) {
      if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
    }
  }
  return true;
}

// "%2F" → "/"; false for a malformed escape.
bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
        !absl::ascii_isxdigit(in[i + 2])) {
      return false;
    }
    auto hex = [](char c) {
      return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
    };
    out->push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
    i += 2;
  }
  return true;
}

// Whether `t` matches the segments (and verb); fills bindings.
bool Matches(const PathTemplate& t, const std::vector<std::string>& segments,
             const std::string& verb, std::vector<std::pair<std::string, std::string>>* bindings) {
  if (t.segments.size() != segments.size() || t.verb != verb) return false;
  bindings->clear();
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& s = t.segments[i];
    if (s.field.empty()) {
      if (s.literal != segments[i]) return false;
    } else {
      if (segments[i].empty()) return false;
      bindings->emplace_back(s.field, segments[i]);
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<PathTemplate> ParsePathTemplate(absl::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("path template '", path, "' must start with /"));
  }
  PathTemplate t;
  absl::string_view rest = path.substr(1);
  // The custom verb follows the last ':' outside braces.
  const size_t close = rest.rfind('}');
  const size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && (close == absl::string_view::npos || colon > close)) {
    t.verb = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (t.verb.empty()) return absl::InvalidArgumentError(absl::StrCat("'", path, "': empty verb"));
  }
  for (absl::string_view seg : absl::StrSplit(rest, '/')) {
    PathTemplate::Segment s;
    if (!seg.empty() && seg.front() == '{') {
      if (seg.back() != '}') {
        return absl::InvalidArgumentError(absl::StrCat("'", path, "': unclosed variable"));
      }
      absl::string_view var = seg.substr(1, seg.size() - 2);
      // "{name=*}" is the same as "{name}"; longer patterns are not used.
      if (absl::EndsWith(var, "=*")) var.remove_suffix(2);
      if (!ValidFieldPath(var)) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", path, "': '", var, "' is not a field path this gateway supports"));
      }
      s.field = std::string(var);
    } else {
      if (seg.empty() || seg.find_first_of("{}*") != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("'", path, "': bad segment '", seg, "'"));
      }
      s.literal = std::string(seg);
    }
    t.segments.push_back(std::move(s));
  }
  return t;
}

absl::StatusOr<RouteTable> RouteTable::FromServices(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services) {
  RouteTable table;
  for (const auto* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      if (!method->options().HasExtension(google::api::http)) continue;
      const auto& rule = method->options().GetExtension(google::api::http);
      Route r;
      r.method = method;
      r.body = rule.body();
      switch (rule.pattern_case()) {
        case google::api::HttpRule::kGet:
          r.http_method = "GET";
          r.pattern = rule.get();
          break;
        case google::api::HttpRule::kPost:
          r.http_method = "POST";
          r.pattern = rule.post();
          break;
        case google::api::HttpRule::kPatch:
          r.http_method = "PATCH";
          r.pattern = rule.patch();
          break;
        case google::api::HttpRule::kPut:
          r.http_method = "PUT";
          r.pattern = rule.put();
          break;
        case google::api::HttpRule::kDelete:
          r.http_method = "DELETE";
          r.pattern = rule.delete_();
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat(method->full_name(), ": unsupported google.api.http pattern"));
      }
      auto path = ParsePathTemplate(r.pattern);
      if (!path.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(method->full_name(), ": ", path.status().message()));
      }
      r.path = std::move(*path);
      // Every variable and the body field must exist in the request.
      for (const auto& s : r.path.segments) {
        if (s.field.empty()) continue;
        const auto* d = method->input_type();
        const google::protobuf::FieldDescriptor* f = nullptr;
        for (absl::string_view part : absl::StrSplit(s.field, '.')) {
          f = d == nullptr ? nullptr : d->FindFieldByName(std::string(part));
          d = f != nullptr ? f->message_type() : nullptr;
        }
        if (f == nullptr || f->is_repeated() ||
            f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
          return absl::InvalidArgumentError(absl::StrCat(method->full_name(), ": path variable '",
                                                         s.field,
                                                         "' is not a scalar request field"));
        }
      }
      if (!r.body.empty() && r.body != "*" &&
          method->input_type()->FindFieldByName(r.body) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(method->full_name(), ": body field '", r.body, "' does not exist"));
      }
      table.routes_.push_back(std::move(r));
    }
  }
  return table;
}

absl::StatusOr<RouteTable::Match> RouteTable::Find(absl::string_view http_method,
                                                   absl::string_view path) const {
  if (path.empty() || path[0] != '/') return absl::NotFoundError("no route for this path");
  absl::string_view rest = path.substr(1);
  std::string verb;
  const size_t last_slash = rest.rfind('/');
  const size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos &&
      (last_slash == absl::string_view::npos || colon > last_slash)) {
    verb = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  std::vector<std::string> segments;
  for (absl::string_view seg : absl::StrSplit(rest, '/')) {
    std::string decoded;
    if (!PercentDecode(seg, &decoded)) {
      return absl::InvalidArgumentError(
          absl::StrCat("path: malformed percent escape in '", seg, "'"));
    }
    segments.push_back(std::move(decoded));
  }
  std::set<std::string> allowed;
  Match m;
  for (const auto& r : routes_) {
    if (!Matches(r.path, segments, verb, &m.bindings)) continue;
    if (r.http_method == http_method) {
      m.route = &r;
      return m;
    }
    allowed.insert(r.http_method);
  }
  if (!allowed.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "method ", http_method, " is not allowed here; use ", absl::StrJoin(allowed, ", ")));
  }
  return absl::NotFoundError(absl::StrCat("no route for ", path));
}

std::vector<const google::protobuf::ServiceDescriptor*> PublicServices() {
  std::vector<const google::protobuf::ServiceDescriptor*> out;
  for (const char* name : {orchestrator::admin::v1::AdminService::service_full_name(),
                           orchestrator::projects::v1::ProjectService::service_full_name(),
                           orchestrator::jobs::v1::JobService::service_full_name(),
                           orchestrator::sessions::v1::SessionService::service_full_name(),
                           orchestrator::agents::v1::AgentService::service_full_name(),
                           orchestrator::scaffolder::v1::ScaffolderService::service_full_name(),
                           orchestrator::engineering::v1::EngineeringService::service_full_name(),
                           orchestrator::deploy::v1::DeployService::service_full_name(),
                           orchestrator::infra::v1::InfraService::service_full_name(),
                           orchestrator::scheduler::v1::SchedulerService::service_full_name()}) {
    out.push_back(google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name));
  }
  return out;
}

}  // namespace orchestrator::gateway
