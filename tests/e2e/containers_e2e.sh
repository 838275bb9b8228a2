#!/usr/bin/env bash
# The product image run the way the Helm chart runs it, on one machine with
# Podman: ten containers `orchestratord --services=<one>` and the gateway on
# one Podman network, reaching each other by container name (the dnsname
# plugin), PostgreSQL in a container of its own, one mesh credential shared
# by all. Checked through the gateway's published port with curl: readiness
# of every component, a project round trip with a secret, a demo job, a
# worker whose agent runs in a bwrap sandbox inside the agents container, a
# PO session turn, and a clean exit of every container on SIGTERM.
#
#   bash tests/e2e/containers_e2e.sh [IMAGE]
#
# IMAGE defaults to localhost/orchestrator:dev (tools/image/build makes it).
# Needs root (rootful Podman, as tools/setup installs it). Everything it makes
# (containers, network, files) is removed when it ends, however it ends
# (CONTAINERS_E2E_KEEP=1 keeps it all for debugging and says what to remove).
set -euo pipefail

image="${1:-localhost/orchestrator:dev}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/tools/image/containers.conf}"
components=(admin projects jobs sessions agents scaffolder engineering deploy infra scheduler)
grpc_port=50051
http_port=8080
# The image's user (the Helm chart's runAsUser): it must read what is mounted.
image_uid=65532

failures=0
failures_before=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
fatal() {
  fail "$@"
  exit 1
}
mark() { failures_before=$failures; }
pass() { ((failures > failures_before)) || echo "ok: $*"; }

prefix="orch-e2e-$$"
network="$prefix"
work="$(mktemp -d -t containers-e2e.XXXXXX)"
started=()  # the containers this script started, by name

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
    echo "kept for debugging: containers ${started[*]}, network $network, files $work" >&2
    exit "$status"
  fi
  for name in "${started[@]}"; do podman rm --force --time 0 "$name" >/dev/null 2>&1 || true; done
  podman network rm --force "$network" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" -eq 0 ] || fatal "needs root: the mesh runs in rootful Podman"
command -v podman >/dev/null || fatal "podman is missing: run tools/setup"
podman image exists "$image" || fatal "no image $image: build it with tools/image/build"
"$root/tools/image/base-images" postgres || fatal "could not make the PostgreSQL image"

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
running() { [ "$(podman inspect --format '{{ .State.Running }}' "$1" 2>/dev/null)" = true ]; }
# wait_until SECONDS WHAT COMMAND...: retries COMMAND until it succeeds; every
# container started so far must keep running meanwhile.
wait_until() {
  local seconds="$1" what="$2" name
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for name in "${started[@]}"; do running "$name" || fatal "$name exited while waiting for $what"; done
    ((SECONDS < deadline)) || fatal "$what: not within $seconds s"
    sleep 0.5
  done
}

# Files the containers mount, readable by the image's user only. The mesh
# credential is one line of 32+ characters, the same for every process.
mkdir -p "$work/mounts/run"
(
  umask 077
  head -c 32 /dev/urandom | base64 >"$work/mounts/mesh.credential"
  head -c 32 /dev/urandom | base64 >"$work/mounts/secrets.key"
)
db_password="$(head -c 24 /dev/urandom | base64 | tr -d '+/=')"
# The conninfo holds a password: it reaches orchestratord as FLAGS_database_url
# from an env file, never on a command line.
(umask 077 && printf 'FLAGS_database_url=host=%s port=5432 dbname=orchestrator user=orchestrator password=%s\n' \
  "$prefix-postgres" "$db_password" >"$work/database.env")
(umask 077 && printf 'PGPASSWORD=%s\n' "$db_password" >"$work/postgres.env")
chown -R "$image_uid:$image_uid" "$work/mounts"

# The agents container runs bwrap sandboxes as the image's user, with no
# capability. Two of Podman's defaults forbid that: the masked /proc paths
# (bwrap mounts a fresh /proc: unmask them) and its seccomp profile, which
# allows sethostname (bwrap --hostname, in the sandbox's own UTS namespace)
# only with CAP_SYS_ADMIN: this profile is Podman's with sethostname allowed.
/usr/bin/python3 - /usr/share/containers/seccomp.json "$work/agents-seccomp.json" <<'PY' ||
import json, sys
profile = json.load(open(sys.argv[1]))
for rule in profile["syscalls"]:
    rule["names"] = [n for n in rule["names"] if n != "sethostname"]
profile["syscalls"] = [r for r in profile["syscalls"] if r["names"]]
profile["syscalls"].append({"names": ["sethostname"], "action": "SCMP_ACT_ALLOW", "args": []})
json.dump(profile, open(sys.argv[2], "w"))
PY
  fatal "could not derive a seccomp profile from Podman's"

podman network create "$network" >/dev/null || fatal "podman network create failed"

