#pragma once

#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/routing/route_table.h"

namespace orchestrator::gateway {

// The request message of a route, built from what an HTTP request carries,
// by the proto3 JSON mapping: the body (the whole request for body "*", one
// field for body "project"), then the query parameters ("page_size=10",
// "project.name=x", a repeated field by repeating its key), then the path
// variables, which win. Unknown fields, wrong types, invalid UTF-8 and
// malformed JSON are INVALID_ARGUMENT naming where the problem is.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequest(
    const Route& route, const std::vector<std::pair<std::string, std::string>>& bindings,
    absl::string_view query_string, absl::string_view body);

// Whether a request body labelled `content_type` may be read as JSON:
// application/json or any +json type, parameters (charset) aside. Anything
// else is refused, a form (what a browser or `curl -d` sends) and a missing
// label included, so nothing is ever parsed as what it was not declared to
// be. The error says what to send; the caller answers it with 415.
absl::Status CheckJsonContentType(absl::string_view content_type);

// A message as proto3 JSON on one line (lowerCamelCase names, defaults left out).
std::string ToJson(const google::protobuf::Message& message);

// The JSON error body every failure gets: {"code": <gRPC code>, "status":
// "NOT_FOUND", "message": "...", "details": []}.
std::string ErrorJson(const absl::Status& status);

// A JSON string literal, quoted and escaped.
std::string JsonQuote(absl::string_view text);

// "a=1&b=x%20y" → {{"a","1"},{"b","x y"}}; '+' is a space. INVALID_ARGUMENT
// for a bad percent escape or a decoded value that is not UTF-8.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query);

bool IsValidUtf8(absl::string_view text);

// A fresh message of the given type from the generated pool.
std::unique_ptr<google::protobuf::Message> NewMessage(const google::protobuf::Descriptor* type);

}  // namespace orchestrator::gateway
