#!/usr/bin/env python3
"""A fake of the Kubernetes API server
(https://kubernetes.io/docs/reference/using-api/api-concepts/) that really
runs each Pod's first container, as a local process in a bubblewrap
sandbox. For the orchestrator's Kubernetes client, its worker runtime, its
deploy target, and `kubectl`. JSON only; plain HTTP, or HTTPS with
--tls-cert/--tls-key (kubectl sends its token over TLS only).

  kubernetes_api.py --port PORT [--log FILE] --token TOKEN [--data DIR]
                    [--image IMAGE=HOSTDIR]... [--bwrap PATH|none]
                    [--namespace NS] [--tls-cert PEM --tls-key PEM]
                                                    (port 0: pick one, print it)

Every API request needs `Authorization: Bearer TOKEN`: else 401. Errors
are Status objects: {"kind": "Status", "apiVersion": "v1", "metadata": {},
"status": "Failure", "message", "reason", "details"?: {"name"?, "group"?
(when not core), "kind": the plural, "causes"? (422)}, "code"}: 400
BadRequest (not JSON, kind/apiVersion/name/namespace not those of the URL),
401 Unauthorized, 403 Forbidden, 404 NotFound ('pods "x" not found'; "the
server could not find the requested resource" for an unknown path), 405
MethodNotAllowed, 409 AlreadyExists / Conflict ("Operation cannot be
fulfilled on pods "x": the object has been modified; ..."), 410 Expired,
415 UnsupportedMediaType (a body that is not JSON: kubectl's `create
secret|configmap|service` send protobuf), 422 Invalid ('Pod "x" is invalid:
spec.containers: Required value', details.kind the Kind).
--log appends each request, as JSON {"time", "method", "path", "query",
"verb", "resource", "namespace", "name", "user_agent", "code", "body"}.

Served: GET /version, /api, /apis, /apis/GROUP, /api/v1, /apis/GROUP/v1
(discovery: APIVersions, APIGroupList, APIResourceList) and /healthz; no
/openapi (so `kubectl create -f` wants --validate=false). Resources, all
namespaced but Namespace, any namespace name accepted without creating it:
  v1: pods (+ log, eviction, status), secrets, configmaps,
      persistentvolumeclaims (+ status), services (+ status), events,
      namespaces (GET any name: an Active Namespace; list: the usual four
      and every one in use; create)
  apps/v1: deployments (+ status)
  networking.k8s.io/v1: ingresses (+ status), networkpolicies
  policy/v1: poddisruptionbudgets (stored only)
Verbs: create (POST; generateName; dryRun), get, list (also across
namespaces: /api/v1/pods), update (PUT: a stale metadata.resourceVersion is
409 Conflict; none is unconditional), patch (PATCH, merge-patch+json and
strategic-merge-patch+json both applied as a JSON merge patch, RFC 7386;
a resourceVersion in it is checked too), delete (DELETE, DeleteOptions body
or ?gracePeriodSeconds=, preconditions, propagationPolicy Orphan),
deletecollection, watch; PUT/PATCH of .../status change only the status,
of the object everything but it; a Pod's spec (and a bound PVC's) never
changes: an update keeps the stored one (the API server refuses most such
changes with 422). Values are stored as written: quantities are not made
canonical ("268435456" stays, where the API server answers "256Mi").
An `Accept` asking `as=Table` gets a Table (kubectl get),
`as=PartialObjectMetadata(List)` those.
Objects get metadata.uid, creationTimestamp (RFC 3339, Z), resourceVersion
(one counter for all objects, a string, bumped by every change of any),
generation (1, +1 per spec change). Lists are {"kind": "PodList", ...,
"metadata": {"resourceVersion"}, "items"}, items without kind/apiVersion
as the API server writes them; limit/continue are ignored (all at once).
labelSelector: a=b, a==b, a!=b, a in (x,y), a notin (x), a, !a, a>1, a<1,
comma-joined; fieldSelector: metadata.name, metadata.namespace (=, ==, !=)
and the usual few per kind (a Pod's status.phase, spec.nodeName, ...).
Finalizers hold a deletion (deletionTimestamp set) until they are gone;
objects whose ownerReferences' owners are all gone are deleted (garbage
collection, background).

Watch: ?watch=1|true on a list URL (or /api/v1/watch/...): 200, chunked,
application/json, one {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|
"ERROR", "object": {...}} per line, each flushed at once. Without a
resourceVersion (or "0"): an ADDED for each object there is, then the
changes; with one: every change after it, from the last 1000 kept; an older
one (or one forgotten through /control/compact) is a single ERROR event
whose object is a Status, code 410, reason "Expired" ("too old resource
version: RV (OLDEST)"), and the stream ends. A change that moves an object
into or out of the selection is an ADDED or a DELETED. timeoutSeconds ends
the stream (else it stays until the client goes); allowWatchBookmarks: a
BOOKMARK {"kind", "apiVersion", "metadata": {"resourceVersion"}} after
each second without an event; sendInitialEvents=true ends its ADDEDs with a
BOOKMARK annotated k8s.io/initial-events-end.

Pods run. A Pod is stored Pending; at once it is scheduled (spec.nodeName
"fake-node", hostIP and podIP 127.0.0.1, startTime, containerStatuses
waiting ContainerCreating), and its first container (only the first: the
others, init containers, probes and restarts are not run; every
restartPolicy acts as Never) starts as the process argv = command + args
($(VAR) expanded), looked up in the HOSTDIR of --image IMAGE=HOSTDIR (the
image exactly, else ignoring tags and digests), then on the container's
PATH. It waits (phase Pending, containerStatuses[0].state.waiting, retried
while it waits) with reason FailedMount for a missing PVC, Secret or
ConfigMap of a volume, ErrImagePull (ImagePullBackOff after a second) for an
image no --image maps, CreateContainerConfigError for a missing Secret or
key of env/envFrom, or runAsNonRoot without a runAsUser. No command, or no
such executable: Failed at once, terminated {exitCode 128, reason
StartError, message}. Once started: Running, ready (conditions Ready,
ContainersReady, Initialized, PodScheduled, PodReadyToStartContainers all
True), state.running.startedAt; when it exits: Succeeded (0) or Failed,
state.terminated {exitCode (128+N for signal N), signal? (when the fake sent
it), reason Completed|Error, startedAt, finishedAt}. Each change is a
MODIFIED. stdout and stderr go to the Pod's log.
Its environment is only: envFrom (secretRef, configMapRef, optional,
prefix), then env (value; valueFrom secretKeyRef and configMapKeyRef, base64
decoded; fieldRef metadata.name|namespace|uid|labels['k']|annotations['k'],
spec.nodeName, spec.serviceAccountName, status.podIP|hostIP (127.0.0.1);
resourceFieldRef: the quantity as written), PATH (the container's, else
the usual one, with the image's HOSTDIR put first) and HOSTNAME (the Pod's
name). Secrets never reach an argv: bwrap reads the environment from a
memfd (--args FD). resources are recorded only, but a quantity that does
not parse is 422; no service-account token is ever mounted.
With bubblewrap (--bwrap, default `bwrap` from PATH) the process gets a
tmpfs root with /usr, /etc, /bin, /sbin, /lib, /lib64 (/lib32, /libx32)
read-only (symlinks stay symlinks), /dev, /proc, a tmpfs /tmp, its volumes
at their mountPaths (readOnly; subPath, made as a directory when missing),
then the image's HOSTDIR read-only at its own path; new pid, ipc and uts
namespaces, hostname the Pod's name; the host's network (127.0.0.1 TCP
ports are reachable); workingDir made and entered; readOnlyRootFilesystem
remounts / read-only; runAsUser/runAsGroup (the container's, else the
Pod's; the group defaults to the user): a user namespace mapping the fake's
user to that uid/gid (volumes then look owned by it; fsGroup is recorded
only); capabilities drop ALL drops them when it runs as root. Volumes:
persistentVolumeClaim (DATA/pvc/NS/CLAIM, made with the claim, removed with
it), emptyDir (DATA/pods/UID/volumes/NAME, removed with the Pod), secret and
configMap (their keys, or items, as read-only files), hostPath. With --bwrap
none the process is a plain child in a session of its own, with the same
environment and runAsUser/runAsGroup, but no mount is made (mountPath is not
honoured) and workingDir is used only if it exists on the host (else
DATA/pods/UID).
Log: GET .../pods/NAME/log ?container (needed when there are several),
tailLines, limitBytes, follow=true (chunked, new output as it comes, until
the process ends); timestamps, previous and sinceSeconds are ignored; a
container that never started is 400 '... is waiting to start: REASON'.
Delete: deletionTimestamp (now + grace) and deletionGracePeriodSeconds
(MODIFIED), SIGTERM to every process of the container (not to bwrap's
init), SIGKILL after the grace period (DeleteOptions' gracePeriodSeconds,
else spec.terminationGracePeriodSeconds, default 30; waits capped at 30 s;
0: SIGKILL at once), the final status (MODIFIED), then the object goes
(DELETED) and the answer was the Pod. A Pod whose process is over already
goes at once. Eviction (POST .../eviction, a policy/v1 Eviction with
deleteOptions?): status.phase Failed, reason Evicted, a DisruptionTarget
condition, then as a delete; answers 201 Status Success. When the fake gets
SIGTERM or SIGINT every Pod's process is killed.

Deployments (apps/v1): selector required and matching the template's
labels; defaults as the API server's (replicas 1, RollingUpdate, 600 s
progress deadline). A controller writes status: observedGeneration,
replicas, updatedReplicas, readyReplicas, availableReplicas,
unavailableReplicas (zeros left out) and conditions Available
(MinimumReplicasAvailable | MinimumReplicasUnavailable) and Progressing
(ReplicaSetUpdated while rolling, NewReplicaSetAvailable once ready,
status False ProgressDeadlineExceeded after progressDeadlineSeconds). No
Pods are run for them: whether one is ready is its readiness source's
call: by default ready 0.2 s after its template changes, or what
/control/deployment_ready said. Services get spec.clusterIP 10.96.x.y
(unless "None"), nodePorts for NodePort and LoadBalancer; LoadBalancer
Services and Ingresses get status.loadBalancer.ingress [{"ip":
"127.0.0.1"}] just after they are made. PVCs are Bound at once (volumeName,
capacity) with the pvc-protection finalizer, taken off once no Pod uses the
claim. Secrets: stringData is merged into base64 data, as the API server
does; `immutable` is enforced. NetworkPolicies, ConfigMaps, Events,
PodDisruptionBudgets are stored only.

The test drives it under /control/ (not Kubernetes'; no token needed):
  POST /control/forbid {"verb", "resource" ("pods", "pods/log", "*"),
        "namespace"?, "group"?, "name"?, "user"?}   later matching requests
        are 403 Forbidden, as RBAC words it: 'pods is forbidden: User
        "system:serviceaccount:NS:orchestrator" cannot create resource
        "pods" in API group "" in the namespace "NS"' (NS: --namespace,
        else the request's, else "orchestrator"; 'pods "x" is forbidden'
        when the URL names one; "at the cluster scope" without a namespace)
  POST /control/allow {the same fields}     takes the rules that match off
  POST /control/kill_pod {"namespace", "name", "signal"?: "KILL"}
        the signal to the container's processes: the Pod ends as a crash
  POST /control/deployment_ready {"namespace", "name", "ready"?: bool}
        the Deployment is (not) ready from now on; without "ready", the default
  POST /control/compact {}      forgets the watch history (older RVs: 410)
  GET  /control/pods     {"pods": [{"namespace", "name", "uid", "phase",
        "state", "pid" (the container's command), "bwrap_pid",
        "sandbox_init_pid", "argv", "env" (names only), "log", "exit_code"}]}
  GET  /control/requests?verb=&resource=&namespace=&name=&method=
        {"requests": [{"time", "method", "path", "query", "user_agent",
        "verb", "resource" ("pods/log" for subresources), "namespace",
        "name", "code"}]}
"""
import argparse
import base64
import calendar
import collections
import copy
import ctypes
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_http import JsonHandler  # noqa: E402

NODE_NAME = "fake-node"
HOST_IP = "127.0.0.1"
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
HISTORY = 1000           # watch events kept for watches that resume from a resourceVersion
MAX_GRACE = 30           # seconds between SIGTERM and SIGKILL, at most
BOOKMARK_SECONDS = 1.0   # a BOOKMARK after this long without an event (allowWatchBookmarks)
IMAGE_BACKOFF = 1.0      # ErrImagePull becomes ImagePullBackOff after this long
DEFAULT_READY_AFTER = 0.2
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"   # generateName's suffix alphabet
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FINALIZER_PVC = "kubernetes.io/pvc-protection"

SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUALIFIED_NAME = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?")
POD_FIELD_REFS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                  "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                  "status.podIPs"}


def now_time(t=None):
    """An RFC 3339 time, in seconds, UTC, as the API writes them."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_time(text):
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return time.time()


def human_age(seconds):
    seconds = max(0, int(seconds))
    if seconds < 120:
        return "%ds" % seconds
    if seconds < 600:
        return "%dm%ds" % (seconds // 60, seconds % 60) if seconds % 60 else "%dm" % (seconds // 60)
    if seconds < 3 * 3600:
        return "%dm" % (seconds // 60)
    if seconds < 48 * 3600:
        return "%dh" % (seconds // 3600)
    return "%dd" % (seconds // 86400)


# --- kinds of objects ---

class Kind:
    """A resource the fake serves, as its URL and discovery name it."""

    def __init__(self, group, plural, kind, singular, short=(), namespaced=True, status=False,
                 categories=(), extra=()):
        self.group, self.version, self.plural, self.kind = group, "v1", plural, kind
        self.singular, self.short, self.namespaced = singular, list(short), namespaced
        self.has_status, self.categories = status, list(categories)
        self.key = (group, plural)
        self.api_version = "%s/%s" % (group, self.version) if group else self.version
        self.qualified = "%s.%s" % (plural, group) if group else plural
        # Subresources: name -> (verbs, kind, group, version) for discovery.
        self.subresources = {}
        if status:
            self.subresources["status"] = (["get", "patch", "update"], kind, None, None)
        for name, verbs, sub_kind, group_version in extra:
            self.subresources[name] = (verbs, sub_kind) + group_version

    def discovery(self):
        out = [{"name": self.plural, "singularName": self.singular,
                "namespaced": self.namespaced, "kind": self.kind, "verbs": ALL_VERBS}]
        if self.short:
            out[0]["shortNames"] = self.short
        if self.categories:
            out[0]["categories"] = self.categories
        for name, (verbs, kind, group, version) in sorted(self.subresources.items()):
            sub = {"name": "%s/%s" % (self.plural, name), "singularName": "",
                   "namespaced": self.namespaced, "kind": kind, "verbs": verbs}
            if group is not None:
                sub.update(group=group, version=version)
            out.append(sub)
        return out


PODS = Kind("", "pods", "Pod", "pod", ["po"], status=True, categories=["all"],
            extra=[("log", ["get"], "Pod", (None, None)),
                   ("eviction", ["create"], "Eviction", ("policy", "v1"))])
SECRETS = Kind("", "secrets", "Secret", "secret")
CONFIGMAPS = Kind("", "configmaps", "ConfigMap", "configmap", ["cm"])
PVCS = Kind("", "persistentvolumeclaims", "PersistentVolumeClaim", "persistentvolumeclaim",
            ["pvc"], status=True)
SERVICES = Kind("", "services", "Service", "service", ["svc"], status=True, categories=["all"])
EVENTS = Kind("", "events", "Event", "event", ["ev"])
NAMESPACES = Kind("", "namespaces", "Namespace", "namespace", ["ns"], namespaced=False,
                  status=True)
DEPLOYMENTS = Kind("apps", "deployments", "Deployment", "deployment", ["deploy"], status=True,
                   categories=["all"])
INGRESSES = Kind("networking.k8s.io", "ingresses", "Ingress", "ingress", ["ing"], status=True)
NETWORK_POLICIES = Kind("networking.k8s.io", "networkpolicies", "NetworkPolicy",
                        "networkpolicy", ["netpol"])
PDBS = Kind("policy", "poddisruptionbudgets", "PodDisruptionBudget", "poddisruptionbudget",
            ["pdb"], status=True)
KINDS = [PODS, SECRETS, CONFIGMAPS, PVCS, SERVICES, EVENTS, NAMESPACES, DEPLOYMENTS, INGRESSES,
         NETWORK_POLICIES, PDBS]
BY_URL = {(k.group, k.version, k.plural): k for k in KINDS}
GROUPS = ["apps", "networking.k8s.io", "policy"]
# Fields a fieldSelector may name, besides metadata.name and metadata.namespace.
FIELD_LABELS = {
    PODS.key: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
               "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
               "status.nominatedNodeName"],
    SECRETS.key: ["type"],
    NAMESPACES.key: ["status.phase"],
    EVENTS.key: ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                 "involvedObject.uid", "involvedObject.apiVersion",
                 "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                 "reportingComponent", "source", "type"],
}


# --- errors, as Status objects ---

class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def details(kind, name=None, **more):
    out = {}
    if name:
        out["name"] = name
    if kind.group:
        out["group"] = kind.group
    out["kind"] = kind.plural
    out.update(more)
    return out


def not_found(kind, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (kind.qualified, name),
                    details(kind, name))


def no_such_path():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def conflict(kind, name, why="the object has been modified; please apply your changes to the "
                             "latest version and try again"):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (kind.qualified, name, why), details(kind, name))


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


class Errors:
    """Field errors of an object, answered as one 422 Invalid."""

    def __init__(self, kind, name):
        self.kind, self.name, self.causes = kind, name, []

    def add(self, reason, field, message):
        self.causes.append({"reason": reason, "message": message, "field": field})

    def required(self, field, detail=""):
        self.add("FieldValueRequired", field, "Required value" + (": " + detail if detail else ""))

    def invalid(self, field, value, detail):
        self.add("FieldValueInvalid", field,
                 "Invalid value: %s: %s" % (json.dumps(value), detail))

    def not_supported(self, field, value, supported):
        self.add("FieldValueNotSupported", field, "Unsupported value: %s: supported values: %s"
                 % (json.dumps(value), ", ".join(json.dumps(s) for s in supported)))

    def duplicate(self, field, value):
        self.add("FieldValueDuplicate", field, "Duplicate value: %s" % json.dumps(value))

    def not_found(self, field, value):
        self.add("FieldValueNotFound", field, "Not found: %s" % json.dumps(value))

    def forbidden(self, field, detail):
        self.add("FieldValueForbidden", field, "Forbidden: " + detail)

    def check(self):
        if not self.causes:
            return
        texts = ["%s: %s" % (c["field"], c["message"]) for c in self.causes]
        text = texts[0] if len(texts) == 1 else "[%s]" % ", ".join(texts)
        d = {"name": self.name} if self.name else {}
        if self.kind.group:
            d["group"] = self.kind.group
        d.update(kind=self.kind.kind, causes=self.causes)
        raise ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (self.kind.kind, self.name, text),
                       d)


# --- selectors and patches ---

def split_top(text):
    """text split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """[(key, operator, values)] of a labelSelector, or 400."""
    requirements = []
    for part in split_top(text or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^()]*)\)", part)
        if m:
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            requirement = (m.group(1), m.group(2), values)
        elif part.startswith("!"):
            requirement = (part[1:].strip(), "!", [])
        else:
            m = re.fullmatch(r"([^=!<>\s()]+)\s*(==|=|!=|<|>)\s*([^=!<>\s()]*)", part)
            if m:
                op = {"==": "="}.get(m.group(2), m.group(2))
                requirement = (m.group(1), op, [m.group(3)])
            elif re.fullmatch(r"[^=!<>\s(),]+", part):
                requirement = (part, "exists", [])
            else:
                raise bad_request('unable to parse requirement: "%s" is no label requirement'
                                  % part)
        key, op, values = requirement
        if not QUALIFIED_NAME.fullmatch(key):
            raise bad_request('unable to parse requirement: invalid label key "%s"' % key)
        for v in values:
            if op in "<>":
                if not re.fullmatch(r"-?\d+", v):
                    raise bad_request('unable to parse requirement: for "%s" operator, the value '
                                      'must be an integer: "%s"' % (op, v))
            elif len(v) > 63 or not LABEL_VALUE.fullmatch(v):
                raise bad_request('unable to parse requirement: invalid label value: "%s"' % v)
        requirements.append(requirement)
    return requirements


def labels_match(requirements, labels):
    labels = labels or {}
    for key, op, values in requirements:
        has, value = key in labels, labels.get(key)
        if op in ("=", "in"):
            ok = has and value in values
        elif op in ("!=", "notin"):
            ok = not has or value not in values
        elif op == "exists":
            ok = has
        elif op == "!":
            ok = not has
        else:
            ok = has and bool(re.fullmatch(r"-?\d+", value or "")) and (
                int(value) > int(values[0]) if op == ">" else int(value) < int(values[0]))
        if not ok:
            return False
    return True


def parse_field_selector(kind, text):
    """[(path, negate, value)] of a fieldSelector, or 400."""
    allowed = ["metadata.name", "metadata.namespace"] + FIELD_LABELS.get(kind.key, [])
    out = []
    for part in split_top(text or ""):
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request('invalid selector: "%s"; can\'t understand "%s"' % (text, part))
        path = m.group(1).strip()
        if path not in allowed:
            raise bad_request('"%s" is not a known field selector: only %s'
                              % (path, ", ".join('"%s"' % a for a in allowed)))
        out.append((path, m.group(2) == "!=", m.group(3).strip()))
    return out


def field_value(obj, path):
    value = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def fields_match(requirements, obj):
    return all((field_value(obj, path) == value) != negate
               for path, negate, value in requirements)


def merge_patch(target, patch):
    """target with the JSON merge patch (RFC 7386) applied; neither is changed."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def expand(text, env):
    """$(VAR) references to env expanded, $$ made $, as the kubelet does."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)", one, str(text))


