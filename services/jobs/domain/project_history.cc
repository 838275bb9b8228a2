#include "services/jobs/domain/project_history.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "services/common/validation/request_bounds.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::jobs {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kDefaultHistorySteps = 200;
constexpr size_t kMaxSummaryBytes = 300;

std::string SummaryOf(const v1::Job& job) {
  switch (job.state()) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_RUNNING:
      return job.progress_message().empty()
                 ? "running"
                 : Truncated(absl::StrCat("running: ", job.progress_message()), kMaxSummaryBytes);
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return Truncated(absl::StrCat("failed: ", job.error().message()), kMaxSummaryBytes);
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "";
  }
}

v1::HistoryStep JobStep(const v1::Job& job) {
  v1::HistoryStep step;
  step.set_kind(v1::HISTORY_STEP_KIND_JOB);
  step.set_id(job.id());
  step.set_parent_id(!job.origin().message_id().empty() ? job.origin().message_id()
                                                        : job.origin().job_id());
  step.set_job_kind(job.kind());
  step.set_actor(job.origin().actor());
  *step.mutable_create_time() = job.create_time();
  if (job.has_end_time()) *step.mutable_end_time() = job.end_time();
  step.set_state(job.state());
  step.set_summary(SummaryOf(job));
  for (const auto& [field, value] : MadeOf(job.result())) (*step.mutable_made())[field] = value;
  *step.mutable_usage() = UsageOf(job.result());
  *step.mutable_origin() = job.origin();
  return step;
}

v1::HistoryStep MessageStep(const sessions::v1::SessionMessage& m) {
  v1::HistoryStep step;
  const bool news = !m.job_id().empty();
  step.set_kind(news ? v1::HISTORY_STEP_KIND_JOB_NEWS : v1::HISTORY_STEP_KIND_USER_MESSAGE);
  step.set_id(m.id());
  step.set_parent_id(m.job_id());
  step.set_actor(news ? kPlatformActor : "user");
  *step.mutable_create_time() = m.create_time();
  step.set_summary(Truncated(m.text(), kMaxSummaryBytes));
  *step.mutable_usage() = m.turn_usage();
  return step;
}

}  // namespace

std::vector<std::string> OriginMessageIds(const std::vector<v1::Job>& jobs) {
  std::vector<const v1::Job*> newest;
  for (const auto& j : jobs) newest.push_back(&j);
  std::sort(newest.begin(), newest.end(), [](const v1::Job* a, const v1::Job* b) {
    return TimeUtil::TimestampToMicroseconds(a->create_time()) >
           TimeUtil::TimestampToMicroseconds(b->create_time());
  });
  std::vector<std::string> ids;
  absl::flat_hash_set<std::string> seen;
  for (const v1::Job* j : newest) {
    const std::string& id = j->origin().message_id();
    if (!id.empty() && seen.insert(id).second) ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<v1::ListProjectHistoryResponse> BuildProjectHistory(
    const std::vector<v1::Job>& jobs, const std::vector<sessions::v1::SessionMessage>& messages,
    const std::string& leading_to, int page_size) {
  std::vector<v1::HistoryStep> steps;
  absl::flat_hash_set<std::string> ids;
  for (const auto& j : jobs) {
    if (ids.insert(j.id()).second) steps.push_back(JobStep(j));
  }
  for (const auto& m : messages) {
    if (ids.insert(m.id()).second) steps.push_back(MessageStep(m));
  }
  // Oldest first; a message before the job its turn started at the same
  // instant.
  std::stable_sort(
      steps.begin(), steps.end(), [](const v1::HistoryStep& a, const v1::HistoryStep& b) {
        const int64_t at = TimeUtil::TimestampToMicroseconds(a.create_time());
        const int64_t bt = TimeUtil::TimestampToMicroseconds(b.create_time());
        if (at != bt) return at < bt;
        return (a.kind() == v1::HISTORY_STEP_KIND_JOB) < (b.kind() == v1::HISTORY_STEP_KIND_JOB);
      });
  if (!leading_to.empty()) {
    absl::flat_hash_map<std::string, const v1::HistoryStep*> by_id;
    const v1::HistoryStep* target = nullptr;
    for (const auto& s : steps) {
      by_id[s.id()] = &s;
      auto release = s.made().find("release_id");
      if (s.id() == leading_to || (release != s.made().end() && release->second == leading_to)) {
        // A release made by a deploy and then by a rollback back to it: the
        // deploy made it.
        if (target == nullptr) target = &s;
      }
    }
    if (target == nullptr) {
      return absl::NotFoundError(absl::StrCat("leading_to: no job or release '", leading_to,
                                              "' in the project's history"));
    }
    absl::flat_hash_set<std::string> chain;
    for (const v1::HistoryStep* s = target; s != nullptr && chain.insert(s->id()).second;) {
      auto parent = by_id.find(s->parent_id());
      s = parent == by_id.end() ? nullptr : parent->second;
    }
    std::erase_if(steps, [&](const v1::HistoryStep& s) { return !chain.contains(s.id()); });
  }
  v1::ListProjectHistoryResponse out;
  const size_t keep = static_cast<size_t>(page_size > 0 ? page_size : kDefaultHistorySteps);
  if (steps.size() > keep) {
    out.set_truncated(true);
    steps.erase(steps.begin(), steps.end() - static_cast<std::ptrdiff_t>(keep));
  }
  for (auto& s : steps) {
    AddUsage(s.usage(), out.mutable_total_usage());
    *out.add_steps() = std::move(s);
  }
  return out;
}

}  // namespace orchestrator::jobs
