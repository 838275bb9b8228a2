// The one bounds table: every request field of every contract declares its
// bound, and CheckRequestBounds enforces it, naming the field and never
// echoing the value.
#include "services/common/validation/request_bounds.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.pb.h"
#include "orchestrator/agents/v1/agents.pb.h"
#include "orchestrator/agents/v1/runner.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"

namespace orchestrator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::Status Check(const google::protobuf::Message& m) { return CheckRequestBounds(m); }

void ExpectRefused(const google::protobuf::Message& m, absl::string_view field) {
  absl::Status s = Check(m);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << m.ShortDebugString();
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(std::string(field) + ":"));
}

TEST(Contracts, EveryRequestFieldDeclaresItsBound) {
  google::protobuf::FileDescriptorSet set;
  std::ifstream in(ORCHESTRATOR_DESCRIPTOR_SET, std::ios::binary);
  ASSERT_TRUE(set.ParseFromIstream(&in));
  int requests = 0;
  for (const auto& file : set.file()) {
    if (file.name().rfind("orchestrator/", 0) != 0) continue;
    const auto* fd =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(file.name());
    ASSERT_NE(fd, nullptr);
    for (int s = 0; s < fd->service_count(); ++s) {
      for (int m = 0; m < fd->service(s)->method_count(); ++m) {
        ++requests;
        const auto* input = fd->service(s)->method(m)->input_type();
        EXPECT_THAT(UnboundedFields(input), ::testing::IsEmpty())
            << fd->service(s)->method(m)->full_name() << " takes fields without a bound";
      }
    }
  }
  EXPECT_GT(requests, 70);
}

TEST(RequestBounds, AFieldWithoutADeclarationIsFound) {
  // google.protobuf.DescriptorProto's own fields declare nothing.
  EXPECT_THAT(UnboundedFields(google::protobuf::DescriptorProto::descriptor()),
              ::testing::Contains("google.protobuf.DescriptorProto.name"));
}

TEST(RequestBounds, AWellFormedRequestPasses) {
  admin::v1::CreateTokenRequest req;
  req.set_user_id("usr_1");
  req.set_description("laptop — ünïcode is fine");
  req.add_permissions("project.get");
  req.mutable_ttl()->set_seconds(3600);
  EXPECT_TRUE(Check(req).ok()) << Check(req);
}

TEST(RequestBounds, StringsAreCutAtTheirDeclaredLengthWithoutEchoingThem) {
  projects::v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop");
  req.mutable_project()->set_display_name(std::string(100000, 'x'));
  ExpectRefused(req, "project.display_name");
  EXPECT_THAT(std::string(Check(req).message()), Not(HasSubstr("xxxx")));
  EXPECT_THAT(std::string(Check(req).message()), HasSubstr("at most 200"));
}

TEST(RequestBounds, HumanTextHoldsNoControlCharactersOrBidiOverrides) {
  for (const char* bad : {"a\nb", "a\x1b[31m", "evil\u202Etxt.exe", "x\u2066y", "a\x7f"}) {
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_display_name(bad);
    ExpectRefused(req, "project.display_name");
  }
  projects::v1::CreateProjectRequest ok;
  ok.mutable_project()->set_display_name("Café שלום \u200F mixed");
  EXPECT_TRUE(Check(ok).ok());
  // Multi-line text takes newlines, still no escapes.
  ok.mutable_project()->set_description("line one\r\nline two\ttab");
  EXPECT_TRUE(Check(ok).ok());
  ok.mutable_project()->set_description("a\x1b[2J");
  ExpectRefused(ok, "project.description");
}

TEST(RequestBounds, TokensArePrintableAsciiWithoutSpaces) {
  admin::v1::CreateTokenRequest req;
  req.set_user_id("usr 1");
  ExpectRefused(req, "user_id");
  req.set_user_id("usr_1");
  req.add_permissions("project.get");
  req.add_permissions("bad perm");
  ExpectRefused(req, "permissions[1]");
}

