#!/usr/bin/env bash
# The product image run the way the Helm chart runs it, on one machine with
# Podman: one container per pod of the chart (ten `orchestratord
# --services=<one>`, the gateway, the bundled PostgreSQL) on one Podman
# network, each named as the chart's Service for it, so the chart's own
# addresses reach it (the dnsname plugin). Every container gets exactly the
# command line, environment, volumes (the chart's generated Secrets,
# emptyDirs) and security context (Podman's equivalents, helm_args.py lists
# them) that `helm template` renders for its pod; the only values set are
# the image under test and the demo job kinds. Through the gateway's published port, the flows of
# mesh_flows.sh (as split_e2e.sh runs them against processes): project CRUD
# and secrets, a demo job over SSE, a PO session turn whose sandboxed agent
# creates a project, a job's end told as a notification, projects stopped
# (podman stop: its calls answer 503 naming it, the rest keep serving) and
# started again (podman start: everything recovers, nothing else restarted);
# besides, a worker's sandboxed agent calling the mesh, no secret in any
# log, and a clean exit of every container on SIGTERM.
#
#   bash tests/e2e/containers_e2e.sh [IMAGE]
#
# IMAGE defaults to localhost/orchestrator:dev (tools/image/build makes it).
# Needs root (rootful Podman, as tools/setup installs it). Everything it makes
# (containers, network, files) is removed when it ends, on an error or a
# signal too (CONTAINERS_E2E_KEEP=1 keeps it all for debugging and says what it kept);
# what a killed run (SIGKILL) or a kept one left behind, the next run removes.
set -euo pipefail

image="${1:-localhost/orchestrator:dev}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/tools/image/containers.conf}"
# shellcheck source=tests/e2e/checks.sh
source "$here/checks.sh"
# shellcheck source=tests/e2e/mesh_flows.sh
source "$here/mesh_flows.sh"

# The Helm release: its Services, hence these containers, are <release>-orchestrator-<name>.
release="ce2e-$$"
network="$release"
# Everything this script makes carries it, so that a later run can remove
# what a killed one (SIGKILL: no trap runs) left behind.
label="org.codegen-orchestrator.e2e-pid"
work="$(mktemp -d -t "containers-e2e.$$.XXXXXX")"
started=() # the containers this script started, by name

