#include "services/jobs/domain/job_board.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/pagination/page_budget.h"
#include "services/common/validation/fields.h"

namespace orchestrator::jobs {
namespace {

constexpr int32_t kDefaultPageSize = 50;
constexpr int32_t kMaxPageSize = 500;
constexpr int32_t kDefaultEventPage = 100;
constexpr int32_t kMaxEventPage = 1000;

absl::Status CheckId(absl::string_view field, absl::string_view id) {
  if (auto s = RequireNonEmpty(field, id); !s.ok()) return s;
  return CheckToken(field, id);
}

}  // namespace

absl::StatusOr<v1::Job> JobBoard::Get(const Principal& caller, absl::string_view job_id) {
  if (auto s = CheckId("job_id", job_id); !s.ok()) return s;
  auto job = jobs_->Get(job_id);
  if (job.ok() && !CanSeeOwner(caller, job->owner_id())) job = absl::NotFoundError("");
  if (absl::IsNotFound(job.status())) {
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  }
  return job;
}

absl::StatusOr<v1::ListJobsResponse> JobBoard::List(const Principal& caller,
                                                    const v1::ListJobsRequest& req) {
  if (!v1::JobState_IsValid(req.state())) {
    return InvalidField("state", absl::StrCat("unknown state ", req.state()));
  }
  for (auto [field, value] :
       {std::pair<absl::string_view, absl::string_view>{"owner_id", req.owner_id()},
        {"project_id", req.project_id()},
        {"kind", req.kind()}}) {
    if (auto s = CheckToken(field, value); !s.ok()) return s;
  }
  auto owner = OwnerFilter(caller, req.owner_id());
  if (!owner.ok()) return owner.status();
  JobFilter filter{*owner, req.project_id(), req.kind(), req.state()};
  const std::string filters =
      absl::StrCat("owner=", filter.owner_id, ";project=", filter.project_id, ";kind=", filter.kind,
                   ";state=", filter.state);
  auto page =
      ParsePageRequest(req.page_size(), req.page_token(), filters, kDefaultPageSize, kMaxPageSize);
  if (!page.ok()) return page.status();
  auto rows = jobs_->List(filter, *page);
  if (!rows.ok()) return rows.status();
  v1::ListJobsResponse out;
  PageBudget budget;
  for (auto& j : rows->jobs) {
    if (!budget.Take(j)) {
      // Full by size: the next page starts after the last job sent (keys as the store's).
      const v1::Job& last = out.jobs(out.jobs_size() - 1);
      const int64_t micros =
          last.create_time().seconds() * 1000000 + last.create_time().nanos() / 1000;
      out.set_next_page_token(MakePageToken(filters, {absl::StrCat(micros), last.id()}));
      return out;
    }
    *out.add_jobs() = std::move(j);
  }
  if (!rows->last_keys.empty()) out.set_next_page_token(MakePageToken(filters, rows->last_keys));
  return out;
}

absl::StatusOr<v1::ListJobEventsResponse> JobBoard::ListEvents(
    const Principal& caller, const v1::ListJobEventsRequest& req) {
  if (req.after_sequence() < 0) return InvalidField("after_sequence", "must not be negative");
  auto job = Get(caller, req.job_id());
  if (!job.ok()) return job.status();
  const std::string filters = absl::StrCat("events=", req.job_id());
  auto page = ParsePageRequest(req.page_size(), req.page_token(), filters, kDefaultEventPage,
                               kMaxEventPage);
  if (!page.ok()) return page.status();
  int64_t after = req.after_sequence();
  if (page->after.size() == 1 && !absl::SimpleAtoi(page->after[0], &after)) {
    return InvalidField("page_token", "is malformed");
  }
  auto events = jobs_->ListEvents(req.job_id(), after, page->page_size + 1);
  if (!events.ok()) return events.status();
  v1::ListJobEventsResponse out;
  const int n = std::min<int>(events->size(), page->page_size);
  PageBudget budget;
  for (int i = 0; i < n && budget.Take((*events)[i]); ++i) {
    *out.add_events() = std::move((*events)[i]);
  }
  if (static_cast<int>(events->size()) > out.events_size()) {
    out.set_next_page_token(
        MakePageToken(filters, {std::to_string(out.events(out.events_size() - 1).sequence())}));
  }
  return out;
}

absl::StatusOr<v1::Job> JobBoard::Cancel(const Principal& caller, const v1::CancelJobRequest& req) {
  if (auto s = CheckText("reason", req.reason(), 1024); !s.ok()) return s;
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto job = Get(caller, req.job_id());
  if (!job.ok()) return job.status();
  return jobs_->Cancel(req.job_id(), caller.user_id, req.reason(), clock_());
}

absl::StatusOr<v1::Job> JobBoard::Retry(const Principal& caller, const v1::RetryJobRequest& req) {
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto job = Get(caller, req.job_id());
  if (!job.ok()) return job.status();
  return jobs_->Retry(req.job_id(), clock_());
}

absl::StatusOr<v1::ClearProjectJobsResponse> JobBoard::ClearProject(
    const Principal& caller, const v1::ClearProjectJobsRequest& req) {
  // The interceptor lets only the mesh call; not while acting for a user.
  if (caller.kind != PrincipalKind::kMesh || !caller.admin) {
    return absl::PermissionDeniedError("only the mesh itself clears a project's jobs");
  }
  if (auto s = CheckId("project_id", req.project_id()); !s.ok()) return s;
  if (auto s = CheckText("reason", req.reason(), 1024); !s.ok()) return s;
  const std::string reason =
      req.reason().empty() ? "the project's state was cleared" : req.reason();
  for (const auto& id : req.delete_job_ids()) {
    if (auto s = CheckId("delete_job_ids", id); !s.ok()) return s;
  }
  const std::vector<std::string> delete_ids(req.delete_job_ids().begin(),
                                            req.delete_job_ids().end());
  auto cleared = jobs_->ClearProject(req.project_id(), reason, delete_ids, clock_());
  if (!cleared.ok()) return cleared.status();
  v1::ClearProjectJobsResponse out;
  out.set_jobs_cancelled(cleared->cancelled);
  for (auto& id : cleared->deleted_job_ids) out.add_deleted_job_ids(std::move(id));
  out.set_events_deleted(cleared->events_deleted);
  for (auto& id : cleared->running_job_ids) out.add_running_job_ids(std::move(id));
  for (auto& id : cleared->ended_job_ids) out.add_ended_job_ids(std::move(id));
  return out;
}

}  // namespace orchestrator::jobs
