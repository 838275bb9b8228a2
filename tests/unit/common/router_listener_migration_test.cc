// Whether the kernel keeps Caddy's config changes from resetting
// connections, read from a sysctl file.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/router/caddy_router.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::router {
namespace {

using ::orchestrator::testing::TempDir;
using ::testing::HasSubstr;

TEST(CheckListenerMigration, OnIsOk) {
  TempDir dir;
  EXPECT_TRUE(CheckListenerMigration(dir.Write("tcp_migrate_req", "1\n")).ok());
}

TEST(CheckListenerMigration, OffSaysWhatToSet) {
  TempDir dir;
  const absl::Status status = CheckListenerMigration(dir.Write("tcp_migrate_req", "0\n"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("net.ipv4.tcp_migrate_req is 0"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("sysctl -w net.ipv4.tcp_migrate_req=1"));
}

TEST(CheckListenerMigration, AKernelWithoutItIsFailedPrecondition) {
  TempDir dir;
  const absl::Status status = CheckListenerMigration(dir.Path("missing"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("Linux 5.14 or later"));
}

}  // namespace
}  // namespace orchestrator::router
