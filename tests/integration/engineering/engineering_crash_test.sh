#!/usr/bin/env bash
# orchestratord SIGKILLed in the middle of engineering runs (preparing,
# while the agent works, while the tests run, while pushing): after a
# restart every run's job runs again and succeeds, and each project's main
# holds exactly one commit for its run, the one the job reports.
#
#   engineering_crash_test.sh <orchestratord> <buf>
set -euo pipefail
orchestratord="$1"
buf="$2"
# shellcheck source=../../support/private_pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../support/private_pg.sh"

work="$(mktemp -d -t engineering_crash.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  private_pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/orch.log" ] && tail -40 "$work/orch.log" >&2; exit 1; }

private_pg_start

port="$(free_port)"
git_port="$(free_port)"
url="http://127.0.0.1:$port"
(umask 077 && openssl rand -hex 32 >"$work/mesh.credential" && head -c 32 /dev/urandom | base64 >"$work/secrets.key")
start() {
  "$orchestratord" --services=all --job_lease=2s --listen="127.0.0.1:$port" \
    --mesh_credential_file="$work/mesh.credential" --secrets_key_file="$work/secrets.key" \
    --database_url="$pg_conninfo" \
    --bootstrap_token_file="$work/admin.token" --agents_dir="$work/agents" \
    --scaffolder_dir="$work/scaffolder" --git_http_listen="127.0.0.1:$git_port" \
    --engineering_dir="$work/engineering" \
    </dev/null >>"$work/orch.log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do
    [ -s "$work/admin.token" ] && "$buf" curl --protocol grpc --http2-prior-knowledge -d '{}' \
      "$url/grpc.health.v1.Health/Check" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "orchestratord did not start"
}
call() {
  "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" -d "$2" "$url/$1"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_job() {
  timeout 240 "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" \
    -d "{\"jobId\":\"$1\"}" "$url/orchestrator.jobs.v1.JobService/WatchJob" 2>&1 |
    grep -o '"toState": "[A-Z_]*"' | tail -n1 || true
}

start
auth="authorization: Bearer $(tr -d '[:space:]' <"$work/admin.token")"

# The task: a pause while the agent works (so kills land in it), a change
# the template's tests check, and a summary.
steps='{"steps": [{"run": "sleep 2"}, {"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"Crash-proof! "}, {"say": "Greet crash-proof"}]}'
task="$(python3 -c 'import json,sys; print(json.dumps("Do as the steps say.\n\n```orchestrator-steps\n" + sys.argv[1] + "\n```\n"))' "$steps")"

declare -A job_of run_of
interrupted=0
# Killed once the run's progress reaches: preparing (2), implementing
# (10), testing (23), pushing (90).
kill_after=(2 10 23 90)
for round in 0 1 2 3; do
  project="$(call orchestrator.projects.v1.ProjectService/CreateProject \
    "{\"project\":{\"name\":\"crash-$round\"}}" | json 'd["project"]["id"]')"
  scaffold="$(call orchestrator.scaffolder.v1.ScaffolderService/Scaffold \
    "{\"projectId\":\"$project\",\"templateId\":\"python-http\"}" | json 'd["job"]["id"]')"
  [ "$(wait_job "$scaffold")" = '"toState": "JOB_STATE_SUCCEEDED"' ] || fail "scaffold of $project"
  request="{\"projectId\":\"$project\",\"instructions\":$task,\"requestId\":\"crash-$round\"}"
  out="$(call orchestrator.engineering.v1.EngineeringService/TriggerEngineering "$request")"
  job="$(json 'd["job"]["id"]' <<<"$out")"
  run_of[$project]="$(json 'd["run"]["id"]' <<<"$out")"
  step="${kill_after[round]}"
  for _ in $(seq 3000); do
    reached="$(call orchestrator.jobs.v1.JobService/GetJob "{\"jobId\":\"$job\"}" |
      json 'd["job"].get("progressPercent", 0)')"
    ((reached >= step)) && break
    sleep 0.01
  done
  had="$(call orchestrator.jobs.v1.JobService/GetJob "{\"jobId\":\"$job\"}" |
    json 'd["job"].get("progressMessage", "nothing yet")')"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  start
  # The same request again: the same job and run.
  again="$(call orchestrator.engineering.v1.EngineeringService/TriggerEngineering "$request")"
  [ "$(json 'd["job"]["id"]' <<<"$again")" = "$job" ] || fail "a retried trigger made a new job"
  job_of[$project]="$job"
  echo "round $round: killed orchestratord when the run had: $had"
done

for project in "${!job_of[@]}"; do
  job="${job_of[$project]}"
  run="${run_of[$project]}"
  last="$(wait_job "$job")"
  [ "$last" = '"toState": "JOB_STATE_SUCCEEDED"' ] ||
    fail "job $job ended with '$last': $(call orchestrator.jobs.v1.JobService/GetJob "{\"jobId\":\"$job\"}")"
  got="$(call orchestrator.jobs.v1.JobService/GetJob "{\"jobId\":\"$job\"}")"
  sha="$(json 'd["job"]["result"]["commit_sha"]' <<<"$got")"
  repos=("$work/scaffolder/repositories/$project"*.git)
  [ "${#repos[@]}" = 1 ] || fail "project $project has ${#repos[@]} repositories"
  commits="$(git --git-dir="${repos[0]}" log --format=%H --grep="^Orchestrator-Run: $run\$" refs/heads/main)"
  [ "$(wc -l <<<"$commits")" = 1 ] || fail "main of $project has these commits for run $run: $commits"
  [ "$commits" = "$sha" ] || fail "main's commit for run $run is $commits, the job says $sha"
  head="$(git --git-dir="${repos[0]}" rev-parse refs/heads/main)"
  [ "$head" = "$sha" ] || fail "project $project's main is $head, the job says $sha"
  git --git-dir="${repos[0]}" show "$sha:app.py" | grep -q 'Crash-proof!' || fail "the change is not in $sha"
  attempts="$(json 'd["job"]["attempt"]' <<<"$got")"
  ((attempts < 2)) || interrupted=$((interrupted + 1))
  echo "ok: $project: one commit ${sha:0:12} for run $run on main, job attempts $attempts"
done
((interrupted > 0)) || fail "no kill interrupted a running job (every job ran once): nothing was tested"
echo "PASS: engineering runs survive SIGKILL with exactly one commit each on main"
