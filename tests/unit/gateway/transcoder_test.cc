// An HTTP request's parts become the route's request message by the proto3
// JSON mapping, and anything else is INVALID_ARGUMENT saying where.
#include "gateway/transcode/transcoder.h"

#include <google/protobuf/util/json_util.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"

namespace orchestrator::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TranscoderTest : public ::testing::Test {
 protected:
  TranscoderTest() : table_(*RouteTable::FromServices(PublicServices())) {}

  // The request a method and target (path?query) with this body build.
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> Build(const std::string& method,
                                                                   const std::string& target,
                                                                   const std::string& body = "") {
    const size_t q = target.find('?');
    auto match = table_.Find(method, target.substr(0, q));
    if (!match.ok()) return match.status();
    return BuildRequest(*match->route, match->bindings,
                        q == std::string::npos ? "" : target.substr(q + 1), body);
  }

  RouteTable table_;
};

TEST_F(TranscoderTest, PathVariablesQueryAndBodyFillTheRequest) {
  auto r = Build("PATCH", "/v1/projects/prj_%31", R"({"id":"ignored","displayName":"Shop"})");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& update = static_cast<const projects::v1::UpdateProjectRequest&>(**r);
  EXPECT_EQ(update.project().id(), "prj_1");  // the path wins over the body
  EXPECT_EQ(update.project().display_name(), "Shop");

  auto list = Build("GET", "/v1/projects?page_size=5&status=PROJECT_STATUS_READY&pageToken=a+b");
  ASSERT_TRUE(list.ok()) << list.status();
  const auto& l = static_cast<const projects::v1::ListProjectsRequest&>(**list);
  EXPECT_EQ(l.page_size(), 5);
  EXPECT_EQ(l.status(), projects::v1::PROJECT_STATUS_READY);
  EXPECT_EQ(l.page_token(), "a b");

  auto watch = Build("GET", "/v1/jobs:watch?kinds=demo.sleep&kinds=deploy&project_id=p%2F1");
  ASSERT_TRUE(watch.ok()) << watch.status();
  const auto& w = static_cast<const jobs::v1::WatchJobsRequest&>(**watch);
  EXPECT_THAT(w.kinds(), ElementsAre("demo.sleep", "deploy"));
  EXPECT_EQ(w.project_id(), "p/1");

  auto demo = Build("POST", "/v1/jobs:enqueueDemo",
                    R"({"kind":"demo.sleep","params":{"seconds":2},"maxAttempts":"4"})");
  ASSERT_TRUE(demo.ok()) << demo.status();
  const auto& d = static_cast<const jobs::v1::EnqueueDemoJobRequest&>(**demo);
  EXPECT_EQ(d.kind(), "demo.sleep");
  EXPECT_EQ(d.max_attempts(), 4);
  EXPECT_EQ(d.params().fields().at("seconds").number_value(), 2);
}

TEST_F(TranscoderTest, BadInputIsInvalidArgumentSayingWhere) {
  struct Case {
    std::string method, target, body, where;
  } cases[] = {
      {"POST", "/v1/projects", R"({"name":)", "body:"},
      {"POST", "/v1/projects", R"({"nmae":"x"})", "nmae"},
      {"POST", "/v1/projects", R"({"name":42})", "name"},
      {"POST", "/v1/projects", "[1,2]", "body:"},
      {"POST", "/v1/projects", "{\"name\":\"a\xff\"}", "UTF-8"},
      {"GET", "/v1/projects?page_size=ten", "", "page_size"},
      {"GET", "/v1/projects?colour=red", "", "colour"},
      {"GET", "/v1/projects?page_size=%zz", "", "percent"},
      {"GET", "/v1/projects?page_token=%ff", "", "UTF-8"},
      {"GET", "/v1/projects?=x", "", "without a name"},
      {"GET", "/v1/projects", R"({"pageSize":1})", "takes no body"},
      {"POST", "/v1/jobs:enqueueDemo?kind=x", "{}", "JSON body"},
      {"GET", "/v1/jobs:watch?kinds.x=1", "", "kinds"},
      {"PATCH", "/v1/projects/p1?project=x", "{}", "message"},
  };
  for (const auto& c : cases) {
    auto r = Build(c.method, c.target, c.body);
    ASSERT_FALSE(r.ok()) << c.target << " " << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.target;
    EXPECT_THAT(r.status().message(), HasSubstr(c.where)) << c.target << " " << c.body;
  }
}

TEST(JsonTest, ErrorBodyAndQuoting) {
  EXPECT_EQ(ErrorJson(absl::NotFoundError("job \"x\" not found")),
            R"({"code":5,"status":"NOT_FOUND","message":"job \"x\" not found","details":[]})");
  EXPECT_EQ(JsonQuote("a\nb\t\x01\\"), R"("a\nb\t\u0001\\")");
  projects::v1::Project p;
  p.set_display_name("Shop");
  EXPECT_EQ(ToJson(p), R"({"displayName":"Shop"})");
}

TEST(Utf8Test, RejectsWhatIsNotUtf8) {
  EXPECT_TRUE(IsValidUtf8("plain ✓ 😀"));
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x9c"));          // cut short
}

TEST(ContentType, OnlyJsonBodiesAreRead) {
  for (const char* ok : {"application/json", "Application/JSON; charset=utf-8",
                         "application/merge-patch+json", " application/json "}) {
    EXPECT_TRUE(CheckJsonContentType(ok).ok()) << ok;
  }
  // A form (a browser's or `curl -d`'s default) is not JSON, nor is a body without a label.
  for (const char* bad : {"application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
                          "text/xml", "", "json", "text/json+xml", "application/jsonx"}) {
    auto s = CheckJsonContentType(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("application/json")) << bad;
  }
}

}  // namespace
}  // namespace orchestrator::gateway
