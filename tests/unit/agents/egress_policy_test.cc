// What a worker may reach through the egress proxy, by its config and the
// operator's grants.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/agents/domain/egress.h"

namespace orchestrator::agents {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Names(const std::vector<EgressTarget>& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets) out.push_back(t.ToString());
  return out;
}

TEST(EgressTargetTest, HostPortIsParsedStrictly) {
  auto t = ParseEgressTarget("GitHub.com:443");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "github.com");
  EXPECT_EQ(t->port, 443);
  EXPECT_EQ(ParseEgressTarget("[2001:DB8::1]:8443")->ToString(), "[2001:db8::1]:8443");
  EXPECT_EQ(ParseEgressTarget("127.0.0.1:5432")->ToString(), "127.0.0.1:5432");
  for (const char* bad :
       {"github.com", "github.com:", "github.com:0", "github.com:65536", "github.com:+443",
        "github.com:443 ", "user@github.com:443", "git hub.com:443", "[::1:443", "::1:443",
        "-x.com:443", ":443", "github.com:443/path"}) {
    EXPECT_FALSE(ParseEgressTarget(bad).ok()) << bad;
  }
}

TEST(EgressTargetTest, AUrlNamesItsHostAndPortWithTheSchemesDefault) {
  EXPECT_EQ(EgressTargetOfUrl("https://api.anthropic.com")->ToString(), "api.anthropic.com:443");
  EXPECT_EQ(EgressTargetOfUrl("http://127.0.0.1:4010/v1")->ToString(), "127.0.0.1:4010");
  EXPECT_EQ(EgressTargetOfUrl("HTTP://Example.com?x=1")->ToString(), "example.com:80");
  EXPECT_EQ(EgressTargetOfUrl("https://[::1]:9/v1")->ToString(), "[::1]:9");
  EXPECT_FALSE(EgressTargetOfUrl("ftp://example.com").ok());
  EXPECT_FALSE(EgressTargetOfUrl("https://user:pw@example.com/").ok());
  EXPECT_FALSE(EgressTargetOfUrl("example.com:443").ok());
}

TEST(EgressAllowlistTest, EachAgentReachesItsOwnModelApiFromTheOperatorsConfig) {
  EgressGrants grants;
  v1::WorkerConfig c;
  c.set_network_mode(v1::NETWORK_MODE_OPEN);
  c.set_agent_type(v1::AGENT_TYPE_CLAUDE_CODE);
  EXPECT_THAT(Names(AllowlistFor(c, grants)->any_address), ElementsAre("api.anthropic.com:443"));
  c.set_agent_type(v1::AGENT_TYPE_CODEX);
  EXPECT_THAT(Names(AllowlistFor(c, grants)->any_address), ElementsAre("api.openai.com:443"));

  grants.anthropic_base_url = "http://127.0.0.1:4010";
  grants.openai_base_url = "http://127.0.0.1:4020/v1";
  c.set_agent_type(v1::AGENT_TYPE_CLAUDE_CODE);
  EXPECT_THAT(Names(AllowlistFor(c, grants)->any_address), ElementsAre("127.0.0.1:4010"));
  c.set_agent_type(v1::AGENT_TYPE_CODEX);
  EXPECT_THAT(Names(AllowlistFor(c, grants)->any_address), ElementsAre("127.0.0.1:4020"));
  // The scripted agent calls no model.
  c.set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  EXPECT_TRUE(AllowlistFor(c, grants)->empty());
}

TEST(EgressAllowlistTest, WhatAUserNamesIsPublicOnlyAndWhatTheOperatorNamesIsNot) {
  EgressGrants grants;
  grants.extra = {"git.internal:443"};
  v1::WorkerConfig c;
  c.set_network_mode(v1::NETWORK_MODE_OPEN);
  c.set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  c.add_capabilities("npm");
  c.add_capabilities("pip");
  c.add_capabilities("curl");  // names no registry
  c.add_egress_allow("github.com:443");
  c.add_egress_allow("GITHUB.com:443");  // the same, once
  auto allow = AllowlistFor(c, grants);
  ASSERT_TRUE(allow.ok()) << allow.status();
  EXPECT_THAT(Names(allow->any_address), ElementsAre("git.internal:443"));
  EXPECT_THAT(Names(allow->public_only),
              ElementsAre("registry.npmjs.org:443", "pypi.org:443", "files.pythonhosted.org:443",
                          "github.com:443"));

  c.add_egress_allow("github.com");
  EXPECT_THAT(std::string(AllowlistFor(c, grants).status().message()),
              HasSubstr("config.egress_allow[2]"));
}

