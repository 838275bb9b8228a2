// Property: however tokens are derived from tokens (users, limited tokens,
// agent tokens, admins acting for others), no derived token can do anything
// one of its ancestors could not, nor outlive one of them; agent tokens
// derive nothing. Thousands of random chains over an in-memory store.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/time_util.h>

#include <fstream>
#include <map>
#include <random>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "orchestrator/common/v1/options.pb.h"
#include "services/admin/domain/user_directory.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator::admin {
namespace {

using google::protobuf::util::TimeUtil;

// Just enough of a store for tokens and users.
class MemoryUserStore final : public UserStore {
 public:
  absl::StatusOr<v1::User> InsertUser(const v1::User& user, absl::string_view) override {
    users_[user.id()] = user;
    return user;
  }
  absl::StatusOr<v1::User> GetUser(absl::string_view id) override {
    auto it = users_.find(std::string(id));
    if (it == users_.end()) return absl::NotFoundError("no user");
    return it->second;
  }
  absl::StatusOr<Page<v1::User>> ListUsers(const PageRequest&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<v1::User> DisableUser(absl::string_view) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<int64_t> CountUsers() override { return static_cast<int64_t>(users_.size()); }
  absl::StatusOr<v1::Token> InsertToken(const v1::Token& token, absl::string_view hash,
                                        absl::string_view) override {
    tokens_[std::string(hash)] = token;
    return token;
  }
  absl::StatusOr<TokenGrant> FindTokenByHash(absl::string_view hash) override {
    auto it = tokens_.find(std::string(hash));
    if (it == tokens_.end()) return absl::NotFoundError("no token");
    return TokenGrant{it->second, users_.at(it->second.user_id())};
  }
  absl::StatusOr<v1::Token> GetToken(absl::string_view) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<Page<v1::Token>> ListTokens(absl::string_view, const PageRequest&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<v1::Token> RevokeToken(absl::string_view) override {
    return absl::UnimplementedError("");
  }

 private:
  std::map<std::string, v1::User> users_;
  std::map<std::string, v1::Token> tokens_;  // by hash
};

// Every permission the contracts declare.
std::vector<std::string> ContractPermissions() {
  std::vector<std::string> out;
  for (const char* name :
       {"orchestrator.projects.v1.ProjectService", "orchestrator.jobs.v1.JobService",
        "orchestrator.sessions.v1.SessionService", "orchestrator.agents.v1.AgentService",
        "orchestrator.agents.v1.RunnerService", "orchestrator.scaffolder.v1.ScaffolderService",
        "orchestrator.engineering.v1.EngineeringService", "orchestrator.deploy.v1.DeployService",
        "orchestrator.infra.v1.InfraService", "orchestrator.scheduler.v1.SchedulerService",
        "orchestrator.admin.v1.AdminService"}) {
    const auto* s = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      const auto& access = s->method(i)->options().GetExtension(common::v1::access);
      if (!access.permission().empty()) out.push_back(access.permission());
    }
  }
  return out;
}

const std::vector<std::string> kGrantPool = {"*",
                                             "project.*",
                                             "project.get",
                                             "project.create",
                                             "job.*",
                                             "job.get",
                                             "deploy.*",
                                             "deploy.trigger",
                                             "admin.*",
                                             "admin.token.*",
                                             "admin.token.create",
                                             "admin.user.create",
                                             "session.*",
                                             "agent.*",
                                             "infra.*",
                                             "infra.allocation.*",
                                             "diagnose.*",
                                             "runner.connect",
                                             "scheduler.*",
                                             "engineering.trigger"};

struct Link {
  Principal principal;
  std::string value;
};

class TokenChains : public ::testing::Test {
 protected:
  TokenChains()
      : store_(std::make_shared<MemoryUserStore>()), directory_(store_, [this] { return now_; }) {}

  std::vector<std::string> RandomGrants(std::mt19937& rng) {
    std::vector<std::string> grants;
    const int n = std::uniform_int_distribution<int>(0, 4)(rng);
    for (int i = 0; i < n; ++i) {
      grants.push_back(
          kGrantPool[std::uniform_int_distribution<size_t>(0, kGrantPool.size() - 1)(rng)]);
    }
    return grants;
  }

  v1::User AddUser(const std::string& id, v1::Role role) {
    v1::User u;
    u.set_id(id);
    u.set_name(id);
    u.set_role(role);
    return *store_->InsertUser(u, "");
  }

  // A token stored directly, as bootstrap or an admin would make it.
  std::string RootToken(const v1::User& user, const std::vector<std::string>& grants,
                        std::optional<absl::Duration> ttl) {
    v1::Token t;
    t.set_id(NewId("tok_"));
    t.set_user_id(user.id());
    t.set_kind(v1::TOKEN_KIND_USER);
    for (const auto& g : grants) t.add_permissions(g);
    if (ttl)
      *t.mutable_expire_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now_ + *ttl));
    const std::string value = absl::StrCat(kTokenPrefix, RandomUrlSafe(32));
    (void)store_->InsertToken(t, HashToken(value), "");
    return value;
  }

  std::shared_ptr<MemoryUserStore> store_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  UserDirectory directory_;
};

