// Workers as Pods (--agent_runtime=kubernetes) in a whole mesh, against the
// fake Kubernetes API (tests/fakes/kubernetes_api.py), which runs each Pod's
// command as a bubblewrap process: the real orchestrator-runner starts in
// the "Pod", connects back to the mesh over TCP with its token, and runs the
// scripted agent, which acts through the real CLI.
#include "services/agents/runtime/kubernetes_runtime.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/config/process.h"
#include "tests/support/fake_kubernetes.h"
#include "tests/support/free_port.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_mesh.h"
#include "tests/support/worker_calls.h"

namespace orchestrator::agents {
namespace {

namespace v1 = ::orchestrator::agents::v1;
using testing::FakeKubernetes;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;
using testing::TestMesh;

constexpr char kNamespace[] = "orch-test";
constexpr char kImage[] = "registry.example/orchestrator:test";

class KubernetesRuntimeTest : public ::testing::Test {
 protected:
  explicit KubernetesRuntimeTest(const std::string& image = kImage)
      : kube_(dir_.path(), {absl::StrCat(kImage, "=", OwnBinaryDir())}),
        workers_port_(testing::FreePort()),
        mesh_("all",
              [this, image](MeshConfig& c) {
                kube_.WriteKubeconfig(dir_.path() + "/kubeconfig.json", kNamespace);
                c.kubeconfig = dir_.path() + "/kubeconfig.json";
                c.agent_runtime = "kubernetes";
                c.kubernetes_worker_image = image;
                c.kubernetes_workers_listen = absl::StrCat("127.0.0.1:", workers_port_);
                c.kubernetes_mesh_address = absl::StrCat("127.0.0.1:", workers_port_);
                c.kubernetes_mesh_labels = {{"app.kubernetes.io/name", "orchestrator"}};
              }),
        stub_(v1::AgentService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
  }

  v1::Worker Start(const std::vector<std::string>& allowed) {
    v1::StartWorkerRequest req;
    req.mutable_config()->set_worker_type(v1::WORKER_TYPE_PO);
    req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
    req.mutable_config()->mutable_limits()->set_memory_bytes(256 << 20);
    req.mutable_config()->mutable_limits()->set_cpu_millis(500);
    for (const auto& a : allowed) req.mutable_config()->add_allowed_commands(a);
    v1::StartWorkerResponse resp;
    grpc::Status s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.worker();
  }

  // Watches until the worker reaches `state` (or ends); returns what it saw last.
  v1::Worker WaitFor(const std::string& id, v1::WorkerState state, absl::Duration timeout) {
    return testing::WaitForWorker(*stub_, alice_, id, state, timeout);
  }

  testing::TaskRun Run(const std::string& worker_id, const std::string& prompt) {
    return testing::RunTaskOn(*stub_, alice_, worker_id, prompt);
  }

  std::string PodPath(const std::string& worker_id) const {
    return absl::StrCat("/api/v1/namespaces/", kNamespace, "/pods/",
                        KubernetesRuntime::PodName(worker_id));
  }

  TempDir dir_;
  FakeKubernetes kube_;
  int workers_port_;
  TestMesh mesh_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string alice_id_, alice_;
};

TEST_F(KubernetesRuntimeTest, AWorkerIsAPodWhoseRunnerConnectsBackAndActsThroughTheMesh) {
  v1::Worker w = Start({"project.*"});
  EXPECT_EQ(w.runtime(), v1::WORKER_RUNTIME_KUBERNETES);
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(30)).state(),
            v1::WORKER_STATE_READY);

