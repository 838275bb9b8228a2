# shellcheck shell=bash
# Check bookkeeping and a REST client of the gateway, shared by every e2e
# script (lib.sh sources it; containers_e2e.sh, which needs no PostgreSQL
# of this machine, sources it alone). Defines functions only.
# shellcheck disable=SC2154  # work and gateway_url are the caller's

failures=0
failures_before=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# For failures that leave nothing further worth checking.
fatal() {
  fail "$@"
  exit 1
}
# Prints "ok: $*" when nothing failed since the last `mark`.
mark() { failures_before=$failures; }
pass() { ((failures > failures_before)) || echo "ok: $*"; }
# Ends the script with its verdict.
finish() {
  ((failures == 0)) || exit 1
  echo "PASS: $*"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints the value at a dotted path (e.g. project.id) of the JSON document on stdin.
json_get() {
  /usr/bin/python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)' "$1" 2>/dev/null || true
}

# call METHOD PATH [curl args...]: a request to the gateway at $gateway_url;
# prints "<status> <body>", the body also in $work/body.
call() {
  local method="$1" path="$2"
  shift 2
  local code
  code="$(curl -s -o "$work/body" -w '%{http_code}' -X "$method" "$@" "$gateway_url$path")"
  echo "$code $(cat "$work/body")"
}
status_of() { echo "${1%% *}"; }
body_of() { echo "${1#* }"; }
# expect WHAT WANT_STATUS RESPONSE [BODY_SUBSTRING]: checks what call printed.
expect() {
  local got
  got="$(status_of "$3")"
  [ "$got" = "$2" ] || fail "$1: status $got, want $2: $(body_of "$3")"
  if [ -n "${4:-}" ]; then
    [[ "$(body_of "$3")" == *"$4"* ]] || fail "$1: body lacks '$4': $(body_of "$3")"
  fi
}
