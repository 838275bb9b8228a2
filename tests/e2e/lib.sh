# Shared by the e2e scripts: check bookkeeping, and one orchestratord over
# its own database, killed with the script. Source it, then call
# start_orchestratord LISTEN [FLAGS...]. Needs PGHOST etc. from pg_virtualenv.

failures=0
failures_before=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# For failures that leave nothing further worth checking.
fatal() {
  fail "$@"
  exit 1
}
# Prints "ok: $*" when nothing failed since the last `mark`.
mark() { failures_before=$failures; }
pass() { ((failures > failures_before)) || echo "ok: $*"; }
# Ends the script with its verdict.
finish() {
  ((failures == 0)) || exit 1
  echo "PASS: $*"
}

[ -n "${PGHOST:-}" ] || fatal "PGHOST is not set; run under pg_virtualenv (tools/test does)"

work="$(mktemp -d -t e2e.XXXXXX)"
db="e2e_$$_$RANDOM"
log_file="$work/orchestratord.log"
pid=""

# True while $pid runs; an exited child we have not waited for yet is a zombie.
running() {
  local stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}

gateway_pid=""
gateway_log="$work/gateway.log"

cleanup() {
  local status=$?
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -KILL "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
  fi
  if ((status != 0)) && [ -s "$gateway_log" ]; then
    echo "--- orchestrator-gateway log (last 30 lines) ---" >&2
    tail -n 30 "$gateway_log" >&2
  fi
  if [ -n "$pid" ] && running; then
    # Gracefully first, so its sandboxes and their cgroups are cleaned up.
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do running || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if ((status != 0)) && [ -s "$log_file" ]; then
    echo "--- orchestratord log (last 50 lines) ---" >&2
    tail -n 50 "$log_file" >&2
  fi
  dropdb --if-exists "$db" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_orchestratord ORCHESTRATORD LISTEN [FLAGS...]: every component, a
# fresh database, the bootstrap admin token in $work/admin.token.
start_orchestratord() {
  (umask 077 && head -c 32 /dev/urandom | base64 >"$work/secrets.key")
  createdb "$db" || fatal "createdb $db failed"
  launch_orchestratord "$@"
}

# launch_orchestratord ORCHESTRATORD LISTEN [FLAGS...]: the same over the
# existing database and files (a restart).
launch_orchestratord() {
  local bin="$1" listen="$2"
  shift 2
  # --pdeathsig: if ctest kills the script outright, orchestratord dies with it.
  setpriv --pdeathsig KILL -- "$bin" --services=all --listen="$listen" \
    --database_url="dbname=$db" --secrets_key_file="$work/secrets.key" \
    --bootstrap_token_file="$work/admin.token" --agents_dir="$work/agents" "$@" </dev/null \
    >"$log_file" 2>&1 &
  pid=$!
}

# wait_for SECONDS WHAT COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    running || fatal "orchestratord exited while waiting for $what"
    ((SECONDS < deadline)) || fatal "$what: not within $seconds s"
    sleep 0.3
  done
}

# Prints the value at a dotted path (e.g. project.id) of the JSON document on stdin.
json_get() {
  /usr/bin/python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)' "$1" 2>/dev/null || true
}

# start_gateway GATEWAY UPSTREAM [FLAGS...]: orchestrator-gateway on a free
# port in front of UPSTREAM; sets $gateway_url once /healthz answers.
start_gateway() {
  local bin="$1" upstream="$2"
  shift 2
  local port
  port="$(free_port)"
  gateway_url="http://127.0.0.1:$port"
  setpriv --pdeathsig KILL -- "$bin" --listen="127.0.0.1:$port" --upstream="$upstream" "$@" \
    </dev/null >>"$gateway_log" 2>&1 &
  gateway_pid=$!
  local deadline=$((SECONDS + 20))
  until curl -sf "$gateway_url/healthz" >/dev/null 2>&1; do
    kill -0 "$gateway_pid" 2>/dev/null || fatal "orchestrator-gateway exited during startup"
    ((SECONDS < deadline)) || fatal "orchestrator-gateway: not up within 20 s"
    sleep 0.1
  done
}

# stop_gateway: SIGTERM, and its exit status in $gateway_status.
stop_gateway() {
  kill -TERM "$gateway_pid" 2>/dev/null || true
  gateway_status=0
  wait "$gateway_pid" || gateway_status=$?
  gateway_pid=""
}
