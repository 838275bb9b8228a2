#!/usr/bin/env bash
# End-to-end smoke test of the whole mesh in one process, the way an operator
# reaches it: orchestratord --services=all on a free port over its own database,
# driven only through `buf curl` (reflection, health, auth, a project round trip),
# then a graceful SIGTERM.
#
#   bash tests/e2e/mesh_smoke.sh <path-to-orchestratord> <path-to-buf>
#
# Needs PGHOST/PGPORT/PGUSER/PGPASSWORD from pg_virtualenv (tools/test sets them).
set -euo pipefail

[ $# -eq 2 ] || {
  echo "usage: $0 <path-to-orchestratord> <path-to-buf>" >&2
  exit 2
}
orchestratord="$1"
buf="$2"
drain_seconds=5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

[ -x "$orchestratord" ] || fatal "orchestratord not executable: $orchestratord"
[ -x "$buf" ] || fatal "buf not executable: $buf"

port="$(free_port)"
url="http://127.0.0.1:$port"
start_orchestratord "$orchestratord" "127.0.0.1:$port" --drain_deadline="${drain_seconds}s" --demo_jobs

# Runs buf curl against the server; prints its stdout and stderr (errors are JSON there).
rpc() { "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 10s "$@" 2>&1 || true; }

health() {
  rpc -d "{\"service\":\"$1\"}" "$url/grpc.health.v1.Health/Check" | json_get status
}

deadline=$((SECONDS + 30))
until [ "$(health "")" = SERVING ]; do
  running || fatal "orchestratord exited during startup"
  ((SECONDS < deadline)) || fatal "orchestratord did not report SERVING within 30 s"
  sleep 0.3
done
pass "orchestratord serving on 127.0.0.1:$port"

mark
# (a) Reflection lists every component's service.
services="$(rpc --list-services "$url")"
for svc in \
  orchestrator.projects.v1.ProjectService \
  orchestrator.jobs.v1.JobService \
  orchestrator.sessions.v1.SessionService \
  orchestrator.agents.v1.AgentService \
  orchestrator.agents.v1.RunnerService \
  orchestrator.scaffolder.v1.ScaffolderService \
  orchestrator.engineering.v1.EngineeringService \
  orchestrator.deploy.v1.DeployService \
  orchestrator.infra.v1.InfraService \
  orchestrator.scheduler.v1.SchedulerService \
  orchestrator.admin.v1.AdminService \
  grpc.health.v1.Health; do
  grep -qxF "$svc" <<<"$services" || fail "reflection does not list $svc"
done
pass "reflection lists the services"

mark
# (b) Health of the server and of one component.
for svc in "" orchestrator.projects.v1.ProjectService; do
  status="$(health "$svc")"
  [ "$status" = SERVING ] || fail "health of '${svc}' is '${status}', want SERVING"
done
pass "health checks"

mark
# (c) No token: Unauthenticated.
out="$(rpc -d '{}' "$url/orchestrator.projects.v1.ProjectService/ListProjects")"
[ "$(json_get code <<<"$out")" = unauthenticated ] ||
  fail "a call without a token should be unauthenticated; got: $out"
pass "a call without a token is unauthenticated"

mark
# (d) The bootstrap admin token creates a project and reads it back.
[ -s "$work/admin.token" ] || fatal "no bootstrap token written to --bootstrap_token_file"
mode="$(stat -c %a "$work/admin.token")"
[ "$mode" = 600 ] || fail "bootstrap token file has mode $mode, want 600"
token="$(tr -d '[:space:]' <"$work/admin.token")"
auth="authorization: Bearer $token"
out="$(rpc -H "$auth" -d '{"project":{"name":"e2e-demo"}}' \
  "$url/orchestrator.projects.v1.ProjectService/CreateProject")"
project_id="$(json_get project.id <<<"$out")"
[ -n "$project_id" ] || fatal "CreateProject returned no project id; got: $out"
out="$(rpc -H "$auth" -d "{\"project_id\":\"$project_id\"}" \
  "$url/orchestrator.projects.v1.ProjectService/GetProject")"
name="$(json_get project.name <<<"$out")"
[ "$name" = e2e-demo ] || fail "GetProject $project_id returned name '$name', want e2e-demo; got: $out"
pass "CreateProject then GetProject with the bootstrap admin token"

mark
# (d2) A demo job, watched with buf curl from its first event to its last.
out="$(rpc -H "$auth" -d '{"kind":"demo.sleep","params":{"seconds":0.5,"steps":5}}' \
  "$url/orchestrator.jobs.v1.JobService/EnqueueDemoJob")"
job_id="$(json_get job.id <<<"$out")"
[ -n "$job_id" ] || fatal "EnqueueDemoJob returned no job id; got: $out"
stream="$(timeout 30 "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" \
  -d "{\"jobId\":\"$job_id\"}" "$url/orchestrator.jobs.v1.JobService/WatchJob" 2>&1)" ||
  fail "WatchJob did not end cleanly: $stream"
summary="$(python3 -c '
import json, sys
text = sys.stdin.read(); decoder = json.JSONDecoder(); i = 0; events = []
while True:
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    obj, i = decoder.raw_decode(text, i); events.append(obj["event"])
seqs = [int(e["sequence"]) for e in events]
progress = sum(1 for e in events if e["type"] == "JOB_EVENT_TYPE_PROGRESS")
last = events[-1].get("stateChanged", {}).get("toState", "")
print(seqs == list(range(1, len(seqs) + 1)), progress, last)' <<<"$stream" 2>&1)"
[ "$summary" = "True 5 JOB_STATE_SUCCEEDED" ] ||
  fail "WatchJob stream: want contiguous sequences, 5 progress events, SUCCEEDED last; got '$summary' from: $stream"
pass "WatchJob streams a demo job through buf curl to its end"

mark
# (e) The token never reaches the log.
if grep -qF -- "$token" "$log_file"; then fail "the admin token appears in orchestratord's log"; fi
pass "the token is not in the log"

# (f) SIGTERM drains and exits cleanly within the drain deadline (plus a second of slack).
kill -TERM "$pid"
for ((tenths = 0; tenths < (drain_seconds + 1) * 10; tenths++)); do
  running || break
  sleep 0.1
done
if running; then
  fail "orchestratord still running $((drain_seconds + 1)) s after SIGTERM"
else
  code=0
  wait "$pid" || code=$?
  pid=""
  if ((code == 0)); then pass "SIGTERM: clean exit"; else fail "SIGTERM: exit status $code, want 0"; fi
fi

finish "mesh smoke test"
