#!/usr/bin/env bash
# The REST gateway in front of the whole mesh, the way a web client or a
# script reaches it: curl only. Project CRUD with its statuses, the JSON
# error body, bad input of every kind, a job watched as SSE and resumed by
# Last-Event-ID, NDJSON, /openapi.json against the contracts, and a
# graceful SIGTERM with a stream open.
#
#   bash tests/e2e/gateway_e2e.sh <orchestratord> <orchestrator-gateway>
set -euo pipefail

[ $# -eq 2 ] || {
  echo "usage: $0 <orchestratord> <orchestrator-gateway>" >&2
  exit 2
}
orchestratord="$1"
gateway="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

port="$(free_port)"
start_orchestratord "$orchestratord" "127.0.0.1:$port" --demo_jobs
wait_for 30 "the bootstrap token" test -s "$work/admin.token"
start_gateway "$gateway" "127.0.0.1:$port" --drain_deadline=3s --read_timeout=1s --idle_timeout=2s
admin="$(cat "$work/admin.token")"
wait_for 30 "readiness" curl -sf "$gateway_url/readyz"

# call METHOD PATH [curl args...]: prints "<status> <body>"; the body also in $work/body.
call() {
  local method="$1" path="$2"
  shift 2
  local code
  code="$(curl -s -o "$work/body" -w '%{http_code}' -X "$method" "$@" "$gateway_url$path")"
  echo "$code $(cat "$work/body")"
}
as_admin=(-H "authorization: Bearer $admin" -H "content-type: application/json")
status_of() { echo "${1%% *}"; }
body_of() { echo "${1#* }"; }
expect() { # expect WHAT WANT_STATUS RESPONSE [BODY_SUBSTRING]
  local got
  got="$(status_of "$3")"
  [ "$got" = "$2" ] || fail "$1: status $got, want $2: $(body_of "$3")"
  if [ -n "${4:-}" ]; then
    [[ "$(body_of "$3")" == *"$4"* ]] || fail "$1: body lacks '$4': $(body_of "$3")"
  fi
}

mark
expect "healthz" 200 "$(call GET /healthz)" SERVING
expect "readyz" 200 "$(call GET /readyz)" SERVING
pass "health and readiness"

mark
r="$(call POST /v1/projects -d '{"name":"shop","displayName":"Shop"}' -H 'content-type: application/json')"
expect "create without a token" 401 "$r" '"status":"UNAUTHENTICATED"'
r="$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"shop","displayName":"Shop","description":"a <small> & \"fine\" shop ✓"}')"
expect "create" 200 "$r" '"name":"shop"'
project_id="$(body_of "$r" | json_get project.id)"
[ -n "$project_id" ] || fatal "create returned no project id: $r"
r="$(call GET "/v1/projects/$project_id" "${as_admin[@]}")"
expect "get" 200 "$r"
[ "$(body_of "$r" | json_get project.description)" = 'a <small> & "fine" shop ✓' ] ||
  fail "description did not survive the JSON round trip: $r"
expect "list" 200 "$(call GET '/v1/projects?page_size=10' "${as_admin[@]}")" "$project_id"
r="$(call PATCH "/v1/projects/$project_id" "${as_admin[@]}" -d '{"displayName":"Shop 2"}')"
expect "update" 200 "$r" '"displayName":"Shop 2"'
expect "create twice" 409 "$(call POST /v1/projects "${as_admin[@]}" -d '{"name":"shop"}')" '"status":"ALREADY_EXISTS"'
expect "delete" 200 "$(call DELETE "/v1/projects/$project_id" "${as_admin[@]}")"
r="$(call GET "/v1/projects/$project_id" "${as_admin[@]}")"
expect "get after delete" 404 "$r" '"status":"NOT_FOUND"'
body_of "$r" | /usr/bin/python3 -c '
import json, sys
e = json.load(sys.stdin)
assert set(e) == {"code", "status", "message", "details"}, e
assert e["code"] == 5 and e["message"], e' || fail "error body is not {code, status, message, details}"
# A token that may only read projects is refused creating one, naming the permission.
me="$(call GET /v1/identity "${as_admin[@]}")"
user_id="$(body_of "$me" | json_get user.id)"
r="$(call POST "/v1/users/$user_id/tokens" "${as_admin[@]}" -d '{"permissions":["project.get"],"description":"read only"}')"
expect "create a narrow token" 200 "$r"
narrow="$(body_of "$r" | json_get value)"
r="$(call POST /v1/projects -H "authorization: Bearer $narrow" -H 'content-type: application/json' -d '{"name":"nope"}')"
expect "create with a read-only token" 403 "$r" "project.create"
pass "project CRUD over REST with the right statuses"

