#!/usr/bin/env bash
# Checks a generated project by its run contract, as engineering and deploy
# use it: the `_run_contract` object of DIR/.orchestrator-answers.json
# (the RunContract's JSON mapping: buildFile, port, healthPath, testCommand,
# requiredSecrets), in four steps, one summary line each:
#   1. tests   runs testCommand in DIR (argv, no shell)
#   2. build   podman build of buildFile, with --build-arg BASE_IMAGE=<local
#              image>: the Containerfile's `ARG BASE_IMAGE=<public image>`
#              default looked up in tools/image/template-bases (no registry
#              is reachable; tools/image/base-images makes the local image,
#              kept when it is already up to date)
#   3. run     the image with the port published on 127.0.0.1:<free port>,
#              each required secret set to a throwaway value
#   4. serve   healthPath answers 200 within CHECK_PROJECT_TIMEOUT seconds
#              (30), then / answers 200
# The container and the image are removed when it ends, on an error or a
# signal too; what a killed run (SIGKILL) left behind, the next run removes.
# Exits non-zero with a message naming the step that failed (and the tail of
# the tests', the build's or the container's output).
#
#   tests/support/check_project.sh DIR [IMAGE_TAG]
#
# IMAGE_TAG defaults to localhost/check-project-<pid>:latest. Needs root for
# rootful Podman (as tools/setup installs it); otherwise podman runs under
# sudo. CONTAINERS_CONF defaults to tools/image/containers.conf.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/tools/image/containers.conf}"
bases_table="$root/tools/image/template-bases"
timeout="${CHECK_PROJECT_TIMEOUT:-30}"

say() { printf 'check_project: %s\n' "$*"; }
# Microseconds now; `since START` prints the seconds since, to a tenth.
now_us() { echo "${EPOCHREALTIME//[^0-9]/}"; }
since() {
  local us=$(($(now_us) - $1))
  printf '%d.%d s' $((us / 1000000)) $((us / 100000 % 10))
}
fail() {
  printf 'check_project: FAILED: %s\n' "$*" >&2
  exit 1
}

(($# >= 1 && $# <= 2)) || {
  echo "usage: $0 DIR [IMAGE_TAG]" >&2
  exit 2
}
dir="$(cd "$1" 2>/dev/null && pwd)" || fail "no directory $1"
image="${2:-localhost/check-project-$$:latest}"
container="check-project-$$"
answers="$dir/.orchestrator-answers.json"
[ -f "$answers" ] || fail "$answers is missing: not a generated project"

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo --preserve-env=CONTAINERS_CONF)
podman=("${as_root[@]}" podman)
command -v podman >/dev/null || fail "podman is missing: run tools/setup"
command -v curl >/dev/null || fail "curl is missing: run tools/setup"

