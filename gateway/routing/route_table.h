#pragma once

#include <google/protobuf/descriptor.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator::gateway {

// A google.api.http path template, as our contracts use them: literal
// segments, variables naming a request field ("{project_id}",
// "{project.id}") that match one segment, and a custom verb (":cancel").
struct PathTemplate {
  struct Segment {
    std::string literal;  // empty for a variable
    std::string field;    // the variable's field path
  };
  std::vector<Segment> segments;
  std::string verb;
};

// Parses "/v1/projects/{project_id}:deploy"; INVALID_ARGUMENT says what is wrong.
absl::StatusOr<PathTemplate> ParsePathTemplate(absl::string_view path);

// One REST route: the HTTP method and path of an RPC, and which request
// field the body fills ("*": the whole request; "": none).
struct Route {
  std::string http_method;  // GET, POST, PATCH, PUT, DELETE
  std::string pattern;      // as written in the contract
  PathTemplate path;
  std::string body;
  const google::protobuf::MethodDescriptor* method = nullptr;
};

// Every annotated RPC of the given services, built from their descriptors at
// startup: nothing is written per route by hand.
class RouteTable final {
 public:
  static absl::StatusOr<RouteTable> FromServices(
      const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  struct Match {
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> bindings;  // field path → segment
  };
  // The route for a request: NOT_FOUND when no route has the path,
  // FAILED_PRECONDITION naming the allowed methods when only the method is
  // wrong (a 405). Path segments are percent-decoded.
  absl::StatusOr<Match> Find(absl::string_view http_method, absl::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// The mesh's ten public services (not the runner's private one).
std::vector<const google::protobuf::ServiceDescriptor*> PublicServices();

}  // namespace orchestrator::gateway
