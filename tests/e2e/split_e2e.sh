#!/usr/bin/env bash
# The mesh split the way the Helm chart runs it: one orchestratord per
# component (the list from orchestratord --list_components), each started
# with exactly the command line and environment the chart gives its
# Deployment (helm template, read by helm_args.py: the Services' addresses,
# the mounted files and the database replaced by this machine's, and what is
# specific to one machine passed through the chart's own values), the REST
# gateway in front likewise. Through the gateway,
# as a user: projects and secrets, a demo job over SSE, a PO session turn
# whose sandboxed agent creates a project, a job's end told as a
# notification. Then one component stopped (its calls answer 503 naming it,
# the others still answer) and started again (its calls recover, nothing
# else restarted): the flows of mesh_flows.sh, which containers_e2e.sh runs
# against containers. The mesh credential is in no log, and a mesh-only RPC
# is refused to the admin's own token.
#
#   bash tests/e2e/split_e2e.sh <orchestratord> <orchestrator-gateway> <orchestrator-runner> \
#     <orchestrator> <buf>
#
# Needs PGHOST/PGPORT/PGUSER/PGPASSWORD from pg_virtualenv (tools/test sets them).
set -euo pipefail

[ $# -eq 5 ] || {
  echo "usage: $0 <orchestratord> <orchestrator-gateway> <orchestrator-runner>" \
    "<orchestrator> <buf>" >&2
  exit 2
}
orchestratord="$1"
gateway="$2"
runner="$3"
cli="$4"
buf="$5"
drain_seconds=3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/mesh_flows.sh
source "$here/mesh_flows.sh"

[ -x "$orchestratord" ] || fatal "orchestratord not executable: $orchestratord"
[ -x "$gateway" ] || fatal "orchestrator-gateway not executable: $gateway"
[ -x "$buf" ] || fatal "buf not executable: $buf"
# What the agents component puts in its sandboxes: the runner, and the CLI agents use.
agent_bin_dir="$(dirname "$runner")"
[ -x "$runner" ] && [ "$(basename "$runner")" = orchestrator-runner ] ||
  fatal "orchestrator-runner not executable: $runner"
[ "$cli" -ef "$agent_bin_dir/orchestrator" ] ||
  fatal "the orchestrator CLI must be next to orchestrator-runner ($agent_bin_dir): $cli"

# The components, as orchestratord lists them: name, gRPC service, peers.
listing="$("$orchestratord" --list_components)" || fatal "orchestratord --list_components failed"
components=()
declare -A service_of=() port_of=()
while IFS=$'\t' read -r name service peers; do
  [[ "$name" =~ ^[a-z]+$ && "$service" == "orchestrator.$name.v1."* && -n "$peers" ]] ||
    fatal "--list_components: malformed line '$name	$service	$peers'"
  components+=("$name")
  service_of[$name]="$service"
done <<<"$listing"
for peer in $(cut -f3 <<<"$listing" | tr ',' ' '); do
  [ "$peer" = - ] || [ -n "${service_of[$peer]:-}" ] || fatal "--list_components: unknown peer '$peer'"
done
# The flows below need these; the rest are hosted the same way.
for needed in admin projects jobs agents sessions; do
  [ -n "${service_of[$needed]:-}" ] || fatal "--list_components lacks $needed: $listing"
done
for name in "${components[@]}"; do
  port="$(free_port)"
  while [[ " ${port_of[*]} " == *" $port "* ]]; do port="$(free_port)"; done
  port_of[$name]="$port"
done

createdb "$db" || fatal "createdb $db failed"
echo "dbname=$db" >"$work/database.url"
gateway_port="$(free_port)"
while [[ " ${port_of[*]} " == *" $gateway_port "* ]]; do gateway_port="$(free_port)"; done

# What the chart runs, for this machine: each component's --listen and the
# Services' addresses become loopback ports, the mounted Secrets and emptyDirs
# files under $work/chart/volumes, the database this run's (an external
# database, as the chart calls it). What only a run on one machine needs goes
# through the chart's own values: the agents' workspaces under $work and the
# runner and CLI of this build (the image has them next to orchestratord),
# the demo job kinds, a short drain.
chart_args=(--out "$work/chart" --tools "$here/../../tools" --mode process
  --database-url-file "$work/database.url"
  --command orchestratord="$orchestratord" --command orchestrator-gateway="$gateway"
  --listen gateway="127.0.0.1:$gateway_port")
for name in "${components[@]}"; do
  chart_args+=(--listen "$name=127.0.0.1:${port_of[$name]}" --addr "$name=127.0.0.1:${port_of[$name]}")
done
agents_args="$(/usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \
  --agents_dir="$work/agents" --agent_bin_dir="$agent_bin_dir")"