mark
# PostgreSQL 15 from Debian, a throwaway cluster accepting passwords from the network.
started+=("$prefix-postgres")
podman run --detach --name "$prefix-postgres" --network "$network" --user postgres \
  --env-file "$work/postgres.env" localhost/orchestrator-postgres:bookworm sh -ec '
    bin=/usr/lib/postgresql/15/bin
    printf %s "$PGPASSWORD" >/tmp/pw
    "$bin/initdb" -D /tmp/data -U orchestrator --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile=/tmp/pw >/dev/null
    rm /tmp/pw
    echo "host all all all scram-sha-256" >>/tmp/data/pg_hba.conf
    mkdir /tmp/setup
    "$bin/pg_ctl" -D /tmp/data -o "-c listen_addresses= -c unix_socket_directories=/tmp/setup" -w start >/dev/null
    "$bin/createdb" -h /tmp/setup -U orchestrator orchestrator
    "$bin/pg_ctl" -D /tmp/data -w stop >/dev/null
    exec "$bin/postgres" -D /tmp/data -c listen_addresses="*" -c unix_socket_directories=/tmp' >/dev/null
# Over TCP, as the components connect: the setup server above listens on none.
wait_until 60 "PostgreSQL" podman exec "$prefix-postgres" /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -d orchestrator
pass "PostgreSQL in $prefix-postgres"

mark
# Every component in its own container, reaching the others by name, with
# the flags the Helm chart gives it.
upstreams=""
for c in "${components[@]}"; do upstreams+="${upstreams:+,}$c=$prefix-$c:$grpc_port"; done
for c in "${components[@]}"; do
  args=(--services="$c" --listen="0.0.0.0:$grpc_port"
    --mesh_credential_file=/etc/orchestrator/mesh.credential
    --secrets_key_file=/etc/orchestrator/secrets.key)
  for other in "${components[@]}"; do
    [ "$other" = "$c" ] || args+=(--"${other}_addr=$prefix-$other:$grpc_port")
  done
  [ "$c" != admin ] || args+=(--bootstrap_token_file=/run/orchestrator/admin.token)
  [ "$c" != jobs ] || args+=(--demo_jobs)
  options=()
  [ "$c" != agents ] || options+=(--security-opt 'unmask=/proc/*' --security-opt "seccomp=$work/agents-seccomp.json")
  started+=("$prefix-$c")
  podman run --detach --name "$prefix-$c" --network "$network" --env-file "$work/database.env" "${options[@]}" \
    --volume "$work/mounts/mesh.credential:/etc/orchestrator/mesh.credential:ro" \
    --volume "$work/mounts/secrets.key:/etc/orchestrator/secrets.key:ro" \
    --volume "$work/mounts/run:/run/orchestrator" \
    "$image" orchestratord "${args[@]}" >/dev/null || fatal "podman run $c failed"
done
gateway_host_port="$(free_port)"
gateway_url="http://127.0.0.1:$gateway_host_port"
started+=("$prefix-gateway")
podman run --detach --name "$prefix-gateway" --network "$network" \
  --publish "127.0.0.1:$gateway_host_port:$http_port" \
  "$image" orchestrator-gateway --listen="0.0.0.0:$http_port" \
  --upstream="$prefix-admin:$grpc_port" --upstreams="$upstreams" >/dev/null ||
  fatal "podman run gateway failed"
wait_until 60 "the bootstrap token" test -s "$work/mounts/run/admin.token"
# Ready means every component's health check says SERVING.
wait_until 90 "readiness of every component" curl -sf "$gateway_url/readyz"
admin="$(cat "$work/mounts/run/admin.token")"
pass "ten components and the gateway serving on network $network"

# call METHOD PATH [curl args...]: prints "<status> <body>".
call() {
  local method="$1" path="$2" code
  shift 2
  code="$(curl -s -o "$work/body" -w '%{http_code}' -X "$method" "$@" "$gateway_url$path")"
  echo "$code $(cat "$work/body")"
}
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")
expect() { # expect WHAT WANT_STATUS RESPONSE [BODY_SUBSTRING]
  local got="${3%% *}" body="${3#* }"
  [ "$got" = "$2" ] || fail "$1: status $got, want $2: $body"
  [ -z "${4:-}" ] || [[ "$body" == *"$4"* ]] || fail "$1: body lacks '$4': $body"
}

