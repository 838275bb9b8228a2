#include "gateway/openapi/openapi.h"

#include <google/protobuf/descriptor.h>

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/transcode/transcoder.h"
#include "orchestrator/common/v1/options.pb.h"

namespace orchestrator::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

std::string Ref(const Descriptor* d) {
  return absl::StrCat("{\"$ref\":", JsonQuote("#/components/schemas/" + d->full_name()), "}");
}

// The schema of a message type that the JSON mapping writes as a scalar,
// or "" for an ordinary message.
std::string WellKnownSchema(const Descriptor* d) {
  const std::string& n = d->full_name();
  if (n == "google.protobuf.Timestamp") return R"({"type":"string","format":"date-time"})";
  if (n == "google.protobuf.Duration") return R"({"type":"string","example":"1.5s"})";
  if (n == "google.protobuf.FieldMask") return R"({"type":"string","example":"a,b.c"})";
  if (n == "google.protobuf.Struct" || n == "google.protobuf.Empty") return R"({"type":"object"})";
  if (n == "google.protobuf.Value" || n == "google.protobuf.Any") return "{}";
  if (n == "google.protobuf.StringValue" || n == "google.protobuf.BytesValue" ||
      n == "google.protobuf.Int64Value" || n == "google.protobuf.UInt64Value") {
    return R"({"type":"string"})";
  }
  if (n == "google.protobuf.BoolValue") return R"({"type":"boolean"})";
  if (n == "google.protobuf.Int32Value" || n == "google.protobuf.UInt32Value") {
    return R"({"type":"integer"})";
  }
  if (n == "google.protobuf.DoubleValue" || n == "google.protobuf.FloatValue") {
    return R"({"type":"number"})";
  }
  return "";
}

// A field's declared bound (option (orchestrator.common.v1.bounds), the one
// table the mesh enforces) as JSON Schema keywords, each with a leading
// comma: for one value of the field, or for the array or map holding them.
std::string BoundKeywords(const FieldDescriptor* f, bool container) {
  const auto& b = f->options().GetExtension(common::v1::bounds);
  std::string out;
  if (container) {
    if (b.max_items() > 0) {
      absl::StrAppend(&out, f->is_map() ? R"(,"maxProperties":)" : R"(,"maxItems":)",
                      b.max_items());
    }
    return out;
  }
  const FieldDescriptor* value = f->is_map() ? f->message_type()->map_value() : f;
  if (value->cpp_type() == FieldDescriptor::CPPTYPE_STRING && b.max_bytes() > 0) {
    // maxLength counts characters; the mesh counts UTF-8 bytes, stated exactly.
    absl::StrAppend(&out, R"(,"maxLength":)", b.max_bytes(), R"(,"x-max-bytes":)", b.max_bytes());
    if (b.text() == common::v1::TEXT_TOKEN) absl::StrAppend(&out, R"(,"pattern":"^[!-~]*$")");
    if (b.text() == common::v1::TEXT_LINE) absl::StrAppend(&out, R"(,"x-text":"one line")");
    if (b.text() == common::v1::TEXT_MULTILINE) absl::StrAppend(&out, R"(,"x-text":"multi-line")");
  } else if (value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (value->message_type()->full_name() == "google.protobuf.Duration" &&
        b.min_seconds() < b.max_seconds()) {
      absl::StrAppend(&out, R"(,"x-min-seconds":)", b.min_seconds(), R"(,"x-max-seconds":)",
                      b.max_seconds());
    } else if (b.max_bytes() > 0) {
      absl::StrAppend(&out, R"(,"x-max-bytes":)", b.max_bytes());
    }
  } else if (b.min() < b.max()) {
    absl::StrAppend(&out, R"(,"minimum":)", b.min(), R"(,"maximum":)", b.max());
  }
  return out;
}

// `schema` (a JSON object) with `keywords` added; a $ref takes none.
std::string WithKeywords(const std::string& schema, const std::string& keywords) {
  if (keywords.empty() || schema.rfind(R"({"$ref")", 0) == 0) return schema;
  if (schema == "{}") return absl::StrCat("{", keywords.substr(1), "}");
  return absl::StrCat(schema.substr(0, schema.size() - 1), keywords, "}");
}

class SchemaWriter {
 public:
  // The schema of one value of the field (ignoring repetition); queues
  // message types for components.
  std::string Scalar(const FieldDescriptor* f) {
    switch (f->type()) {
      case FieldDescriptor::TYPE_STRING:
        return R"({"type":"string"})";
      case FieldDescriptor::TYPE_BYTES:
        return R"({"type":"string","format":"byte"})";
      case FieldDescriptor::TYPE_BOOL:
        return R"({"type":"boolean"})";
      case FieldDescriptor::TYPE_DOUBLE:
      case FieldDescriptor::TYPE_FLOAT:
        return R"({"type":"number"})";
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        return R"({"type":"string","format":"int64"})";
      case FieldDescriptor::TYPE_ENUM: {
        std::vector<std::string> names;
        for (int i = 0; i < f->enum_type()->value_count(); ++i) {
          names.push_back(JsonQuote(f->enum_type()->value(i)->name()));
        }
        return absl::StrCat(R"({"type":"string","enum":[)", absl::StrJoin(names, ","), "]}");
      }
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP: {
        std::string wk = WellKnownSchema(f->message_type());
        if (!wk.empty()) return wk;
        Want(f->message_type());
        return Ref(f->message_type());
      }
      default:
        return R"({"type":"integer","format":"int32"})";
    }
  }

