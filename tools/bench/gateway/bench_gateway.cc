// The direct-gRPC side of the gateway benchmark (tools/bench/gateway/run):
// GetProject against orchestratord for a fixed time at a fixed number of
// calls in flight, spread over client threads each with its own completion
// queue. Prints one JSON line: calls/s and latency percentiles in µs.
//
//   bench_gateway --addr H:P --token T --project ID --concurrency N --seconds S [--threads K]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "orchestrator/projects/v1/projects.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace pv1 = orchestrator::projects::v1;

struct Call {
  grpc::ClientContext context;
  pv1::GetProjectResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pv1::GetProjectResponse>> reader;
  Clock::time_point start;
};

struct Options {
  std::string addr, token, project;
  int concurrency = 1, seconds = 10, threads = 1;
};

// Keeps `in_flight` calls going until `end`; latencies (µs) of calls started after `measure_from`.
void Drive(const Options& o, pv1::ProjectService::Stub* stub, int in_flight,
           Clock::time_point measure_from, Clock::time_point end, std::vector<double>* latencies,
           long* failures) {
  grpc::CompletionQueue cq;
  pv1::GetProjectRequest request;
  request.set_project_id(o.project);
  auto start_call = [&] {
    auto* c = new Call;
    c->context.AddMetadata("authorization", "Bearer " + o.token);
    c->start = Clock::now();
    c->reader = stub->AsyncGetProject(&c->context, request, &cq);
    c->reader->Finish(&c->response, &c->status, c);
  };
  for (int i = 0; i < in_flight; ++i) start_call();
  int outstanding = in_flight;
  void* tag;
  bool ok;
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    auto* c = static_cast<Call*>(tag);
    const auto now = Clock::now();
    if (!c->status.ok()) {
      ++*failures;
    } else if (c->start >= measure_from) {
      latencies->push_back(std::chrono::duration<double, std::micro>(now - c->start).count());
    }
    delete c;
    --outstanding;
    if (now < end) {
      start_call();
      ++outstanding;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--addr")
      o.addr = value;
    else if (flag == "--token")
      o.token = value;
    else if (flag == "--project")
      o.project = value;
    else if (flag == "--concurrency")
      o.concurrency = std::stoi(value);
    else if (flag == "--seconds")
      o.seconds = std::stoi(value);
    else if (flag == "--threads")
      o.threads = std::stoi(value);
    else {
      std::fprintf(stderr, "bench_gateway: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (o.addr.empty() || o.project.empty()) {
    std::fprintf(stderr,
                 "usage: bench_gateway --addr H:P --token T --project ID "
                 "--concurrency N --seconds S [--threads K]\n");
    return 2;
  }
  auto channel = grpc::CreateChannel(o.addr, grpc::InsecureChannelCredentials());
  auto stub = pv1::ProjectService::NewStub(channel);
  const int threads = std::max(1, std::min(o.threads, o.concurrency));
  const auto begin = Clock::now();
  const auto measure_from = begin + std::chrono::seconds(1);  // a warm-up second
  const auto end = measure_from + std::chrono::seconds(o.seconds);
  std::vector<std::vector<double>> latencies(threads);
  std::vector<long> failures(threads, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const int share = o.concurrency / threads + (t < o.concurrency % threads ? 1 : 0);
    workers.emplace_back(Drive, std::cref(o), stub.get(), share, measure_from, end, &latencies[t],
                         &failures[t]);
  }
  for (auto& w : workers) w.join();
  std::vector<double> all;
  long failed = 0;
  for (int t = 0; t < threads; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    failed += failures[t];
  }
  if (all.empty()) {
    std::fprintf(stderr, "bench_gateway: no call succeeded (%ld failed)\n", failed);
    return 1;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, size_t(p * all.size()))]; };
  std::printf("{\"calls\":%zu,\"failed\":%ld,\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
              all.size(), failed, all.size() / double(o.seconds), pct(0.50), pct(0.99));
  return failed == 0 ? 0 : 1;
}