  testing::TaskRun run = Run(w.id(), "Please create a project named shop");
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_SUCCEEDED)
      << run.result.summary() << run.result.stderr_tail();
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::ListProjectsRequest list;
  orchestrator::projects::v1::ListProjectsResponse listed;
  ASSERT_TRUE(projects->ListProjects(TestMesh::Context(alice_).get(), list, &listed).ok());
  ASSERT_EQ(listed.projects_size(), 1) << "the Pod's CLI reached ProjectService";
  EXPECT_EQ(listed.projects(0).name(), "shop");

  // The Pod as the cluster holds it: unprivileged, limited, no API token,
  // its workspace on a claim, and no secret in its spec: the worker's
  // token is in a Secret of its own.
  const nlohmann::json pod = kube_.Api("GET", PodPath(w.id()));
  ASSERT_EQ(pod.value("kind", ""), "Pod") << pod.dump();
  const auto& spec = pod["spec"];
  EXPECT_EQ(spec["securityContext"]["runAsUser"], 1000);
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  const auto& container = spec["containers"][0];
  EXPECT_EQ(container["image"], kImage);
  EXPECT_EQ(container["resources"]["limits"]["cpu"], "500m");
  EXPECT_EQ(container["resources"]["limits"]["memory"], absl::StrCat(256 << 20));
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
            KubernetesRuntime::ClaimName(w.workspace_id()));
  const nlohmann::json secret =
      kube_.Api("GET", absl::StrCat("/api/v1/namespaces/", kNamespace, "/secrets/",
                                    KubernetesRuntime::PodName(w.id())));
  std::string token;
  ASSERT_TRUE(absl::Base64Unescape(secret["data"].value("ORCHESTRATOR_TOKEN", ""), &token))
      << secret.dump();
  ASSERT_FALSE(token.empty());
  EXPECT_THAT(pod.dump(), Not(HasSubstr(token)));
  EXPECT_EQ(secret["metadata"]["ownerReferences"][0]["name"], KubernetesRuntime::PodName(w.id()))
      << "the Secret goes with its Pod";
  const nlohmann::json policy =
      kube_.Api("GET", absl::StrCat("/apis/networking.k8s.io/v1/namespaces/", kNamespace,
                                    "/networkpolicies/orchestrator-workers"));
  EXPECT_EQ(policy["spec"]["egress"][0]["ports"][0]["port"], workers_port_) << policy.dump();
  EXPECT_TRUE(policy["spec"]["ingress"].empty()) << "nothing connects to a worker";

  // Stopping the worker deletes its Pod.
  v1::StopWorkerRequest stop;
  stop.set_worker_id(w.id());
  v1::StopWorkerResponse stopped;
  ASSERT_TRUE(stub_->StopWorker(TestMesh::Context(alice_).get(), stop, &stopped).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (kube_.Api("GET", PodPath(w.id())).value("kind", "") == "Pod" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(kube_.Api("GET", PodPath(w.id())).value("code", 0), 404);

  // What the mesh asked of the API server is within the Role the Helm
  // chart gives it (tests/e2e/helm_chart.sh checks the chart's Role is this).
  const std::set<std::string> role = {"create pods",
                                      "list pods",
                                      "watch pods",
                                      "delete pods",
                                      "create secrets",
                                      "update secrets",
                                      "patch secrets",
                                      "delete secrets",
                                      "create persistentvolumeclaims",
                                      "get persistentvolumeclaims",
                                      "create networkpolicies",
                                      "patch networkpolicies"};
  std::ifstream log(dir_.path() + "/requests.jsonl");
  std::set<std::string> used;
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
    if (request.is_discarded() || request.value("user_agent", "") != "orchestrator-kubernetes") {
      continue;
    }
    used.insert(request.value("verb", "?") + " " + request.value("resource", "?"));
  }
  EXPECT_THAT(used, ::testing::IsSubsetOf(role));
  EXPECT_THAT(used, ::testing::IsSupersetOf({"create pods", "watch pods", "delete pods",
                                             "create secrets", "patch secrets"}));
}