TEST(EgressAllowlistTest, AnIsolatedWorkerReachesNothing) {
  EgressGrants grants;
  grants.extra = {"git.internal:443"};
  v1::WorkerConfig c;
  c.set_network_mode(v1::NETWORK_MODE_ISOLATED);
  c.set_agent_type(v1::AGENT_TYPE_CLAUDE_CODE);
  c.add_capabilities("npm");
  c.add_egress_allow("github.com:443");
  auto allow = AllowlistFor(c, grants);
  ASSERT_TRUE(allow.ok());
  EXPECT_THAT(allow->any_address, IsEmpty());
  EXPECT_THAT(allow->public_only, IsEmpty());
}

// A networked worker of project prj_1 with capability `capability`.
v1::WorkerConfig ProjectWorker(const std::string& capability) {
  v1::WorkerConfig c;
  c.set_network_mode(v1::NETWORK_MODE_OPEN);
  c.set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  c.set_project_id("prj_1");
  c.add_capabilities(capability);
  return c;
}

TEST(EgressAllowlistTest, GitReachesTheProjectsRepositoryAtAnyAddressOnlyOnLoopback) {
  const v1::WorkerConfig c = ProjectWorker("git");
  ASSERT_TRUE(ReachesProjectRepository(c));
  struct Case {
    std::string url;
    std::vector<std::string> any_address, public_only;
  };
  for (const Case& want :
       std::vector<Case>{// The mesh's local git host (only the mesh, or an operator allowing
                         // local hosts, records such URLs): any address, it is on loopback.
                         {"http://127.0.0.1:50080/git/prj_1.git", {"127.0.0.1:50080"}, {}},
                         {"http://localhost:8080/git/prj_1.git", {"localhost:8080"}, {}},
                         {"http://[::1]:50080/git/prj_1.git", {"[::1]:50080"}, {}},
                         // Anywhere else: a public address only (a name resolving to the
                         // mesh's loopback or a private network is refused by the proxy).
                         {"https://github.com/acme/shop.git", {}, {"github.com:443"}},
                         {"http://10.0.0.5:3000/shop.git", {}, {"10.0.0.5:3000"}},
                         {"https://git.example.com:8443/shop", {}, {"git.example.com:8443"}},
                         // What the proxy cannot carry, and no repository yet: nothing.
                         {"ssh://git@github.com/acme/shop.git", {}, {}},
                         {"git@github.com:acme/shop.git", {}, {}},
                         {"file:///srv/git/shop.git", {}, {}},
                         {"", {}, {}}}) {
    auto allow = AllowlistFor(c, {}, want.url);
    ASSERT_TRUE(allow.ok()) << allow.status();
    EXPECT_EQ(Names(allow->any_address), want.any_address) << want.url;
    EXPECT_EQ(Names(allow->public_only), want.public_only) << want.url;
  }
}

TEST(EgressAllowlistTest, WithoutGitAProjectOrANetworkTheRepositoryIsNotReached) {
  const std::string url = "http://127.0.0.1:50080/git/prj_1.git";
  v1::WorkerConfig c = ProjectWorker("npm");
  EXPECT_FALSE(ReachesProjectRepository(c));
  EXPECT_THAT(AllowlistFor(c, {}, url)->any_address, IsEmpty());

  c.add_capabilities("git");
  c.clear_project_id();
  EXPECT_FALSE(ReachesProjectRepository(c));
  EXPECT_THAT(AllowlistFor(c, {}, url)->any_address, IsEmpty());

  c.set_project_id("prj_1");
  c.set_network_mode(v1::NETWORK_MODE_ISOLATED);
  EXPECT_FALSE(ReachesProjectRepository(c));
  EXPECT_TRUE(AllowlistFor(c, {}, url)->empty());
}

}  // namespace
}  // namespace orchestrator::agents
