// /openapi.json is generated from the same descriptors as the routes: every
// route is in it, and every schema it refers to is defined.
#include "gateway/openapi/openapi.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <regex>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"

namespace orchestrator::gateway {
namespace {

using google::protobuf::Struct;

TEST(OpenApiTest, EveryRouteIsAnOperationAndEveryRefResolves) {
  auto table = RouteTable::FromServices(PublicServices());
  ASSERT_TRUE(table.ok());
  const std::string doc = OpenApiDocument(*table);
  Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(doc, &parsed).ok()) << doc.substr(0, 200);
  EXPECT_EQ(parsed.fields().at("openapi").string_value(), "3.0.3");
  const auto& paths = parsed.fields().at("paths").struct_value().fields();
  size_t operations = 0;
  for (const auto& [path, ops] : paths) operations += ops.struct_value().fields().size();
  EXPECT_EQ(operations, table->routes().size());

  for (const Route& r : table->routes()) {
    std::string path = std::regex_replace(r.pattern, std::regex(R"(=\*\})"), "}");
    ASSERT_TRUE(paths.count(path)) << path;
    const auto& ops = paths.at(path).struct_value().fields();
    const std::string verb = absl::AsciiStrToLower(r.http_method);
    ASSERT_TRUE(ops.count(verb)) << r.http_method << " " << path;
    const auto& op = ops.at(verb).struct_value().fields();
    const auto& content = op.at("responses")
                              .struct_value()
                              .fields()
                              .at("200")
                              .struct_value()
                              .fields()
                              .at("content")
                              .struct_value()
                              .fields();
    EXPECT_EQ(content.count("text/event-stream") == 1, r.method->server_streaming()) << path;
    EXPECT_EQ(op.count("requestBody") == 1, !r.body.empty()) << path;
  }

  const auto& schemas = parsed.fields()
                            .at("components")
                            .struct_value()
                            .fields()
                            .at("schemas")
                            .struct_value()
                            .fields();
  std::regex ref(R"re("\$ref":"#/components/schemas/([^"]+)")re");
  int refs = 0;
  for (std::sregex_iterator it(doc.begin(), doc.end(), ref), end; it != end; ++it, ++refs) {
    EXPECT_TRUE(schemas.count((*it)[1].str())) << (*it)[1].str();
  }
  EXPECT_GT(refs, 100);
  // Field names are the JSON mapping's.
  const auto& project = schemas.at("orchestrator.projects.v1.Project").struct_value().fields();
  EXPECT_TRUE(project.at("properties").struct_value().fields().count("displayName"));
  // The contract's bounds table is the document's too.
  const auto& props = project.at("properties").struct_value().fields();
  EXPECT_EQ(props.at("displayName").struct_value().fields().at("x-max-bytes").number_value(), 200);
  EXPECT_EQ(props.at("name").struct_value().fields().at("pattern").string_value(), "^[!-~]*$");
  const auto& token_req =
      schemas.at("orchestrator.admin.v1.CreateTokenRequest").struct_value().fields();
  const auto& perms = token_req.at("properties").struct_value().fields().at("permissions");
  EXPECT_EQ(perms.struct_value().fields().at("maxItems").number_value(), 64);
  const auto& ttl = token_req.at("properties").struct_value().fields().at("ttl");
  EXPECT_EQ(ttl.struct_value().fields().at("x-max-seconds").number_value(), 31622400);
}

}  // namespace
}  // namespace orchestrator::gateway
