#!/usr/bin/env bash
# Another language's view of the contracts: tools/gen-stubs python, then
# Debian's python3-grpcio creates a project and reads it back through the
# generated stubs, against orchestratord on a free port.
#
#   bash tests/e2e/python_stubs.sh <path-to-orchestratord> <path-to-tools/gen-stubs>
set -euo pipefail

[ $# -eq 2 ] || {
  echo "usage: $0 <path-to-orchestratord> <path-to-gen-stubs>" >&2
  exit 2
}
orchestratord="$1"
gen_stubs="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

port="$(free_port)"
start_orchestratord "$orchestratord" "127.0.0.1:$port"
wait_for 30 "the bootstrap token" test -s "$work/admin.token"

mark
"$gen_stubs" python --out "$work/stubs" || fatal "tools/gen-stubs python failed"
[ -f "$work/stubs/orchestrator/projects/v1/projects_pb2_grpc.py" ] || fatal "no projects stub generated"
pass "tools/gen-stubs python"

mark
cat >"$work/client.py" <<'PY'
import sys, time
import grpc
from orchestrator.projects.v1 import projects_pb2, projects_pb2_grpc

address, token = sys.argv[1], open(sys.argv[2]).read().strip()
metadata = [("authorization", "Bearer " + token)]
channel = grpc.insecure_channel(address)
grpc.channel_ready_future(channel).result(timeout=30)
stub = projects_pb2_grpc.ProjectServiceStub(channel)
created = stub.CreateProject(
    projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name="from-python", description="via generated stubs"),
        request_id="python-e2e-1"),
    metadata=metadata, timeout=10)
got = stub.GetProject(projects_pb2.GetProjectRequest(project_id=created.project.id),
                      metadata=metadata, timeout=10)
assert got.project.name == "from-python", got
assert got.project.description == "via generated stubs", got
try:
    stub.GetProject(projects_pb2.GetProjectRequest(project_id="prj_missing"), metadata=metadata,
                    timeout=10)
    raise SystemExit("GetProject of a missing project did not fail")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
print(created.project.id)
PY
# Debian's interpreter: it sees python3-grpcio and python3-protobuf.
project_id="$(PYTHONPATH="$work/stubs" /usr/bin/python3 "$work/client.py" "127.0.0.1:$port" \
  "$work/admin.token")" || fail "the Python client failed"
[[ "$project_id" == prj_* ]] || fail "the Python client printed '$project_id', want a project id"
pass "python3-grpcio creates and reads a project through the generated stubs"

finish "Python stubs end to end"