TEST(RequestBounds, RepeatedFieldsHaveAMaximumCount) {
  admin::v1::CreateTokenRequest req;
  for (int i = 0; i < 65; ++i) req.add_permissions("project.get");
  ExpectRefused(req, "permissions");
  EXPECT_THAT(std::string(Check(req).message()), HasSubstr("65 entries; at most 64"));
}

TEST(RequestBounds, DurationsAreWellFormedAndInRange) {
  admin::v1::CreateTokenRequest req;
  req.mutable_ttl()->set_seconds(315576000000);  // what once aborted orchestratord
  ExpectRefused(req, "ttl");
  req.mutable_ttl()->set_seconds(10);
  req.mutable_ttl()->set_nanos(-1);  // sign mismatch
  ExpectRefused(req, "ttl");
  req.mutable_ttl()->set_seconds(0);
  req.mutable_ttl()->set_nanos(0);  // below the declared minimum of 1 s
  ExpectRefused(req, "ttl");
  req.mutable_ttl()->set_seconds(1);
  req.mutable_ttl()->set_nanos(2000000000);  // nanos beyond a second
  ExpectRefused(req, "ttl");
  req.mutable_ttl()->set_seconds(-5);
  req.mutable_ttl()->set_nanos(0);
  ExpectRefused(req, "ttl");
  req.mutable_ttl()->set_seconds(86400);
  EXPECT_TRUE(Check(req).ok());
}

TEST(RequestBounds, IntegersStayInTheirRangeAndEnumsAreKnown) {
  jobs::v1::ListJobsRequest list;
  list.set_page_size(-1);
  ExpectRefused(list, "page_size");
  list.set_page_size(20);
  list.set_state(static_cast<jobs::v1::JobState>(999));
  ExpectRefused(list, "state");
}

TEST(RequestBounds, StructsAreBoundedByTheirEncodedSize) {
  jobs::v1::EnqueueDemoJobRequest req;
  req.set_kind("demo.noop");
  (*req.mutable_params()->mutable_fields())["blob"].set_string_value(std::string(3 << 20, 'a'));
  ExpectRefused(req, "params");
}

TEST(RequestBounds, MapKeysAndValuesAreChecked) {
  agents::v1::StartWorkerRequest req;
  (*req.mutable_config()->mutable_environment())["GOOD"] = std::string(9000, 'v');
  ExpectRefused(req, "config.environment[\"GOOD\"]");
  req.mutable_config()->mutable_environment()->clear();
  for (int i = 0; i < 65; ++i) {
    (*req.mutable_config()->mutable_environment())["K" + std::to_string(i)] = "v";
  }
  ExpectRefused(req, "config.environment");
}

TEST(FitToBounds, WhatAnAgentProducedIsClippedUntilTheMeshAcceptsIt) {
  agents::v1::ConnectRequest event;
  auto* result = event.mutable_event()->mutable_tool_result();
  result->set_call_id("call\x1b[1\n");
  // Binary tool output: invalid UTF-8, and far over 64 KiB.
  std::string output(200000, 'o');
  output[70000] = '\xff';
  output += "\xc3";  // a character cut in half
  result->set_output(output);
  EXPECT_FALSE(Check(event).ok());
  FitToBounds(&event);
  EXPECT_TRUE(Check(event).ok()) << Check(event);
  EXPECT_TRUE(event.ParseFromString(event.SerializeAsString()));  // valid UTF-8 again
  EXPECT_LE(event.event().tool_result().output().size(), 65536u);
  EXPECT_EQ(event.event().tool_result().call_id().substr(0, 4), "call");

  agents::v1::ConnectRequest text;
  text.mutable_event()->mutable_text()->set_text(std::string(3 << 20, 't'));
  FitToBounds(&text);
  EXPECT_TRUE(Check(text).ok()) << Check(text);
  EXPECT_GT(text.event().text().text().size(), 1000000u);  // cut, not emptied
}

TEST(RequestBounds, TruncatedCutsOnACharacterBoundary) {
  EXPECT_EQ(Truncated("short", 10), "short");
  EXPECT_EQ(Truncated("ééé", 3), "é…");  // never half a character
  EXPECT_LE(Truncated(std::string(5000, 'k'), 1024).size(), 1024u + 3);
}

}  // namespace
}  // namespace orchestrator