/usr/bin/python3 "$here/helm_args.py" "${chart_args[@]}" -- \
  --set database.bundled=false --set database.existingSecret=external-database \
  --set drainDeadlineSeconds="$drain_seconds" \
  --set-json "components.agents.extraArgs=$agents_args" \
  --set-json 'components.jobs.extraArgs=["--demo_jobs"]' ||
  fatal "could not take the command lines from the Helm chart"
# The chart runs exactly the components orchestratord lists.
charted="$(awk -F'\t' '$2 == "Deployment" && $1 != "gateway" {print $1}' "$work/chart/workloads.tsv" | sort | tr '\n' ' ')"
[ "$charted" = "$(printf '%s\n' "${components[@]}" | sort | tr '\n' ' ')" ] ||
  fatal "the chart's components ($charted) differ from orchestratord --list_components (${components[*]})"
credential="$(head -n1 "$work/chart/volumes/admin/mesh-credential/credential")"
admin_token_file="$work/chart/volumes/admin/run/admin.token"

# start NAME: the process the chart's Deployment for NAME runs.
start() {
  local argv
  mapfile -t argv <"$work/chart/$1.argv"
  start_component "$1" "$work/chart/$1.env" "${argv[@]}"
}

# The first component that is not running, if any.
dead_component() {
  local name
  for name in "${components[@]}"; do
    component_running "$name" || {
      echo "$name"
      return
    }
  done
}

# until_true SECONDS WHAT COMMAND...: retries COMMAND until it succeeds, while
# every component runs.
until_true() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds)) dead
  until "$@" >/dev/null 2>&1; do
    dead="$(dead_component)"
    [ -z "$dead" ] || fatal "orchestratord --services=$dead exited while waiting for $what"
    ((SECONDS < deadline)) || fatal "$what: not within $seconds s"
    sleep 0.3
  done
}

# Runs buf curl; prints its stdout and stderr (errors are JSON there).
rpc() { "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 10s "$@" 2>&1 || true; }
# serving NAME: the process hosting NAME says SERVING, for itself and for its service.
serving() {
  local url="http://127.0.0.1:${port_of[$1]}/grpc.health.v1.Health/Check" svc
  for svc in "" "${service_of[$1]}"; do
    [ "$(rpc -d "{\"service\":\"$svc\"}" "$url" | json_get status)" = SERVING ] || return 1
  done
}

mark
# In the reverse of the list's order: each starts before the peers it calls.
for ((i = ${#components[@]} - 1; i >= 0; i--)); do start "${components[i]}"; done
for name in "${components[@]}"; do until_true 120 "$name serving" serving "$name"; done
until_true 30 "the bootstrap token" test -s "$admin_token_file"
mapfile -t gateway_argv <"$work/chart/gateway.argv"
launch_gateway "http://127.0.0.1:$gateway_port" "${gateway_argv[@]}"
until_true 60 "the gateway's /readyz" curl -sf "$gateway_url/readyz"
expect "readyz" 200 "$(call GET /readyz)" SERVING
pass "${#components[@]} processes, one component each (${components[*]}), all SERVING; the gateway is ready"

admin="$(tr -d '[:space:]' <"$admin_token_file")"
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")

mark
mint='{"userId":"usr_x","workerId":"wrk_x","permissions":["project.get"]}'
out="$(rpc -H "authorization: Bearer $admin" -d "$mint" \
  "http://127.0.0.1:${port_of[admin]}/orchestrator.admin.v1.AdminService/MintWorkerToken")"
[ "$(json_get code <<<"$out")" = permission_denied ] ||
  fail "MintWorkerToken with the admin's token: want permission_denied; got: $out"
pass "a mesh-only RPC is refused to the admin's own token"

flow_prefix="split"
mesh_components=("${components[@]}")
stop_one() {
  stop_component "$1" $((drain_seconds + 10))
  [ "$component_status" = 0 ] || fail "$1: exit status $component_status on SIGTERM, want 0"
}
start_one() { start "$1"; }
instance_of() { if component_running "$1"; then echo "${component_pids[$1]}"; fi; }

flow_projects
flow_demo_job_sse
flow_po_turn
flow_job_notification
flow_outage projects

mark
# Every file the processes wrote: their logs, the agents' workspaces and worker logs.
leaks="$(grep -rlF -D skip --exclude-dir=.helm --exclude-dir=mesh-credential -- "$credential" "$work" || true)"
[ -z "$leaks" ] || fail "the mesh credential appears in: $leaks"
for f in "$work"/*.log; do
  if grep -qF -- "$admin" "$f"; then fail "the admin token appears in $(basename "$f")"; fi
done
pass "the mesh credential is in no file the processes wrote, the admin token in no log"

finish "the mesh split into ${#components[@]} processes"
