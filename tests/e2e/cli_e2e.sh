#!/usr/bin/env bash
# The orchestrator CLI binary against orchestratord on a unix socket, as an
# operator and an agent use it: ORCHESTRATOR_ADDR/TOKEN from the
# environment, tables and --json, --follow exit statuses, usage errors, a
# limited agent token, skills export.
#
#   bash tests/e2e/cli_e2e.sh <path-to-orchestratord> <path-to-orchestrator>
set -euo pipefail

[ $# -eq 2 ] || {
  echo "usage: $0 <path-to-orchestratord> <path-to-orchestrator>" >&2
  exit 2
}
orchestratord="$1"
cli="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

socket="$work/orchestrator.sock"
start_orchestratord "$orchestratord" "unix:$socket" --demo_jobs
export ORCHESTRATOR_ADDR="unix:$socket"
wait_for 30 "the bootstrap token" test -s "$work/admin.token"
ORCHESTRATOR_TOKEN="$(tr -d '[:space:]' <"$work/admin.token")"
export ORCHESTRATOR_TOKEN
wait_for 30 "orchestratord answering on $ORCHESTRATOR_ADDR" "$cli" whoami
pass "orchestratord serving on $ORCHESTRATOR_ADDR"

# status COMMAND...: runs the CLI, keeps stdout in $out and stderr in $err.
status() {
  local code=0
  out="$("$cli" "$@" 2>"$work/err")" || code=$?
  err="$(cat "$work/err")"
  return "$code"
}
expect_status() {
  local want="$1" code=0
  shift
  status "$@" || code=$?
  ((code == want)) || fail "orchestrator $*: exit $code, want $want; stderr: $err"
}

mark
expect_status 0 project create e2e-shop --description "made by the e2e test" --json
project_id="$(json_get project.id <<<"$out")"
[ -n "$project_id" ] || fatal "project create --json printed no project.id: $out"
expect_status 0 project list
head -n1 <<<"$out" | grep -Eq '^ID +NAME +STATUS' || fail "project list header: $out"
grep -q "^$project_id  *e2e-shop " <<<"$out" || fail "project list row for $project_id: $out"
pass "project create --json, then list as a table"

mark
expect_status 0 jobs demo demo.sleep --params '{"seconds":0.3,"steps":3}' --follow
grep -q 'running → succeeded' <<<"$out" || fail "--follow output lacks the end: $out"
expect_status 1 jobs demo demo.fail --params '{"code":"FAILED_PRECONDITION"}' --follow
grep -q 'FAILED_PRECONDITION' <<<"$err" || fail "a failed job's error is not on stderr: $err"
pass "--follow exits 0 for a job that succeeds and 1 for one that fails"

mark
expect_status 2 project create
grep -q 'missing NAME' <<<"$err" || fail "usage error does not name NAME: $err"
expect_status 2 jobs list --colour red
expect_status 2 infra release alc_x
[ -z "$out" ] || fail "a usage error printed on stdout: $out"
pass "bad command lines exit 2 with the reason on stderr"

mark
user_id="$(ORCHESTRATOR_TOKEN="$ORCHESTRATOR_TOKEN" "$cli" whoami --json | json_get user.id)"
expect_status 0 admin create-token "$user_id" --kind agent --permissions project.get --json
agent_token="$(json_get value <<<"$out")"
[ -n "$agent_token" ] || fatal "admin create-token printed no value: $out"
ORCHESTRATOR_TOKEN="$agent_token" expect_status 0 project get "$project_id"
ORCHESTRATOR_TOKEN="$agent_token" expect_status 5 project create not-allowed
grep -q "missing permission 'project.create'" <<<"$err" || fail "denial does not name the permission: $err"
pass "an agent token limited to project.get is refused project create, naming the permission"

mark
expect_status 0 scheduler tasks
grep -q '^jobs.prune ' <<<"$out" || fail "scheduler tasks does not list jobs.prune: $out"
pass "scheduler tasks lists the platform's periodic tasks"

mark
expect_status 0 skills export --allowed 'deploy.*,project.get' --format claude --out "$work/agent"
grep -q 'orchestrator deploy trigger PROJECT' "$work/agent/CLAUDE.md" || fail "CLAUDE.md lacks deploy trigger"
grep -q 'project create' "$work/agent/CLAUDE.md" && fail "CLAUDE.md lists project create"
head -n2 "$work/agent/.claude/skills/orchestrator-deploy/SKILL.md" | grep -qx "name: orchestrator-deploy" ||
  fail "no deploy skill written where Claude Code loads it"
pass "skills export writes CLAUDE.md and the skills"

finish "CLI end to end"
