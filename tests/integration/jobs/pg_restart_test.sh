#!/usr/bin/env bash
# PostgreSQL restarted while jobs are being enqueued and run: the workers
# reconnect and carry on, and every enqueue the server acknowledged ends
# SUCCEEDED (enqueues refused while the database was down were never
# acknowledged, so nothing is lost).
#
#   pg_restart_test.sh <orchestratord> <buf>
set -euo pipefail
orchestratord="$1"
buf="$2"
# shellcheck source=../../support/private_pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../support/private_pg.sh"

work="$(mktemp -d -t pg_restart.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  private_pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/orch.log" ] && tail -20 "$work/orch.log" >&2; exit 1; }

private_pg_start

port="$(free_port)"
url="http://127.0.0.1:$port"
# The job engine with the components it needs (tokens, project ids).
(umask 077 && openssl rand -hex 32 >"$work/mesh.credential" && head -c 32 /dev/urandom | base64 >"$work/secrets.key")
"$orchestratord" --services=admin,projects,jobs --demo_jobs --job_lease=2s --listen="127.0.0.1:$port" \
  --mesh_credential_file="$work/mesh.credential" --secrets_key_file="$work/secrets.key" \
  --database_url="$pg_conninfo" \
  --bootstrap_token_file="$work/admin.token" </dev/null >"$work/orch.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  [ -s "$work/admin.token" ] && "$buf" curl --protocol grpc --http2-prior-knowledge -d '{}' \
    "$url/grpc.health.v1.Health/Check" >/dev/null 2>&1 && break
  sleep 0.1
done
auth="authorization: Bearer $(tr -d '[:space:]' <"$work/admin.token")"

enqueue() {
  "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" \
    -d "{\"kind\":\"demo.sleep\",\"params\":{\"seconds\":0.3,\"steps\":2},\"maxAttempts\":50,\"requestId\":\"r$1\"}" \
    "$url/orchestrator.jobs.v1.JobService/EnqueueDemoJob" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])' 2>/dev/null || true
}

acked=()
refused=0
for i in $(seq 1 40); do
  if [ "$i" = 12 ]; then
    # Restart the database in the middle of the load.
    (private_pg_ctl restart -m fast -w >/dev/null 2>&1) &
    restart=$!
  fi
  id="$(enqueue "$i")"
  if [ -n "$id" ]; then acked+=("$id"); else refused=$((refused + 1)); fi
done
wait "$restart"
kill -0 "$pid" 2>/dev/null || fail "orchestratord died with the database restart"
echo "acknowledged ${#acked[@]} enqueues, ${refused} refused while the database restarted"
((${#acked[@]} >= 30)) || fail "only ${#acked[@]} of 40 enqueues were acknowledged"

# Every acknowledged job runs to SUCCEEDED; WatchJob ends at the terminal event.
for id in "${acked[@]}"; do
  last="$(timeout 60 "$buf" curl --protocol grpc --http2-prior-knowledge -H "$auth" \
    -d "{\"jobId\":\"$id\"}" "$url/orchestrator.jobs.v1.JobService/WatchJob" 2>&1 |
    grep -o '"toState": "[A-Z_]*"' | tail -n1)" || true
  [ "$last" = '"toState": "JOB_STATE_SUCCEEDED"' ] || fail "job $id ended with '$last'"
done
grep -q "lost its connection\|database connection lost\|cannot connect" "$work/orch.log" ||
  fail "the restart did not reach orchestratord (nothing in its log): the test proved nothing"
echo "ok: every acknowledged job succeeded after the database restart"
