#!/usr/bin/env bash
# A user's Product-Owner session with a real agent CLI (pinned in
# tools/package.json) in bubblewrap sandboxes, against a scripted fake of its
# model API (tests/fakes), driven through the orchestrator CLI: the agent creates a project through its Bash tool
# with its own token, a second message resumes its session, a command
# outside its grants is refused by the mesh, a demo job it starts comes back
# as a notification, and after orchestratord is SIGKILLed its sandboxes are
# gone, its worker is failed, and the next message resumes the session.
#
#   bash tests/e2e/agents_e2e.sh <orchestratord> <orchestrator> <buf> <tools-dir> [claude-code|codex]
set -euo pipefail

[ $# -eq 4 ] || [ $# -eq 5 ] || {
  echo "usage: $0 <orchestratord> <orchestrator> <buf> <tools-dir> [claude-code|codex]" >&2
  exit 2
}
orchestratord="$1"
cli="$2"
buf="$3"
tools="$4"
agent="${5:-claude-code}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

case "$agent" in
  claude-code) agent_bin=claude fake=anthropic_api.py skills_format=claude skills_dir=.claude/skills ;;
  codex) agent_bin=codex fake=openai_api.py skills_format=codex skills_dir=.agents/skills ;;
  *) fatal "unknown agent $agent (claude-code or codex)" ;;
esac
[ -x "$tools/node_modules/.bin/$agent_bin" ] || fatal "$agent is not installed; run tools/setup"

# The fake model API.
fake_pid=""
/usr/bin/python3 "$here/../fakes/$fake" --port 0 --log "$work/requests.jsonl" \
  >"$work/fake.port" 2>"$work/fake.log" &
fake_pid=$!
# cleanup exits with the status it is called with: keep the script's.
trap 'status=$?; set +e; kill "$fake_pid" 2>/dev/null; (exit "$status"); cleanup' EXIT
wait_for 10 "the fake Messages API" test -s "$work/fake.port"
fake_port="$(head -n1 "$work/fake.port")"

port="$(free_port)"
if [ "$agent" = codex ]; then
  agent_env="OPENAI_BASE_URL=http://127.0.0.1:$fake_port/v1,OPENAI_API_KEY=sk-fake"
else
  agent_env="ANTHROPIC_BASE_URL=http://127.0.0.1:$fake_port,ANTHROPIC_API_KEY=sk-fake"
fi
flags=(--demo_jobs "--session_agent=$agent" "--session_agent_env=$agent_env"
  "--agent_tool_dirs=$tools/node_modules")
start_orchestratord "$orchestratord" "127.0.0.1:$port" "${flags[@]}"
export ORCHESTRATOR_ADDR="127.0.0.1:$port"
wait_for 30 "the bootstrap token" test -s "$work/admin.token"
ORCHESTRATOR_TOKEN="$(tr -d '[:space:]' <"$work/admin.token")"
export ORCHESTRATOR_TOKEN
wait_for 30 "orchestratord" "$cli" whoami

send() { "$cli" session send "$1" --timeout 120s 2>"$work/send.err"; }

mark
reply="$(send "Please create a project named e2e-shop")" || fail "session send failed: $(cat "$work/send.err")"
grep -q "Done: prj_" <<<"$reply" || fail "the reply does not name the new project: $reply"
"$cli" project list | grep -q " e2e-shop " || fail "e2e-shop is not among the projects"
grep -q 'orchestrator project create e2e-shop --json' "$work/requests.jsonl" ||
  fail "$agent did not run the CLI through its shell tool"
pass "$agent in its sandbox created a project through the CLI, and the reply came back"

mark
# The sandbox has only loopback: the model API was reached through the
# mesh's egress proxy, which logged it with the worker's id.
grep -Eq "egress worker=wrk_[a-z0-9]+ target=127\.0\.0\.1:$fake_port allowed" "$log_file" ||
  fail "the model API was not reached through the egress proxy"
pass "$agent reached its model API only through the egress proxy"

mark
# The PO's skills, as the runner writes them into its workspace: the agent
# CLI loaded them if the model was told each one's name and description.
"$cli" skills export --profile PRODUCT_OWNER --format "$skills_format" --out "$work/skills" \
  >/dev/null || fail "skills export failed"
/usr/bin/python3 - "$work/requests.jsonl" "$work/skills/$skills_dir" <<'PY' ||
import json, os, sys

def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)

skills = []
for name in sorted(os.listdir(sys.argv[2])):
    front = open(os.path.join(sys.argv[2], name, "SKILL.md")).read().split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front.splitlines())
    skills.append((fields["name"], json.loads(fields["description"])))
assert skills, "no skills exported"
requests = ["\n".join(strings(json.loads(l)["body"])) for l in open(sys.argv[1]) if l.strip()]
missing = min(([n for n, d in skills if "%s: %s" % (n, d) not in text] for text in requests), key=len)
if missing:
    sys.exit("no request names these skills with their descriptions: %s" % ", ".join(missing))