mark
expect "malformed JSON" 400 "$(call POST /v1/projects "${as_admin[@]}" -d '{"name":')" '"message":"body:'
expect "unknown field" 400 "$(call POST /v1/projects "${as_admin[@]}" -d '{"nmae":"x"}')" 'nmae'
expect "wrong type" 400 "$(call POST /v1/projects "${as_admin[@]}" -d '{"name":42}')" 'name'
expect "wrong query type" 400 "$(call GET '/v1/projects?page_size=many' "${as_admin[@]}")" "page_size"
expect "unknown query parameter" 400 "$(call GET '/v1/projects?colour=red' "${as_admin[@]}")" "colour"
printf '{"name":"bad\xff"}' >"$work/bad-utf8.json"
expect "invalid UTF-8" 400 "$(call POST /v1/projects "${as_admin[@]}" --data-binary @"$work/bad-utf8.json")" "UTF-8"
expect "unmatched path" 404 "$(call GET /v1/nowhere "${as_admin[@]}")" "no route"
expect "wrong method" 405 "$(call PUT /v1/projects "${as_admin[@]}")" "GET, POST"
curl -s -D - -o /dev/null -X PUT "$gateway_url/v1/projects" | tr -d '\r' | grep -qi '^allow: GET, POST$' ||
  fail "405 without an Allow header"
expect "wrong content type" 415 "$(call POST /v1/projects -H "authorization: Bearer $admin" -H 'content-type: text/xml' -d '<p/>')"
# A form (curl -d's and a browser's default) is never read as JSON, nor is an unlabelled body.
expect "form body" 415 "$(call POST /v1/projects -H "authorization: Bearer $admin" -d '{"name":"formed"}')" "application/json"
expect "unlabelled body" 415 "$(call POST /v1/projects -H "authorization: Bearer $admin" -H 'content-type:' -d '{"name":"bare"}')" "application/json"
expect "JSON with a charset" 200 "$(call POST /v1/projects -H "authorization: Bearer $admin" -H 'content-type: application/json; charset=utf-8' -d '{"name":"charset"}')" '"name":"charset"'
head -c 1100000 /dev/zero | tr '\0' a >"$work/big"
expect "oversized body" 413 "$(call POST /v1/projects "${as_admin[@]}" --data-binary @"$work/big")" "larger than"
expect "oversized headers" 431 "$(call GET /v1/projects "${as_admin[@]}" -H "x-filler: $(head -c 20000 /dev/zero | tr '\0' a)")"
expect "a token that is not ASCII" 401 "$(call GET /v1/projects -H $'authorization: Bearer t\xc3\xa9')" "Bearer"
expect "body on a GET" 400 "$(call GET /v1/projects "${as_admin[@]}" -d '{"pageSize":1}')" "takes no body"
# After all that, the gateway still serves.
expect "still serving" 200 "$(call GET /v1/projects "${as_admin[@]}")"
rid="$(curl -s -D - -o /dev/null -H 'x-request-id: trace-123' "$gateway_url/v1/projects" "${as_admin[@]}" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')"
[ "$rid" = trace-123 ] || fail "request id not echoed: '$rid'"
rid="$(curl -s -D - -o /dev/null -H $'x-request-id: caf\xc3\xa9' "$gateway_url/v1/projects" "${as_admin[@]}" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')"
[[ "$rid" == gw-* ]] || fail "a request id gRPC cannot carry was kept: '$rid'"
pass "bad input gets a clear 4xx; the request id comes back"

