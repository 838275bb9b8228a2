#!/usr/bin/env bash
# The mesh split the way the Helm chart runs it: one orchestratord per
# component (the list from orchestratord --list_components), each told every
# other's address, one mesh credential file and one database for all, the
# REST gateway in front with one upstream per component. Through the gateway,
# as a user: projects and secrets, a demo job over SSE, a PO session turn
# whose sandboxed agent creates a project, a job's end told as a
# notification. Then one component stopped (its calls answer 503 naming it,
# the others still answer) and started again (its calls recover, nothing
# else restarted). The mesh credential is in no log, and a mesh-only RPC is
# refused to the admin's own token.
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
(umask 077 && head -c 32 /dev/urandom | base64 >"$work/secrets.key")
(umask 077 && openssl rand -hex 32 >"$work/mesh.credential")
credential="$(head -n1 "$work/mesh.credential")"

# The flags of the process hosting component $1, into the array `flags`.
flags_for() {
  flags=(--mesh_credential_file="$work/mesh.credential" --drain_deadline="${drain_seconds}s")
  local other
  for other in "${components[@]}"; do
    [ "$other" = "$1" ] || flags+=("--${other}_addr=127.0.0.1:${port_of[$other]}")
  done
  case "$1" in
    admin) flags+=(--bootstrap_token_file="$work/admin.token") ;;
    projects) flags+=(--secrets_key_file="$work/secrets.key") ;;
    jobs) flags+=(--demo_jobs) ;;
    agents) flags+=(--agents_dir="$work/agents" --agent_bin_dir="$agent_bin_dir") ;;
  esac
}
start() {
  flags_for "$1"
  start_component "$orchestratord" "$1" "127.0.0.1:${port_of[$1]}" "${flags[@]}"
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
until_true 30 "the bootstrap token" test -s "$work/admin.token"
upstreams=""
for name in "${components[@]}"; do upstreams+="${upstreams:+,}$name=127.0.0.1:${port_of[$name]}"; done
start_gateway "$gateway" "127.0.0.1:${port_of[admin]}" --upstreams="$upstreams" --call_deadline=10s
until_true 60 "the gateway's /readyz" curl -sf "$gateway_url/readyz"
expect "readyz" 200 "$(call GET /readyz)" SERVING
pass "${#components[@]} processes, one component each (${components[*]}), all SERVING; the gateway is ready"

admin="$(tr -d '[:space:]' <"$work/admin.token")"
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")

mark
mint='{"userId":"usr_x","workerId":"wrk_x","permissions":["project.get"]}'
out="$(rpc -H "authorization: Bearer $admin" -d "$mint" \
  "http://127.0.0.1:${port_of[admin]}/orchestrator.admin.v1.AdminService/MintWorkerToken")"
[ "$(json_get code <<<"$out")" = permission_denied ] ||
  fail "MintWorkerToken with the admin's token: want permission_denied; got: $out"
pass "a mesh-only RPC is refused to the admin's own token"

mark
r="$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"split-shop","displayName":"Split shop"}')"
expect "create" 200 "$r" '"name":"split-shop"'
project_id="$(body_of "$r" | json_get project.id)"
[ -n "$project_id" ] || fatal "create returned no project id: $r"
expect "get" 200 "$(call GET "/v1/projects/$project_id" "${as_admin[@]}")" '"displayName":"Split shop"'
expect "list" 200 "$(call GET '/v1/projects?page_size=10' "${as_admin[@]}")" "$project_id"
r="$(call PATCH "/v1/projects/$project_id" "${as_admin[@]}" -d '{"displayName":"Split shop 2"}')"
expect "update" 200 "$r" '"displayName":"Split shop 2"'
secret_value="s3cr3t-$RANDOM$RANDOM"
expect "set a secret" 200 "$(call PUT "/v1/projects/$project_id/secrets/DATABASE_URL" "${as_admin[@]}" \
  -d "{\"value\":\"$secret_value\"}")"
r="$(call GET "/v1/projects/$project_id/secrets" "${as_admin[@]}")"
expect "list secrets" 200 "$r" DATABASE_URL
[[ "$r" != *"$secret_value"* ]] || fail "listing secrets returned the value: $r"
expect "delete" 200 "$(call DELETE "/v1/projects/$project_id" "${as_admin[@]}")"
expect "get after delete" 404 "$(call GET "/v1/projects/$project_id" "${as_admin[@]}")" NOT_FOUND
pass "project CRUD and secrets through the gateway (names only when listed)"

mark
r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d '{"kind":"demo.sleep","params":{"seconds":1,"steps":3}}')"
expect "enqueue a demo job" 200 "$r"
job_id="$(body_of "$r" | json_get job.id)"
[ -n "$job_id" ] || fatal "enqueue returned no job id: $r"
curl -s -N -m 60 -H "authorization: Bearer $admin" -H 'accept: text/event-stream' \
  "$gateway_url/v1/jobs/$job_id:watch" >"$work/sse" || fail "SSE watch of $job_id did not end cleanly"
