#pragma once

#include <string>

#include "gateway/routing/route_table.h"

namespace orchestrator::gateway {

// An OpenAPI 3.0 document of every route, generated from the same
// descriptors the routes come from: paths with their path and query
// parameters, request bodies, responses (SSE / NDJSON for streams), the
// error body, and a schema per message in the proto3 JSON mapping.
std::string OpenApiDocument(const RouteTable& routes);

}  // namespace orchestrator::gateway