TEST_F(KubernetesRuntimeTest, ADeletedPodFailsTheWorkerAndItsTaskWithinSeconds) {
  v1::Worker w = Start({});
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(30)).state(),
            v1::WORKER_STATE_READY);
  testing::TaskRun run;
  std::thread task([&] { run = Run(w.id(), "wait 60 seconds"); });
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_BUSY, absl::Seconds(10)).state(),
            v1::WORKER_STATE_BUSY);
  const absl::Time deleted = absl::Now();
  kube_.Api("DELETE", PodPath(w.id()));
  v1::Worker failed = WaitFor(w.id(), v1::WORKER_STATE_FAILED, absl::Seconds(20));
  EXPECT_EQ(failed.state(), v1::WORKER_STATE_FAILED);
  EXPECT_LT(absl::Now() - deleted, absl::Seconds(10));
  EXPECT_THAT(failed.state_reason(), ::testing::AnyOf(HasSubstr("Pod"), HasSubstr("runner")));
  task.join();
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_FALSE(run.result.summary().empty());
}

TEST_F(KubernetesRuntimeTest, PausingAWorkerStopsItsPodAndKeepsItsWorkspace) {
  v1::Worker w = Start({});
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(30)).state(),
            v1::WORKER_STATE_READY);
  v1::PauseWorkerRequest pause;
  pause.set_worker_id(w.id());
  v1::PauseWorkerResponse paused;
  grpc::Status s = stub_->PauseWorker(TestMesh::Context(alice_).get(), pause, &paused);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(paused.worker().state(), v1::WORKER_STATE_STOPPED);
  EXPECT_THAT(paused.worker().state_reason(), HasSubstr("cannot freeze"));
  const nlohmann::json claim =
      kube_.Api("GET", absl::StrCat("/api/v1/namespaces/", kNamespace, "/persistentvolumeclaims/",
                                    KubernetesRuntime::ClaimName(w.workspace_id())));
  EXPECT_EQ(claim.value("kind", ""), "PersistentVolumeClaim") << "the workspace stays";
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (kube_.Api("GET", PodPath(w.id())).value("kind", "") == "Pod" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(kube_.Api("GET", PodPath(w.id())).value("code", 0), 404) << "its Pod is gone";

  // A new worker on the same workspace (what a session's next message does).
  v1::StartWorkerRequest again;
  again.mutable_config()->set_worker_type(v1::WORKER_TYPE_PO);
  again.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  again.mutable_config()->set_workspace_id(w.workspace_id());
  v1::StartWorkerResponse started;
  s = stub_->StartWorker(TestMesh::Context(alice_).get(), again, &started);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(started.worker().id(), w.id());
  EXPECT_EQ(WaitFor(started.worker().id(), v1::WORKER_STATE_READY, absl::Seconds(30)).state(),
            v1::WORKER_STATE_READY);
}

