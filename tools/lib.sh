# shellcheck shell=bash
# Shared by tools/up and tools/test (sourced, not run).
# Provides: $root, $build_dir, log, die, build.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build"

# Progress and errors go to stderr, prefixed with the script's name.
log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Configures (cheap when already configured) and builds everything.
build() {
  log "building in $build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j2
}
