#!/usr/bin/env bash
# An engineering run with the real Claude Code (pinned in tools/package.json)
# in a bubblewrap sandbox, against the scripted fake Messages API, driven
# through the orchestrator CLI on a scaffolded python-http project. The
# agent's first attempt breaks a test the template has; the platform's own
# test run catches it and the failing output goes back to the agent, whose
# second attempt fixes it. The run succeeds after two iterations, main holds
# the reported commit, and a fresh clone at it passes its tests.
#
#   bash tests/e2e/engineering_e2e.sh <orchestratord> <orchestrator> <buf> <tools-dir>
set -euo pipefail

[ $# -eq 4 ] || {
  echo "usage: $0 <orchestratord> <orchestrator> <buf> <tools-dir>" >&2
  exit 2
}
orchestratord="$1"
cli="$2"
tools="$4"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
[ -x "$tools/node_modules/.bin/claude" ] || fatal "Claude Code is not installed; run tools/setup"

fake_pid=""
/usr/bin/python3 "$here/../fakes/anthropic_api.py" --port 0 --log "$work/requests.jsonl" \
  >"$work/fake.port" 2>"$work/fake.log" &
fake_pid=$!
trap 'status=$?; set +e; kill "$fake_pid" 2>/dev/null; (exit "$status"); cleanup' EXIT
wait_for 10 "the fake Messages API" test -s "$work/fake.port"
fake_port="$(head -n1 "$work/fake.port")"

port="$(free_port)"
git_port="$(free_port)"
start_orchestratord "$orchestratord" "127.0.0.1:$port" --engineering_agent=claude-code \
  "--session_agent_env=ANTHROPIC_BASE_URL=http://127.0.0.1:$fake_port,ANTHROPIC_API_KEY=sk-fake" \
  "--agent_tool_dirs=$tools/node_modules" "--git_http_listen=127.0.0.1:$git_port" \
  "--scaffolder_dir=$work/scaffolder" "--engineering_dir=$work/engineering"
export ORCHESTRATOR_ADDR="127.0.0.1:$port"
wait_for 30 "the bootstrap token" test -s "$work/admin.token"
ORCHESTRATOR_TOKEN="$(tr -d '[:space:]' <"$work/admin.token")"
export ORCHESTRATOR_TOKEN
wait_for 30 "orchestratord" "$cli" whoami

project="$("$cli" project create e2e-greeter --json | json_get project.id)"
[ -n "$project" ] || fatal "project create printed no id"
"$cli" scaffold run "$project" --template python-http --follow >"$work/scaffold.out" 2>&1 ||
  fatal "scaffolding failed: $(cat "$work/scaffold.out")"

# The fake model runs the task's "run:" line in its first turn, and its
# "fix:" line once the platform says the tests failed.
task='Greet with Howdy.
run: sed -i '"'"'s/^GREETING = .*/GREETING = "Howdy"/; s/b"ok\\n"/b"fine\\n"/'"'"' repo/app.py
fix: sed -i '"'"'s/b"fine\\n"/b"ok\\n"/'"'"' repo/app.py'

mark
out="$("$cli" engineering trigger "$project" "$task" --follow 2>&1)" ||
  fail "the engineering run did not succeed: $out"
echo "$out" | sed 's/^/  | /'
run="$("$cli" engineering runs "$project" --json | json_get runs.0.id 2>/dev/null || true)"
[ -n "$run" ] || run="$(grep -o 'eng_[a-z0-9]*' <<<"$out" | head -n1)"
status_json="$("$cli" engineering status "$run" --json)"
iterations="$(json_get run.iterations <<<"$status_json")"
sha="$(json_get run.change.commitSha <<<"$status_json")"
[ "$iterations" = 2 ] || fail "the run took '$iterations' iterations, not 2: $status_json"
[ "$(json_get run.status <<<"$status_json")" = ENGINEERING_RUN_STATUS_SUCCEEDED ] ||
  fail "the run is not SUCCEEDED: $status_json"
pass "Claude Code's first attempt failed the platform's tests, its second passed"

mark
# The second turn carried the failing output.
/usr/bin/python3 - "$work/requests.jsonl" <<'PY' || fail "the second turn did not carry the failing tests"
import json, sys
texts = [line for line in open(sys.argv[1])]
turns = [t for t in texts if "tests failed after your change" in t]
# unittest's summary, e.g. "FAILED (failures=1, skipped=1)".
if not any("FAILED (failures=1" in t for t in turns):
    print("requests with the follow-up: %d; the last: %s" % (len(turns), turns[-1][-3000:] if turns else ""))
    sys.exit(1)
PY
# Each stage, as the job reported it.
for stage in preparing implementing testing pushing; do
  grep -q "$stage" <<<"$out" || fail "the job's events lack the $stage stage"
done
pass "the failing output went back to the agent, and every stage was reported"

mark
repo_url="$("$cli" project get "$project" --json | json_get project.repositoryUrl)"
remote_main="$(git -c "http.extraHeader=Authorization: Bearer $ORCHESTRATOR_TOKEN" \
  ls-remote "$repo_url" refs/heads/main | cut -f1)"
[ "$remote_main" = "$sha" ] || fail "main is $remote_main, the run reports $sha"
git -c "http.extraHeader=Authorization: Bearer $ORCHESTRATOR_TOKEN" clone -q "$repo_url" "$work/clone"
(cd "$work/clone" && python3 -m unittest discover -s tests >"$work/tests.out" 2>&1) ||
  fail "a fresh clone's tests fail: $(tail -20 "$work/tests.out")"
grep -q 'GREETING = "Howdy"' "$work/clone/app.py" || fail "the change is not in the clone"
pass "main is at the reported commit ${sha:0:12}, and a fresh clone of it passes its tests"

mark
# The sandbox reached the model API and the git host only through the
# egress proxy.
grep -Eq "egress worker=wrk_[a-z0-9]+ target=127\.0\.0\.1:$fake_port allowed" "$log_file" ||
  fail "the model API was not reached through the egress proxy"
grep -Eq "egress worker=wrk_[a-z0-9]+ target=127\.0\.0\.1:$git_port allowed" "$log_file" ||
  fail "the git host was not reached through the egress proxy"
usage="$("$cli" engineering usage --project "$project" --json)"
[ "$(json_get usage.outputTokens <<<"$usage")" -gt 0 ] 2>/dev/null ||
  fail "no model usage was recorded: $usage"
pass "model and git reached through the egress proxy; usage recorded: $(json_get usage.inputTokens <<<"$usage") in / $(json_get usage.outputTokens <<<"$usage") out"

echo "transcript: run $run, iterations $iterations, commit $sha"
finish
