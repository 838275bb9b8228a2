#include "services/jobs/store/job_event_hub.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "services/common/logging/format.h"
#include "services/jobs/store/pg_job_store.h"
#include "spdlog/spdlog.h"

namespace orchestrator::jobs {
namespace {

constexpr int kReadBatch = 500;
// Below this many subscribers one thread delivers faster than handing off.
constexpr size_t kMinShare = 256;

bool ParseNotice(const std::string& payload, JobNotice* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(payload, ' ');
  int state = 0, type = 0;
  if (parts.size() != 5 || !absl::SimpleAtoi(parts[1], &out->sequence) ||
      !absl::SimpleAtoi(parts[3], &state) || !absl::SimpleAtoi(parts[4], &type)) {
    return false;
  }
  out->job_id = std::string(parts[0]);
  out->owner_id = std::string(parts[2]);
  out->state = static_cast<v1::JobState>(state);
  out->type = static_cast<v1::JobEventType>(type);
  return true;
}

}  // namespace

JobEventHub::JobEventHub(std::string conninfo, db::PoolPtr reader, int fanout_threads)
    : conninfo_(std::move(conninfo)),
      reader_(std::move(reader)),
      fanout_threads_(static_cast<size_t>(std::max(1, fanout_threads))) {
  if (fanout_threads_ > 1) {
    fanout_ = std::make_unique<BoundedExecutor>(fanout_threads_ - 1, fanout_threads_ - 1);
  }
}

JobEventHub::~JobEventHub() { Stop(); }

void JobEventHub::Start() {
  if (thread_.joinable()) return;
  if (::pipe(wake_fd_) != 0) wake_fd_[0] = wake_fd_[1] = -1;
  thread_ = std::thread([this] { Run(); });
}

void JobEventHub::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  if (wake_fd_[1] >= 0) (void)!::write(wake_fd_[1], "x", 1);
  thread_.join();
  for (int& fd : wake_fd_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

uint64_t JobEventHub::SubscribeJob(const std::string& job_id, int64_t after_sequence,
                                   JobSubscriber s) {
  absl::MutexLock lock(&mu_);
  const uint64_t handle = next_handle_++;
  auto [it, inserted] = jobs_.try_emplace(job_id);
  if (inserted) it->second.read_up_to = after_sequence;
  it->second.subscribers.emplace(handle, std::move(s));
  job_of_handle_[handle] = job_id;
  return handle;
}

uint64_t JobEventHub::SubscribeOwner(OwnerSubscriber s) {
  absl::MutexLock lock(&mu_);
  const uint64_t handle = next_handle_++;
  owners_.emplace(handle, std::move(s));
  return handle;
}

uint64_t JobEventHub::SubscribeReady(std::function<void(const std::string&)> on_ready) {
  absl::MutexLock lock(&mu_);
  const uint64_t handle = next_handle_++;
  ready_.emplace(handle, std::move(on_ready));
  return handle;
}

void JobEventHub::Unsubscribe(uint64_t handle) {
  absl::MutexLock lock(&mu_);
  if (auto it = job_of_handle_.find(handle); it != job_of_handle_.end()) {
    auto topic = jobs_.find(it->second);
    if (topic != jobs_.end()) {
      topic->second.subscribers.erase(handle);
      if (topic->second.subscribers.empty()) jobs_.erase(topic);
    }
    job_of_handle_.erase(it);
    return;
  }
  owners_.erase(handle);
  ready_.erase(handle);
}

bool JobEventHub::WaitUntilListening(absl::Duration timeout) {
  return first_listen_.WaitForNotificationWithTimeout(timeout);
}

void JobEventHub::ResyncAll() {
  std::vector<std::function<void()>> calls;
  std::vector<std::function<void(const std::string&)>> ready;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, topic] : jobs_) {
      for (auto& [h, s] : topic.subscribers) calls.push_back(s.resync);
    }
    for (auto& [h, s] : owners_) calls.push_back(s.resync);
    for (auto& [h, r] : ready_) ready.push_back(r);
  }
  for (auto& c : calls) {
    if (c) c();
  }
  for (auto& r : ready) r("");  // "" = any kind: workers poll once
}

