// GitSmartHttpServer with a LocalGitHost and real git clients over HTTP:
// who may clone and push what, and what no request can reach.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/git/git_cli.h"
#include "services/common/git/local_git_host.h"
#include "services/common/git/local_repository.h"
#include "services/common/git/smart_http_server.h"
#include "tests/support/log_capture.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::git {
namespace {

using ::orchestrator::testing::ReadFile;
using ::orchestrator::testing::RunGit;
using ::orchestrator::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

const Signature kAuthor = {"Tester", "tester@orchestrator.local",
                           absl::FromUnixSeconds(1700000000)};

GitCredentials Bearer(const std::string& token) {
  return {absl::StrCat("Authorization: Bearer ", token)};
}

// One raw HTTP/1.1 exchange (the target sent exactly as given): the status
// code and the whole response.
std::pair<int, std::string> RawRequest(int port, const std::string& method,
                                       const std::string& target,
                                       const std::string& extra_headers = "") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return {-1, ""};
  }
  const std::string request =
      absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n", extra_headers,
                   "Content-Length: 0\r\nConnection: close\r\n\r\n");
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  close(fd);
  int status = -1;
  if (response.size() > 12) status = std::atoi(response.substr(9, 3).c_str());
  return {status, response};
}

class GitSmartHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<GitSmartHttpServer>(
        root_, "127.0.0.1:0",
        [this](const std::string& repository, const std::string& token, bool write,
               std::function<void(absl::Status)> done) { done(Decide(repository, token, write)); });
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    host_ = std::make_unique<LocalGitHost>(root_, absl::StrCat("http://127.0.0.1:", port_), "mesh");
    for (const char* name : {"repo-a", "repo-b"}) {
      auto made = host_->Create({.name = name, .project_id = name, .description = ""});
      ASSERT_TRUE(made.ok()) << made.status();
      urls_[name] = made->clone_url;
    }
  }

  void TearDown() override { server_->Stop(); }

  // The fake authorization: alice and agent may read and write repo-a (and
  // alice "ghost", which does not exist), bob repo-b, reader only read
  // repo-a; anyone else is unknown.
  absl::Status Decide(const std::string& repository, const std::string& token, bool write) {
    {
      absl::MutexLock lock(&mu_);
      asked_.emplace_back(repository, token, write);
    }
    static const std::map<std::string, std::set<std::string>> kWriters = {
        {"alice", {"repo-a", "ghost"}}, {"agent", {"repo-a"}}, {"bob", {"repo-b"}}, {"reader", {}}};
    static const std::map<std::string, std::set<std::string>> kReaders = {{"reader", {"repo-a"}}};
    auto writer = kWriters.find(token);
    if (writer == kWriters.end()) return absl::UnauthenticatedError("unknown token");
    if (writer->second.contains(repository)) return absl::OkStatus();
    auto reader = kReaders.find(token);
    if (!write && reader != kReaders.end() && reader->second.contains(repository)) {
      return absl::OkStatus();
    }
    return repository == "repo-b" ? absl::PermissionDeniedError("not yours")
                                  : absl::NotFoundError("no such repository");
  }

  // A commit of `files` in a fresh work tree; its id.
  std::string Commit(const std::string& dir, const std::map<std::string, std::string>& files) {
    for (const auto& [name, content] : files) tmp_.Write(dir + "/" + name, content);
    auto id = CommitAll(tmp_.Path(dir), "main", "first", kAuthor);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or("");
  }

  int AskedCount() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(asked_.size());
  }

  TempDir tmp_;
  const std::string root_ = tmp_.Path("repos");
  GitCli cli_{absl::Seconds(60)};
  std::unique_ptr<GitSmartHttpServer> server_;
  std::unique_ptr<LocalGitHost> host_;
  int port_ = 0;
  std::map<std::string, std::string> urls_;
  absl::Mutex mu_;  // guards asked_
  std::vector<std::tuple<std::string, std::string, bool>> asked_ ABSL_GUARDED_BY(mu_);
};