PY
  fail "$agent did not load the skills in its workspace's $skills_dir"
pass "$agent loaded the PO's skills: the model API was sent each one's name and description"

mark
agent_session="$("$cli" session list --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0].get("agentSessionId",""))')"
[ -n "$agent_session" ] || fail "the session has no agent session id"
send "thanks" >/dev/null || fail "second message failed: $(cat "$work/send.err")"
again="$("$cli" session list --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0].get("agentSessionId",""))')"
[ "$again" = "$agent_session" ] || fail "the second message did not resume agent session $agent_session (got $again)"
tail -n1 "$work/requests.jsonl" | grep -q "e2e-shop" || fail "the resumed request does not carry the first turn"
pass "a second message resumes the same agent session"

mark
reply="$(send "run: orchestrator admin create-user mallory")" || fail "session send failed"
grep -q "PERMISSION_DENIED" <<<"$reply" || fail "a command outside the grants was not refused: $reply"
"$cli" admin users | grep -q mallory && fail "mallory was created"
pass "a command outside the PO's grants is refused by the mesh"

mark
# The agent answers with `orchestrator respond`, then ends its turn with
# other words: the user receives both, in that order.
reply="$(send "run: orchestrator respond 'Your shop is on its way.'")" || fail "session send failed"
said="$(grep -n -x 'Your shop is on its way.' <<<"$reply" | head -n1 | cut -d: -f1)"
closing="$(grep -n '^Done: ' <<<"$reply" | head -n1 | cut -d: -f1)"
[ -n "$said" ] && [ -n "$closing" ] && [ "$said" -lt "$closing" ] ||
  fail "the respond and the closing text did not both reach the user in order: $reply"
pass "what $agent said with respond, and its different closing text, both reached the user in order"

mark
# The operator's model key reached the agent (it answered), but no record.
workers="$(timeout 20 "$buf" curl --protocol grpc --http2-prior-knowledge \
  -H "authorization: Bearer $ORCHESTRATOR_TOKEN" -d '{}' \
  "http://127.0.0.1:$port/orchestrator.agents.v1.AgentService/ListWorkers" 2>&1)"
grep -q WORKER_TYPE_PO <<<"$workers" || fail "ListWorkers shows no PO worker: $workers"
if grep -q "sk-fake" <<<"$workers"; then fail "the operator's model key is in a worker record"; fi
pass "the operator's model key is in no worker record"

mark
timeout 60 "$buf" curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer $ORCHESTRATOR_TOKEN" \
  -d '{}' "http://127.0.0.1:$port/orchestrator.sessions.v1.SessionService/WatchNotifications" \
  >"$work/notifications.json" 2>&1 &
watcher=$!
reply="$(send "start a demo job")" || fail "session send failed"
job="$(grep -o 'job_[a-z0-9]*' <<<"$reply" | head -n1 || true)"
[ -n "$job" ] || fail "the reply names no job: $reply"
deadline=$((SECONDS + 40))
until grep -q "Your job $job succeeded" "$work/notifications.json" 2>/dev/null; do
  ((SECONDS < deadline)) || break
  sleep 0.5
done
kill "$watcher" 2>/dev/null || true
grep -q "Your job $job succeeded" "$work/notifications.json" ||
  fail "no notification that $job finished: $(cat "$work/notifications.json")"
pass "the demo job the agent started finishing reached the user as a notification"

mark
worker="$("$cli" session list --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0].get("workerId",""))')"
[ -n "$worker" ] || fatal "the session has no worker"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
pid=""
sleep 1
if pgrep -f "ORCHESTRATOR_WORKER_ID=$worker" >/dev/null || pgrep -f "$work/agents" >/dev/null; then
  fail "sandbox processes outlived orchestratord"
fi
launch_orchestratord "$orchestratord" "127.0.0.1:$port" "${flags[@]}"
wait_for 30 "orchestratord after the restart" "$cli" whoami
state="$(timeout 20 "$buf" curl --protocol grpc --http2-prior-knowledge \
  -H "authorization: Bearer $ORCHESTRATOR_TOKEN" -d "{\"workerId\":\"$worker\"}" \
  "http://127.0.0.1:$port/orchestrator.agents.v1.AgentService/GetWorker" 2>&1)"
grep -q WORKER_STATE_FAILED <<<"$state" || fail "the orphaned worker is not FAILED: $state"
grep -q restarted <<<"$state" || fail "the orphaned worker's reason does not say why: $state"
send "are you still there" >/dev/null || fail "the first message after the restart failed: $(cat "$work/send.err")"
after="$("$cli" session list --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0].get("agentSessionId",""))')"
[ "$after" = "$agent_session" ] || fail "after the restart the session did not resume $agent_session (got $after)"
pass "after a SIGKILL the sandboxes are gone, the worker FAILED, and the session resumes"

finish "agents end to end ($agent)"
