# shellcheck shell=bash
# Shared by the e2e scripts that run processes of this machine: the checks
# (checks.sh), and orchestratord over its own database, killed with the
# script. Source it, then call start_orchestratord LISTEN [FLAGS...] (or
# start_component once per component for a split mesh). Needs PGHOST etc.
# from pg_virtualenv.
# shellcheck source=tests/e2e/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

[ -n "${PGHOST:-}" ] || fatal "PGHOST is not set; run under pg_virtualenv (tools/test does)"

work="$(mktemp -d -t e2e.XXXXXX)"
db="e2e_$$_$RANDOM"
log_file="$work/orchestratord.log"
pid=""

# True while process $1 runs; an exited child we have not waited for yet is a zombie.
pid_running() {
  local stat
  [ -n "$1" ] || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}
# True while $pid runs.
running() { pid_running "$pid"; }

# A split mesh: component name → the pid of the orchestratord hosting it
# alone ("" once stopped).
declare -A component_pids=()

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
  stop_components
  if ((status != 0)); then
    local name
    for name in "${!component_pids[@]}"; do
      [ -s "$work/$name.log" ] || continue
      echo "--- orchestratord --services=$name log (last 20 lines) ---" >&2
      tail -n 20 "$work/$name.log" >&2
    done
  fi
  dropdb --if-exists "$db" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
    [ -z "$pid" ] || running || fatal "orchestratord exited while waiting for $what"
    ((SECONDS < deadline)) || fatal "$what: not within $seconds s"
    sleep 0.3
  done
}

# start_gateway GATEWAY UPSTREAM [FLAGS...]: orchestrator-gateway on a free
# port in front of UPSTREAM; sets $gateway_url once /healthz answers.
start_gateway() {
  local bin="$1" upstream="$2"
  shift 2
  local port
  port="$(free_port)"
  launch_gateway "http://127.0.0.1:$port" "$bin" --listen="127.0.0.1:$port" --upstream="$upstream" "$@"
}

# launch_gateway URL COMMAND...: runs COMMAND (an orchestrator-gateway
# listening at URL); sets $gateway_url once /healthz answers.
launch_gateway() {
  gateway_url="$1"
  shift
  setpriv --pdeathsig KILL -- "$@" </dev/null >>"$gateway_log" 2>&1 &
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

# start_component NAME ENV_FILE COMMAND...: the process hosting the
# component NAME (COMMAND, e.g. orchestratord --services=NAME ...) with the
# KEY=VALUE lines of ENV_FILE added to its environment, its output appended
# to $work/NAME.log (a restart keeps the earlier run's lines).
start_component() {
  local name="$1" env_file="$2" line
  shift 2
  local vars=()
  while IFS= read -r line; do [ -z "$line" ] || vars+=("$line"); done <"$env_file"
  setpriv --pdeathsig KILL -- env "${vars[@]}" "$@" </dev/null >>"$work/$name.log" 2>&1 &
  component_pids[$name]=$!
}

# component_running NAME: true while the process hosting NAME runs.
component_running() { pid_running "${component_pids[$1]:-}"; }

# stop_component NAME SECONDS: SIGTERM, then SIGKILL after SECONDS; its exit
# status in $component_status (137 when it had to be killed). Its log stays.
stop_component() {
  local name="$1" seconds="$2" p="${component_pids[$1]:-}"
  component_status=0
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  local deadline=$((SECONDS + seconds))
  while pid_running "$p" && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || component_status=$?
  component_pids[$name]=""
}

# stop_components: every component still running, all at once (gracefully
# first, so agents' sandboxes and their cgroups are cleaned up).
stop_components() {
  local name p left
  for p in "${component_pids[@]}"; do [ -z "$p" ] || kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    left=0
    for p in "${component_pids[@]}"; do pid_running "$p" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for name in "${!component_pids[@]}"; do
    p="${component_pids[$name]}"
    [ -n "$p" ] || continue
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    component_pids[$name]=""
  done
}
