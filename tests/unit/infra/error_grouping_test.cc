// The error history's pure part: what differs between occurrences of one
// error is normalised away, errors are found in a service's log (a Python
// traceback is one error, its last line the message), and occurrences group
// with their count, first and last time.
#include "services/infra/domain/error_grouping.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace orchestrator::infra {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(NormaliseErrorMessageTest, NumbersIdsAddressesAndQuotedValuesGroupTogether) {
  EXPECT_EQ(NormaliseErrorMessage("ValueError: order 42 not found"),
            NormaliseErrorMessage("ValueError: order 7 not found"));
  EXPECT_EQ(NormaliseErrorMessage("ValueError: order 42 not found"),
            "ValueError: order <n> not found");
  EXPECT_EQ(NormaliseErrorMessage("user 3f2a1c9d-0b1e-4c5d-9a7f-0123456789ab has no cart"),
            "user <uuid> has no cart");
  EXPECT_EQ(NormaliseErrorMessage("connect to 10.88.0.12:5432 refused"), "connect to <ip> refused");
  EXPECT_EQ(NormaliseErrorMessage("<Handler object at 0x7f3a2b1c4d50> failed"),
            "<Handler object at <hex>> failed");
  EXPECT_EQ(NormaliseErrorMessage("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing"),
            "commit <hex> missing");
  EXPECT_EQ(NormaliseErrorMessage("KeyError: 'user_42'"), "KeyError: '<str>'");
  EXPECT_EQ(NormaliseErrorMessage(R"(bad header "X-Trace: 1")"), R"(bad header "<str>")");
  EXPECT_EQ(NormaliseErrorMessage("timed out after 1500ms, 3.5 s"), "timed out after <n>ms, <n> s");
}

TEST(NormaliseErrorMessageTest, WordsAndApostrophesStay) {
  EXPECT_EQ(NormaliseErrorMessage("can't decode utf8 for user_42 (deadbeef)"),
            "can't decode utf8 for user_42 (deadbeef)");
  EXPECT_EQ(NormaliseErrorMessage("ERROR: disk full"), "ERROR: disk full");
}

TEST(NormaliseErrorMessageTest, ALeadingTimeStampGoes) {
  EXPECT_EQ(NormaliseErrorMessage("2024-05-01 12:00:03,123 ERROR service: bad PORT: 'x'"),
            "ERROR service: bad PORT: '<str>'");
  EXPECT_EQ(NormaliseErrorMessage("[2024-05-01T12:00:03.5Z] ERROR db down"), "ERROR db down");
}

// The errors a scanner finds in `lines` (one every second from kT0).
std::vector<LoggedError> Scan(const std::string& log) {
  std::vector<LoggedError> found;
  ErrorLogScanner scanner([&](LoggedError e) { found.push_back(std::move(e)); });
  absl::Time t = kT0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    scanner.Add(line, t);
    t += absl::Seconds(1);
  }
  scanner.Finish();
  return found;
}

TEST(ErrorLogScannerTest, APythonTracebackIsOneErrorWhoseMessageIsItsLastLine) {
  const auto found = Scan(
      "INFO service: 10.88.0.1 \"GET / HTTP/1.1\" 200 -\n"
      "----------------------------------------\n"
      "Exception occurred during processing of request from ('10.88.0.1', 51234)\n"
      "Traceback (most recent call last):\n"
      "  File \"/usr/lib/python3.11/socketserver.py\", line 691, in process_request_thread\n"
      "    self.finish_request(request, client_address)\n"
      "  File \"/app/app.py\", line 12, in do_GET\n"
      "    raise ValueError(f\"order {n} not found\")\n"
      "ValueError: order 17 not found\n"
      "----------------------------------------\n"
      "INFO service: 10.88.0.1 \"GET /healthz HTTP/1.1\" 200 -");
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].message, "ValueError: order 17 not found");
  EXPECT_EQ(found[0].time, kT0 + absl::Seconds(8));
  // The lines written just before it, then the whole traceback.
  EXPECT_THAT(found[0].detail, HasSubstr("Exception occurred during processing"));
  EXPECT_THAT(found[0].detail, HasSubstr("Traceback (most recent call last):\n  File"));
  EXPECT_THAT(found[0].detail, HasSubstr("line 12, in do_GET"));
  EXPECT_THAT(found[0].detail, Not(HasSubstr("/healthz")));
}

TEST(ErrorLogScannerTest, ChainedTracebacksAndLoggingsExceptionAreOneError) {
  const auto found = Scan(
      "2024-05-01 12:00:00,001 ERROR service: payment failed\n"
      "Traceback (most recent call last):\n"
      "  File \"/app/app.py\", line 3, in pay\n"
      "KeyError: 'card'\n"
      "\n"
      "During handling of the above exception, another exception occurred:\n"
      "\n"
      "Traceback (most recent call last):\n"
      "  File \"/app/app.py\", line 5, in pay\n"
      "RuntimeError: no card for order 9\n"
      "2024-05-01 12:00:09,001 INFO service: next");
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].message, "RuntimeError: no card for order 9");
  EXPECT_THAT(found[0].detail, HasSubstr("ERROR service: payment failed"));
  EXPECT_THAT(found[0].detail, HasSubstr("KeyError: 'card'\n\nDuring handling"));
}