void JobEventHub::FanOutJob(const JobNotice& notice) {
  int64_t from = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(notice.job_id);
    if (it == jobs_.end() || it->second.read_up_to >= notice.sequence) return;
    from = it->second.read_up_to;
  }
  // One read for every subscriber of the job.
  std::vector<std::shared_ptr<const v1::JobEvent>> events;
  PgJobStore store(reader_);
  while (from < notice.sequence) {
    auto page = store.ListEvents(notice.job_id, from, kReadBatch);
    if (!page.ok() || page->empty()) break;
    for (auto& e : *page) {
      from = e.sequence();
      events.push_back(std::make_shared<const v1::JobEvent>(std::move(e)));
    }
  }
  std::vector<JobSubscriber> subscribers;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(notice.job_id);
    if (it == jobs_.end()) return;
    it->second.read_up_to = std::max(it->second.read_up_to, from);
    for (auto& [h, s] : it->second.subscribers) subscribers.push_back(s);
  }
  Deliver(subscribers, events);
  if (from < notice.sequence) {
    for (auto& s : subscribers) s.resync();  // a read failed: they catch up themselves
  }
}

void JobEventHub::Deliver(const std::vector<JobSubscriber>& subscribers,
                          const std::vector<std::shared_ptr<const v1::JobEvent>>& events) {
  auto deliver = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      for (const auto& e : events) subscribers[i].on_event(e);
    }
  };
  const size_t n = subscribers.size();
  size_t shares = 1;
  if (fanout_ != nullptr && n >= 2 * kMinShare) {
    shares = std::min(n / kMinShare, fanout_threads_);
  }
  // Shares 1.. go to the fan-out threads (inline if they refuse); this
  // thread takes share 0 and then waits for the rest.
  absl::BlockingCounter pending(static_cast<int>(shares - 1));
  for (size_t k = 1; k < shares; ++k) {
    const size_t begin = n * k / shares, end = n * (k + 1) / shares;
    absl::Status queued = fanout_->Submit([&, begin, end] {
      deliver(begin, end);
      pending.DecrementCount();
    });
    if (!queued.ok()) {
      deliver(begin, end);
      pending.DecrementCount();
    }
  }
  deliver(0, n / shares);
  pending.Wait();
}

void JobEventHub::Dispatch(const std::string& channel, const std::string& payload) {
  if (channel == kReadyChannel) {
    std::vector<std::function<void(const std::string&)>> ready;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [h, r] : ready_) ready.push_back(r);
    }
    for (auto& r : ready) r(payload);
    return;
  }
  JobNotice notice;
  if (!ParseNotice(payload, &notice)) {
    spdlog::warn("jobs: ignoring malformed notification '{}'", payload);
    return;
  }
  std::vector<std::function<void(const JobNotice&)>> owners;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [h, s] : owners_) {
      if (s.owner_id.empty() || s.owner_id == notice.owner_id) owners.push_back(s.on_notice);
    }
  }
  for (auto& o : owners) o(notice);
  FanOutJob(notice);
}

void JobEventHub::Run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    PGconn* conn = PQconnectdb(conninfo_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      spdlog::warn("jobs: event listener cannot connect ({}); retrying",
                   absl::string_view(PQerrorMessage(conn)));
      PQfinish(conn);
      pollfd p{wake_fd_[0], POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(backoff.count()));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    PGresult* r = PQexec(conn, "LISTEN orchestrator_job_events; LISTEN orchestrator_jobs_ready");
    const bool listening = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!listening) {
      spdlog::warn("jobs: LISTEN failed ({}); retrying", absl::string_view(PQerrorMessage(conn)));
      PQfinish(conn);
      pollfd p{wake_fd_[0], POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(backoff.count()));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    if (!first_listen_.HasBeenNotified()) first_listen_.Notify();
    ResyncAll();  // anything committed while we were not listening
    while (!stopping_) {
      pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
      if (::poll(fds, 2, 1000) < 0) continue;
      if (fds[1].revents) break;
      if (!PQconsumeInput(conn)) {
        spdlog::warn("jobs: event listener lost its connection; reconnecting");
        break;
      }
      while (PGnotify* n = PQnotifies(conn)) {
        std::string channel = n->relname, payload = n->extra;
        PQfreemem(n);
        Dispatch(channel, payload);
      }
    }
    PQfinish(conn);
  }
}

}  // namespace orchestrator::jobs