cleanup() {
  local status=$?
  local name
  if ((status != 0)); then
    for name in "${started[@]}"; do
      echo "--- $name (last 15 lines) ---" >&2
      podman logs --tail 15 "$name" >&2 2>&1 || true
    done
  fi
  if [ -n "${CONTAINERS_E2E_KEEP:-}" ]; then
    echo "kept for debugging (the next run removes them): containers ${started[*]}," \
      "network $network, files $work" >&2
    exit "$status"
  fi
  remove_leftovers "$$"
  exit "$status"
}
# remove_leftovers [PID]: the containers, networks and files of run PID, or
# of every run whose process is gone.
remove_leftovers() {
  local id owner dir
  for id in $(podman container ls --all --filter "label=$label" --format '{{.ID}}' 2>/dev/null || true); do
    owner="$(podman container inspect --format "{{ index .Config.Labels \"$label\" }}" "$id" 2>/dev/null)" || continue
    if leftover "$owner" "${1:-}"; then podman rm --force --time 0 "$id" >/dev/null 2>&1 || true; fi
  done
  for id in $(podman network ls --filter "label=$label" --format '{{.Name}}' 2>/dev/null || true); do
    owner="$(podman network inspect --format "{{ index .Labels \"$label\" }}" "$id" 2>/dev/null)" || continue
    if leftover "$owner" "${1:-}"; then podman network rm --force "$id" >/dev/null 2>&1 || true; fi
  done
  for dir in "${TMPDIR:-/tmp}"/containers-e2e.*.*; do
    [ -d "$dir" ] || continue
    owner="${dir#*/containers-e2e.}"
    if leftover "${owner%%.*}" "${1:-}"; then rm -rf "$dir"; fi
  done
}
# leftover OWNER [PID]: true if OWNER is PID or, without PID, a process that is gone.
leftover() {
  if [ -n "$2" ]; then
    [ "$1" = "$2" ]
  elif kill -0 "$1" 2>/dev/null; then
    return 1
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

[ "$(id -u)" -eq 0 ] || fatal "needs root: the mesh runs in rootful Podman"
command -v podman >/dev/null || fatal "podman is missing: run tools/setup"
podman image exists "$image" || fatal "no image $image: build it with tools/image/build"
remove_leftovers
"$root/tools/image/base-images" postgres || fatal "could not make the PostgreSQL image"

running() { [ "$(podman inspect --format '{{ .State.Running }}' "$1" 2>/dev/null)" = true ]; }
# until_true SECONDS WHAT COMMAND...: retries COMMAND until it succeeds; every
# container started so far must keep running meanwhile.
until_true() {
  local seconds="$1" what="$2" name
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for name in "${started[@]}"; do running "$name" || fatal "$name exited while waiting for $what"; done
    ((SECONDS < deadline)) || fatal "$what: not within $seconds s"
    sleep 0.5
  done
}

# The components, as the image's orchestratord lists them.
listing="$(podman run --rm --network none "$image" orchestratord --list_components)" ||
  fatal "orchestratord --list_components failed in $image"
components=()
while IFS=$'\t' read -r name _; do components+=("$name"); done <<<"$listing"

# What the chart runs, with the image under test and the demo job kinds.
repository="${image%:*}" tag="${image##*:}"
if [[ "$image" != *:* || "$tag" == */* ]]; then repository="$image" tag=latest; fi
/usr/bin/python3 "$here/helm_args.py" --out "$work/chart" --tools "$root/tools" --mode podman \
  --release "$release" -- --set image.repository="$repository" --set image.tag="$tag" \
  --set-json 'components.jobs.extraArgs=["--demo_jobs"]' ||
  fatal "could not take the pods from the Helm chart"
charted="$(awk -F'\t' '$2 == "Deployment" && $1 != "gateway" {print $1}' "$work/chart/workloads.tsv" | sort | tr '\n' ' ')"
[ "$charted" = "$(printf '%s\n' "${components[@]}" | sort | tr '\n' ' ')" ] ||
  fatal "the chart's components ($charted) differ from orchestratord --list_components (${components[*]})"
# container_of NAME: the container (the chart's Service name) running NAME.
container_of() { awk -F'\t' -v n="$1" '$1 == n {print $3}' "$work/chart/workloads.tsv"; }
# port_of NAME: the port NAME's container listens on.
port_of() { awk -F'\t' -v n="$1" '$1 == n {print $4}' "$work/chart/workloads.tsv"; }

# run_pod NAME [PODMAN OPTIONS...]: the container of NAME's pod, as the chart
# renders it (command, environment, volumes, security context).
run_pod() {
  local name="$1" container options argv
  shift
  container="$(container_of "$name")"
  mapfile -t options <"$work/chart/$name.podman"
  mapfile -t argv <"$work/chart/$name.argv"
  started+=("$container")
  podman run --detach --name "$container" --label "$label=$$" --network "$network" \
    --env-file "$work/chart/$name.env" "${options[@]}" "$@" \
    "$(cat "$work/chart/$name.image")" "${argv[@]}" >/dev/null || fatal "podman run $name failed"
}

podman network create --label "$label=$$" "$network" >/dev/null || fatal "podman network create failed"

mark
# The bundled PostgreSQL's pod, with its env (database, user, and password
# from the chart's Secret, which the components' conninfo holds too): Debian's
# PostgreSQL 15 in the image tools/image/base-images makes, not postgres:15
# (no registry here), set up from those variables as that image would.
pg="$(container_of postgresql)"
started+=("$pg")
podman run --detach --name "$pg" --label "$label=$$" --network "$network" --user postgres \
  --env-file "$work/chart/postgresql.env" localhost/orchestrator-postgres:bookworm sh -ec '
    bin=/usr/lib/postgresql/15/bin
    mkdir -p "$(dirname "$PGDATA")"
    printf %s "$POSTGRES_PASSWORD" >/tmp/pw
    "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile=/tmp/pw >/dev/null
    rm /tmp/pw
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    mkdir /tmp/setup
    "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses= -c unix_socket_directories=/tmp/setup" -w start >/dev/null
    "$bin/createdb" -h /tmp/setup -U "$POSTGRES_USER" "$POSTGRES_DB"
    "$bin/pg_ctl" -D "$PGDATA" -w stop >/dev/null
    exec "$bin/postgres" -D "$PGDATA" -c listen_addresses="*" -c unix_socket_directories=/tmp' >/dev/null
# Over TCP, as the components connect: the setup server above listens on none.
until_true 60 "PostgreSQL" podman exec "$pg" /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -d orchestrator
pass "PostgreSQL in $pg"

mark
for c in "${components[@]}"; do run_pod "$c"; done
gateway_host_port="$(free_port)"
gateway_url="http://127.0.0.1:$gateway_host_port"
run_pod gateway --publish "127.0.0.1:$gateway_host_port:$(port_of gateway)"
admin_token_file="$work/chart/volumes/admin/run/admin.token"
until_true 60 "the bootstrap token" test -s "$admin_token_file"
# Ready means every component's health check says SERVING.
until_true 90 "readiness of every component" curl -sf "$gateway_url/readyz"
admin="$(tr -d '[:space:]' <"$admin_token_file")"
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")
pass "${#components[@]} components and the gateway serving on network $network"

flow_prefix="ctr"
mesh_components=("${components[@]}")
stop_one() {
  local code
  podman stop --time 20 "$(container_of "$1")" >/dev/null || fail "podman stop $1"
  code="$(podman inspect --format '{{ .State.ExitCode }}' "$(container_of "$1")")"
  [ "$code" = 0 ] || fail "$1 exited with $code on SIGTERM"
}
start_one() { podman start "$(container_of "$1")" >/dev/null || fatal "podman start $1 failed"; }
instance_of() {
  podman inspect --format '{{ .Id }} {{ .State.StartedAt }} {{ .State.Running }}' "$(container_of "$1")" || true
}

flow_projects
flow_demo_job_sse

mark
# A worker of the agents container: orchestrator-runner and the scripted
# agent in a bwrap sandbox, as the image's user; the agent's CLI reaches the
# projects container through the mesh.
r="$(call POST /v1/projects "${as_admin[@]}" -d "{\"name\":\"$flow_prefix-worker\"}")"
expect "create for a worker" 200 "$r"
project_id="$(body_of "$r" | json_get project.id)"
r="$(call POST /v1/workers "${as_admin[@]}" -d "{\"config\":{\"workerType\":\"WORKER_TYPE_DEVELOPER\",
  \"agentType\":\"AGENT_TYPE_SCRIPTED\",\"projectId\":\"$project_id\",\"allowedCommands\":[\"project.get\"]}}")"
expect "start a worker" 200 "$r"
worker_id="$(body_of "$r" | json_get worker.id)"
[ -n "$worker_id" ] || fatal "StartWorker returned no worker id: $r"
worker_settled() {
  local w
  w="$(call GET "/v1/workers/$worker_id" "${as_admin[@]}")"
  [[ "$w" == *WORKER_STATE_READY* || "$w" == *WORKER_STATE_FAILED* ]]
}
until_true 60 "worker $worker_id to start" worker_settled
r="$(call GET "/v1/workers/$worker_id" "${as_admin[@]}")"
[[ "$r" == *WORKER_STATE_READY* ]] || fatal "worker $worker_id did not start: $r"
curl -s -N -m 60 "${as_admin[@]}" -d "{\"prompt\":\"run: orchestrator project get $project_id\"}" \
  "$gateway_url/v1/workers/$worker_id:runTask" >"$work/task" || true
if ! grep -q TASK_STATUS_SUCCEEDED "$work/task" || ! grep -q "$flow_prefix-worker" "$work/task"; then
  fail "the sandboxed agent's CLI call failed: $(head -c 2000 "$work/task")"
fi
expect "stop the worker" 200 "$(call POST "/v1/workers/$worker_id:stop" "${as_admin[@]}" -d '{}')"
pass "a sandboxed agent in the agents container calls the mesh"

flow_po_turn
flow_job_notification
flow_outage projects

mark
# What the containers wrote: their logs, and the agents' workspaces and
# worker logs (in its /tmp).
credential="$(head -n1 "$work/chart/volumes/admin/mesh-credential/credential")"
for name in "${started[@]}"; do
  podman logs "$name" >"$work/$name.log" 2>&1 || fail "podman logs $name"
done
leaks="$(grep -rlF -D skip --exclude-dir=.helm --exclude-dir=mesh-credential -- "$credential" "$work" || true)"
[ -z "$leaks" ] || fail "the mesh credential appears in: $leaks"
for f in "$work"/*.log; do
  if grep -qF -- "$admin" "$f"; then fail "the admin token appears in $(basename "$f")"; fi
done
pass "the mesh credential is in no file the containers wrote, the admin token in no log"

mark
# SIGTERM (podman stop) drains and exits 0: orchestratord is the container's pid 1.
for name in gateway "${components[@]}"; do
  container="$(container_of "$name")"
  podman stop --time 20 "$container" >/dev/null || fail "podman stop $container"
  code="$(podman inspect --format '{{ .State.ExitCode }}' "$container")"
  [ "$code" = 0 ] || fail "$container exited with $code on SIGTERM"
done
pass "every container exits 0 on SIGTERM"

finish "the Helm chart's pods as containers of the product image"