mark
# Connections: keep-alive reuse, a body that never finishes (408 after
# --read_timeout), a connection that sends nothing (closed after --idle_timeout).
/usr/bin/python3 - "${gateway_url#http://}" <<'PY' || fail "connection handling"
import socket, sys, time
host, port = sys.argv[1].split(":")
def conn():
    s = socket.create_connection((host, int(port)), timeout=10)
    return s
def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(4096)
    return head + b"\r\n\r\n" + body
s = conn()
for i in range(3):  # three requests, one connection
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(s)
    assert r.startswith(b"HTTP/1.1 200"), r
s.close()
s = conn()  # a slow body
s.sendall(b"POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"na")
start = time.time()
r = read_response(s)
assert r.startswith(b"HTTP/1.1 408"), r
assert time.time() - start < 5, time.time() - start
s.close()
s = conn()  # an idle connection
start = time.time()
assert s.recv(1) == b"", "idle connection not closed"
assert 1.5 < time.time() - start < 6, time.time() - start
s.close()
PY
pass "keep-alive, a slow body gets 408, an idle connection is closed"

mark
r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d '{"kind":"demo.sleep","params":{"seconds":1,"steps":3}}')"
expect "enqueue a demo job" 200 "$r"
job_id="$(body_of "$r" | json_get job.id)"
curl -s -N -D "$work/sse.head" -H "authorization: Bearer $admin" -H 'accept: text/event-stream' \
  "$gateway_url/v1/jobs/$job_id:watch" >"$work/sse" || fail "SSE watch failed"
grep -qi '^content-type: text/event-stream' "$work/sse.head" || fail "SSE content type: $(cat "$work/sse.head")"
ids="$(grep '^id: ' "$work/sse" | cut -d' ' -f2 | tr '\n' ' ')"
want="$(seq -s ' ' 1 "$(grep -c '^id: ' "$work/sse")") "
[ "$ids" = "$want" ] || fail "SSE ids not 1..n in order: $ids"
grep '^data: ' "$work/sse" | tail -1 | grep -q JOB_STATE_SUCCEEDED || fail "SSE does not end with the job's success"
curl -s -N -H "authorization: Bearer $admin" -H 'accept: text/event-stream' -H 'Last-Event-ID: 2' \
  "$gateway_url/v1/jobs/$job_id:watch" >"$work/sse2"
resumed="$(grep '^id: ' "$work/sse2" | cut -d' ' -f2 | tr '\n' ' ')"
[ "$resumed" = "$(seq -s ' ' 3 "$(grep -c '^id: ' "$work/sse")") " ] || fail "resume after 2 gave: $resumed"
curl -s -N -D "$work/nd.head" -H "authorization: Bearer $admin" "$gateway_url/v1/jobs/$job_id:watch" >"$work/nd"
grep -qi '^content-type: application/x-ndjson' "$work/nd.head" || fail "NDJSON content type"
[ "$(wc -l <"$work/nd")" = "$(grep -c '^id: ' "$work/sse")" ] || fail "NDJSON lines differ from SSE events"
/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)["event"]["sequence"]' "$work/nd" || fail "NDJSON lines are not events"
# A watch with nothing to say yet still answers at once: headers, then events as they come.
curl -s -N -m 2 -D "$work/quiet.head" -o /dev/null -H "authorization: Bearer $admin" \
  -H 'accept: text/event-stream' "$gateway_url/v1/jobs:watch" || true
grep -q '^HTTP/1.1 200' "$work/quiet.head" && grep -qi '^content-type: text/event-stream' "$work/quiet.head" ||
  fail "a quiet watch sent no headers: $(cat "$work/quiet.head")"
expect "watch a missing job" 404 "$(call GET /v1/jobs/job_missing:watch "${as_admin[@]}")" NOT_FOUND
expect "Last-Event-ID that is no id" 400 "$(call GET "/v1/jobs/$job_id:watch" "${as_admin[@]}" -H 'Last-Event-ID: x')" "Last-Event-ID"
pass "a job watched as SSE, resumed by Last-Event-ID, and as NDJSON"

