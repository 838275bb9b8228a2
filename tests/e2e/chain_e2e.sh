#!/usr/bin/env bash
# From one message to a live URL (issue 18), through Telegram: the
# gateway's bridge against the fake Bot API, the whole mesh with the
# scripted PO agent (no model key), deploys to a private Podman service
# behind a real Caddy. A user writes "build a python service called NAME
# that answers TEXT" and the chat is told each step, in order, ending with
# "NAME is live at URL", which serves TEXT; "change the text to ..." goes
# round again and the same URL serves the new text. Then orchestratord is
# killed (SIGKILL) while another user's chain runs its coding agent, and
# again while it deploys, and restarted on the same database and
# directories each time: the chain still ends live, and each of its
# messages reaches the chat exactly once.
#
#   bash tests/e2e/chain_e2e.sh <orchestratord> <orchestrator-gateway> <orchestrator> \
#     <orchestrator-runner> [claude-code <tools-dir>]
#
# With claude-code the PO is the real Claude Code CLI (tools/node_modules)
# against the fake Messages API (tests/fakes/anthropic_api.py), whose "model"
# runs each step's `orchestrator` command through its Bash tool: the first
# flow only, and the history's model usage of each of the PO's turns.
#
# Needs root (rootful Podman), podman, caddy, bwrap and the local base image
# of the python template, as tools/setup installs them.
set -euo pipefail

[ $# -eq 4 ] || [ $# -eq 6 ] || {
  echo "usage: $0 <orchestratord> <orchestrator-gateway> <orchestrator> <orchestrator-runner>" \
    "[claude-code <tools-dir>]" >&2
  exit 2
}
agent="${5:-scripted}"
tools="${6:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

# Every port this script picks (lib.sh's start_gateway too) is below the
# kernel's ephemeral ports (32768-60999), which any outgoing connection may
# take meanwhile, and outside the deploys' --local_port_range (30000-32767).
free_port() {
  /usr/bin/python3 -c '
import random, socket
for _ in range(100):
    port = random.randrange(10000, 20000)
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        continue
    print(port)
    break'
}

[ "$(id -u)" -eq 0 ] || fatal "needs root: deploys run in rootful Podman"
for tool in podman caddy bwrap; do
  command -v "$tool" >/dev/null || fatal "$tool is missing: run tools/setup"
done
export CONTAINERS_CONF="$root/tools/image/containers.conf"
python_base="localhost/orchestrator-template-python:bookworm"
podman image exists "$python_base" ||
  fatal "no image $python_base: run tools/setup (tools/image/base-images python)"

# Copies: a rebuild during the run must not swap them under the mesh
# (orchestratord runs orchestrator-runner and orchestrator from its own directory).
mkdir "$work/bin"
cp "$1" "$2" "$3" "$4" "$work/bin/"
orchestratord="$work/bin/$(basename "$1")"
gateway="$work/bin/$(basename "$2")"
cli="$work/bin/$(basename "$3")"

fake_pid="" podman_pid="" caddy_pid="" model_pid=""
# stop PID: SIGTERM, SIGKILL after 5 s.
stop() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do pid_running "$1" || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
stop_parts() {
  local status=$? installation id
  # Errors must not cut the cleanup short (nor `(exit "$status")` end it).
  set +e
  if ((status != 0)); then
    [ ! -s "$work/orchestratord.killed.log" ] || {
      echo "--- orchestratord log before the last SIGKILL (last 30 lines) ---" >&2
      tail -n 30 "$work/orchestratord.killed.log" >&2
    }
    [ ! -s "$work/caddy.log" ] || {
      echo "--- caddy log (last 10 lines) ---" >&2
      tail -n 10 "$work/caddy.log" >&2
    }
  fi
  stop "$pid" # it deploys no more
  # What the deploys made: all of it carries this installation's label (the
  # chats need not name the projects; the machine's Podman is shared, and a
  # container left behind keeps its host port taken for the next run).
  installation="$(psql -d "$db" -XAtc 'SELECT id FROM deploy.installation' 2>/dev/null)"
  if [ -n "$installation" ]; then
    for id in $(podman ps -aq --filter "label=orchestrator.installation=$installation" 2>/dev/null); do
      podman rm -f -t 0 "$id" >/dev/null 2>&1 || true
    done
    for id in $(podman images -q --filter "label=orchestrator.installation=$installation" 2>/dev/null); do
      podman rmi -f "$id" >/dev/null 2>&1 || true
    done
  fi
  stop "$caddy_pid"
  stop "$podman_pid"
  stop "$fake_pid"
  stop "$model_pid"
  (exit "$status")
  cleanup
}
trap stop_parts EXIT

