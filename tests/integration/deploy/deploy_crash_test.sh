#!/usr/bin/env bash
# orchestratord SIGKILLed in the middle of deploys (with the real Podman and
# Caddy): each kill lands once the job has reported a step (fetched, built,
# container started, health gate passed, switched). After a restart the job
# runs again and ends with exactly one LIVE release per project, the route
# serving it through Caddy, and no other container of the project left.
#
#   deploy_crash_test.sh <orchestratord> <buf>
set -euo pipefail
orchestratord="$1"
buf="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source=../../support/private_pg.sh
source "$root/tests/support/private_pg.sh"

work="$(mktemp -d -t deploy_crash.XXXXXX)"
pid=""
podman_pid=""
caddy_pid=""
projects=()
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  for p in "${projects[@]}"; do
    ids="$(curl -s --unix-socket "$work/podman.sock" \
      "http://d/v1.41/containers/json?all=true&filters=%7B%22label%22%3A%5B%22orchestrator.project%3D$p%22%5D%7D" |
      python3 -c 'import json,sys; print(" ".join(c["Id"] for c in json.load(sys.stdin)))' 2>/dev/null)" || true
    for id in $ids; do curl -s -X DELETE --unix-socket "$work/podman.sock" "http://d/v1.41/containers/$id?force=true" >/dev/null || true; done
  done
  [ -n "$caddy_pid" ] && kill -9 -- "-$caddy_pid" 2>/dev/null || true
  [ -n "$podman_pid" ] && kill -9 -- "-$podman_pid" 2>/dev/null || true
  private_pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/orch.log" ] && tail -40 "$work/orch.log" >&2; exit 1; }

private_pg_start
port="$(free_port)"
git_port="$(free_port)"
caddy_admin="$(free_port)"
router_port="$(free_port)"
url="http://127.0.0.1:$port"
(umask 077 && openssl rand -hex 32 >"$work/mesh.credential" && head -c 32 /dev/urandom | base64 >"$work/secrets.key")

CONTAINERS_CONF="$root/tools/image/containers.conf" setsid podman system service --time=0 \
  "unix://$work/podman.sock" </dev/null >"$work/podman.log" 2>&1 &
podman_pid=$!
mkdir -p "$work/caddy"
printf '{"admin": {"listen": "127.0.0.1:%s", "config": {"persist": false}}}\n' "$caddy_admin" >"$work/caddy/caddy.json"
HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy" XDG_DATA_HOME="$work/caddy" setsid caddy run \
  --config "$work/caddy/caddy.json" </dev/null >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 100); do
  curl -sf --unix-socket "$work/podman.sock" http://d/_ping >/dev/null 2>&1 &&
    curl -sf "http://127.0.0.1:$caddy_admin/config/" >/dev/null 2>&1 && break
  sleep 0.2
done

start() {
  umask 077  # as tools/up runs it
  "$orchestratord" --services=all --job_lease=2s --listen="127.0.0.1:$port" \
    --mesh_credential_file="$work/mesh.credential" --secrets_key_file="$work/secrets.key" \
    --database_url="$pg_conninfo" \
    --bootstrap_token_file="$work/admin.token" --agents_dir="$work/agents" \
    --scaffolder_dir="$work/scaffolder" --git_http_listen="127.0.0.1:$git_port" \
    --container_engine_socket="unix://$work/podman.sock" \
    --caddy_admin_url="http://127.0.0.1:$caddy_admin" --router_listen="127.0.0.1:$router_port" \
    --deploy_dir="$work/deploy" --local_port_range=31300-31399 \
    </dev/null >>"$work/orch.log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do
    [ -s "$work/admin.token" ] && "$buf" curl --protocol grpc --http2-prior-knowledge -d '{}' \
      "$url/grpc.health.v1.Health/Check" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "orchestratord did not start"
}
call() { "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" -d "$2" "$url/$1"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_job() {
  timeout 180 "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" \
    -d "{\"jobId\":\"$1\"}" "$url/orchestrator.jobs.v1.JobService/WatchJob" 2>&1 |
    grep -o '"toState": "[A-Z_]*"' | tail -n1
}
get_host() {  # GET / through Caddy for a host: the status code
  curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$router_port/" || true
}

start
auth="authorization: Bearer $(tr -d '[:space:]' <"$work/admin.token")"

# Killed once the job's progress reaches: fetched (15), built (30),
# container started (45), health gate passed (65), switched and LIVE (80).
for step in 15 30 45 65 80; do
  project="$(call orchestrator.projects.v1.ProjectService/CreateProject \
    "{\"project\":{\"name\":\"crash-$step\"}}" | json 'd["project"]["id"]')"
  projects+=("$project")
  job="$(call orchestrator.scaffolder.v1.ScaffolderService/Scaffold \
    "{\"projectId\":\"$project\",\"templateId\":\"python-http\"}" | json 'd["job"]["id"]')"
  [ "$(wait_job "$job")" = '"toState": "JOB_STATE_SUCCEEDED"' ] || fail "scaffold $job"
  job="$(call orchestrator.deploy.v1.DeployService/TriggerDeploy "{\"projectId\":\"$project\"}" |
    json 'd["job"]["id"]')"
  for _ in $(seq 600); do
    reached="$(call orchestrator.jobs.v1.JobService/GetJob "{\"jobId\":\"$job\"}" |
      json 'd["job"].get("progressPercent", 0)')"
    ((reached >= step)) && break
    sleep 0.02
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  echo "killed orchestratord at $reached% of the deploy of $project"
  start
  last="$(wait_job "$job")"
  [ "$last" = '"toState": "JOB_STATE_SUCCEEDED"' ] || fail "deploy $job ended with '$last'"
  releases="$(call orchestrator.deploy.v1.DeployService/ListReleases "{\"projectId\":\"$project\"}")"
  live="$(json 'sum(1 for r in d.get("releases", []) if r["status"] == "RELEASE_STATUS_LIVE")' <<<"$releases")"
  total="$(json 'len(d.get("releases", []))' <<<"$releases")"
  [ "$live" = 1 ] && [ "$total" = 1 ] || fail "$project has $live LIVE of $total releases: $releases"
  host="$(json 'd["releases"][0]["url"].split("//")[1].split(":")[0]' <<<"$releases")"
  [ "$(get_host "$host")" = 200 ] || fail "$host does not answer 200 through Caddy"
  count="$(curl -s --unix-socket "$work/podman.sock" \
    "http://d/v1.41/containers/json?all=true&filters=%7B%22label%22%3A%5B%22orchestrator.project%3D$project%22%5D%7D" |
    json 'len(d)')"
  [ "$count" = 1 ] || fail "$project has $count containers"
  attempts="$(call orchestrator.jobs.v1.JobService/GetJob "{\"jobId\":\"$job\"}" | json 'd["job"]["attempt"]')"
  echo "ok: $project: one LIVE release served through Caddy, one container (job attempts $attempts)"
done
echo "PASS: deploys survive SIGKILL at every step with one LIVE release, its route and one container"