ids="$(grep '^id: ' "$work/sse" | cut -d' ' -f2 | tr '\n' ' ' || true)"
want="$(seq -s ' ' 1 "$(grep -c '^id: ' "$work/sse")") "
[ -n "$ids" ] && [ "$ids" = "$want" ] ||
  fail "SSE ids not 1..n in order: '$ids'; stream: $(cat "$work/sse")"
[ "$(grep -c JOB_EVENT_TYPE_PROGRESS "$work/sse")" = 3 ] || fail "want 3 progress events: $(cat "$work/sse")"
grep '^data: ' "$work/sse" | tail -1 | grep -q JOB_STATE_SUCCEEDED ||
  fail "SSE does not end with the job's success: $(cat "$work/sse")"
pass "a demo job enqueued through the gateway, followed over SSE to SUCCEEDED"

# send TEXT: one session turn through the gateway; the reply texts on stdout,
# the whole NDJSON stream in $work/turn.
send() {
  local body
  body="$(/usr/bin/python3 -c 'import json, sys; print(json.dumps({"text": sys.argv[1]}))' "$1")"
  curl -s -N -m 180 "${as_admin[@]}" -d "$body" "$gateway_url/v1/sessions:sendMessage" \
    >"$work/turn" || true
  /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        print(json.loads(line).get("reply", {}).get("text", ""), end="")' "$work/turn" 2>/dev/null || true
}

mark
reply="$(send "run: orchestrator project create split-po")"
grep -q '^exit 0$' <<<"$reply" ||
  fail "the agent's CLI in its sandbox did not create the project: '$reply'; stream: $(cat "$work/turn")"
r="$(call GET '/v1/projects?page_size=100' "${as_admin[@]}")"
po_project="$(body_of "$r" | /usr/bin/python3 -c '
import json, sys
print(next((p["id"] for p in json.load(sys.stdin).get("projects", []) if p["name"] == "split-po"), ""))' 2>/dev/null || true)"
if [ -z "$po_project" ]; then
  fail "split-po is not among the user's projects: $r"
else
  r="$(call GET "/v1/projects/$po_project" "${as_admin[@]}")"
  expect "get the agent's project" 200 "$r" '"name":"split-po"'
fi
pass "a PO session turn: the scripted agent's sandboxed CLI created a project the user sees"

mark
curl -s -N -m 120 -H "authorization: Bearer $admin" -H 'accept: text/event-stream' \
  "$gateway_url/v1/notifications:watch" >"$work/notifications" &
watcher=$!
r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d '{"kind":"demo.sleep","params":{"seconds":0.5,"steps":1}}')"
expect "enqueue a demo job to be told about" 200 "$r"
told_job="$(body_of "$r" | json_get job.id)"
told() {
  /usr/bin/python3 - "$work/notifications" "$told_job" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("data: "):
        n = json.loads(line[6:]).get("notification", {})
        if (n.get("jobId") == sys.argv[2] and n.get("kind") == "NOTIFICATION_KIND_JOB_UPDATE"
                and "Your job %s succeeded" % sys.argv[2] in n.get("text", "")):
            sys.exit(0)
sys.exit(1)
PY
}
deadline=$((SECONDS + 90))
until told; do
  ((SECONDS < deadline)) || break
  sleep 0.5