# Everything a run makes carries its pid, so that a later run can remove
# what a killed one (SIGKILL: no trap runs) left behind.
label=org.codegen-orchestrator.check-project
remove_leftovers() {
  local id owner dir
  for id in $("${podman[@]}" container ls --all --filter "label=$label" --format '{{.ID}}' 2>/dev/null); do
    owner="$("${podman[@]}" container inspect --format "{{ index .Config.Labels \"$label\" }}" "$id" 2>/dev/null)" || continue
    [ -d "/proc/$owner" ] || "${podman[@]}" rm --force --time 0 "$id" >/dev/null 2>&1 || true
  done
  for id in $("${podman[@]}" image ls --filter "label=$label" --format '{{.ID}}' 2>/dev/null); do
    owner="$("${podman[@]}" image inspect --format "{{ index .Labels \"$label\" }}" "$id" 2>/dev/null)" || continue
    [ -d "/proc/$owner" ] || "${podman[@]}" rmi --force "$id" >/dev/null 2>&1 || true
  done
  for dir in "${TMPDIR:-/tmp}"/check-project.*.*; do
    owner="${dir#*/check-project.}"
    [ ! -d "$dir" ] || [ -d "/proc/${owner%%.*}" ] || rm -rf "$dir"
  done
}
remove_leftovers

checked_at=$(now_us)
work="$(mktemp -d -t "check-project.$$.XXXXXX")"
built=0
started=0
cleanup() {
  local status=$?
  set +e
  if ((started)); then
    if ((status != 0)); then
      echo "--- container $container (last 20 lines of its log) ---" >&2
      "${podman[@]}" logs --tail 20 "$container" >&2 2>&1 || true
    fi
    "${podman[@]}" rm --force --time 0 "$container" >/dev/null 2>&1 || true
  fi
  if ((built)); then "${podman[@]}" rmi --force "$image" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# A closed output (| head) must not kill it before it cleans up.
trap '' PIPE

# The run contract, one field a line; the test command's argv NUL-separated.
python3 - "$answers" "$work" <<'EOF' || fail "cannot read the run contract from $answers"
import json, sys
answers, work = sys.argv[1], sys.argv[2]
with open(answers, encoding="utf-8") as f:
    contract = json.load(f).get("_run_contract")
if not isinstance(contract, dict):
    sys.exit(f"{answers} has no _run_contract object")
port = int(contract.get("port") or 0)
if not 1 <= port <= 65535:
    sys.exit(f"_run_contract.port {port} is not a TCP port")
command = contract.get("testCommand") or []
if not command:
    sys.exit("_run_contract.testCommand is empty")
fields = [contract.get("buildFile") or "", str(port), contract.get("healthPath") or ""]
for name, value in zip(("buildFile", "healthPath"), (fields[0], fields[2])):
    if not value or "\n" in value:
        sys.exit(f"_run_contract.{name} is missing")
with open(f"{work}/contract", "w") as f:
    f.write("\n".join(fields) + "\n")
with open(f"{work}/test-command", "w") as f:
    f.write("".join(arg + "\0" for arg in command))
with open(f"{work}/secrets", "w") as f:
    f.write("".join(name + "\n" for name in contract.get("requiredSecrets") or []))
EOF
{
  read -r build_file
  read -r port
  read -r health_path
} <"$work/contract"
test_command=()
while IFS= read -r -d '' arg; do test_command+=("$arg"); done <"$work/test-command"
mapfile -t secrets <"$work/secrets"
say "contract: build $build_file, port $port, health $health_path," \
  "test '${test_command[*]}', secrets: ${secrets[*]:-none}"

# 1. tests
started_at=$(now_us)
if ! (cd "$dir" && "${test_command[@]}") >"$work/tests.log" 2>&1; then
  echo "--- test output (last 40 lines) ---" >&2
  tail -n 40 "$work/tests.log" >&2
  fail "tests: '${test_command[*]}' failed in $dir"
fi
say "1/4 tests: ok ('${test_command[*]}', $(since "$started_at"))"

# 2. build, on the local image for the Containerfile's public default base.
started_at=$(now_us)
[ -f "$dir/$build_file" ] || fail "build: no $build_file in $dir"
public_base="$(sed -n -E 's/^[[:space:]]*ARG[[:space:]]+BASE_IMAGE=("?)([^"[:space:]]+)\1[[:space:]]*$/\2/p' \
  "$dir/$build_file" | head -n 1)"
[ -n "$public_base" ] || fail "build: $build_file has no 'ARG BASE_IMAGE=<image>' default"
read -r local_base base_name < <(sed -e 's/#.*//' "$bases_table" |
  awk -v image="$public_base" 'NF == 3 && $1 == image { print $2, $3; exit }') || true
[ -n "${local_base:-}" ] ||
  fail "build: no local base for $public_base: add a line to tools/image/template-bases"
# Kept when it exists and its package list did not change (~1 s).
if ! "${as_root[@]}" "$root/tools/image/base-images" "$base_name" >"$work/base.log" 2>&1; then
  cat "$work/base.log" >&2
  fail "build: could not make the base image $local_base (tools/image/base-images $base_name)"
fi
built=1
if ! "${podman[@]}" build --pull=never --layers=false --label "$label=$$" --file "$dir/$build_file" \
  --build-arg BASE_IMAGE="$local_base" --tag "$image" "$dir" >"$work/build.log" 2>&1; then
  echo "--- podman build output (last 40 lines) ---" >&2
  tail -n 40 "$work/build.log" >&2
  fail "build: podman build of $dir/$build_file on $local_base failed"
fi
size="$("${podman[@]}" image inspect --format '{{ .Size }}' "$image")"
say "2/4 build: ok ($image on $local_base for $public_base, $(numfmt --to=iec-i --suffix=B "$size"), $(since "$started_at"))"

# 3. run, published on a free loopback port.
started_at=$(now_us)
host_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
env_args=()
for name in "${secrets[@]}"; do env_args+=(--env "$name=check-project-$RANDOM$RANDOM"); done
started=1
if ! "${podman[@]}" run --detach --name "$container" --label "$label=$$" \
  --publish "127.0.0.1:$host_port:$port" \
  "${env_args[@]}" "$image" >"$work/run.log" 2>&1; then
  cat "$work/run.log" >&2
  fail "run: podman run of $image failed"
fi
say "3/4 run: ok ($container, 127.0.0.1:$host_port -> $port, $(since "$started_at"))"

# 4. serve: the health path within the timeout, then /.
started_at=$(now_us)
status() { curl --silent --output /dev/null --max-time 2 --write-out '%{http_code}' "http://127.0.0.1:$host_port$1" || true; }
deadline=$((SECONDS + timeout))
until [ "$(status "$health_path")" = 200 ]; do
  [ "$("${podman[@]}" inspect --format '{{ .State.Running }}' "$container" 2>/dev/null)" = true ] ||
    fail "serve: the container exited before $health_path answered 200"
  ((SECONDS < deadline)) || fail "serve: $health_path did not answer 200 within $timeout s (last: $(status "$health_path"))"
  sleep 0.25
done
root_status="$(status /)"
[ "$root_status" = 200 ] || fail "serve: / answered $root_status, not 200"
say "4/4 serve: ok ($health_path and / answer 200, $(since "$started_at"))"
say "ok: $dir ($(since "$checked_at") in all)"
