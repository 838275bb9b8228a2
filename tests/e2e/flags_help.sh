#!/usr/bin/env bash
# `--help` of the server binaries: the usage line and every flag the binary
# defines (wherever it defines them), with its default and help text, but
# not Abseil's own flags (those are under --helpfull).
#
#   bash tests/e2e/flags_help.sh <orchestratord> <orchestrator-gateway>
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 <orchestratord> <orchestrator-gateway>" >&2; exit 2; }
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# Abseil exits 0 or 1 after printing --help, never anything else.
exited() { (($2 <= 1)) || fail "$1 --help exited $2"; }

# expect <text> <what> <pattern...>: each fixed-string pattern occurs in text.
expect() {
  local text="$1" what="$2"
  shift 2
  for p in "$@"; do
    grep -qF -- "$p" <<<"$text" || fail "$what lacks '$p'"
  done
}
# refuse <text> <what> <pattern...>: no pattern occurs in text.
refuse() {
  local text="$1" what="$2"
  shift 2
  for p in "$@"; do
    ! grep -qF -- "$p" <<<"$text" || fail "$what shows '$p'"
  done
}

d="$("$1" --help 2>&1)"
exited orchestratord $?
expect "$d" "orchestratord --help" "orchestratord: orchestratord --services=" \
  "--services (components to host" 'default: "all"' "--listen (" 'default: "127.0.0.1:50051"' \
  "Flags from services/orchestratord/"
refuse "$d" "orchestratord --help" "No flags matched" "--flagfile" "--tryfromenv"

g="$("$2" --help 2>&1)"
exited orchestrator-gateway $?
expect "$g" "orchestrator-gateway --help" "orchestrator-gateway: orchestrator-gateway [--listen" \
  "--upstreams (" "--listen (" 'default: "127.0.0.1:8080"' "Flags from gateway/"
refuse "$g" "orchestrator-gateway --help" "No flags matched" "--flagfile" "--tryfromenv"

if ((failures > 0)); then
  printf -- '--- orchestratord --help ---\n%s\n--- orchestrator-gateway --help ---\n%s\n' "$d" "$g" >&2
  exit 1
fi
echo "PASS: --help lists each binary's own flags"
