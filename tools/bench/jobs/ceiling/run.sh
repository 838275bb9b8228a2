#!/usr/bin/env bash
# SQL ceiling for S1 drain: the job engine's own claim and complete SQL, run
# by pgbench with nothing around it (no C++, no handler), on a fresh copy of
# the jobs schema loaded with N queued no-op jobs.
#
#   run.sh [--jobs N] [--clients C] [--batch B] [--keep]
#
# C pgbench connections (default 2) each run ceil(N / (C × B)) cycles of
# kHasLimitedWork + kClaim of up to B (default 1000) jobs + kFinishSucceeded
# of what was claimed (gen_script.sh). Uses the database named by PGDATABASE
# (PGHOST/PGPORT/PGUSER/PGPASSWORD as usual); drops and re-creates its `jobs`
# schema. Prints one JSON line:
#   {"scenario":"S1","system":"sql-ceiling",...,"jobs_per_sec":...}
# jobs/s = N / wall time of the pgbench run (connections included).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
migrations="$root/services/jobs/store/migrations"

jobs=100000
clients=2
batch=1000
keep=0
while (($#)); do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "ceiling/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for v in jobs clients batch; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "ceiling/run.sh: --$v must be a positive integer" >&2; exit 2; }
done
: "${PGDATABASE:?ceiling/run.sh: set PGDATABASE (and the other PG* variables)}"
shopt -s nullglob
migration_files=("$migrations"/*.sql)
((${#migration_files[@]})) || { echo "ceiling/run.sh: no migrations in $migrations" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/gen_script.sh" >"$tmp/claim_complete.sql"

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# A fresh schema, the engine's migrations, N queued jobs.
{
  echo "SET client_min_messages = warning;"
  echo "DROP SCHEMA IF EXISTS jobs CASCADE;"
  echo "CREATE SCHEMA jobs;"
  for f in "${migration_files[@]}"; do echo "\\i '$f'"; done
} >"$tmp/schema.sql"
psql_q -f "$tmp/schema.sql" >/dev/null
psql_q -v jobs="$jobs" -f "$here/prepare.sql" >/dev/null
psql_q -c CHECKPOINT >/dev/null

# Every client runs ceil(N / (C × B)) claim cycles; the last ones may find
# fewer (or no) jobs.
per_client=$(((jobs + clients * batch - 1) / (clients * batch)))
threads=$((clients < 2 ? clients : 2))
now_us="$(date +%s%6N)"

# The engine connects with options '-c jit=off' (db::Connection::Open); so
# does pgbench.
start_ns="$(date +%s%N)"
PGOPTIONS="${PGOPTIONS:-} -c jit=off" pgbench -n -M prepared -c "$clients" -j "$threads" -t "$per_client" -f "$tmp/claim_complete.sql" \
  -D now="$now_us" -D kinds='{"noop"}' -D limited_kinds='{}' -D batch="$batch" \
  -D worker=bench-worker -D lease_us=30000000 \
  >"$tmp/pgbench.out" 2>&1 || { cat "$tmp/pgbench.out" >&2; exit 1; }
end_ns="$(date +%s%N)"

# Every job must have gone queued → running → succeeded once, with its three
# events (QUEUED, RUNNING, SUCCEEDED; an empty result writes no RESULT event).
read -r succeeded others events bad < <(psql_q -At -F ' ' -c \
  "SELECT count(*) FILTER (WHERE state = 3 AND attempt = 1 AND last_event_sequence = 3),
          count(*) FILTER (WHERE NOT (state = 3 AND attempt = 1 AND last_event_sequence = 3)),
          (SELECT count(*) FROM jobs.events),
          (SELECT count(*) FROM jobs.jobs j WHERE (SELECT array_agg(e.type ORDER BY e.sequence)
             FROM jobs.events e WHERE e.job_id = j.id) IS DISTINCT FROM '{1,1,1}'::smallint[])
   FROM jobs.jobs")
if [ "$succeeded" != "$jobs" ] || [ "$others" != 0 ] || [ "$events" != $((3 * jobs)) ] || [ "$bad" != 0 ]; then
  echo "ceiling/run.sh: after the run: $succeeded succeeded, $others not, $events events, $bad jobs without exactly 3 state events (want $jobs, 0, $((3 * jobs)), 0)" >&2
  cat "$tmp/pgbench.out" >&2
  exit 1
fi
[ "$keep" = 1 ] || psql_q -c "SET client_min_messages = warning; DROP SCHEMA jobs CASCADE" >/dev/null

python3 - "$jobs" "$start_ns" "$end_ns" "$clients" "$batch" "$per_client" <<'EOF'
import json, sys
jobs, start, end, clients, batch, cycles = (int(x) for x in sys.argv[1:7])
seconds = (end - start) / 1e9
print(json.dumps({
    "scenario": "S1", "system": "sql-ceiling", "jobs": jobs,
    "seconds": round(seconds, 3), "jobs_per_sec": round(jobs / seconds),
    "clients": clients, "batch": batch, "cycles_per_client": cycles,
}, separators=(",", ":")))
EOF
