#!/usr/bin/env bash
# The comparison half of the job-queue benchmark: runs the peers against the
# PostgreSQL named by the PG* variables and prints their JSON lines on stdout
# (progress on stderr). tools/bench/jobs/run adds the engine's own numbers.
#
#   run_peers.sh [--jobs N] [--s3-jobs M] [--concurrency C] [--clients K]
#                [--batch B] [--only graphile|ceiling]
#
#   graphile-worker S1: N no-op jobs enqueued up front, jobs/s to drain
#                       (database bench_graphile, re-created).
#   graphile-worker S3: M (1000) sequential jobs, enqueue → handler start.
#   sql-ceiling S1:     the engine's claim/complete SQL under pgbench, N jobs
#                       (database bench_ceiling, re-created): K connections,
#                       each cycle kHasLimitedWork + kClaim of up to B jobs +
#                       one kFinishSucceeded (see ceiling/gen_script.sh).
#
# Defaults: N 100000, M 1000, C 24 (graphile-worker's documented performance
# setup), K 2 pgbench clients and B 1000 jobs per claim (the engine's S1
# setup: 2 workers claiming 1000 at a time). --only runs one of the two peers.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$(cd "$here/../.." && pwd)"

jobs=100000
s3_jobs=1000
concurrency=24
clients=2
batch=1000
only=
while (($#)); do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --s3-jobs) s3_jobs="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_peers.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$only" in '' | graphile | ceiling) ;; *) echo "run_peers.sh: --only takes graphile or ceiling" >&2; exit 2 ;; esac
for v in jobs s3_jobs concurrency clients batch; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "run_peers.sh: --${v//_/-} must be a positive integer" >&2; exit 2; }
done

log() { printf 'run_peers.sh: %s\n' "$*" >&2; }
if [ "$only" != ceiling ]; then
  command -v node >/dev/null || { log "node is missing; run tools/setup"; exit 1; }
  [ -d "$tools/node_modules/graphile-worker" ] || { log "graphile-worker is missing; run tools/setup"; exit 1; }
fi
if [ "$only" != graphile ]; then
  command -v pgbench >/dev/null || { log "pgbench is missing; run tools/setup"; exit 1; }
fi
psql -X -q -c 'SELECT 1' >/dev/null || { log "cannot reach PostgreSQL with the PG* variables"; exit 1; }

# Each peer gets its own fresh database on the same server.
fresh_db() {
  dropdb --if-exists "$1"
  createdb "$1"
}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
# The peers connect with PG* only.
unset DATABASE_URL

if [ "$only" != ceiling ]; then
  log "graphile-worker $(node -p "require('$tools/node_modules/graphile-worker/package.json').version"): S1, $jobs jobs"
  fresh_db bench_graphile
  PGDATABASE=bench_graphile node "$here/graphile/bench.mjs" s1 --jobs "$jobs" --concurrency "$concurrency"
  log "graphile-worker: S3, $s3_jobs jobs"
  PGDATABASE=bench_graphile node "$here/graphile/bench.mjs" s3 --jobs "$s3_jobs" --concurrency "$concurrency"
  dropdb --if-exists bench_graphile
fi

if [ "$only" != graphile ]; then
  log "sql-ceiling: S1, $jobs jobs, $clients clients, batch $batch"
  fresh_db bench_ceiling
  PGDATABASE=bench_ceiling "$here/ceiling/run.sh" --jobs "$jobs" --clients "$clients" --batch "$batch"
  dropdb --if-exists bench_ceiling
fi