  std::string Field(const FieldDescriptor* f) {
    const std::string value_bounds = BoundKeywords(f, false);
    if (f->is_map()) {
      return WithKeywords(
          absl::StrCat(R"({"type":"object","additionalProperties":)",
                       WithKeywords(Scalar(f->message_type()->map_value()), value_bounds), "}"),
          BoundKeywords(f, true));
    }
    if (f->is_repeated()) {
      return WithKeywords(
          absl::StrCat(R"({"type":"array","items":)", WithKeywords(Scalar(f), value_bounds), "}"),
          BoundKeywords(f, true));
    }
    return WithKeywords(Scalar(f), value_bounds);
  }

  void Want(const Descriptor* d) {
    if (WellKnownSchema(d).empty() && done_.insert(d->full_name()).second) pending_.push_back(d);
  }

  // Every wanted message's schema, by name.
  std::string Components() {
    std::map<std::string, std::string> schemas;
    while (!pending_.empty()) {
      const Descriptor* d = pending_.back();
      pending_.pop_back();
      std::vector<std::string> props;
      for (int i = 0; i < d->field_count(); ++i) {
        const FieldDescriptor* f = d->field(i);
        props.push_back(absl::StrCat(JsonQuote(f->json_name()), ":", Field(f)));
      }
      schemas[d->full_name()] =
          absl::StrCat(R"({"type":"object","properties":{)", absl::StrJoin(props, ","), "}}");
    }
    std::vector<std::string> out;
    for (const auto& [name, schema] : schemas) out.push_back(JsonQuote(name) + ":" + schema);
    out.push_back(
        R"("Error":{"type":"object","properties":{"code":{"type":"integer","description":"gRPC status code"},"status":{"type":"string","example":"NOT_FOUND"},"message":{"type":"string"},"details":{"type":"array","items":{}}}})");
    return absl::StrCat("{", absl::StrJoin(out, ","), "}");
  }

 private:
  std::set<std::string> done_;
  std::vector<const Descriptor*> pending_;
};

std::string OpenApiPath(const Route& r) {
  std::string path;
  for (const auto& s : r.path.segments) {
    absl::StrAppend(&path, "/", s.field.empty() ? s.literal : absl::StrCat("{", s.field, "}"));
  }
  if (!r.path.verb.empty()) absl::StrAppend(&path, ":", r.path.verb);
  return path;
}

std::string Operation(const Route& r, SchemaWriter* schemas) {
  const auto* input = r.method->input_type();
  std::vector<std::string> params;
  std::set<std::string> bound;
  for (const auto& s : r.path.segments) {
    if (s.field.empty()) continue;
    bound.insert(s.field.substr(0, s.field.find('.')));
    params.push_back(absl::StrCat(R"({"name":)", JsonQuote(s.field),
                                  R"(,"in":"path","required":true,"schema":{"type":"string"}})"));
  }
  if (r.body != "*") {
    for (int i = 0; i < input->field_count(); ++i) {
      const FieldDescriptor* f = input->field(i);
      if (bound.count(f->name()) || f->name() == r.body || f->is_map() ||
          (f->type() == FieldDescriptor::TYPE_MESSAGE &&
           WellKnownSchema(f->message_type()).empty())) {
        continue;
      }
      params.push_back(absl::StrCat(R"({"name":)", JsonQuote(f->name()),
                                    R"(,"in":"query","schema":)", schemas->Field(f), "}"));
    }
  }
  std::string op = absl::StrCat(
      R"({"operationId":)",
      JsonQuote(absl::StrCat(r.method->service()->name(), "_", r.method->name())), R"(,"tags":[)",
      JsonQuote(r.method->service()->name()), "]", R"(,"summary":)",
      JsonQuote(r.method->full_name()), R"(,"parameters":[)", absl::StrJoin(params, ","), "]");
  if (!r.body.empty()) {
    const Descriptor* body = r.body == "*" ? input : input->FindFieldByName(r.body)->message_type();
    schemas->Want(body);
    absl::StrAppend(&op,
                    R"(,"requestBody":{"required":true,"content":{"application/json":{"schema":)",
                    Ref(body), "}}}");
  }
  schemas->Want(r.method->output_type());
  const std::string out = Ref(r.method->output_type());
  const std::string content =
      r.method->server_streaming()
          ? absl::StrCat(R"({"text/event-stream":{"schema":)", out,
                         R"(},"application/x-ndjson":{"schema":)", out, "}}")
          : absl::StrCat(R"({"application/json":{"schema":)", out, "}}");
  absl::StrAppend(
      &op, R"(,"responses":{"200":{"description":)",
      JsonQuote(r.method->server_streaming()
                    ? "a stream of events: SSE when Accept is text/event-stream (id = sequence, "
                      "resume with Last-Event-ID), NDJSON otherwise"
                    : "OK"),
      R"(,"content":)", content,
      R"(},"default":{"description":"an error","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}}}})");
  return op;
}

}  // namespace

std::string OpenApiDocument(const RouteTable& routes) {
  SchemaWriter schemas;
  std::map<std::string, std::vector<std::string>> paths;  // path → "method":op
  for (const Route& r : routes.routes()) {
    paths[OpenApiPath(r)].push_back(
        absl::StrCat(JsonQuote(absl::AsciiStrToLower(r.http_method)), ":", Operation(r, &schemas)));
  }
  std::vector<std::string> path_entries;
  for (const auto& [path, ops] : paths) {
    path_entries.push_back(absl::StrCat(JsonQuote(path), ":{", absl::StrJoin(ops, ","), "}"));
  }
  return absl::StrCat(
      R"({"openapi":"3.0.3","info":{"title":"codegen orchestrator","version":"v1",)",
      R"("description":"Generated from the contracts' google.api.http annotations."},)",
      R"("security":[{"bearer":[]}],"paths":{)", absl::StrJoin(path_entries, ","),
      R"(},"components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"}},"schemas":)",
      schemas.Components(), "}}");
}

}  // namespace orchestrator::gateway