mark
expect "who am I (admin)" 200 "$(call GET /v1/identity "${as_admin[@]}")" '"name":"admin"'
r="$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"shop","displayName":"Shop"}')"
expect "create" 200 "$r" '"name":"shop"'
project_id="$(echo "${r#* }" | json_get project.id)"
[ -n "$project_id" ] || fatal "create returned no project id: $r"
expect "get" 200 "$(call GET "/v1/projects/$project_id" "${as_admin[@]}")" '"displayName":"Shop"'
expect "list" 200 "$(call GET '/v1/projects?page_size=10' "${as_admin[@]}")" "$project_id"
expect "update" 200 "$(call PATCH "/v1/projects/$project_id" "${as_admin[@]}" -d '{"displayName":"Shop 2"}')" \
  '"displayName":"Shop 2"'
# Sealed with the secrets key, listed by name only.
expect "set a secret" 200 "$(call PUT "/v1/projects/$project_id/secrets/DATABASE_URL" "${as_admin[@]}" \
  -d '{"value":"postgres://shop"}')"
r="$(call GET "/v1/projects/$project_id/secrets" "${as_admin[@]}")"
expect "list secrets" 200 "$r" DATABASE_URL
[[ "$r" != *postgres://shop* ]] || fail "a secret's value came back: $r"
expect "create twice" 409 "$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"shop"}')" ALREADY_EXISTS
expect "without a token" 401 "$(call GET /v1/projects)" UNAUTHENTICATED
expect "delete" 200 "$(call DELETE "/v1/projects/$project_id" "${as_admin[@]}")"
expect "get after delete" 404 "$(call GET "/v1/projects/$project_id" "${as_admin[@]}")" NOT_FOUND
pass "project CRUD through the gateway, across the containers"

mark
# A job of the jobs container, for a project of the projects container.
r="$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"jobs-demo"}')"
expect "create for a job" 200 "$r"
project_id="$(echo "${r#* }" | json_get project.id)"
r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" \
  -d "{\"kind\":\"demo.noop\",\"projectId\":\"$project_id\"}")"
expect "enqueue a demo job" 200 "$r"
job_id="$(echo "${r#* }" | json_get job.id)"
[ -n "$job_id" ] || fatal "enqueue returned no job id: $r"
job_succeeded() { [[ "$(call GET "/v1/jobs/$job_id" "${as_admin[@]}")" == *JOB_STATE_SUCCEEDED* ]]; }
wait_until 30 "job $job_id to succeed" job_succeeded
pass "a demo job runs in the jobs container"

mark
# A worker of the agents container: orchestrator-runner and the scripted
# agent in a bwrap sandbox, as the image's user; the agent's CLI reaches the
# projects container through the mesh.
r="$(call POST /v1/workers "${as_admin[@]}" -d "{\"config\":{\"workerType\":\"WORKER_TYPE_DEVELOPER\",
  \"agentType\":\"AGENT_TYPE_SCRIPTED\",\"projectId\":\"$project_id\",\"allowedCommands\":[\"project.get\"]}}")"
expect "start a worker" 200 "$r"
worker_id="$(echo "${r#* }" | json_get worker.id)"
[ -n "$worker_id" ] || fatal "StartWorker returned no worker id: $r"
worker_settled() {
  local w
  w="$(call GET "/v1/workers/$worker_id" "${as_admin[@]}")"
  [[ "$w" == *WORKER_STATE_READY* || "$w" == *WORKER_STATE_FAILED* ]]
}
wait_until 60 "worker $worker_id to start" worker_settled
r="$(call GET "/v1/workers/$worker_id" "${as_admin[@]}")"
[[ "$r" == *WORKER_STATE_READY* ]] || fatal "worker $worker_id did not start: $r"
curl -s -N -m 60 "${as_admin[@]}" -d "{\"prompt\":\"run: orchestrator project get $project_id\"}" \
  "$gateway_url/v1/workers/$worker_id:runTask" >"$work/task" || true
if ! grep -q TASK_STATUS_SUCCEEDED "$work/task" || ! grep -q 'jobs-demo' "$work/task"; then
  fail "the sandboxed agent's CLI call failed: $(head -c 2000 "$work/task")"
fi
expect "stop the worker" 200 "$(call POST "/v1/workers/$worker_id:stop" "${as_admin[@]}" -d '{}')"
pass "a sandboxed agent in the agents container calls the mesh"

mark
# A PO session turn: the sessions container asks the agents container for a
# worker, which runs orchestrator-runner and the scripted agent in a bwrap
# sandbox as the image's user; the agent's CLI call creates a project.
text="$(/usr/bin/python3 -c 'import json; print(json.dumps({"text": "run: orchestrator project create from-po"}))')"
curl -s -N -m 120 "${as_admin[@]}" -d "$text" "$gateway_url/v1/sessions:sendMessage" >"$work/turn" || true
reply="$(/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        print(json.loads(line).get("reply", {}).get("text", ""), end="")' "$work/turn" 2>/dev/null || true)"
grep -q '^exit 0$' <<<"$reply" || fail "the agent's CLI in its sandbox did not create the project: '$reply'; stream: $(head -c 2000 "$work/turn")"
expect "the agent's project" 200 "$(call GET '/v1/projects?page_size=100' "${as_admin[@]}")" '"name":"from-po"'
pass "a PO session turn runs its agent sandboxed in the agents container"

mark
# SIGTERM (podman stop) drains and exits 0: orchestratord is the container's pid 1.
for name in "$prefix-gateway" "${components[@]/#/$prefix-}"; do
  podman stop --time 20 "$name" >/dev/null || fail "podman stop $name"
  code="$(podman inspect --format '{{ .State.ExitCode }}' "$name")"
  [ "$code" = 0 ] || fail "$name exited with $code on SIGTERM"
done
pass "every container exits 0 on SIGTERM"

((failures == 0)) || exit 1
echo "PASS: the product image as a mesh of containers"
