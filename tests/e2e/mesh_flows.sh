# shellcheck shell=bash
# What a user does through the gateway of a split mesh, the same whether the
# components run as processes (split_e2e.sh) or as containers
# (containers_e2e.sh). Source checks.sh first. The caller sets
#   gateway_url, work, admin (the admin's token), as_admin (curl headers),
#   flow_prefix (project names start with it)
# and, for flow_outage, defines
#   stop_one NAME      stops the component gracefully; fails unless it exits 0
#   start_one NAME     starts it again, as it was started first
#   instance_of NAME   prints what identifies its running instance (a pid, a
#                      container's start time): a restart changes it
#   until_true SECONDS WHAT COMMAND...   retries COMMAND while the mesh runs
# and the array mesh_components (every component's name).
# shellcheck disable=SC2154  # those, and checks.sh's counters, are the caller's

# A project round trip with a secret, which comes back by name only.
flow_projects() {
  mark
  local r project_id secret_value
  r="$(call POST /v1/projects "${as_admin[@]}" -d "{\"name\":\"$flow_prefix-shop\",\"displayName\":\"Shop\"}")"
  expect "create" 200 "$r" "\"name\":\"$flow_prefix-shop\""
  project_id="$(body_of "$r" | json_get project.id)"
  [ -n "$project_id" ] || fatal "create returned no project id: $r"
  expect "get" 200 "$(call GET "/v1/projects/$project_id" "${as_admin[@]}")" '"displayName":"Shop"'
  expect "list" 200 "$(call GET '/v1/projects?page_size=10' "${as_admin[@]}")" "$project_id"
  r="$(call PATCH "/v1/projects/$project_id" "${as_admin[@]}" -d '{"displayName":"Shop 2"}')"
  expect "update" 200 "$r" '"displayName":"Shop 2"'
  secret_value="s3cr3t-$RANDOM$RANDOM"
  expect "set a secret" 200 "$(call PUT "/v1/projects/$project_id/secrets/DATABASE_URL" "${as_admin[@]}" \
    -d "{\"value\":\"$secret_value\"}")"
  r="$(call GET "/v1/projects/$project_id/secrets" "${as_admin[@]}")"
  expect "list secrets" 200 "$r" DATABASE_URL
  [[ "$r" != *"$secret_value"* ]] || fail "listing secrets returned the value: $r"
  expect "create twice" 409 "$(call POST /v1/projects "${as_admin[@]}" -d "{\"name\":\"$flow_prefix-shop\"}")" \
    ALREADY_EXISTS
  expect "without a token" 401 "$(call GET /v1/projects)" UNAUTHENTICATED
  expect "delete" 200 "$(call DELETE "/v1/projects/$project_id" "${as_admin[@]}")"
  expect "get after delete" 404 "$(call GET "/v1/projects/$project_id" "${as_admin[@]}")" NOT_FOUND
  pass "project CRUD and secrets through the gateway (names only when listed)"
}

# A demo job enqueued through the gateway and followed over SSE to its end.
flow_demo_job_sse() {
  mark
  local r job_id ids want
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
}

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

# A PO session turn: sessions asks agents for a worker, whose scripted agent
# runs the orchestrator CLI in its bubblewrap sandbox and creates a project.
flow_po_turn() {
  mark
  local reply r po_project
  reply="$(send "run: orchestrator project create $flow_prefix-po")"
  grep -q '^exit 0$' <<<"$reply" ||
    fail "the agent's CLI in its sandbox did not create the project: '$reply'; stream: $(cat "$work/turn")"
  r="$(call GET '/v1/projects?page_size=100' "${as_admin[@]}")"
  po_project="$(body_of "$r" | /usr/bin/python3 -c '
import json, sys
print(next((p["id"] for p in json.load(sys.stdin).get("projects", []) if p["name"] == sys.argv[1]), ""))' \
    "$flow_prefix-po" 2>/dev/null || true)"
  if [ -z "$po_project" ]; then
    fail "$flow_prefix-po is not among the user's projects: $r"
  else
    r="$(call GET "/v1/projects/$po_project" "${as_admin[@]}")"
    expect "get the agent's project" 200 "$r" "\"name\":\"$flow_prefix-po\""
  fi
  pass "a PO session turn: the scripted agent's sandboxed CLI created a project the user sees"
}