# The container engine deploys build and run with: Podman's Docker Engine
# API on a private socket (the machine's images: the templates' base images).
setpriv --pdeathsig KILL -- podman system service --time=0 "unix://$work/podman.sock" \
  </dev/null >"$work/podman.log" 2>&1 &
podman_pid=$!

# Caddy, empty: the deploy component makes its server and routes.
caddy_admin_port="$(free_port)"
router_port="$(free_port)"
mkdir -p "$work/caddy"
printf '{"admin": {"listen": "127.0.0.1:%s", "config": {"persist": false}}}\n' \
  "$caddy_admin_port" >"$work/caddy/caddy.json"
HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy/config" XDG_DATA_HOME="$work/caddy/data" \
  setpriv --pdeathsig KILL -- caddy run --config "$work/caddy/caddy.json" \
  </dev/null >"$work/caddy.log" 2>&1 &
caddy_pid=$!

# The fake Bot API.
bot_token="123456:TEST-token"
/usr/bin/python3 "$here/../fakes/telegram_api.py" --port "$(free_port)" --token "$bot_token" \
  --log "$work/telegram.log" >"$work/telegram.port" 2>"$work/telegram.err" &
fake_pid=$!

wait_for 20 "Podman's API" curl -sf --unix-socket "$work/podman.sock" http://d/_ping
wait_for 20 "Caddy's admin API" curl -sf "http://127.0.0.1:$caddy_admin_port/config/"
wait_for 10 "the fake Bot API" test -s "$work/telegram.port"
tg="http://127.0.0.1:$(cat "$work/telegram.port")"

port="$(free_port)"
# Everything a restart must find again lives under $work, at fixed addresses.
# Leases of 5 s: a job whose process was killed runs again 5 s later, not 30.
mesh_flags=(--job_lease=5s "--git_http_listen=127.0.0.1:$(free_port)"
  "--scaffolder_dir=$work/scaffolder" "--engineering_dir=$work/engineering"
  "--deploy_dir=$work/deploy" "--container_engine_socket=unix://$work/podman.sock"
  "--caddy_admin_url=http://127.0.0.1:$caddy_admin_port" "--router_listen=127.0.0.1:$router_port")
if [ "$agent" = claude-code ]; then
  [ -x "$tools/node_modules/.bin/claude" ] || fatal "Claude Code is not installed: run tools/setup"
  /usr/bin/python3 "$here/../fakes/anthropic_api.py" --port "$(free_port)" \
    --log "$work/requests.jsonl" >"$work/model.port" 2>"$work/model.log" &
  model_pid=$!
  wait_for 10 "the fake Messages API" test -s "$work/model.port"
  mesh_flags+=(--session_agent=claude-code "--agent_tool_dirs=$tools/node_modules"
    "--session_agent_env=ANTHROPIC_BASE_URL=http://127.0.0.1:$(head -n1 "$work/model.port"),ANTHROPIC_API_KEY=sk-fake")
fi
start_orchestratord "$orchestratord" "127.0.0.1:$port" "${mesh_flags[@]}"
export ORCHESTRATOR_ADDR="127.0.0.1:$port"
wait_for 30 "the bootstrap token" test -s "$work/admin.token"
admin="$(tr -d '[:space:]' <"$work/admin.token")"
wait_for 30 "orchestratord" env ORCHESTRATOR_TOKEN="$admin" "$cli" whoami

# Ann (Telegram user 4242) and Bob (4343), ordinary users.
start_gateway "$gateway" "127.0.0.1:$port"
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")
declare -A token_of=()
for name in ann bob; do
  user_id="$(curl -s "${as_admin[@]}" -d "{\"name\":\"$name\"}" "$gateway_url/v1/users" | json_get user.id)"
  [ -n "$user_id" ] || fatal "could not create user $name"
  token_of[$name]="$(curl -s "${as_admin[@]}" -d '{"description":"telegram"}' \
    "$gateway_url/v1/users/$user_id/tokens" | json_get value)"
  [ -n "${token_of[$name]}" ] || fatal "could not create $name's token"
done
stop_gateway
echo "$bot_token" >"$work/bot.token"
printf '4242 %s\n4343 %s\n' "${token_of[ann]}" "${token_of[bob]}" >"$work/telegram.users"
start_gateway "$gateway" "127.0.0.1:$port" --telegram_mode=polling --telegram_api_base="$tg" \
  --telegram_token_file="$work/bot.token" --telegram_users="$work/telegram.users" \
  --telegram_state="$work/telegram.state"