// A PO session whose worker is a Pod: the Pod deleted mid-turn fails the
// worker, and the session's next message resumes the same agent session in
// a new Pod on the same workspace claim (the scripted agent remembers what
// it was asked in its workspace).
TEST_F(KubernetesRuntimeTest, ASessionGoesOnInANewPodAfterItsPodWasDeletedMidTurn) {
  namespace sv1 = ::orchestrator::sessions::v1;
  auto sessions = sv1::SessionService::NewStub(mesh_.channel());
  grpc::Status last;
  auto send = [&](const std::string& text) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + alice_);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
    sv1::SendMessageRequest req;
    req.set_text(text);
    auto reader = sessions->SendMessage(&ctx, req);
    std::vector<sv1::SendMessageResponse> steps;
    sv1::SendMessageResponse r;
    while (reader->Read(&r)) steps.push_back(r);
    last = reader->Finish();
    return steps;
  };
  auto session = [&](const std::string& id) {
    sv1::GetSessionRequest req;
    req.set_session_id(id);
    sv1::GetSessionResponse resp;
    EXPECT_TRUE(sessions->GetSession(TestMesh::Context(alice_).get(), req, &resp).ok());
    return resp.session();
  };

  auto first = send("hello");
  ASSERT_TRUE(last.ok()) << last.error_message();
  ASSERT_FALSE(first.empty());
  const std::string session_id = first.front().accepted().session_id();
  const sv1::Session before = session(session_id);
  ASSERT_FALSE(before.worker_id().empty());
  EXPECT_EQ(kube_.Api("GET", PodPath(before.worker_id())).value("kind", ""), "Pod");

  grpc::Status cut;
  std::thread turn([&] {
    auto steps = send("wait 8 seconds");
    cut = last;
  });
  ASSERT_EQ(WaitFor(before.worker_id(), v1::WORKER_STATE_BUSY, absl::Seconds(10)).state(),
            v1::WORKER_STATE_BUSY);
  kube_.Api("DELETE", PodPath(before.worker_id()));
  EXPECT_EQ(WaitFor(before.worker_id(), v1::WORKER_STATE_FAILED, absl::Seconds(10)).state(),
            v1::WORKER_STATE_FAILED);
  turn.join();
  EXPECT_FALSE(cut.ok()) << "the turn in the deleted Pod ends, saying why";
  // Whichever tells first: the Pod's watch, or the runner's dropped connection.
  EXPECT_THAT(cut.error_message(), ::testing::AnyOf(HasSubstr("was deleted"), HasSubstr("runner")));

  auto after = send("what did i ask");
  ASSERT_TRUE(last.ok()) << last.error_message();
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.front().accepted().session_id(), session_id);
  ASSERT_TRUE(after.back().has_reply());
  EXPECT_THAT(after.back().reply().text(), HasSubstr("wait 8 seconds"))
      << "the agent's session went on from the workspace its first Pod wrote";
  const sv1::Session now = session(session_id);
  EXPECT_NE(now.worker_id(), before.worker_id());
  EXPECT_EQ(now.workspace_id(), before.workspace_id());
  EXPECT_EQ(now.agent_session_id(), before.agent_session_id());
  EXPECT_EQ(kube_.Api("GET", PodPath(now.worker_id())).value("kind", ""), "Pod") << "a new Pod";
}

TEST_F(KubernetesRuntimeTest, AMissingRbacRuleFailsTheWorkerNamingTheRule) {
  kube_.Control("POST", "forbid", {{"verb", "create"}, {"resource", "pods"}});
  v1::Worker w = Start({});
  v1::Worker failed = WaitFor(w.id(), v1::WORKER_STATE_FAILED, absl::Seconds(20));
  ASSERT_EQ(failed.state(), v1::WORKER_STATE_FAILED);
  EXPECT_THAT(failed.state_reason(), HasSubstr("create pods"));
  EXPECT_THAT(failed.state_reason(),
              HasSubstr("the orchestrator's Role needs the rule {apiGroups: [\"\"], resources: "
                        "[\"pods\"], verbs: [\"create\"]}"));
  EXPECT_THAT(failed.state_reason(), HasSubstr("forbidden"));
}

// A Pod that cannot start (its image cannot be pulled) fails its worker
// from the watch of the Pods, long before the runner's connect timeout:
// there is no runner whose connection could end.
class KubernetesRuntimeUnpulledImageTest : public KubernetesRuntimeTest {
 protected:
  KubernetesRuntimeUnpulledImageTest() : KubernetesRuntimeTest("registry.example/missing:1") {}
};

TEST_F(KubernetesRuntimeUnpulledImageTest, APodThatCannotStartFailsItsWorkerSayingWhy) {
  v1::Worker w = Start({});
  const absl::Time started = absl::Now();
  v1::Worker failed = WaitFor(w.id(), v1::WORKER_STATE_FAILED, absl::Seconds(20));
  ASSERT_EQ(failed.state(), v1::WORKER_STATE_FAILED);
  EXPECT_LT(absl::Now() - started, absl::Seconds(10)) << "the connect timeout is 30 s";
  EXPECT_THAT(failed.state_reason(), HasSubstr("cannot start"));
  EXPECT_THAT(failed.state_reason(), HasSubstr("registry.example/missing:1"));
}

}  // namespace
}  // namespace orchestrator::agents