done
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
told || fail "no notification that $told_job succeeded within 90 s: $(cat "$work/notifications")"
pass "the user's job ending reached them as a notification over SSE"

mark
r="$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"split-outage"}')"
expect "create a project to ask about" 200 "$r"
outage_project="$(body_of "$r" | json_get project.id)"
# Enqueueing a job for a project has jobs ask projects about it.
for_project="{\"kind\":\"demo.noop\",\"projectId\":\"$outage_project\"}"
expect "a job for the project" 200 "$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d "$for_project")"
others=()
for name in "${components[@]}"; do
  [ "$name" = projects ] || others+=("$name=${component_pids[$name]}")
done
stop_component projects $((drain_seconds + 10))
[ "$component_status" = 0 ] || fail "projects: exit status $component_status on SIGTERM, want 0"
# A call to the stopped component itself, and one another component makes to it.
r="$(call GET "/v1/projects/$outage_project" "${as_admin[@]}")"
expect "get a project while projects is down" 503 "$r" UNAVAILABLE
[[ "$(body_of "$r")" =~ projects|ProjectService ]] || fail "the 503 does not name projects: $r"
r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d "$for_project")"
expect "a job for the project while projects is down" 503 "$r" UNAVAILABLE
[[ "$(body_of "$r")" =~ projects|ProjectService ]] || fail "the 503 does not name projects: $r"
expect "list jobs while projects is down" 200 "$(call GET /v1/jobs "${as_admin[@]}")"
expect "identity while projects is down" 200 "$(call GET /v1/identity "${as_admin[@]}")"
expect "readyz while projects is down" 503 "$(call GET /readyz)"
# Down for a few seconds, as in a real outage: every call still answers at
# once (its callers back off meanwhile, which the restart below must outlast).
down_until=$((SECONDS + 5))
while ((SECONDS < down_until)); do
  asked_ms="$(date +%s%3N)"
  r="$(call GET "/v1/projects/$outage_project" "${as_admin[@]}")"
  took_ms=$(($(date +%s%3N) - asked_ms))
  [ "$(status_of "$r")" = 503 ] || fail "get a project while projects is down: $r"
  ((took_ms < 3000)) || fail "a call to projects while it is down took $took_ms ms to answer"
  ((failures == failures_before)) || break
  sleep 0.5
done
pass "projects stopped: calls that need it answer 503 naming it, the others 200"

mark
start projects
restarted=$SECONDS
projects_back() {
  [ "$(status_of "$(call GET "/v1/projects/$outage_project" "${as_admin[@]}")")" = 200 ] &&
    [ "$(status_of "$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d "$for_project")")" = 200 ]
}
until_true 60 "projects' calls after its restart" projects_back
recovered=$((SECONDS - restarted))
((recovered <= 15)) || fail "projects' calls took $recovered s to recover after its restart, want a few"
until_true 30 "readyz after the restart" curl -sf "$gateway_url/readyz"
for entry in "${others[@]}"; do
  name="${entry%%=*}"
  [ "${component_pids[$name]}" = "${entry#*=}" ] && component_running "$name" ||
    fail "$name was restarted or exited while projects was away"
done
pass "projects started again: its calls recovered in $recovered s, nothing else restarted"

mark
# Every file the processes wrote: their logs, the agents' workspaces and worker logs.
leaks="$(grep -rlF -D skip --exclude=mesh.credential -- "$credential" "$work" || true)"
[ -z "$leaks" ] || fail "the mesh credential appears in: $leaks"
for f in "$work"/*.log; do
  if grep -qF -- "$admin" "$f"; then fail "the admin token appears in $(basename "$f")"; fi
done
pass "the mesh credential is in no file the processes wrote, the admin token in no log"

finish "the mesh split into ${#components[@]} processes"