# say FROM TEXT: a user writes to the bot.
say() {
  /usr/bin/python3 -c 'import json, sys; print(json.dumps({"from_id": int(sys.argv[1]), "text": sys.argv[2]}))' \
    "$1" "$2" | curl -sf -d @- "$tg/control/message" >/dev/null || fatal "the fake Bot API took no message"
}
# chat CHAT: what the bot said in CHAT (Telegram took it), as the user reads
# it (HTML unescaped), one message a line.
chat() {
  curl -sf "$tg/control/calls?method=sendMessage&chat_id=$1" | /usr/bin/python3 -c '
import html, json, sys
for c in json.load(sys.stdin)["calls"]:
    if not c.get("rejected") and not c.get("error"):
        print(html.unescape(c["params"]["text"]).replace("\n", " "))'
}
# said CHAT SUBSTRING: how many of the bot's messages in CHAT contain SUBSTRING.
said() { chat "$1" | grep -cF -- "$2" || true; }
# wait_said SECONDS CHAT SUBSTRING [N]: until N (default 1) messages in CHAT contain SUBSTRING.
wait_said() {
  local deadline=$((SECONDS + $1))
  until (($(said "$2" "$3") >= ${4:-1})); do
    ((SECONDS < deadline)) || fatal "chat $2: not ${4:-1} message(s) with '$3' within $1 s; the last: $(chat "$2" | tail -n 4)"
    running || fatal "orchestratord exited"
    sleep 0.2
  done
}
# chat_is CHAT FIRST PATTERN...: the messages in CHAT from the FIRST-th
# (counting from 0) are exactly one per PATTERN (a Python regex), in order.
chat_is() {
  local chat_id="$1" first="$2"
  shift 2
  chat "$chat_id" | /usr/bin/python3 -c '
import re, sys
first, patterns = int(sys.argv[1]), sys.argv[2:]
texts = sys.stdin.read().splitlines()[first:]
if len(texts) != len(patterns) or not all(re.search(p, t) for p, t in zip(patterns, texts)):
    print("want, in order:", *("  /%s/" % p for p in patterns), "got:", *("  " + t for t in texts),
          sep="\n", file=sys.stderr)
    sys.exit(1)' "$first" "$@"
}
# live_url CHAT: the URL of the chat's last "is live at" message.
live_url() { chat "$1" | sed -n 's/.* is live at \(http:[^ ]*\) .*/\1/p' | tail -n 1; }
# serves URL TEXT: the page at URL says TEXT.
serves() {
  local page
  page="$(curl -s --max-time 5 "$1" || true)"
  [[ "$page" == *"$2"* ]] || fail "$1 does not say $2: $page"
}
# built CHAT NAME TEXT: the chat was told each step of building NAME, once
# and in order, the last with a URL (in $url) that serves TEXT.
built() {
  chat_is "$1" 0 "^Building $2: project prj_" "^Scaffolded $2 " \
    '^The change passed its tests and was pushed .*Deploying it' \
    "^$2 is live at http://\\S+ and answers \"$3\"" ||
    fail "chat $1 was not told each step of building $2 once, in order"
  url="$(live_url "$1")"
  serves "$url" "$3"
}

# history_is SHAPE...: the history of Ann's project (her first), as
# "what<index of the step it came from>" per step, is SHAPE; saved in
# $work/history.json.
history_is() {
  local project
  project="$(ORCHESTRATOR_TOKEN="${token_of[ann]}" "$cli" project list --json |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["projects"][0]["id"])')"
  ORCHESTRATOR_TOKEN="${token_of[ann]}" "$cli" project history "$project" --json \
    >"$work/history.json" || fail "orchestrator project history $project failed"
  /usr/bin/python3 - "$work/history.json" "$@" <<'PY'
import json, sys
steps = json.load(open(sys.argv[1]))["steps"]
index = {s["id"]: i for i, s in enumerate(steps)}
def what(s):
    return {"HISTORY_STEP_KIND_USER_MESSAGE": "message", "HISTORY_STEP_KIND_JOB_NEWS": "news"}.get(
        s["kind"], s.get("jobKind"))
shape = ["%s<%s" % (what(s), index.get(s.get("parentId", ""), "")) for s in steps]
assert shape == sys.argv[2:], shape
assert all(s.get("state") == "JOB_STATE_SUCCEEDED" for s in steps if s["kind"] == "HISTORY_STEP_KIND_JOB")
PY
}

if [ "$agent" = claude-code ]; then
  mark
  t0=$SECONDS
  say 4242 "build a python service called greeter that answers Hello from Claude"
  wait_said 120 4242 "greeter is live at http://"
  url="$(live_url 4242)"
  serves "$url" "Hello from Claude"
  for command in "orchestrator project create greeter" "orchestrator scaffold run prj_" \
    "orchestrator engineering trigger prj_" "orchestrator deploy trigger prj_"; do
    grep -q "$command" "$work/requests.jsonl" || fail "Claude Code did not run '$command'"
  done
  pass "Claude Code, driven by the fake Messages API, ran each step's command: a live URL ($((SECONDS - t0)) s)"

  mark
  history_is "message<" "scaffold<0" "news<1" "engineering<2" "news<3" "deploy<4" ||
    fail "the history is not the chain: $(cat "$work/history.json")"
  # What each of the PO's turns cost, as Claude Code reported it.
  /usr/bin/python3 - "$work/history.json" <<'PY' || fail "no model usage per turn: $(cat "$work/history.json")"