TEST(ErrorLogScannerTest, ErrorLinesAndExceptionsWithTheirStacks) {
  const auto found = Scan(
      "2024-05-01 12:00:00,001 INFO service: listening\n"
      "2024-05-01 12:00:01,001 ERROR service: bad PORT: 'x'\n"
      "level=error msg=\"db down\" attempt=3\n"
      "{\"level\":\"ERROR\",\"msg\":\"queue full\"}\n"
      "java.lang.IllegalStateException: closed\n"
      "\tat Shop.run(Shop.java:10)\n"
      "panic: runtime error: index out of range [5] with length 3\n"
      "warning: nothing to see\n"
      "GET /errors 200\n"
      "Exception occurred during processing of request");
  std::vector<std::string> messages;
  for (const auto& e : found) messages.push_back(e.message);
  EXPECT_THAT(messages, ElementsAre("2024-05-01 12:00:01,001 ERROR service: bad PORT: 'x'",
                                    "level=error msg=\"db down\" attempt=3",
                                    "{\"level\":\"ERROR\",\"msg\":\"queue full\"}",
                                    "java.lang.IllegalStateException: closed",
                                    "panic: runtime error: index out of range [5] with length 3"));
  EXPECT_THAT(found[3].detail, HasSubstr("closed\n\tat Shop.run(Shop.java:10)"));
}

TEST(ErrorLogScannerTest, ALongTracebackKeepsItsEndWithinTheBound) {
  std::string log = "Traceback (most recent call last):\n";
  for (int i = 0; i < 2000; ++i) absl::StrAppend(&log, "  File \"/app/deep.py\", line ", i, "\n");
  absl::StrAppend(&log, "RecursionError: maximum recursion depth exceeded");
  const auto found = Scan(log);
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].message, "RecursionError: maximum recursion depth exceeded");
  EXPECT_LE(found[0].detail.size(), kMaxErrorDetailBytes);
  EXPECT_THAT(found[0].detail, HasSubstr("line 1999\nRecursionError"));
}

TEST(ErrorLogScannerTest, ALogEndingInsideATracebackStillGivesIt) {
  const auto found = Scan("Traceback (most recent call last):\n  File \"/app/app.py\", line 3");
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].message, "  File \"/app/app.py\", line 3");
}

ErrorSighting Seen(v1::ErrorKind kind, const std::string& release, const std::string& message,
                   absl::Time t) {
  ErrorSighting s;
  s.kind = kind;
  s.release_id = release;
  s.message = message;
  s.detail = absl::StrCat("detail of ", message);
  s.first_time = s.last_time = t;
  return s;
}

TEST(ErrorGroupsTest, OccurrencesGroupWithTheirCountAndFirstAndLastTime) {
  ErrorGroups groups("shop", "web");
  groups.Add(Seen(v1::ERROR_KIND_LOG, "r1", "ValueError: order 3 not found", kT0));
  groups.Add(Seen(v1::ERROR_KIND_LOG, "r2", "ValueError: order 5 not found", kT0 + absl::Hours(2)));
  groups.Add(Seen(v1::ERROR_KIND_LOG, "r2", "ValueError: order 4 not found", kT0 + absl::Hours(1)));
  groups.Add(Seen(v1::ERROR_KIND_LOG, "r2", "KeyError: 'cart'", kT0 + absl::Minutes(30)));
  // The same message of another kind is another error.
  groups.Add(Seen(v1::ERROR_KIND_HEALTH_CHECK, "r1", "ValueError: order 1 not found", kT0));

  const auto records = groups.Records();
  ASSERT_THAT(records, SizeIs(3));
  const v1::ErrorRecord& order = records[0];  // the most recently seen
  EXPECT_EQ(order.kind(), v1::ERROR_KIND_LOG);
  EXPECT_EQ(order.message(), "ValueError: order <n> not found");
  EXPECT_EQ(order.occurrence_count(), 3);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(order.first_seen_time()), absl::ToUnixSeconds(kT0));
  EXPECT_EQ(TimeUtil::TimestampToSeconds(order.last_seen_time()),
            absl::ToUnixSeconds(kT0 + absl::Hours(2)));
  // The latest sighting's release and detail.
  EXPECT_EQ(order.release_id(), "r2");
  EXPECT_EQ(order.detail(), "detail of ValueError: order 5 not found");
  EXPECT_EQ(order.project_id(), "shop");
  EXPECT_EQ(order.service(), "web");
  EXPECT_EQ(records[1].message(), "KeyError: '<str>'");
  EXPECT_EQ(records[2].kind(), v1::ERROR_KIND_HEALTH_CHECK);
}

TEST(ErrorGroupsTest, IdsAreStableAndTiesAreOrderedById) {
  const auto build = [] {
    ErrorGroups groups("shop", "web");
    groups.Add(Seen(v1::ERROR_KIND_LOG, "r1", "b failed", kT0));
    groups.Add(Seen(v1::ERROR_KIND_LOG, "r1", "a failed", kT0));
    return groups.Records();
  };
  const auto first = build();
  const auto again = build();
  ASSERT_THAT(first, SizeIs(2));
  EXPECT_LT(first[0].id(), first[1].id());
  EXPECT_EQ(first[0].id(), again[0].id());
  EXPECT_EQ(first[1].id(), again[1].id());
  // Another project's same error is another record.
  ErrorGroups other("cart", "web");
  other.Add(Seen(v1::ERROR_KIND_LOG, "r1", "a failed", kT0));
  for (const auto& r : first) EXPECT_NE(other.Records()[0].id(), r.id());
}

}  // namespace
}  // namespace orchestrator::infra