mark
# A flood from one user's token: once its bucket (the default 50/s, bursts of
# 100) is empty, 429 with Retry-After; the admin's own calls still go through.
r="$(call POST /v1/users "${as_admin[@]}" -d '{"name":"flooder"}')"
expect "create a user to flood with" 200 "$r"
flooder_id="$(body_of "$r" | json_get user.id)"
r="$(call POST "/v1/users/$flooder_id/tokens" "${as_admin[@]}" -d '{}')"
expect "give it a token" 200 "$r"
flooder="$(body_of "$r" | json_get value)"
urls=()  # curl's -o applies to one URL: each gets its own
for _ in $(seq 400); do urls+=(-o /dev/null "$gateway_url/v1/identity"); done
curl -s -Z --parallel-max 64 -w '%{http_code} %header{retry-after}\n' \
  -H "authorization: Bearer $flooder" "${urls[@]}" >"$work/flood"
ok_calls="$(grep -c '^200 ' "$work/flood" || true)"
limited="$(grep -c '^429 [0-9]' "$work/flood" || true)"
((ok_calls >= 50 && limited >= 100)) ||
  fail "flood of 400: $ok_calls answered, $limited refused with Retry-After ($(sort "$work/flood" | uniq -c | tr '\n' ' '))"
expect "another caller during the flood" 200 "$(call GET /v1/identity "${as_admin[@]}")"
pass "a flooding token gets 429 with Retry-After ($ok_calls of 400 answered), others do not"

mark
curl -s "$gateway_url/openapi.json" >"$work/openapi.json"
/usr/bin/python3 - "$work/openapi.json" "$here/../../proto" <<'PY' || fail "openapi.json does not list every annotated route"
import json, pathlib, re, sys
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3."), doc["openapi"]
have = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
want = set()
for f in pathlib.Path(sys.argv[2]).rglob("*.proto"):
    if "runner" in f.name:
        continue
    for m in re.finditer(r'\b(get|post|put|patch|delete):\s*"([^"]+)"', f.read_text()):
        want.add((m.group(1).upper(), re.sub(r"=\*\}", "}", m.group(2))))
missing = want - have
assert not missing, "missing: %s" % sorted(missing)
assert have == want, "extra: %s" % sorted(have - want)
refs = re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', open(sys.argv[1]).read())
assert refs and all(r in doc["components"]["schemas"] for r in refs), "dangling $ref"
print("openapi: %d routes" % len(have))
PY
pass "/openapi.json lists every annotated route"

mark
r="$(call POST /v1/jobs:enqueueDemo "${as_admin[@]}" -d '{"kind":"demo.sleep","params":{"seconds":60,"steps":2}}')"
long_job="$(body_of "$r" | json_get job.id)"
curl -s -N -H "authorization: Bearer $admin" -H 'accept: text/event-stream' \
  "$gateway_url/v1/jobs/$long_job:watch" >"$work/long" &
watcher=$!
sleep 1
started=$SECONDS
stop_gateway
[ "$gateway_status" = 0 ] || fail "gateway exit status $gateway_status on SIGTERM"
((SECONDS - started <= 5)) || fail "gateway took $((SECONDS - started)) s to stop"
wait "$watcher" || true
grep -q '^id: 1' "$work/long" || fail "the open stream had not delivered"
pass "SIGTERM with a stream open: the stream ends, the gateway exits 0"

mark
# A split mesh: projects at an address where nothing listens, the rest at the mesh.
start_gateway "$gateway" "127.0.0.1:$port" --upstreams="projects=127.0.0.1:$(free_port)" --call_deadline=3s
expect "a component that is down" 503 "$(call GET /v1/projects "${as_admin[@]}")" UNAVAILABLE
expect "the others" 200 "$(call GET /v1/jobs "${as_admin[@]}")"
expect "readiness with a component down" 503 "$(call GET /readyz)" "not serving"
expect "a typo in --upstreams" 2 "$("$gateway" --upstreams=project=x:1 >/dev/null 2>&1; echo "$? ")"
pass "--upstreams sends each component's calls to its own address"

finish "REST gateway over the mesh"