import json, sys
h = json.load(open(sys.argv[1]))
turns = [s for s in h["steps"] if s["kind"] != "HISTORY_STEP_KIND_JOB"]
assert all(int(s.get("usage", {}).get("inputTokens", 0)) > 0 for s in turns), turns
assert int(h["totalUsage"]["inputTokens"]) >= sum(int(s["usage"]["inputTokens"]) for s in turns)
PY
  pass "the history shows each step with its parent and the tokens of each of the PO's turns"
  finish "one Telegram message to a live URL, with Claude Code as the PO"
  exit 0
fi

mark
t0=$SECONDS
say 4242 "build a python service called greeter that answers Hello from Telegram"
wait_said 90 4242 "greeter is live at http://"
built 4242 greeter "Hello from Telegram"
pass "one message becomes a live URL, each step told in the chat ($((SECONDS - t0)) s)"

mark
t0=$SECONDS
seen="$(chat 4242 | wc -l)"
say 4242 "change the text to Bonjour Telegram"
wait_said 90 4242 'is live at' 2
chat_is 4242 "$seen" '^A coding agent is making it answer "Bonjour Telegram"' \
  '^The change passed its tests and was pushed .*Deploying it' \
  '^greeter is live at http://\S+ and answers "Bonjour Telegram"' ||
  fail "Ann's chat did not tell the change's steps once, in order"
[ "$(live_url 4242)" = "$url" ] || fail "the change moved greeter from $url to $(live_url 4242)"
serves "$url" "Bonjour Telegram"
pass "a change request becomes a new release at the same URL ($((SECONDS - t0)) s)"

mark
# The project's history: both chat messages, and each step with the one it
# came from, down to the release serving the URL.
history_is "message<" "scaffold<0" "news<1" "engineering<2" "news<3" "deploy<4" \
  "message<" "engineering<6" "news<7" "deploy<8" ||
  fail "the history is not the chain: $(cat "$work/history.json")"
/usr/bin/python3 - "$work/history.json" "$url" <<'PY' || fail "the history's steps: $(cat "$work/history.json")"
import json, sys
steps = json.load(open(sys.argv[1]))["steps"]
assert "build a python service called greeter" in steps[0]["summary"], steps[0]
assert "change the text to Bonjour Telegram" in steps[6]["summary"], steps[6]
assert steps[9]["made"]["url"] == sys.argv[2], steps[9]
PY
pass "orchestrator project history shows every step with its parent, from each message to its release"

# running_job KIND: true while one of Bob's jobs of KIND runs.
running_job() {
  ORCHESTRATOR_TOKEN="${token_of[bob]}" "$cli" jobs list --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
kind = sys.argv[1]
for line in sys.stdin:
    for job in json.loads(line).get("jobs", []):
        if job.get("kind") == kind and job.get("state") == "JOB_STATE_RUNNING":
            sys.exit(0)
sys.exit(1)' "$1"
}
# kill_while KIND: SIGKILL orchestratord once a job of KIND runs, and start it again.
kill_while() {
  local deadline=$((SECONDS + 60))
  until running_job "$1"; do
    ((SECONDS < deadline)) || fatal "no $1 job of Bob's ran within 60 s; his chat: $(chat 4343 | tail -n 3)"
    running || fatal "orchestratord exited"
    sleep 0.1
  done
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  echo "  SIGKILL to orchestratord while Bob's $1 job ran"
  mv "$log_file" "$work/orchestratord.killed.log"
  launch_orchestratord "$orchestratord" "127.0.0.1:$port" "${mesh_flags[@]}"
  wait_for 30 "orchestratord to restart" env ORCHESTRATOR_TOKEN="$admin" "$cli" whoami
}

mark
t0=$SECONDS
say 4343 "build a python service called phoenix that answers Alive after SIGKILL"
kill_while engineering
kill_while deploy
wait_said 90 4343 "phoenix is live at http://"
# Whatever a restart would tell twice comes within a few seconds.
sleep 3
built 4343 phoenix "Alive after SIGKILL"
pass "SIGKILL mid-chain (engineering, then deploy): the chain ends live, each message told once ($((SECONDS - t0)) s)"

finish "one Telegram message to a live URL"