# The end of the user's job, told to them as a notification over SSE.
flow_job_notification() {
  mark
  local watcher r told_job deadline
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
}

# flow_outage NAME: NAME stopped (its calls answer 503 naming it, the others
# still answer), then started again (its calls recover, nothing else
# restarted). NAME is projects: the flow asks it directly and through jobs.
flow_outage() {
  local down="$1"
  [ "$down" = projects ] || fatal "flow_outage knows how to ask projects only, not $down"
  mark
  local r outage_project for_project name down_until asked_ms took_ms restarted recovered
  local -A before=()
  r="$(call POST /v1/projects "${as_admin[@]}" -d "{\"name\":\"$flow_prefix-outage\"}")"
  expect "create a project to ask about" 200 "$r"
  outage_project="$(body_of "$r" | json_get project.id)"
  # Enqueueing a job for a project has jobs ask projects about it.
  for_project="{\"kind\":\"demo.noop\",\"projectId\":\"$outage_project\"}"
  expect "a job for the project" 200 "$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d "$for_project")"
  for name in "${mesh_components[@]}"; do
    [ "$name" = "$down" ] || before[$name]="$(instance_of "$name")"
  done
  stop_one "$down"
  # A call to the stopped component itself (the gateway names it), and one
  # another component makes to it.
  r="$(call GET "/v1/projects/$outage_project" "${as_admin[@]}")"
  expect "get a project while $down is down" 503 "$r" "the $down component"
  r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d "$for_project")"
  expect "a job for the project while $down is down" 503 "$r" UNAVAILABLE
  [[ "$(body_of "$r")" =~ projects|ProjectService ]] || fail "the 503 does not name $down: $r"
  expect "list jobs while $down is down" 200 "$(call GET /v1/jobs "${as_admin[@]}")"
  expect "identity while $down is down" 200 "$(call GET /v1/identity "${as_admin[@]}")"
  expect "readyz while $down is down" 503 "$(call GET /readyz)"
  # Down for a few seconds, as in a real outage: every call still answers at
  # once (its callers back off meanwhile, which the restart below must outlast).
  down_until=$((SECONDS + 5))
  while ((SECONDS < down_until)); do
    asked_ms="$(date +%s%3N)"
    r="$(call GET "/v1/projects/$outage_project" "${as_admin[@]}")"
    took_ms=$(($(date +%s%3N) - asked_ms))
    [ "$(status_of "$r")" = 503 ] || fail "get a project while $down is down: $r"
    ((took_ms < 3000)) || fail "a call to $down while it is down took $took_ms ms to answer"
    ((failures == failures_before)) || break
    sleep 0.5
  done
  pass "$down stopped: calls that need it answer 503 naming it, the others 200"

  mark
  start_one "$down"
  restarted=$SECONDS
  # shellcheck disable=SC2317  # called by until_true
  back() {
    [ "$(status_of "$(call GET "/v1/projects/$outage_project" "${as_admin[@]}")")" = 200 ] &&
      [ "$(status_of "$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d "$for_project")")" = 200 ]
  }
  until_true 60 "$down's calls after its restart" back
  recovered=$((SECONDS - restarted))
  ((recovered <= 15)) || fail "$down's calls took $recovered s to recover after its restart, want a few"
  until_true 30 "readyz after the restart" curl -sf "$gateway_url/readyz"
  for name in "${!before[@]}"; do
    [ "$(instance_of "$name")" = "${before[$name]}" ] ||
      fail "$name was restarted or exited while $down was away"
  done
  pass "$down started again: its calls recovered in $recovered s, nothing else restarted"
}