TEST_F(TokenChains, NoDerivedTokenHoldsMoreOrLivesLongerThanAnyAncestor) {
  const std::vector<std::string> permissions = ContractPermissions();
  ASSERT_GT(permissions.size(), 50u);
  const uint32_t seed = std::random_device()();
  std::mt19937 rng(seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  const v1::User other = AddUser("usr_other", v1::ROLE_USER);
  int derived = 0, refused = 0, agent_refusals = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    const v1::User root =
        AddUser(absl::StrCat("usr_", trial), rng() % 3 == 0 ? v1::ROLE_ADMIN : v1::ROLE_USER);
    std::optional<absl::Duration> root_ttl;
    if (rng() % 2)
      root_ttl = absl::Seconds(std::uniform_int_distribution<int>(60, 90 * 86400)(rng));
    std::vector<Link> chain;
    {
      auto p = directory_.Verify(RootToken(root, RandomGrants(rng), root_ttl));
      ASSERT_TRUE(p.ok()) << p.status();
      chain.push_back({*p, ""});
    }
    const int depth = std::uniform_int_distribution<int>(1, 5)(rng);
    for (int d = 0; d < depth; ++d) {
      const Principal& caller = chain.back().principal;
      v1::CreateTokenRequest req;
      req.set_user_id(caller.admin && rng() % 3 == 0 ? other.id() : caller.user_id);
      const v1::TokenKind kinds[] = {v1::TOKEN_KIND_UNSPECIFIED, v1::TOKEN_KIND_USER,
                                     v1::TOKEN_KIND_AGENT, v1::TOKEN_KIND_MESH};
      req.set_kind(kinds[rng() % 4]);
      for (const auto& g : RandomGrants(rng)) req.add_permissions(g);
      if (rng() % 2) {
        req.mutable_ttl()->set_seconds(std::uniform_int_distribution<int64_t>(1, 400 * 86400)(rng));
      }
      auto created = directory_.CreateToken(caller, req);
      if (caller.kind == PrincipalKind::kAgent) {
        EXPECT_EQ(created.status().code(), absl::StatusCode::kPermissionDenied);
        ++agent_refusals;
        break;
      }
      if (!created.ok()) {
        ++refused;
        break;
      }
      auto child = directory_.Verify(created->value());
      ASSERT_TRUE(child.ok()) << child.status();
      ++derived;
      for (const Link& ancestor : chain) {
        EXPECT_LE(child->expire_time, ancestor.principal.expire_time);
        EXPECT_NE(child->kind, PrincipalKind::kMesh) << "a token is never the mesh";
        for (const auto& p : permissions) {
          if (child->Allows(p)) {
            ASSERT_TRUE(ancestor.principal.Allows(p))
                << "a derived token may '" << p << "' while an ancestor may not; child grants "
                << absl::StrJoin(child->token_grants, ",") << ", ancestor grants "
                << absl::StrJoin(ancestor.principal.token_grants, ",");
          }
        }
      }
      chain.push_back({*child, created->value()});
      // Time passes; a token past its expiry derives nothing more.
      now_ += absl::Seconds(std::uniform_int_distribution<int>(0, 86400)(rng));
      if (chain.back().principal.expire_time <= now_) {
        EXPECT_EQ(directory_.Verify(created->value()).status().code(),
                  absl::StatusCode::kUnauthenticated);
        break;
      }
    }
  }
  // The search did explore: tokens were derived, refused, and agents tried.
  EXPECT_GT(derived, 1000);
  EXPECT_GT(refused, 300);
  EXPECT_GT(agent_refusals, 100);
}

TEST_F(TokenChains, TheReportedEscalationsAreRefused) {
  const v1::User alice = AddUser("usr_alice", v1::ROLE_USER);
  // A limited token asking for an unlimited one gets its own limits.
  auto limited = *directory_.Verify(RootToken(alice, {"project.get", "admin.token.create"}, {}));
  v1::CreateTokenRequest req;
  req.set_user_id(alice.id());
  auto created = directory_.CreateToken(limited, req);
  ASSERT_TRUE(created.ok()) << created.status();
  auto child = *directory_.Verify(created->value());
  EXPECT_FALSE(child.Allows("project.delete"));
  EXPECT_TRUE(child.Allows("project.get"));
  EXPECT_EQ(created->token().parent_token_id(), limited.token_id);

  // A 60 s token cannot make a token that never expires, nor one for a year.
  auto short_lived = *directory_.Verify(RootToken(alice, {}, absl::Seconds(60)));
  auto inherits = directory_.CreateToken(short_lived, req);
  ASSERT_TRUE(inherits.ok());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(inherits->token().expire_time()),
            absl::ToUnixSeconds(now_ + absl::Seconds(60)));
  req.mutable_ttl()->set_seconds(365 * 86400);
  EXPECT_EQ(directory_.CreateToken(short_lived, req).status().code(),
            absl::StatusCode::kInvalidArgument);

  // An agent token mints nothing, not even a narrower USER token.
  Principal agent = *directory_.Verify(RootToken(alice, {"project.get"}, {}));
  agent.kind = PrincipalKind::kAgent;
  req.clear_ttl();
  req.set_kind(v1::TOKEN_KIND_USER);
  EXPECT_EQ(directory_.CreateToken(agent, req).status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace orchestrator::admin

namespace orchestrator::admin {
namespace {

// The README's list of what ROLE_USER grants is the code's, word for word.
TEST(Roles, TheReadmeListsExactlyWhatUsersAreGranted) {
  std::ifstream in(README_PATH);
  std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t start = readme.find("`ROLE_USER` = ");
  ASSERT_NE(start, std::string::npos);
  const std::string line = readme.substr(start + 14, readme.find('(', start) - start - 14);
  std::vector<std::string> listed;
  for (size_t at = line.find('`'); at != std::string::npos; at = line.find('`', at)) {
    const size_t end = line.find('`', at + 1);
    listed.push_back(line.substr(at + 1, end - at - 1));
    at = end + 1;
  }
  EXPECT_EQ(listed, RoleGrants(v1::ROLE_USER));
}

}  // namespace
}  // namespace orchestrator::admin