TEST_F(GitSmartHttpTest, AlicePushesAndClonesWithABearerHeader) {
  const std::string id = Commit("work", {{"README.md", "# shop\n"}, {"src/app.py", "print(1)\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("alice")).ok());
  auto head = cli_.RemoteHead(urls_["repo-a"], "refs/heads/main", Bearer("alice"));
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head, id);

  ASSERT_TRUE(cli_.CloneAt(urls_["repo-a"], "main", tmp_.Path("clone"), Bearer("alice")).ok());
  EXPECT_EQ(ReadFile(tmp_.Path("clone/README.md")), "# shop\n");
  EXPECT_EQ(ReadFile(tmp_.Path("clone/src/app.py")), "print(1)\n");
  // The push asked for write access, the clone for read.
  absl::MutexLock lock(&mu_);
  EXPECT_THAT(asked_, ::testing::Contains(std::make_tuple("repo-a", "alice", true)));
  EXPECT_THAT(asked_, ::testing::Contains(std::make_tuple("repo-a", "alice", false)));
}

TEST_F(GitSmartHttpTest, AMirrorFetchesAndPushesTwoRefsAtomicallyOverHttp) {
  const std::string base = Commit("work", {{"app.py", "print(1)\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("alice")).ok());
  const std::string mirror = tmp_.Path("mirror.git");
  ASSERT_TRUE(
      cli_.Fetch(mirror, urls_["repo-a"], {"+refs/heads/*:refs/heads/*"}, Bearer("alice")).ok());
  EXPECT_EQ(cli_.ResolveCommit(mirror, "refs/heads/main").value_or(""), base);

  // The change arrives in the mirror (here from the work tree), then goes
  // out as the run's branch and main in one push.
  tmp_.Write("work/app.py", "print(2)\n");
  ASSERT_EQ(RunGit({"commit", "-qam", "second"}, tmp_.Path("work")).exit_code, 0);
  const std::string change =
      std::string(absl::StripAsciiWhitespace(RunGit({"rev-parse", "HEAD"}, tmp_.Path("work")).out));
  ASSERT_TRUE(
      cli_.Fetch(mirror, tmp_.Path("work"), {"+refs/heads/main:refs/heads/change"}, {}).ok());
  const std::vector<std::string> refspecs = {change + ":refs/heads/orchestrator/run_1",
                                             change + ":refs/heads/main"};
  ASSERT_TRUE(
      cli_.PushRefspecs(mirror, urls_["repo-a"], refspecs, {.atomic = true}, Bearer("alice")).ok());
  auto heads = cli_.RemoteHeads(
      urls_["repo-a"], {"refs/heads/main", "refs/heads/orchestrator/run_1"}, Bearer("alice"));
  ASSERT_TRUE(heads.ok()) << heads.status();
  EXPECT_EQ(heads->at("refs/heads/main"), change);
  EXPECT_EQ(heads->at("refs/heads/orchestrator/run_1"), change);

  // Someone pushed meanwhile: the next run's push is ABORTED (rebase and
  // retry) and moves nothing; a caller who may not push is refused outright.
  const std::string theirs = Commit("theirs", {{"NEWS", "x\n"}});
  ASSERT_EQ(RunGit({"push", "-qf", urls_["repo-a"], "main"}, tmp_.Path("theirs"), {},
                   {{"http.extraHeader", "Authorization: Bearer alice"}})
                .exit_code,
            0);
  const std::vector<std::string> next = {change + ":refs/heads/orchestrator/run_2",
                                         change + ":refs/heads/main"};
  const absl::Status stale =
      cli_.PushRefspecs(mirror, urls_["repo-a"], next, {.atomic = true}, Bearer("alice"));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_EQ(cli_.RemoteHead(urls_["repo-a"], "refs/heads/orchestrator/run_2", Bearer("alice"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(cli_.RemoteHead(urls_["repo-a"], "refs/heads/main", Bearer("alice")).value_or(""),
            theirs);
  const absl::Status refused = cli_.PushRefspecs(
      mirror, urls_["repo-a"], {change + ":refs/heads/orchestrator/run_3"}, {}, Bearer("reader"));
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.code(), absl::StatusCode::kAborted) << refused;
}

TEST_F(GitSmartHttpTest, BasicCredentialsInTheUrlCloneAndPush) {
  Commit("work", {{"a.txt", "one\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("alice")).ok());

  const std::string url = absl::StrCat("http://alice:alice@127.0.0.1:", port_, "/git/repo-a.git");
  auto cloned = RunGit({"clone", "-q", url, tmp_.Path("user")});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  EXPECT_EQ(ReadFile(tmp_.Path("user/a.txt")), "one\n");
  tmp_.Write("user/b.txt", "two\n");
  ASSERT_EQ(RunGit({"add", "b.txt"}, tmp_.Path("user")).exit_code, 0);
  ASSERT_EQ(RunGit({"commit", "-qm", "second"}, tmp_.Path("user")).exit_code, 0);
  auto pushed = RunGit({"push", "-q", "origin", "main"}, tmp_.Path("user"));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;

  const std::string local = RunGit({"rev-parse", "HEAD"}, tmp_.Path("user")).out;
  auto head = cli_.RemoteHead(urls_["repo-a"], "refs/heads/main", Bearer("alice"));
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head + "\n", local);
}

TEST_F(GitSmartHttpTest, BobCanNeitherCloneNorPushAlicesRepository) {
  Commit("work", {{"a.txt", "alice's\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("alice")).ok());

  EXPECT_EQ(cli_.CloneAt(urls_["repo-a"], "main", tmp_.Path("stolen"), Bearer("bob")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(tmp_.Path("stolen/a.txt")));
  Commit("bobs", {{"a.txt", "bob's\n"}});
  EXPECT_EQ(cli_.Push(tmp_.Path("bobs"), urls_["repo-a"], "main", Bearer("bob")).code(),
            absl::StatusCode::kNotFound);
  const std::string bob_url = absl::StrCat("http://bob:bob@127.0.0.1:", port_, "/git/repo-a.git");
  EXPECT_NE(RunGit({"clone", "-q", bob_url, tmp_.Path("stolen2")}).exit_code, 0);
  // The same answer as for a repository that does not exist.
  auto [status, response] =
      RawRequest(port_, "GET", "/git/repo-a.git/info/refs?service=git-upload-pack",
                 "Authorization: Bearer bob\r\n");
  EXPECT_EQ(status, 404);
  // And what he owns works.
  EXPECT_TRUE(cli_.Push(tmp_.Path("bobs"), urls_["repo-b"], "main", Bearer("bob")).ok());
  // repo-b's answer to alice (PERMISSION_DENIED) is a 404 as well.
  EXPECT_EQ(cli_.CloneAt(urls_["repo-b"], "main", tmp_.Path("b"), Bearer("alice")).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GitSmartHttpTest, AnAgentReachesOnlyItsRepositoryAndAReaderCannotPush) {
  Commit("work", {{"a.txt", "a\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("agent")).ok());
  EXPECT_TRUE(cli_.CloneAt(urls_["repo-a"], "main", tmp_.Path("agent-a"), Bearer("agent")).ok());
  EXPECT_EQ(cli_.Push(tmp_.Path("work"), urls_["repo-b"], "main", Bearer("agent")).code(),
            absl::StatusCode::kNotFound);

  EXPECT_TRUE(cli_.CloneAt(urls_["repo-a"], "main", tmp_.Path("read"), Bearer("reader")).ok());
  tmp_.Write("read/b.txt", "b\n");
  ASSERT_EQ(RunGit({"add", "b.txt"}, tmp_.Path("read")).exit_code, 0);
  ASSERT_EQ(RunGit({"commit", "-qm", "b"}, tmp_.Path("read")).exit_code, 0);
  EXPECT_EQ(cli_.Push(tmp_.Path("read"), urls_["repo-a"], "main", Bearer("reader")).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GitSmartHttpTest, NoOrUnknownCredentialsAre401WithABasicChallenge) {
  const std::string target = "/git/repo-a.git/info/refs?service=git-upload-pack";
  auto [none, none_response] = RawRequest(port_, "GET", target);
  EXPECT_EQ(none, 401);
  EXPECT_THAT(none_response, HasSubstr("WWW-Authenticate: Basic realm=\"orchestrator\""));
  auto [unknown, unknown_response] =
      RawRequest(port_, "GET", target, "Authorization: Bearer mallory\r\n");
  EXPECT_EQ(unknown, 401);
  EXPECT_THAT(unknown_response, HasSubstr("WWW-Authenticate: Basic realm=\"orchestrator\""));
  EXPECT_EQ(RawRequest(port_, "GET", target, "Authorization: Basic !!!\r\n").first, 401);
  EXPECT_EQ(RawRequest(port_, "GET", target, "Authorization: Bearer \r\n").first, 401);
  // git without credentials gives up at once (it may not prompt).
  EXPECT_EQ(cli_.CloneAt(urls_["repo-a"], "main", tmp_.Path("anon"), {}).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(GitSmartHttpTest, ARepositoryThatDoesNotExistIs404WithoutABackend) {
  const int64_t before = server_->backends_started();
  auto [status, response] =
      RawRequest(port_, "GET", "/git/ghost.git/info/refs?service=git-upload-pack",
                 "Authorization: Bearer alice\r\n");
  EXPECT_EQ(status, 404);
  EXPECT_EQ(cli_.CloneAt(absl::StrCat("http://127.0.0.1:", port_, "/git/ghost.git"), "main",
                         tmp_.Path("ghost"), Bearer("alice"))
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(server_->backends_started(), before);
}

TEST_F(GitSmartHttpTest, OtherPathsAndTraversalAre404WithoutABackendOrAnAuthorization) {
  const int64_t backends = server_->backends_started();
  const int asked = AskedCount();
  const std::string alice = "Authorization: Bearer alice\r\n";
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/git/../repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "/git/%2e%2e/repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "/git/%2E%2E%2Frepo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "/git/repo-a.git/../repo-b.git/info/refs?service=git-upload-pack"},
      {"GET", "/git//tmp/repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "/git/" + root_ + "/repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "http://127.0.0.1/git/repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "//git/repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "/git/repo-a%2egit/info/refs?service=git-upload-pack"},
      {"GET", "/git/repo-a.git/info/refs"},
      {"GET", "/git/repo-a.git/info/refs?service=git-upload-archive"},
      {"GET", "/git/repo-a.git/info/refs?service=../../x"},
      {"GET", "/git/repo-a.git/HEAD"},
      {"GET", "/git/repo-a.git/objects/info/packs"},
      {"GET", "/git/repo-a.git/config"},
      {"GET", "/git/repo-a.git/git-upload-pack"},
      {"POST", "/git/repo-a.git/info/refs?service=git-upload-pack"},
      {"POST", "/git/repo-a.git/git-upload-archive"},
      {"GET", "/git/repo-a/info/refs?service=git-upload-pack"},
      {"GET", "/repos/repo-a.git/info/refs?service=git-upload-pack"},
      {"GET", "/"},
  };
  for (const auto& [method, target] : requests) {
    EXPECT_EQ(RawRequest(port_, method, target, alice).first, 404) << method << " " << target;
  }
  EXPECT_EQ(server_->backends_started(), backends) << "a git process ran";
  EXPECT_EQ(AskedCount(), asked) << "a bad path reached authorization";
}

TEST_F(GitSmartHttpTest, APushLargerThanOneMebibyteArrivesWhole) {
  std::mt19937_64 random(42);
  std::string big(3 << 20, '\0');
  for (char& c : big) c = static_cast<char>(random());  // incompressible
  Commit("work", {{"big.bin", big}});
  const absl::Status pushed =
      cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("alice"));
  ASSERT_TRUE(pushed.ok()) << pushed;
  ASSERT_TRUE(cli_.CloneAt(urls_["repo-a"], "main", tmp_.Path("clone"), Bearer("alice")).ok());
  EXPECT_TRUE(ReadFile(tmp_.Path("clone/big.bin")) == big) << "the clone differs";
}

TEST_F(GitSmartHttpTest, HealthzAnswersWithoutCredentials) {
  EXPECT_EQ(RawRequest(port_, "GET", "/healthz").first, 200);
}

TEST_F(GitSmartHttpTest, TheLogNamesEachRequestButNoCredential) {
  orchestrator::testing::LogCapture log;
  Commit("work", {{"a.txt", "a\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), urls_["repo-a"], "main", Bearer("alice")).ok());
  const std::string url = absl::StrCat("http://alice:alice@127.0.0.1:", port_, "/git/repo-a.git");
  ASSERT_EQ(RunGit({"clone", "-q", url, tmp_.Path("user")}).exit_code, 0);
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("git_http method=POST repository=repo-a service=git-receive-pack "
                              "status=200"));
  EXPECT_THAT(text, HasSubstr("git_http method=GET repository=repo-a service=git-upload-pack "
                              "status=401"));
  EXPECT_THAT(text, HasSubstr("latency_ms="));
  EXPECT_THAT(text, Not(HasSubstr("Bearer")));
  EXPECT_THAT(text, Not(HasSubstr(absl::Base64Escape("alice:alice"))));
  EXPECT_THAT(text, Not(HasSubstr("alice")));
}

TEST(GitSmartHttpLimitsTest, BackendsBeyondTheBoundAre503) {
  TempDir tmp;
  GitSmartHttpLimits limits;
  limits.max_backends = 0;
  GitSmartHttpServer server(
      tmp.Path("repos"), "127.0.0.1:0",
      [](const std::string&, const std::string&, bool, std::function<void(absl::Status)> done) {
        done(absl::OkStatus());
      },
      limits);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.status();
  LocalGitHost host(tmp.Path("repos"), "http://127.0.0.1", "mesh");
  ASSERT_TRUE(host.Create({.name = "busy", .project_id = "busy", .description = ""}).ok());
  auto [status, response] =
      RawRequest(*port, "GET", "/git/busy.git/info/refs?service=git-upload-pack",
                 "Authorization: Bearer anyone\r\n");
  EXPECT_EQ(status, 503);
  EXPECT_THAT(response, HasSubstr("Retry-After: 1"));
  EXPECT_EQ(server.backends_started(), 0);
}

}  // namespace
}  // namespace orchestrator::git