def quantity_ok(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value >= 0
    return isinstance(value, str) and bool(QUANTITY.fullmatch(value))


def image_base(image):
    """The image without its tag or digest."""
    name = image.split("@", 1)[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def b64decode(text):
    return base64.b64decode(text.encode(), validate=True)


# --- validation and defaults, per kind ---

def check_metadata(kind, obj, errs):
    m = obj["metadata"]
    name = m.get("name", "")
    if kind is SERVICES:
        if not DNS1035_LABEL.fullmatch(name) or len(name) > 63:
            errs.invalid("metadata.name", name, "a DNS-1035 label must consist of lower case "
                         "alphanumeric characters or '-', start with an alphabetic character, "
                         "and end with an alphanumeric character")
    elif kind is NAMESPACES:
        if not DNS_LABEL.fullmatch(name) or len(name) > 63:
            errs.invalid("metadata.name", name, "a lowercase RFC 1123 label must consist of lower "
                         "case alphanumeric characters or '-'")
    elif not SUBDOMAIN.fullmatch(name) or len(name) > 253:
        errs.invalid("metadata.name", name, "a lowercase RFC 1123 subdomain must consist of "
                     "lower case alphanumeric characters, '-' or '.', and must start and end "
                     "with an alphanumeric character")
    for key, value in (m.get("labels") or {}).items():
        if not QUALIFIED_NAME.fullmatch(key):
            errs.invalid("metadata.labels", key, "name part must consist of alphanumeric "
                         "characters, '-', '_' or '.'")
        if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            errs.invalid("metadata.labels", value, "a valid label must be an empty string or "
                         "consist of alphanumeric characters, '-', '_' or '.', and must start "
                         "and end with an alphanumeric character")
    for i, ref in enumerate(m.get("ownerReferences") or []):
        if not isinstance(ref, dict):
            errs.invalid("metadata.ownerReferences[%d]" % i, ref, "must be an object")
            continue
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                errs.invalid("metadata.ownerReferences.%s" % field, "",
                             "%s must not be empty" % field)


def check_container(c, path, volume_names, errs):
    if not isinstance(c, dict):
        errs.invalid(path, c, "must be an object")
        return
    name = c.get("name")
    if not name:
        errs.required(path + ".name")
    elif not DNS_LABEL.fullmatch(name):
        errs.invalid(path + ".name", name, "a lowercase RFC 1123 label must consist of lower "
                     "case alphanumeric characters or '-'")
    if not c.get("image"):
        errs.required(path + ".image")
    for key in ("command", "args"):
        if c.get(key) is not None and (not isinstance(c[key], list)
                                       or not all(isinstance(a, str) for a in c[key])):
            errs.invalid("%s.%s" % (path, key), c[key], "must be a list of strings")
    resources = c.get("resources") or {}
    for group in ("limits", "requests"):
        for res, value in (resources.get(group) or {}).items():
            if not quantity_ok(value):
                errs.invalid("%s.resources.%s[%s]" % (path, group, res), value,
                             "quantities must match the regular expression "
                             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    for i, e in enumerate(c.get("env") or []):
        epath = "%s.env[%d]" % (path, i)
        if not isinstance(e, dict) or not e.get("name"):
            errs.required(epath + ".name")
            continue
        if not ENV_NAME.fullmatch(e["name"]):
            errs.invalid(epath + ".name", e["name"], "a valid environment variable name must "
                         "consist of alphabetic characters, digits, '_', '-', or '.', and must "
                         "not start with a digit")
        source = e.get("valueFrom")
        if source is not None:
            if "value" in e and e["value"]:
                errs.invalid(epath + ".valueFrom", "", "may not be specified when `value` is "
                             "not empty")
            refs = [k for k in ("secretKeyRef", "configMapKeyRef", "fieldRef",
                                "resourceFieldRef") if k in (source or {})]
            if len(refs) != 1:
                errs.invalid(epath + ".valueFrom", "", "must specify one of: `fieldRef`, "
                             "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
            elif refs[0] == "fieldRef":
                fp = (source["fieldRef"] or {}).get("fieldPath", "")
                if fp not in POD_FIELD_REFS and not re.fullmatch(
                        r"metadata\.(labels|annotations)\['[^']+'\]", fp):
                    errs.not_supported(epath + ".valueFrom.fieldRef.fieldPath", fp,
                                       sorted(POD_FIELD_REFS))
            elif refs[0] in ("secretKeyRef", "configMapKeyRef"):
                ref = source[refs[0]] or {}
                if not ref.get("name"):
                    errs.required("%s.valueFrom.%s.name" % (epath, refs[0]))
                if not ref.get("key"):
                    errs.required("%s.valueFrom.%s.key" % (epath, refs[0]))
    for i, mount in enumerate(c.get("volumeMounts") or []):
        mpath = "%s.volumeMounts[%d]" % (path, i)
        if not isinstance(mount, dict):
            errs.invalid(mpath, mount, "must be an object")
            continue
        if mount.get("name") not in volume_names:
            errs.not_found(mpath + ".name", mount.get("name", ""))
        target = mount.get("mountPath", "")
        if not target:
            errs.required(mpath + ".mountPath")
        elif not target.startswith("/"):
            errs.invalid(mpath + ".mountPath", target, "must be an absolute path")
        sub = mount.get("subPath", "")
        if sub and (sub.startswith("/") or ".." in sub.split("/")):
            errs.invalid(mpath + ".subPath", sub, "must be a relative path without '..'")


def check_pod_spec(spec, path, errs):
    if not isinstance(spec, dict):
        errs.required(path + ".containers")
        return
    volume_names = set()
    for i, v in enumerate(spec.get("volumes") or []):
        name = v.get("name") if isinstance(v, dict) else None
        if not name:
            errs.required("%s.volumes[%d].name" % (path, i))
        elif name in volume_names:
            errs.duplicate("%s.volumes[%d].name" % (path, i), name)
        volume_names.add(name)
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        errs.required(path + ".containers")
        return
    names = set()
    for i, c in enumerate(containers):
        check_container(c, "%s.containers[%d]" % (path, i), volume_names, errs)
        if isinstance(c, dict) and c.get("name"):
            if c["name"] in names:
                errs.duplicate("%s.containers[%d].name" % (path, i), c["name"])
            names.add(c["name"])
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.not_supported(path + ".restartPolicy", policy, ["Always", "OnFailure", "Never"])
    contexts = [(path + ".securityContext", spec.get("securityContext"))] + [
        ("%s.containers[%d].securityContext" % (path, i), c.get("securityContext"))
        for i, c in enumerate(containers) if isinstance(c, dict)]
    for where, context in contexts:
        for field in ("runAsUser", "runAsGroup"):
            value = (context or {}).get(field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 <= value <= 2147483647):
                errs.invalid("%s.%s" % (where, field), value,
                             "must be between 0 and 2147483647, inclusive")


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers") or []:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image", "")
        latest = image_base(image) == image.split("@")[0] or image.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest and "@" not in image
                     else "IfNotPresent")
        c.setdefault("resources", {})
    for v in spec.get("volumes") or []:
        for source in ("secret", "configMap"):
            if isinstance(v.get(source), dict):
                v[source].setdefault("defaultMode", 420)


def qos_class(spec):
    containers = spec.get("containers") or []
    any_set, guaranteed = False, bool(containers)
    for c in containers:
        resources = c.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        any_set = any_set or bool(limits) or bool(requests)
        for res in ("cpu", "memory"):
            if res not in limits or str(requests.get(res, limits[res])) != str(limits[res]):
                guaranteed = False
    return "Guaranteed" if guaranteed else "Burstable" if any_set else "BestEffort"


def prepare(kind, obj, old, errs):
    """Validates obj (new, or replacing old) and sets what the API server
    defaults. Raises 422 for what it would refuse."""
    spec = obj.get("spec")
    if kind is PODS:
        check_pod_spec(spec, "spec", errs)
        errs.check()
        default_pod_spec(spec)
        if old is None:
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
        else:
            obj["spec"] = copy.deepcopy(old["spec"])   # (the fake keeps a Pod's spec)
    elif kind is DEPLOYMENTS:
        if not isinstance(spec, dict):
            errs.required("spec.selector")
            errs.required("spec.template.spec.containers")
            errs.check()
        selector = spec.get("selector")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not isinstance(selector, dict) or not selector:
            errs.required("spec.selector")
        else:
            requirements = [(k, "=", [v]) for k, v in (selector.get("matchLabels") or {}).items()]
            for e in selector.get("matchExpressions") or []:
                op = {"In": "in", "NotIn": "notin", "Exists": "exists",
                      "DoesNotExist": "!"}.get(e.get("operator"))
                if op is None:
                    errs.not_supported("spec.selector.matchExpressions.operator",
                                       e.get("operator"), ["In", "NotIn", "Exists",
                                                           "DoesNotExist"])
                else:
                    requirements.append((e.get("key"), op, e.get("values") or []))
            if not labels_match(requirements, labels):
                errs.invalid("spec.template.metadata.labels", labels,
                             "`selector` does not match template `labels`")
        check_pod_spec(template.get("spec"), "spec.template.spec", errs)
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            errs.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        errs.check()
        spec.setdefault("replicas", 1)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": "25%", "maxSurge": "25%"}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        default_pod_spec(template["spec"])
    elif kind is SERVICES:
        prepare_service(obj, old, errs)
    elif kind is SECRETS:
        data = obj.get("data") or {}
        for key, value in data.items():
            try:
                b64decode(value)
            except (ValueError, AttributeError):
                raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: "
                                  "illegal base64 data in data[%s]" % key)
        for key, value in (obj.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        if data:
            obj["data"] = data
        obj.setdefault("type", "Opaque")
        if old is not None and old.get("immutable") and (
                obj.get("data") != old.get("data") or not obj.get("immutable")):
            errs.forbidden("data", "field is immutable when `immutable` is set")
    elif kind is CONFIGMAPS:
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                raise bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: "
                                  "data[%s] is not a string" % key)
        if old is not None and old.get("immutable") and (
                obj.get("data") != old.get("data") or not obj.get("immutable")):
            errs.forbidden("data", "field is immutable when `immutable` is set")
    elif kind is PVCS:
        spec = spec if isinstance(spec, dict) else {}
        if not spec.get("accessModes"):
            errs.required("spec.accessModes")
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if storage is None:
            errs.required("spec.resources[storage]")
        elif not quantity_ok(storage):
            errs.invalid("spec.resources.requests[storage]", storage,
                         "quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        errs.check()
        if old is None:
            spec.setdefault("storageClassName", "standard")
            spec.setdefault("volumeMode", "Filesystem")
            spec["volumeName"] = "pvc-" + obj["metadata"]["uid"]
            obj["status"] = {"phase": "Bound", "accessModes": spec["accessModes"],
                             "capacity": {"storage": storage}}
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if FINALIZER_PVC not in finalizers:
                finalizers.append(FINALIZER_PVC)
        else:
            obj["spec"] = copy.deepcopy(old["spec"])   # (immutable once bound)
    elif kind is INGRESSES:
        if not isinstance(spec, dict) or not (spec.get("rules") or spec.get("defaultBackend")):
            errs.invalid("spec", spec, "either `defaultBackend` or `rules` must be specified")
    elif kind is NAMESPACES:
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = \
            obj["metadata"]["name"]
    errs.check()


def prepare_service(obj, old, errs):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    kind_of = spec.setdefault("type", "ClusterIP")
    if kind_of not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errs.not_supported("spec.type", kind_of, ["ClusterIP", "ExternalName", "LoadBalancer",
                                                  "NodePort"])
    ports = spec.get("ports") or []
    if not ports and kind_of != "ExternalName" and spec.get("clusterIP") != "None":
        errs.required("spec.ports")
    for i, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            errs.invalid("spec.ports[%d].port" % i, number,
                         "must be between 1 and 65535, inclusive")
    errs.check()
    for port in ports:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    spec.setdefault("sessionAffinity", "None")
    if old is not None:
        for field in ("clusterIP", "clusterIPs"):
            if field in old["spec"] and not spec.get(field):
                spec[field] = old["spec"][field]
    if kind_of != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")


# --- pods, run for real ---

class Waiting(Exception):
    """The container cannot start yet: a waiting reason and message."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason, self.message = reason, message


class StartFailure(Exception):
    """The container cannot start at all: the Pod fails."""

    def __init__(self, message, exit_code=128):
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


class Plan:
    """How a Pod's first container runs."""
    argv = env = workdir = image_dir = uid = gid = None
    mounts = ()          # [(host source, path inside, read-only)]
    files = ()           # [(host dir, {relative path: bytes})] for secret/configMap volumes
    dirs = ()            # host directories to make
    read_only_root = drop_all_caps = False


def pid_namespace(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def parent_pid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class PodRunner(threading.Thread):
    """The kubelet of one Pod: runs its first container and writes its
    status, from its creation until the object is gone."""

    def __init__(self, cluster, pod):
        super().__init__(daemon=True, name="pod-" + pod["metadata"]["name"])
        self.cluster = cluster
        self.ns, self.name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.dir = os.path.join(cluster.data, "pods", self.uid)
        self.wake = threading.Event()
        self.deleting = False     # (under cluster.cond)
        self.grace = None
        self.evicted = False
        self.state = "pending"    # pending, running, done
        self.proc = None
        self.init_pid = None      # bwrap: the sandbox's first process (its pid 1)
        self.namespace_link = None
        self.plan = None
        self.log_path = None
        self.started_at = None
        self.signals = set()
        self.container_id = uuid.uuid4().hex

    # --- status ---

    def current(self):
        pod = self.cluster.objects[PODS.key].get((self.ns, self.name))
        return pod if pod is not None and pod["metadata"]["uid"] == self.uid else None

    def update(self, change):
        """change(a copy of the Pod) and store it (MODIFIED) if it differs."""
        with self.cluster.cond:
            pod = self.current()
            if pod is None:
                return None
            new = copy.deepcopy(pod)
            change(new)
            if new != pod:
                self.cluster.commit(PODS, new, "MODIFIED")
            return new

    def container_status(self, pod, state, ready, started):
        c = pod["spec"]["containers"][0]
        out = {"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
               "restartCount": 0, "started": started, "state": state, "lastState": {}}
        if self.started_at is not None or "terminated" in state:
            out["imageID"] = "fake://%s" % c["image"]
            out["containerID"] = "fake://" + self.container_id
        return out

    @staticmethod
    def set_conditions(pod, ready, reason=None, message=None):
        status = pod["status"]
        old = {c.get("type"): c for c in status.get("conditions") or []}
        now = now_time()

        def condition(kind, value, why=None, text=None):
            previous = old.get(kind, {})
            c = {"type": kind, "status": value, "lastProbeTime": None,
                 "lastTransitionTime": previous.get("lastTransitionTime", now)
                 if previous.get("status") == value else now}
            if why:
                c["reason"] = why
            if text:
                c["message"] = text
            return c
        conditions = [condition("PodReadyToStartContainers", "True"),
                      condition("Initialized", "True"),
                      condition("Ready", "True" if ready else "False", reason, message),
                      condition("ContainersReady", "True" if ready else "False", reason, message),
                      condition("PodScheduled", "True")]
        if "DisruptionTarget" in old:
            conditions.append(old["DisruptionTarget"])
        status["conditions"] = conditions

    def set_waiting(self, reason, message):
        def change(pod):
            status = pod["status"]
            state = {"waiting": {"reason": reason}}
            if message:
                state["waiting"]["message"] = message
            status["containerStatuses"] = [self.container_status(pod, state, False, False)]
            self.set_conditions(pod, False, "ContainersNotReady", "containers with unready "
                                "status: [%s]" % pod["spec"]["containers"][0]["name"])
        self.update(change)

    def set_scheduled(self):
        def change(pod):
            pod["spec"]["nodeName"] = NODE_NAME
            status = pod["status"]
            status.update(hostIP=HOST_IP, hostIPs=[{"ip": HOST_IP}], podIP=HOST_IP,
                          podIPs=[{"ip": HOST_IP}], startTime=now_time())
            status["containerStatuses"] = [self.container_status(
                pod, {"waiting": {"reason": "ContainerCreating"}}, False, False)]
            self.set_conditions(pod, False, "ContainersNotReady", "containers with unready "
                                "status: [%s]" % pod["spec"]["containers"][0]["name"])
        self.update(change)

    def set_running(self):
        def change(pod):
            if not self.evicted:
                pod["status"]["phase"] = "Running"
            pod["status"]["containerStatuses"] = [self.container_status(
                pod, {"running": {"startedAt": now_time(self.started_at)}}, True, True)]
            self.set_conditions(pod, True)
        self.update(change)

    def set_terminated(self, exit_code, signal_number=None, reason=None, message=None):
        def change(pod):
            status = pod["status"]
            ok = exit_code == 0 and not self.evicted
            status["phase"] = "Succeeded" if ok else "Failed"
            terminated = {"exitCode": exit_code,
                          "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                          "startedAt": now_time(self.started_at or 0),
                          "finishedAt": now_time(), "containerID": "fake://" + self.container_id}
            if signal_number:
                terminated["signal"] = signal_number
            if message:
                terminated["message"] = message
            status["containerStatuses"] = [self.container_status(
                pod, {"terminated": terminated}, False, False)]
            self.set_conditions(pod, False, "PodCompleted" if ok else "PodFailed")
        self.update(change)

    # --- the kubelet's loop ---

    def run(self):
        try:
            self.set_scheduled()
            if self.prepare():
                self.supervise()
            with self.cluster.cond:
                self.state = "done"
            while True:
                with self.cluster.cond:
                    if self.deleting or self.cluster.shutting or self.current() is None:
                        break
                self.wake.wait(1)
                self.wake.clear()
        except Exception:  # noqa: BLE001 -- a fake's bug must not go unseen
            traceback.print_exc()
        finally:
            with self.cluster.cond:
                self.state = "done"
            self.cluster.pod_finished(self)

    def prepare(self):
        """Waits until the container can start and starts it: whether it did."""
        pull_failed_since = None
        while True:
            with self.cluster.cond:
                pod = self.current()
                if pod is None or self.deleting or self.cluster.shutting:
                    return False
                try:
                    plan = self.make_plan(pod)
                except Waiting as w:
                    plan = None
                    reason = w.reason
                    if reason == "ErrImagePull":
                        pull_failed_since = pull_failed_since or time.monotonic()
                        if time.monotonic() - pull_failed_since >= IMAGE_BACKOFF:
                            reason = "ImagePullBackOff"
                            w.message = 'Back-off pulling image "%s": %s' % (
                                pod["spec"]["containers"][0]["image"], w.message)
                    self.set_waiting(reason, w.message)
                except StartFailure as f:
                    self.set_terminated(f.exit_code, reason="StartError", message=f.message)
                    return False
            if plan is not None:
                try:
                    self.launch(plan)
                    return True
                except StartFailure as f:
                    self.set_terminated(f.exit_code, reason="StartError", message=f.message)
                    return False
            self.wake.wait(0.5)
            self.wake.clear()

    def make_plan(self, pod):
        """What running the Pod's first container takes, from the objects
        stored now (the caller holds the lock)."""
        c = self.cluster
        spec = pod["spec"]
        container = spec["containers"][0]
        plan = Plan()
        volumes = {}     # name -> (host dir, read-only)
        files, dirs = [], []
        for v in spec.get("volumes") or []:
            name = v["name"]
            where = os.path.join(self.dir, "volumes", name)
            if "persistentVolumeClaim" in v:
                source = v["persistentVolumeClaim"] or {}
                claim = source.get("claimName", "")
                pvc = c.objects[PVCS.key].get((self.ns, claim))
                if pvc is None or pvc["metadata"].get("deletionTimestamp"):
                    raise Waiting("FailedMount", 'Unable to attach or mount volumes: unmounted '
                                  'volumes=[%s]: persistentvolumeclaim "%s" %s' % (
                                      name, claim, "not found" if pvc is None
                                      else "is being deleted"))
                volumes[name] = (c.claim_dir(self.ns, claim), bool(source.get("readOnly")))
            elif "emptyDir" in v:
                volumes[name] = (where, False)
                dirs.append(where)
            elif "secret" in v or "configMap" in v:
                secret = "secret" in v
                source = v["secret" if secret else "configMap"] or {}
                ref = source.get("secretName" if secret else "name", "")
                obj = c.objects[(SECRETS if secret else CONFIGMAPS).key].get((self.ns, ref))
                if obj is None:
                    if not source.get("optional"):
                        raise Waiting("FailedMount", 'MountVolume.SetUp failed for volume "%s" : '
                                      '%s "%s" not found' % (
                                          name, "secret" if secret else "configmap", ref))
                    data = {}
                elif secret:
                    data = {k: b64decode(x) for k, x in (obj.get("data") or {}).items()}
                else:
                    data = {k: x.encode() for k, x in (obj.get("data") or {}).items()}
                    data.update({k: b64decode(x)
                                 for k, x in (obj.get("binaryData") or {}).items()})
                items = source.get("items")
                if items:
                    picked = {}
                    for item in items:
                        if item.get("key") not in data:
                            if source.get("optional"):
                                continue
                            raise Waiting("FailedMount", 'MountVolume.SetUp failed for volume '
                                          '"%s" : configmap references non-existent config key: '
                                          '%s' % (name, item.get("key")))
                        picked[item.get("path") or item["key"]] = data[item["key"]]
                    data = picked
                files.append((where, data))
                volumes[name] = (where, True)
            elif "hostPath" in v:
                path = (v["hostPath"] or {}).get("path", "")
                volumes[name] = (path, False)
                dirs.append(path)
            else:
                raise Waiting("FailedMount", 'volume "%s": the fake Kubernetes API supports '
                              'persistentVolumeClaim, emptyDir, secret, configMap and hostPath '
                              'volumes only' % name)
        image = container.get("image", "")
        image_dir = c.image_dir(image)
        if image_dir is None:
            raise Waiting("ErrImagePull", 'failed to pull and unpack image "%s": no such image '
                          '(the fake Kubernetes API runs only images mapped with --image %s=DIR)'
                          % (image, image))
        env = self.resolve_env(pod, container)
        context = dict(spec.get("securityContext") or {})
        context.update({k: v for k, v in (container.get("securityContext") or {}).items()
                        if v is not None})
        plan.uid, plan.gid = context.get("runAsUser"), context.get("runAsGroup")
        if plan.gid is None:
            plan.gid = plan.uid
        if context.get("runAsNonRoot") and not plan.uid:
            raise Waiting("CreateContainerConfigError", "container has runAsNonRoot and image "
                          "will run as root (pod: \"%s_%s(%s)\", container: %s)"
                          % (self.name, self.ns, self.uid, container["name"]))
        plan.read_only_root = bool(context.get("readOnlyRootFilesystem"))
        plan.drop_all_caps = "ALL" in ((context.get("capabilities") or {}).get("drop") or [])
        command = container.get("command") or []
        if not command:
            raise StartFailure('failed to create containerd task: the fake Kubernetes API knows '
                               'no image entrypoints: give container "%s" a command'
                               % container["name"])
        argv = [expand(a, env) for a in command + (container.get("args") or [])]
        mounts = []
        for m in container.get("volumeMounts") or []:
            source, read_only = volumes[m["name"]]
            if m.get("subPath"):
                source = os.path.join(source, expand(m["subPath"], env))
                if not any(f[0] == volumes[m["name"]][0] for f in files):
                    dirs.append(source)
            mounts.append((source, m["mountPath"].rstrip("/") or "/",
                           read_only or bool(m.get("readOnly"))))
        plan.mounts, plan.files, plan.dirs = mounts, files, dirs
        plan.image_dir = image_dir
        path = env.get("PATH", STANDARD_PATH)
        if image_dir not in path.split(":"):
            path = image_dir + ":" + path
        env["PATH"] = path
        env.setdefault("HOSTNAME", self.name[:63])
        for key, value in env.items():
            if "\0" in key or "\0" in value or "=" in key or not key:
                raise Waiting("CreateContainerConfigError", "environment variable %r has a name "
                              "or value no environment can hold" % key[:64])
        plan.env = env
        resolved = self.resolve_executable(argv[0], path, plan)
        if resolved is None:
            raise StartFailure('failed to create containerd task: exec: "%s": executable file '
                               'not found in $PATH' % argv[0])
        if any("\0" in a for a in argv):
            raise StartFailure("failed to create containerd task: an argument holds a NUL")
        plan.argv = [resolved] + argv[1:]
        plan.workdir = container.get("workingDir") or "/"
        return plan

    def resolve_env(self, pod, container):
        c = self.cluster
        env = {}

        def lookup(kind, name, optional):
            obj = c.objects[kind.key].get((self.ns, name))
            if obj is None and not optional:
                raise Waiting("CreateContainerConfigError", '%s "%s" not found'
                              % (kind.singular, name))
            return obj

        def values_of(obj, kind):
            if obj is None:
                return {}
            if kind is SECRETS:
                return {k: b64decode(v).decode("utf-8", "surrogateescape")
                        for k, v in (obj.get("data") or {}).items()}
            out = dict(obj.get("data") or {})
            out.update({k: b64decode(v).decode("utf-8", "surrogateescape")
                        for k, v in (obj.get("binaryData") or {}).items()})
            return out

        for source in container.get("envFrom") or []:
            prefix = source.get("prefix") or ""
            for field, kind in (("secretRef", SECRETS), ("configMapRef", CONFIGMAPS)):
                if field in source:
                    ref = source[field] or {}
                    obj = lookup(kind, ref.get("name", ""), ref.get("optional"))
                    for k, v in values_of(obj, kind).items():
                        if ENV_NAME.fullmatch(prefix + k):
                            env[prefix + k] = v
        meta_ = pod["metadata"]
        fields = {"metadata.name": meta_["name"], "metadata.namespace": meta_["namespace"],
                  "metadata.uid": meta_["uid"], "spec.nodeName": NODE_NAME,
                  "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
                  "status.hostIP": HOST_IP, "status.hostIPs": HOST_IP,
                  "status.podIP": HOST_IP, "status.podIPs": HOST_IP}
        for e in container.get("env") or []:
            name, source = e["name"], e.get("valueFrom")
            if source is None:
                env[name] = expand(e.get("value", ""), env)
                continue
            for field, kind in (("secretKeyRef", SECRETS), ("configMapKeyRef", CONFIGMAPS)):
                if field in source:
                    ref = source[field]
                    obj = lookup(kind, ref["name"], ref.get("optional"))
                    values = values_of(obj, kind)
                    if ref["key"] in values:
                        env[name] = values[ref["key"]]
                    elif obj is not None and not ref.get("optional"):
                        raise Waiting("CreateContainerConfigError", "couldn't find key %s in %s "
                                      "%s/%s" % (ref["key"], kind.kind, self.ns, ref["name"]))
            if "fieldRef" in source:
                path = source["fieldRef"].get("fieldPath", "")
                m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
                if m:
                    env[name] = (meta_.get(m.group(1)) or {}).get(m.group(2), "")
                else:
                    env[name] = fields.get(path, "")
            if "resourceFieldRef" in source:
                ref = source["resourceFieldRef"]
                group, _, res = ref.get("resource", "").partition(".")
                value = ((container.get("resources") or {}).get(group) or {}).get(res, "0")
                env[name] = str(value)
        return env

    def host_path(self, path, plan):
        """Where the sandbox's path is on the host, None if nowhere."""
        path = os.path.normpath(path)
        if self.cluster.bwrap is None:
            return path
        if path == plan.image_dir or path.startswith(plan.image_dir.rstrip("/") + "/"):
            return path
        best = None
        for source, target, _ in plan.mounts:
            if path == target or path.startswith(target.rstrip("/") + "/"):
                if best is None or len(target) > len(best[1]):
                    best = (source, target)
        if best:
            return best[0] + path[len(best[1]):]
        for d in SYSTEM_DIRS:
            if path == d or path.startswith(d + "/"):
                return path
        return None

    def resolve_executable(self, name, path, plan):
        candidates = [name] if "/" in name else [
            os.path.join(d, name) for d in path.split(":") if d.startswith("/")]
        for candidate in candidates:
            host = self.host_path(candidate, plan)
            if host and os.path.isfile(host) and os.access(host, os.X_OK):
                return candidate
        return None

    def launch(self, plan):
        """Starts the planned process; StartFailure when it cannot."""
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        for d in plan.dirs:
            os.makedirs(d, exist_ok=True)
        for where, data in plan.files:
            shutil.rmtree(where, ignore_errors=True)
            for rel, content in data.items():
                target = os.path.join(where, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(content)
            os.makedirs(where, exist_ok=True)
        container = None
        with self.cluster.cond:
            pod = self.current()
            if pod is not None:
                container = pod["spec"]["containers"][0]["name"]
        if container is None:
            raise StartFailure("the pod is gone")
        self.log_path = os.path.join(self.dir, "logs", container + ".log")
        log = open(self.log_path, "ab")
        try:
            if self.cluster.bwrap is None:
                proc = self.start_plain(plan, log)
            else:
                proc = self.start_bwrap(plan, log)
        finally:
            log.close()
        with self.cluster.cond:
            self.plan, self.proc, self.state = plan, proc, "running"
            self.started_at = time.time()
        self.set_running()

    def start_plain(self, plan, log):
        """Without bubblewrap: a plain process (its mounts are not made)."""
        workdir = plan.workdir if os.path.isdir(plan.workdir) else self.dir

        def child():
            try:
                ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
            except (OSError, AttributeError):
                pass
        try:
            return subprocess.Popen(plan.argv, env=plan.env, cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    user=plan.uid, group=plan.gid, preexec_fn=child)
        except (OSError, subprocess.SubprocessError) as e:
            raise StartFailure("failed to create containerd task: %s" % e)

    def bwrap_argv(self, plan, args_fd, info_fd):
        a = [self.cluster.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc",
             "--unshare-uts", "--hostname", self.name[:63]]
        if plan.uid or plan.gid:
            a += ["--unshare-user", "--uid", str(plan.uid or 0), "--gid", str(plan.gid or 0)]
        elif plan.drop_all_caps:
            a += ["--cap-drop", "ALL"]
        a += ["--tmpfs", "/"]
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        a += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for source, target, read_only in sorted(plan.mounts, key=lambda m: m[1].count("/")):
            a += ["--ro-bind" if read_only else "--bind", source, target]
        # Last, so that no volume hides it (an image under /tmp, say).
        a += ["--ro-bind", plan.image_dir, plan.image_dir]
        a += ["--dir", plan.workdir]
        if plan.read_only_root:
            a += ["--remount-ro", "/"]
        a += ["--chdir", plan.workdir, "--clearenv", "--args", str(args_fd),
              "--info-fd", str(info_fd), "--"] + plan.argv
        return a

    def start_bwrap(self, plan, log):
        # The environment (secrets included) reaches bwrap through a
        # descriptor: argv is world-readable in /proc/PID/cmdline.
        setenv = b"".join(b"--setenv\0" + k.encode("utf-8", "surrogateescape") + b"\0"
                          + v.encode("utf-8", "surrogateescape") + b"\0"
                          for k, v in plan.env.items())
        args_fd = os.memfd_create("pod-env")
        info_r, info_w = os.pipe()
        try:
            os.write(args_fd, setenv)
            os.lseek(args_fd, 0, os.SEEK_SET)
            try:
                proc = subprocess.Popen(self.bwrap_argv(plan, args_fd, info_w), env={},
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, pass_fds=(args_fd, info_w),
                                        start_new_session=True)
            except OSError as e:
                raise StartFailure("failed to create containerd task: %s: %s"
                                   % (self.cluster.bwrap, e))
            os.close(info_w)
            info_w = None
            data, deadline = b"", time.monotonic() + 10
            while b"}" not in data:
                ready, _, _ = select.select([info_r], [], [], max(0, deadline - time.monotonic()))
                if not ready:
                    break
                chunk = os.read(info_r, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(args_fd)
            os.close(info_r)
            if info_w is not None:
                os.close(info_w)
        try:
            info = json.loads(data)
            self.init_pid = int(info["child-pid"])
            self.namespace_link = pid_namespace(self.init_pid)
        except (ValueError, KeyError, TypeError):
            try:
                proc.kill()
            except OSError:
                pass
            rc = proc.wait()
            tail = ""
            try:
                with open(self.log_path, "rb") as f:
                    tail = f.read()[-500:].decode("utf-8", "replace").strip()
            except OSError:
                pass
            raise StartFailure("failed to create containerd task: the sandbox did not start "
                               "(bwrap exit status %s): %s" % (rc, tail))
        return proc

    def processes(self):
        """The host pids of the container's processes (not bwrap's init)."""
        if self.proc is None:
            return []
        if self.cluster.bwrap is None:
            return [self.proc.pid]
        if self.namespace_link is None:
            return []
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != self.init_pid:
                if pid_namespace(int(entry)) == self.namespace_link:
                    out.append(int(entry))
        return sorted(out)

    def main_pid(self):
        """The host pid of the container's command."""
        if self.cluster.bwrap is None or self.proc is None:
            return self.proc.pid if self.proc else None
        for pid in self.processes():
            if parent_pid(pid) == self.init_pid:
                return pid
        return None

    def send(self, sig):
        """sig to the container's processes (SIGKILL: to the whole sandbox)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return False
        self.signals.add(sig)
        try:
            if self.cluster.bwrap is None:
                os.killpg(proc.pid, sig)
            elif sig == signal.SIGKILL:
                os.kill(self.init_pid, signal.SIGKILL)
            else:
                for pid in self.processes():
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
        except ProcessLookupError:
            pass
        return True

    def supervise(self):
        """Waits for the process, stopping it when the Pod is deleted."""
        term_at = None
        killed = False
        while True:
            try:
                rc = self.proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            with self.cluster.cond:
                deleting, grace = self.deleting, self.grace
                shutting = self.cluster.shutting
            if shutting and not killed:
                self.send(signal.SIGKILL)
                killed = True
            if deleting and term_at is None:
                term_at = time.monotonic()
                if grace > 0:
                    self.send(signal.SIGTERM)
            if (term_at is not None and not killed
                    and time.monotonic() >= term_at + min(grace, MAX_GRACE)):
                self.send(signal.SIGKILL)
                killed = True
        if rc < 0:
            exit_code, sig = 128 - rc, -rc
        elif rc > 128 and (rc - 128) in self.signals:
            exit_code, sig = rc, rc - 128
        else:
            exit_code, sig = rc, None
        self.set_terminated(exit_code, sig)

    def control(self):
        """What /control/pods says of it (the caller holds the lock)."""
        out = {"namespace": self.ns, "name": self.name, "uid": self.uid, "state": self.state,
               "pid": None, "bwrap_pid": None, "sandbox_init_pid": self.init_pid,
               "argv": self.plan.argv if self.plan else None,
               "env": sorted(self.plan.env) if self.plan else None, "log": self.log_path,
               "exit_code": None}
        pod = self.current()
        if pod is not None:
            out["phase"] = pod["status"].get("phase")
        if self.proc is not None:
            out["pid"] = self.main_pid()
            if self.cluster.bwrap is not None:
                out["bwrap_pid"] = self.proc.pid
            out["exit_code"] = self.proc.returncode
        return out


# --- Deployments' readiness, decided by the test for now ---

class ReadyAfter:
    """Ready once the rollout is `delay` seconds old (the default)."""

    def __init__(self, delay):
        self.delay = delay

    def ready(self, deployment, rollout_age):
        return rollout_age >= self.delay


class FixedReadiness:
    """Ready or not, as /control/deployment_ready said."""

    def __init__(self, value):
        self.value = value

    def ready(self, deployment, rollout_age):
        return self.value


def template_hash(template):
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(NAME_CHARS[b % len(NAME_CHARS)] for b in digest[:10])


# --- the cluster ---

class Event:
    __slots__ = ("rv", "key", "type", "object", "previous")

    def __init__(self, rv, key, kind_of, obj, previous):
        self.rv, self.key, self.type, self.object, self.previous = rv, key, kind_of, obj, previous


class Cluster:
    """Every object, the watch history and the pods' runners, under one
    condition variable. Stored objects are never changed in place: a change
    stores a new copy, so events and answers can share them."""

    def __init__(self, options, data):
        self.options, self.data = options, data
        self.cond = threading.Condition(threading.RLock())
        self.rv = 100
        self.objects = {k.key: {} for k in KINDS}
        self.history = collections.deque()
        self.compacted = 0        # events up to this resourceVersion are forgotten
        self.rules = []           # /control/forbid
        self.requests = []
        self.runners = {}         # pod uid -> PodRunner
        self.readiness = {}       # (namespace, deployment) -> a readiness source
        self.default_readiness = ReadyAfter(DEFAULT_READY_AFTER)
        self.rollouts = {}        # deployment uid -> its rollout's state
        self.shutting = False
        self.started = time.time()
        self.images = []
        for spec in options.image:
            image, sep, host_dir = spec.partition("=")
            if not sep or not image or not host_dir:
                sys.exit("--image wants IMAGE=HOSTDIR, not %r" % spec)
            self.images.append((image, os.path.abspath(host_dir)))
        if options.bwrap == "none":
            self.bwrap = None
        else:
            self.bwrap = shutil.which(options.bwrap) or options.bwrap
        threading.Thread(target=self.controllers, daemon=True, name="controllers").start()

    # --- storage ---

    def claim_dir(self, ns, claim):
        return os.path.join(self.data, "pvc", ns, claim)

    def image_dir(self, image):
        for key, host_dir in self.images:
            if key == image:
                return host_dir
        for key, host_dir in self.images:
            if image_base(key) == image_base(image):
                return host_dir
        return None

    def commit(self, kind, obj, type_):
        """Stores (or, for DELETED, removes) obj as the next resourceVersion."""
        m = obj["metadata"]
        key = (m.get("namespace", ""), m["name"])
        previous = self.objects[kind.key].get(key)
        self.rv += 1
        m["resourceVersion"] = str(self.rv)
        if type_ == "DELETED":
            self.objects[kind.key].pop(key, None)
        else:
            self.objects[kind.key][key] = obj
        if len(self.history) >= HISTORY:
            self.compacted = self.history.popleft().rv
        self.history.append(Event(self.rv, kind.key, type_, obj, previous))
        if kind in (SECRETS, CONFIGMAPS, PVCS):
            for runner in self.runners.values():
                runner.wake.set()
        self.cond.notify_all()
        return obj

    def remove(self, kind, obj):
        """obj is gone (DELETED), with what goes with it."""
        gone = copy.deepcopy(obj)
        self.commit(kind, gone, "DELETED")
        if kind is PVCS:
            shutil.rmtree(self.claim_dir(gone["metadata"]["namespace"], gone["metadata"]["name"]),
                          ignore_errors=True)
        elif kind is DEPLOYMENTS:
            self.rollouts.pop(gone["metadata"].get("uid"), None)
        return gone

    def get(self, kind, ns, name):
        obj = self.objects[kind.key].get((ns if kind.namespaced else "", name))
        if obj is None and kind is NAMESPACES:
            obj = self.synthetic_namespace(name)
        if obj is None:
            raise not_found(kind, name)
        return obj

    def synthetic_namespace(self, name):
        """A namespace nobody created: every name is one."""
        return {"kind": "Namespace", "apiVersion": "v1", "metadata": {
            "name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".fake")),
            "resourceVersion": "1", "creationTimestamp": now_time(self.started),
            "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def select(self, kind, ns, labels, fields):
        """The objects of kind in ns (None: all), in name order."""
        out = []
        if kind is NAMESPACES:
            names = set(DEFAULT_NAMESPACES) | {k[1] for k in self.objects[NAMESPACES.key]}
            names |= {k[0] for kk in KINDS if kk.namespaced for k in self.objects[kk.key]}
            candidates = [self.objects[NAMESPACES.key].get(("", n))
                          or self.synthetic_namespace(n) for n in sorted(names)]
        else:
            candidates = [o for k, o in sorted(self.objects[kind.key].items())
                          if ns is None or k[0] == ns]
        for obj in candidates:
            if labels_match(labels, obj["metadata"].get("labels")) and fields_match(fields, obj):
                out.append(obj)
        return out

    def decode(self, kind, body, ns, name=None):
        """The request's object (a fresh copy), checked against its URL."""
        try:
            obj = json.loads(body or b"null")
        except ValueError as e:
            raise bad_request("the body of the request was not JSON: %s" % e)
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object, as a %s is"
                              % kind.kind)
        if (obj.get("kind") or kind.kind) != kind.kind or \
                (obj.get("apiVersion") or kind.api_version) != kind.api_version:
            raise bad_request('%s in version "%s" cannot be handled as a %s: the object must be '
                              'kind %s, apiVersion %s' % (
                                  obj.get("kind"), obj.get("apiVersion"), kind.kind, kind.kind,
                                  kind.api_version))
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
        m = obj.get("metadata")
        if m is None:
            m = obj["metadata"] = {}
        if not isinstance(m, dict):
            raise bad_request("metadata must be an object")
        for field in ("labels", "annotations"):
            value = m.get(field)
            if value is not None and (not isinstance(value, dict) or not all(
                    isinstance(v, str) for v in value.values())):
                raise bad_request("json: cannot unmarshal metadata.%s: must be a map of strings"
                                  % field)
        for field in ("name", "generateName", "namespace", "resourceVersion"):
            if m.get(field) is not None and not isinstance(m[field], str):
                raise bad_request("json: cannot unmarshal metadata.%s: must be a string" % field)
        if kind.namespaced:
            if m.get("namespace") and m["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            m["namespace"] = ns
        else:
            m.pop("namespace", None)
        if name is not None and m.get("name") and m["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL "
                              "(%s)" % (m["name"], name))
        return obj

    # --- verbs ---

    def create(self, kind, ns, body, dry_run=False):
        obj = self.decode(kind, body, ns)
        m = obj["metadata"]
        with self.cond:
            if not m.get("name"):
                if m.get("generateName"):
                    for _ in range(20):
                        m["name"] = m["generateName"] + "".join(
                            random.choice(NAME_CHARS) for _ in range(5))
                        if (m.get("namespace", ""), m["name"]) not in self.objects[kind.key]:
                            break
                else:
                    errs = Errors(kind, "")
                    errs.required("metadata.name", "name or generateName is required")
                    errs.check()
            key = (m.get("namespace", ""), m["name"])
            if key in self.objects[kind.key]:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists'
                               % (kind.qualified, m["name"]), details(kind, m["name"]))
            for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "selfLink"):
                m.pop(field, None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = now_time()
            if "spec" in obj:
                m["generation"] = 1
            if kind.has_status and kind is not PVCS:
                obj.pop("status", None)
            errs = Errors(kind, m["name"])
            check_metadata(kind, obj, errs)
            errs.check()
            prepare(kind, obj, None, errs)
            if kind is SERVICES:
                self.allocate_service(obj)
            if dry_run:
                return obj
            self.commit(kind, obj, "ADDED")
            if kind is PVCS:
                os.makedirs(self.claim_dir(ns, m["name"]), exist_ok=True)
            elif kind is PODS:
                runner = PodRunner(self, obj)
                self.runners[m["uid"]] = runner
                runner.start()
            return obj

    def allocate_service(self, obj):
        spec = obj["spec"]
        taken = {o["spec"].get("clusterIP") for o in self.objects[SERVICES.key].values()}
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            while True:
                ip = "10.96.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
                if ip not in taken:
                    break
            spec["clusterIP"] = ip
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if spec["type"] in ("NodePort", "LoadBalancer"):
            used = {p.get("nodePort") for o in self.objects[SERVICES.key].values()
                    for p in o["spec"].get("ports") or []}
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    port["nodePort"] = next(n for n in range(30000, 32768) if n not in used)
                    used.add(port["nodePort"])
        obj["status"] = {"loadBalancer": {}}

    def replace(self, kind, ns, name, obj, subresource=None, patched=False):
        """Stores obj (decoded) in place of the object; 409 when its
        resourceVersion is stale."""
        with self.cond:
            old = self.get(kind, ns, name)
            if kind is NAMESPACES and ("", name) not in self.objects[NAMESPACES.key]:
                raise not_found(kind, name)
            m = obj["metadata"]
            if not m.get("name"):
                m["name"] = name
            if m.get("resourceVersion") and m["resourceVersion"] != \
                    old["metadata"]["resourceVersion"]:
                raise conflict(kind, name)
            if subresource == "status":
                new = copy.deepcopy(old)
                new["status"] = obj.get("status")
            else:
                new = obj
                om = old["metadata"]
                for field in ("uid", "creationTimestamp", "deletionTimestamp",
                              "deletionGracePeriodSeconds", "generation"):
                    if field in om:
                        m[field] = om[field]
                    else:
                        m.pop(field, None)
                if kind.has_status:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
                errs = Errors(kind, name)
                check_metadata(kind, new, errs)
                errs.check()
                prepare(kind, new, old, errs)
                if "spec" in new and new.get("spec") != old.get("spec"):
                    m["generation"] = om.get("generation", 0) + 1
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return old
            if new["metadata"].get("deletionTimestamp") and \
                    not new["metadata"].get("finalizers") and kind is not PODS:
                return self.remove(kind, new)
            self.commit(kind, new, "MODIFIED")
            if kind is PODS and new["metadata"].get("deletionTimestamp"):
                runner = self.runners.get(new["metadata"]["uid"])
                if runner is None or runner.state == "done":
                    self.finish_pod_removal(new)
            return new

    def patch(self, kind, ns, name, body, content_type, subresource=None):
        if content_type not in ("application/merge-patch+json",
                                "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                           "unknown format - accepted media types include: "
                           "application/merge-patch+json, application/strategic-merge-patch+json")
        try:
            patch = json.loads(body or b"null")
        except ValueError as e:
            raise bad_request("the body of the request was not JSON: %s" % e)
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        with self.cond:
            old = self.get(kind, ns, name)
            merged = merge_patch(old, patch)
            if not isinstance(merged.get("metadata"), dict):
                raise bad_request("metadata must be an object")
            if merged["metadata"].get("name") != name:
                errs = Errors(kind, name)
                errs.invalid("metadata.name", merged["metadata"].get("name"),
                             "field is immutable")
                errs.check()
            if "resourceVersion" not in (patch.get("metadata") or {}):
                merged["metadata"].pop("resourceVersion", None)
            obj = self.decode(kind, json.dumps(merged).encode(), ns, name)
            return self.replace(kind, ns, name, obj, subresource, patched=True)

    def delete(self, kind, ns, name, options):
        """Deletes (or starts deleting) the object; the answer's body."""
        grace = options.get("gracePeriodSeconds")
        with self.cond:
            old = self.get(kind, ns, name)
            if kind is NAMESPACES:
                raise method_not_allowed()
            preconditions = options.get("preconditions") or {}
            if preconditions.get("uid") and preconditions["uid"] != old["metadata"]["uid"]:
                raise conflict(kind, name, "Precondition failed: UID in precondition: %s, UID in "
                               "object meta: %s" % (preconditions["uid"], old["metadata"]["uid"]))
            if preconditions.get("resourceVersion") and \
                    preconditions["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(kind, name)
            if options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents"):
                self.orphan(old["metadata"]["uid"])
            if kind is PODS:
                return self.delete_pod(old, grace)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = copy.deepcopy(old)
                new["metadata"].update(deletionTimestamp=now_time(),
                                       deletionGracePeriodSeconds=0)
                return self.commit(kind, new, "MODIFIED")
            gone = self.remove(kind, old)
            if kind is SERVICES:
                return gone
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": details(kind, name, uid=gone["metadata"]["uid"])}

    def orphan(self, uid):
        for kind in KINDS:
            for obj in list(self.objects[kind.key].values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    new = copy.deepcopy(obj)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    self.commit(kind, new, "MODIFIED")

    def delete_pod(self, old, grace, evict=False):
        """Graceful deletion: deletionTimestamp now, the process stopped
        (SIGTERM, SIGKILL after the grace period), then the object goes."""
        m = old["metadata"]
        runner = self.runners.get(m["uid"])
        if grace is None:
            grace = old["spec"].get("terminationGracePeriodSeconds", 30)
        grace = max(0, int(grace))
        if runner is None or (runner.state == "done" and not m.get("finalizers")):
            # Never ran or over already: gone at once, as the API server does.
            if runner is not None:
                runner.deleting = True
                runner.wake.set()
            return self.remove(PODS, old)
        new = copy.deepcopy(old)
        if m.get("deletionTimestamp"):
            if runner.grace is not None and grace >= runner.grace:
                return old
        new["metadata"]["deletionTimestamp"] = now_time(time.time() + grace)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        if evict:
            runner.evicted = True
            status = new["status"]
            status.update(phase="Failed", reason="Evicted",
                          message="The pod was evicted through the Eviction API.")
            status.setdefault("conditions", []).append({
                "type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                "lastTransitionTime": now_time(), "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting"})
        runner.deleting = True
        runner.grace = grace if runner.grace is None else min(grace, runner.grace)
        runner.wake.set()
        self.commit(PODS, new, "MODIFIED")
        return new

    def pod_finished(self, runner):
        """The runner is over: a deleted Pod goes now (unless finalizers keep it)."""
        with self.cond:
            pod = runner.current()
            if pod is not None and (runner.deleting or self.shutting):
                if not pod["metadata"].get("finalizers"):
                    self.finish_pod_removal(pod)
            elif pod is None:
                self.runners.pop(runner.uid, None)
                shutil.rmtree(runner.dir, ignore_errors=True)

    def finish_pod_removal(self, pod):
        runner = self.runners.pop(pod["metadata"]["uid"], None)
        self.remove(PODS, pod)
        shutil.rmtree(runner.dir if runner else os.path.join(
            self.data, "pods", pod["metadata"]["uid"]), ignore_errors=True)

    # --- controllers: Deployments, Ingresses, Services, PVC protection, GC ---

    def controllers(self):
        while True:
            time.sleep(0.05)
            with self.cond:
                if self.shutting:
                    return
                try:
                    self.control_deployments()
                    self.control_load_balancers()
                    self.control_pvc_protection()
                    self.collect_garbage()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()

    def control_deployments(self):
        for (ns, name), dep in list(self.objects[DEPLOYMENTS.key].items()):
            m, spec = dep["metadata"], dep["spec"]
            generation = m.get("generation", 1)
            rollout = self.rollouts.setdefault(m["uid"], {"generation": None})
            if rollout["generation"] != generation:
                template = template_hash(spec.get("template"))
                if rollout.get("template") != template:
                    rollout.update(template=template, since=time.monotonic(), complete=False)
                rollout["generation"] = generation
            replicas = spec.get("replicas", 1)
            source = self.readiness.get((ns, name), self.default_readiness)
            age = time.monotonic() - rollout["since"]
            ready = replicas == 0 or bool(source.ready(dep, age))
            if ready:
                rollout["complete"] = True
            replica_set = "%s-%s" % (name, rollout["template"])
            status = {"observedGeneration": generation}
            if replicas:
                status.update(replicas=replicas, updatedReplicas=replicas)
                if ready:
                    status.update(readyReplicas=replicas, availableReplicas=replicas)
                else:
                    status["unavailableReplicas"] = replicas
            old = {c.get("type"): c for c in (dep.get("status") or {}).get("conditions") or []}
            now = now_time()

            def condition(kind, value, reason, message):
                previous = old.get(kind, {})
                same = previous.get("status") == value
                unchanged = same and previous.get("reason") == reason
                return {"type": kind, "status": value,
                        "lastUpdateTime": previous["lastUpdateTime"] if unchanged else now,
                        "lastTransitionTime": previous["lastTransitionTime"] if same else now,
                        "reason": reason, "message": message}
            if ready:
                available = condition("Available", "True", "MinimumReplicasAvailable",
                                      "Deployment has minimum availability.")
            else:
                available = condition("Available", "False", "MinimumReplicasUnavailable",
                                      "Deployment does not have minimum availability.")
            deadline = spec.get("progressDeadlineSeconds", 600)
            if rollout["complete"]:
                progressing = condition("Progressing", "True", "NewReplicaSetAvailable",
                                        'ReplicaSet "%s" has successfully progressed.'
                                        % replica_set)
            elif age > deadline:
                progressing = condition("Progressing", "False", "ProgressDeadlineExceeded",
                                        'ReplicaSet "%s" has timed out progressing.'
                                        % replica_set)
            else:
                progressing = condition("Progressing", "True", "ReplicaSetUpdated",
                                        'ReplicaSet "%s" is progressing.' % replica_set)
            status["conditions"] = [available, progressing]
            if status != dep.get("status"):
                new = copy.deepcopy(dep)
                new["status"] = status
                self.commit(DEPLOYMENTS, new, "MODIFIED")

    def control_load_balancers(self):
        for kind in (INGRESSES, SERVICES):
            for obj in list(self.objects[kind.key].values()):
                if kind is SERVICES and obj["spec"].get("type") != "LoadBalancer":
                    continue
                if ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                    continue
                new = copy.deepcopy(obj)
                new["status"] = {"loadBalancer": {"ingress": [{"ip": HOST_IP}]}}
                self.commit(kind, new, "MODIFIED")

    def control_pvc_protection(self):
        for (ns, name), pvc in list(self.objects[PVCS.key].items()):
            if not pvc["metadata"].get("deletionTimestamp") or \
                    FINALIZER_PVC not in (pvc["metadata"].get("finalizers") or []):
                continue
            used = any(((v.get("persistentVolumeClaim") or {}).get("claimName") == name)
                       for (pns, _), pod in self.objects[PODS.key].items() if pns == ns
                       for v in pod["spec"].get("volumes") or [])
            if not used:
                new = copy.deepcopy(pvc)
                new["metadata"]["finalizers"].remove(FINALIZER_PVC)
                if new["metadata"]["finalizers"]:
                    self.commit(PVCS, new, "MODIFIED")
                else:
                    self.remove(PVCS, new)

    def collect_garbage(self):
        """Objects whose owners are all gone are deleted (in the background)."""
        uids = {o["metadata"]["uid"] for k in KINDS for o in self.objects[k.key].values()}
        for kind in KINDS:
            for (ns, name), obj in list(self.objects[kind.key].items()):
                refs = obj["metadata"].get("ownerReferences")
                if not refs or obj["metadata"].get("deletionTimestamp"):
                    continue
                if not any(r.get("uid") in uids for r in refs):
                    try:
                        self.delete(kind, ns, name, {})
                    except ApiError:
                        pass

    # --- for the test ---

    def shutdown(self):
        with self.cond:
            self.shutting = True
            runners = list(self.runners.values())
            self.cond.notify_all()
        for runner in runners:
            runner.send(signal.SIGKILL)
            runner.wake.set()
        deadline = time.monotonic() + 3
        for runner in runners:
            if runner.proc is not None:
                try:
                    runner.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    runner.proc.kill()

    def rule_matches(self, rule, verb, resource, group, ns, name):
        return (rule.get("verb") in (verb, "*") and rule.get("resource") in (resource, "*")
                and rule.get("namespace", ns) == ns and rule.get("group", group) == group
                and rule.get("name", name) == name)


# --- tables, for kubectl ---

def table(kind, objects, include, rv):
    def column(name, kind_of="string", priority=0, fmt=""):
        return {"name": name, "type": kind_of, "format": fmt, "description": name,
                "priority": priority}
    now = time.time()
    if kind is PODS:
        columns = [column("Name", fmt="name"), column("Ready"), column("Status"),
                   column("Restarts", "integer"), column("Age"), column("IP", priority=1),
                   column("Node", priority=1)]
    elif kind is DEPLOYMENTS:
        columns = [column("Name", fmt="name"), column("Ready"), column("Up-to-date", "integer"),
                   column("Available", "integer"), column("Age")]
    elif kind is SERVICES:
        columns = [column("Name", fmt="name"), column("Type"), column("Cluster-IP"),
                   column("External-IP"), column("Port(s)"), column("Age")]
    elif kind is SECRETS:
        columns = [column("Name", fmt="name"), column("Type"), column("Data", "integer"),
                   column("Age")]
    elif kind is PVCS:
        columns = [column("Name", fmt="name"), column("Status"), column("Volume"),
                   column("Capacity"), column("Access Modes"), column("StorageClass"),
                   column("Age")]
    elif kind is NAMESPACES:
        columns = [column("Name", fmt="name"), column("Status"), column("Age")]
    else:
        columns = [column("Name", fmt="name"), column("Age")]
    rows = []
    for obj in objects:
        m, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        age = human_age(now - parse_time(m.get("creationTimestamp")))
        if kind is PODS:
            statuses = status.get("containerStatuses") or []
            shown = status.get("reason") or status.get("phase", "Pending")
            for cs in statuses:
                state = cs.get("state") or {}
                if "waiting" in state and state["waiting"].get("reason"):
                    shown = state["waiting"]["reason"]
                elif "terminated" in state:
                    shown = state["terminated"].get("reason") or "Error"
            if m.get("deletionTimestamp"):
                shown = "Terminating"
            cells = [m["name"], "%d/%d" % (sum(1 for cs in statuses if cs.get("ready")),
                                           len(spec.get("containers") or [])),
                     shown, 0, age, status.get("podIP", "<none>"),
                     spec.get("nodeName", "<none>")]
        elif kind is DEPLOYMENTS:
            cells = [m["name"], "%d/%d" % (status.get("readyReplicas", 0),
                                           spec.get("replicas", 1)),
                     status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age]
        elif kind is SERVICES:
            ports = ",".join("%s/%s" % (p.get("port"), p.get("protocol", "TCP"))
                             for p in spec.get("ports") or []) or "<none>"
            ingress = (status.get("loadBalancer") or {}).get("ingress") or []
            external = ",".join(i.get("ip", "") for i in ingress) or "<none>"
            cells = [m["name"], spec.get("type"), spec.get("clusterIP", "<none>"), external,
                     ports, age]
        elif kind is SECRETS:
            cells = [m["name"], obj.get("type", "Opaque"), len(obj.get("data") or {}), age]
        elif kind is PVCS:
            cells = [m["name"], status.get("phase", "Pending"), spec.get("volumeName", ""),
                     (status.get("capacity") or {}).get("storage", ""),
                     ",".join({"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX",
                               "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}.get(a, a)
                              for a in status.get("accessModes") or []),
                     spec.get("storageClassName", ""), age]
        elif kind is NAMESPACES:
            cells = [m["name"], status.get("phase", "Active"), age]
        else:
            cells = [m["name"], age]
        row = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": m}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(rv)}, "columnDefinitions": columns,
            "rows": rows}


def without_type(obj):
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


# --- HTTP ---

CLUSTER = None
LOG_LOCK = threading.Lock()


class Handler(JsonHandler):
    options = None

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_response(self, code, message=None):
        super().send_response(code, message)
        record = getattr(self, "_record", None)
        if record is not None and "code" not in record:
            record["code"] = code
            if Handler.options.log:
                line = dict(record, body=self._logged_body)
                with LOG_LOCK, open(Handler.options.log, "a") as f:
                    f.write(json.dumps(line) + "\n")

    def _status(self, error):
        self._json(error.code, error.status())

    def _handle(self):
        url = urlsplit(self.path)
        self._url_path = unquote(url.path)
        self._query = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body()
        try:
            self._logged_body = json.loads(body) if body else None
        except ValueError:
            self._logged_body = body.decode("utf-8", "replace")
        self._record = {"time": time.time(), "method": self.command, "path": self._url_path,
                        "query": self._query, "user_agent": self.headers.get("user-agent", ""),
                        "verb": None, "resource": None, "namespace": None, "name": None}
        try:
            if self._url_path.startswith("/control/"):
                self._record["verb"] = "control"
                return self._control(self._url_path[len("/control/"):], body)
            with CLUSTER.cond:
                CLUSTER.requests.append(self._record)
            if self.headers.get("authorization", "") != "Bearer " + self.options.token:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self._route(body)
        except ApiError as e:
            self._status(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            try:
                self._status(ApiError(500, "InternalError", "Internal error occurred: %s" % e))
            except OSError:
                pass

    # --- routing ---

    def _route(self, body):
        path = self._url_path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if self.command == "GET":
            answer = self._discovery(path)
            if answer is not None:
                return self._json(200, answer)
        m = re.fullmatch(r"/api/v1/(.+)", path)
        if m:
            group, version, rest = "", "v1", m.group(1)
        else:
            m = re.fullmatch(r"/apis/([^/]+)/([^/]+)/(.+)", path)
            if not m:
                raise no_such_path()
            group, version, rest = m.groups()
        parts = rest.split("/")
        watch_path = parts[0] == "watch"
        if watch_path:
            parts = parts[1:]
        ns = None
        if len(parts) >= 2 and parts[0] == "namespaces" and group == "":
            if len(parts) == 2:        # the namespace itself
                return self._verb(NAMESPACES, None, parts[1], None, body, watch_path)
            ns, parts = parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "namespaces":
            ns, parts = parts[1], parts[2:]
        if not parts or len(parts) > 3:
            raise no_such_path()
        kind = BY_URL.get((group, version, parts[0]))
        if kind is None:
            raise no_such_path()
        if ns is not None and not kind.namespaced:
            raise no_such_path()
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if sub is not None and sub not in kind.subresources:
            raise no_such_path()
        if kind.namespaced and ns is None and name is not None:
            raise no_such_path()
        return self._verb(kind, ns, name, sub, body, watch_path)

    def _discovery(self, path):
        if path == "/version":
            return {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % self.server.server_address}]}

        def group_info(name):
            version = {"groupVersion": name + "/v1", "version": "v1"}
            return {"name": name, "versions": [version], "preferredVersion": version}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [group_info(g) for g in GROUPS]}
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m and m.group(1) in GROUPS:
            return dict(group_info(m.group(1)), kind="APIGroup", apiVersion="v1")
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/(v1)", path)
        if m:
            group = m.group(2) or ""
            if group and group not in GROUPS:
                return None
            resources = [r for k in KINDS if k.group == group for r in k.discovery()]
            out = {"kind": "APIResourceList", "groupVersion": (group + "/v1") if group else "v1",
                   "resources": resources}
            if group:
                out["apiVersion"] = "v1"
            return out
        return None

    def _verb(self, kind, ns, name, sub, body, watch_path):
        method, q = self.command, self._query
        collection = name is None
        if method == "GET":
            if collection:
                watching = watch_path or q.get("watch") in ("1", "true", "True")
                verb = "watch" if watching else "list"
            else:
                verb = "watch" if watch_path else "get"
        elif method == "POST":
            verb = "create"
            if not collection and sub != "eviction":
                raise method_not_allowed()
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "deletecollection" if collection else "delete"
        else:
            raise method_not_allowed()
        if collection and method in ("PUT", "PATCH"):
            raise method_not_allowed()
        if sub in ("log",) and method != "GET" or sub == "eviction" and method != "POST":
            raise method_not_allowed()
        resource = kind.plural + ("/" + sub if sub else "")
        self._record.update(verb=verb, resource=resource, namespace=ns, name=name)
        self._authorize(verb, kind, resource, ns, name)
        c = CLUSTER
        if verb == "watch":
            if not collection:
                q["fieldSelector"] = "metadata.name=" + name
            return self._watch(kind, ns)
        if verb == "list":
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(kind, q.get("fieldSelector"))
            with c.cond:
                items, rv = c.select(kind, ns, labels, fields), c.rv
            return self._answer_list(kind, items, rv)
        if verb == "get":
            if sub == "log":
                return self._pod_log(ns, name)
            with c.cond:
                obj, rv = c.get(kind, ns, name), c.rv
            return self._answer_object(kind, obj, rv)
        if verb in ("create", "update"):
            content_type = (self.headers.get("content-type") or "").split(";")[0].strip()
            if content_type not in ("", "application/json", "*/*"):
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                               "unknown format - accepted media types include: application/json")
        if verb == "create":
            if sub == "eviction":
                return self._evict(ns, name, body)
            if kind is NAMESPACES and ns is not None:
                raise method_not_allowed()
            dry_run = "dryRun" in q
            obj = c.create(kind, ns or "", body, dry_run)
            return self._json(201, obj)
        if verb == "update":
            obj = c.decode(kind, body, ns or "", name)
            return self._json(200, c.replace(kind, ns or "", name, obj, sub))
        if verb == "patch":
            content_type = (self.headers.get("content-type") or "").split(";")[0].strip()
            return self._json(200, c.patch(kind, ns or "", name, body, content_type, sub))
        if verb == "delete":
            return self._json(200, c.delete(kind, ns or "", name, self._delete_options(body)))
        if verb == "deletecollection":
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(kind, q.get("fieldSelector"))
            options = self._delete_options(body)
            with c.cond:
                if kind is NAMESPACES:
                    raise method_not_allowed()
                items = []
                for obj in c.select(kind, ns, labels, fields):
                    c.delete(kind, obj["metadata"]["namespace"], obj["metadata"]["name"],
                             options)
                    items.append(without_type(obj))
                rv = c.rv
            return self._json(200, {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                                    "metadata": {"resourceVersion": str(rv)}, "items": items})
        raise method_not_allowed()

    def _authorize(self, verb, kind, resource, ns, name):
        with CLUSTER.cond:
            rules = list(CLUSTER.rules)
        for rule in rules:
            if CLUSTER.rule_matches(rule, verb, resource, kind.group, ns, name):
                sa_ns = self.options.namespace or ns or "orchestrator"
                user = rule.get("user") or "system:serviceaccount:%s:orchestrator" % sa_ns
                where = ('in the namespace "%s"' % ns) if ns is not None else \
                    "at the cluster scope"
                subject = '%s "%s"' % (kind.qualified, name) if name else kind.qualified
                message = '%s is forbidden: User "%s" cannot %s resource "%s" in API group ' \
                    '"%s" %s' % (subject, user, verb, resource, kind.group, where)
                raise ApiError(403, "Forbidden", message, details(kind, name))

    def _delete_options(self, body):
        options = {}
        if body and body.strip():
            try:
                options = json.loads(body)
            except ValueError as e:
                raise bad_request("the body of the request was not JSON: %s" % e)
            if not isinstance(options, dict):
                raise bad_request("DeleteOptions must be a JSON object")
        for field in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
            if field in self._query:
                options[field] = self._query[field]
        grace = options.get("gracePeriodSeconds")
        if grace is not None:
            try:
                options["gracePeriodSeconds"] = int(grace)
            except (TypeError, ValueError):
                raise bad_request("gracePeriodSeconds must be an integer")
        if options.get("orphanDependents") in ("true", True):
            options["orphanDependents"] = True
        else:
            options.pop("orphanDependents", None)
        return options

    def _accept(self):
        """"Table", "PartialObjectMetadata" or "json": what the client asked for."""
        for media in (self.headers.get("accept") or "application/json").split(","):
            params = dict(p.strip().partition("=")[::2] for p in media.split(";")[1:])
            base = media.split(";")[0].strip()
            if base not in ("application/json", "*/*", "application/*"):
                continue
            if params.get("as") == "Table":
                return "Table"
            if params.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "PartialObjectMetadata"
            if "as" not in params:
                return "json"
        for media in (self.headers.get("accept") or "").split(","):
            if media.split(";")[0].strip() in ("application/json", "*/*"):
                return "json"
        raise ApiError(406, "NotAcceptable", "only the following media types are accepted: "
                       "application/json")

    def _shaped(self, kind, objects, rv, single):
        accept = self._accept()
        if accept == "Table":
            return table(kind, objects, self._query.get("includeObject", "Metadata"), rv)
        if accept == "PartialObjectMetadata":
            items = [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                      "metadata": o["metadata"]} for o in objects]
            if single:
                return items[0]
            return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"resourceVersion": str(rv)}, "items": items}
        return None

    def _answer_object(self, kind, obj, rv):
        self._json(200, self._shaped(kind, [obj], rv, True) or obj)

    def _answer_list(self, kind, items, rv):
        shaped = self._shaped(kind, items, rv, False)
        if shaped is None:
            shaped = {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                      "metadata": {"resourceVersion": str(rv)},
                      "items": [without_type(o) for o in items]}
        self._json(200, shaped)

    # --- streams ---

    def _start_stream(self, content_type):
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache, private")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    def _client_gone(self):
        """Whether the client closed the connection (during a stream)."""
        conn = self.connection
        try:
            if isinstance(conn, ssl.SSLSocket):
                if not conn.pending() and not select.select([conn], [], [], 0)[0]:
                    return False
                conn.settimeout(0.01)
                try:
                    return not conn.recv(1)   # (a stream's client sends nothing more)
                except (ssl.SSLWantReadError, socket.timeout):
                    return False
                finally:
                    conn.settimeout(None)
            if select.select([conn], [], [], 0)[0]:
                return not conn.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True
        return False

    def _watch(self, kind, ns):
        q, c = self._query, CLUSTER
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(kind, q.get("fieldSelector"))
        as_table = self._accept() == "Table"
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true", "True")
        initial_events = q.get("sendInitialEvents") in ("1", "true", "True")
        timeout = None
        if q.get("timeoutSeconds"):
            try:
                timeout = float(q["timeoutSeconds"])
            except ValueError:
                raise bad_request("timeoutSeconds must be a number")
        version = q.get("resourceVersion", "")
        if version not in ("", "0") and not version.isdigit():
            raise bad_request('resourceVersion: Invalid value: "%s": must be a number' % version)
        expired = None
        with c.cond:
            if version in ("", "0") or initial_events:
                initial = c.select(kind, ns, labels, fields)
                last = c.rv
            else:
                initial, last = [], int(version)
                if last < c.compacted:
                    expired = ApiError(410, "Expired", "too old resource version: %d (%d)"
                                       % (last, c.compacted + 1))

        def shape(obj):
            return table(kind, [obj], q.get("includeObject", "Metadata"), c.rv) \
                if as_table else obj

        def send(type_, obj):
            self._chunk((json.dumps({"type": type_, "object": obj}) + "\n").encode())

        def bookmark(annotations=None):
            m = {"resourceVersion": str(last)}
            if annotations:
                m["annotations"] = annotations
            send("BOOKMARK", {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": m})

        self._start_stream("application/json")
        try:
            if expired is not None:
                send("ERROR", expired.status())
                return self._end_stream()
            for obj in initial:
                send("ADDED", shape(obj))
            if initial_events and bookmarks:
                bookmark({"k8s.io/initial-events-end": "true"})
            start = time.monotonic()
            next_bookmark = start + BOOKMARK_SECONDS
            while True:
                events, gone = [], False
                with c.cond:
                    while c.rv <= last and not c.shutting:
                        waits = [next_bookmark - time.monotonic() if bookmarks else 0.5, 0.5]
                        if timeout is not None:
                            waits.append(start + timeout - time.monotonic())
                        wait = min(waits)
                        if wait <= 0:
                            break
                        c.cond.wait(wait)
                        if self._client_gone():
                            gone = True
                            break
                    if c.compacted > last:
                        expired = ApiError(410, "Expired", "too old resource version: %d (%d)"
                                           % (last, c.compacted + 1))
                    for event in reversed(c.history):
                        if event.rv <= last:
                            break
                        events.append(event)
                    last = max(last, c.rv)
                    shutting = c.shutting
                if gone or shutting:
                    return self._end_stream()
                if expired is not None:
                    send("ERROR", expired.status())
                    return self._end_stream()
                for event in reversed(events):
                    if event.key != kind.key:
                        continue
                    obj = event.object
                    if ns is not None and obj["metadata"].get("namespace") != ns:
                        continue
                    now_match = labels_match(labels, obj["metadata"].get("labels")) and \
                        fields_match(fields, obj)
                    before = event.previous
                    was_match = before is not None and labels_match(
                        labels, before["metadata"].get("labels")) and fields_match(fields, before)
                    if event.type == "MODIFIED":
                        if now_match and not was_match:
                            send("ADDED", shape(obj))
                        elif was_match and not now_match:
                            send("DELETED", shape(obj))
                        elif now_match:
                            send("MODIFIED", shape(obj))
                    elif now_match:
                        send(event.type, shape(obj))
                if events:
                    next_bookmark = time.monotonic() + BOOKMARK_SECONDS
                if timeout is not None and time.monotonic() >= start + timeout:
                    return self._end_stream()
                if bookmarks and time.monotonic() >= next_bookmark:
                    bookmark()
                    next_bookmark = time.monotonic() + BOOKMARK_SECONDS
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _pod_log(self, ns, name):
        q, c = self._query, CLUSTER
        with c.cond:
            pod = c.get(PODS, ns, name)
            runner = c.runners.get(pod["metadata"]["uid"])
        names = [x["name"] for x in pod["spec"]["containers"]]
        container = q.get("container")
        if not container:
            if len(names) != 1:
                raise bad_request("a container name must be specified for pod %s, choose one "
                                  "of: [%s]" % (name, " ".join(names)))
            container = names[0]
        if container not in names:
            raise bad_request("container %s is not valid for pod %s" % (container, name))
        path = runner.log_path if runner is not None else None
        if container != names[0] or path is None or not os.path.exists(path):
            if container != names[0]:
                why = "the fake Kubernetes API runs only a pod's first container"
            else:
                state = ((pod["status"].get("containerStatuses") or [{}])[0].get("state") or {})
                why = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
                if why in ("ErrImagePull", "ImagePullBackOff"):
                    why = "trying and failing to pull image"
            raise bad_request('container "%s" in pod "%s" is waiting to start: %s'
                              % (container, name, why))
        with open(path, "rb") as f:
            data = f.read()
        offset = len(data)
        if q.get("tailLines"):
            try:
                tail = int(q["tailLines"])
            except ValueError:
                raise bad_request("tailLines must be an integer")
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail > 0 else b""
        if q.get("limitBytes"):
            data = data[:int(q["limitBytes"])]
        if q.get("follow") not in ("true", "1", "True"):
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._start_stream("text/plain")
        try:
            self._chunk(data)
            with open(path, "rb") as f:
                f.seek(offset)
                while True:
                    with c.cond:
                        over = runner.state == "done" or c.shutting
                    more = f.read()
                    if more:
                        self._chunk(more)
                    elif over or self._client_gone():
                        break
                    else:
                        time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        self._end_stream()

    def _evict(self, ns, name, body):
        try:
            eviction = json.loads(body or b"null")
        except ValueError as e:
            raise bad_request("the body of the request was not JSON: %s" % e)
        if not isinstance(eviction, dict) or eviction.get("kind", "Eviction") != "Eviction" or \
                eviction.get("apiVersion", "policy/v1") not in ("policy/v1", "policy/v1beta1"):
            raise bad_request("the body must be a policy/v1 Eviction")
        named = (eviction.get("metadata") or {}).get("name")
        if named and named != name:
            raise bad_request("name in URL does not match name in Eviction object")
        options = eviction.get("deleteOptions") or {}
        c = CLUSTER
        with c.cond:
            pod = c.get(PODS, ns, name)
            grace = options.get("gracePeriodSeconds")
            c.delete_pod(pod, grace, evict=True)
        self._json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "code": 201})

    # --- /control/ ---

    def _control(self, what, body):
        c = CLUSTER
        if self.command == "GET" and what == "pods":
            with c.cond:
                pods = [r.control() for r in c.runners.values()]
            return self._json(200, {"pods": pods})
        if self.command == "GET" and what == "requests":
            q = self._query
            with c.cond:
                keys = [k for k in ("verb", "resource", "namespace", "name", "method")
                        if q.get(k)]
                found = [dict(r) for r in c.requests if all(r.get(k) == q[k] for k in keys)]
            return self._json(200, {"requests": found})
        if self.command != "POST":
            return self._json(404, {"error": "no such control endpoint: %s %s"
                                    % (self.command, what)})
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as e:
            return self._json(400, {"error": str(e)})
        with c.cond:
            if what == "forbid":
                if not request.get("verb") or not request.get("resource"):
                    return self._json(400, {"error": "verb and resource are required"})
                c.rules.append(request)
                return self._json(200, {"rules": c.rules})
            if what == "allow":
                c.rules = [r for r in c.rules
                           if not all(r.get(k) == v for k, v in request.items())]
                return self._json(200, {"rules": c.rules})
            if what == "compact":
                c.compacted = c.rv
                c.history.clear()
                return self._json(200, {"compacted": c.compacted})
            if what == "deployment_ready":
                key = (request.get("namespace", "default"), request.get("name", ""))
                if "ready" not in request:
                    c.readiness.pop(key, None)
                else:
                    c.readiness[key] = FixedReadiness(bool(request["ready"]))
                return self._json(200, {"namespace": key[0], "name": key[1],
                                        "ready": request.get("ready")})
            if what == "kill_pod":
                pod = c.objects[PODS.key].get((request.get("namespace", "default"),
                                               request.get("name", "")))
                runner = c.runners.get(pod["metadata"]["uid"]) if pod else None
                if runner is None:
                    return self._json(404, {"error": "no such pod"})
                name = str(request.get("signal", "KILL")).upper()
                try:
                    sig = int(name) if name.isdigit() else getattr(
                        signal, name if name.startswith("SIG") else "SIG" + name)
                except AttributeError:
                    return self._json(400, {"error": "no signal %s" % name})
                if not runner.send(sig):
                    return self._json(409, {"error": "the pod's process is not running"})
                return self._json(200, {"killed": runner.control()})
        return self._json(404, {"error": "no such control endpoint: POST %s" % what})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    tls = None   # an ssl.SSLContext: HTTPS, each handshake in its connection's thread

    def finish_request(self, request, client_address):
        if self.tls is None:
            return super().finish_request(request, client_address)
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return None
        try:
            return super().finish_request(request, client_address)
        finally:
            request.close()


def main():
    global CLUSTER
    ap = argparse.ArgumentParser(description="A fake Kubernetes API server.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--token", required=True)
    ap.add_argument("--data", help="where volumes and logs go (default: a temporary directory)")
    ap.add_argument("--image", action="append", default=[], metavar="IMAGE=HOSTDIR")
    ap.add_argument("--bwrap", default="bwrap", help="bubblewrap, or none")
    ap.add_argument("--namespace", default="",
                    help="the namespace of the service account 403s name")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="... and this key (PEM)")
    options = ap.parse_args()
    if bool(options.tls_cert) != bool(options.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if options.data:
        data = os.path.abspath(options.data)
        os.makedirs(data, exist_ok=True)
    else:
        data = tempfile.mkdtemp(prefix="fake_kubernetes.")
    Handler.options = options
    CLUSTER = Cluster(options, data)

    def terminate(*_):
        CLUSTER.shutdown()
        if not options.data:
            shutil.rmtree(data, ignore_errors=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    server = Server(("127.0.0.1", options.port), Handler)
    if options.tls_cert:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(options.tls_cert, options.tls_key)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
