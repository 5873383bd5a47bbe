#!/usr/bin/env python3
"""A Kubernetes API simulator for Sluice's tests (Python 3 standard library only).

It answers the parts of the Kubernetes API that Sluice and kubectl use, the way a real API server
does: discovery, namespaced Deployments, ReplicaSets, Services, Events, Leases, Ingresses,
HTTPRoutes, ServiceAccounts, ConfigMaps, Secrets (`stringData` stored as `data`), PersistentVolumeClaims,
Roles and RoleBindings, and cluster-scoped Namespaces, ClusterRoles and ClusterRoleBindings; resourceVersion and generation; 409 on a stale resourceVersion; merge, strategic merge
and JSON patches; Status objects on errors; Table responses for `kubectl get`; bearer tokens with
per-token verbs; Deployment status that becomes available after a delay (an image tagged `:broken`
never does); and fault injection (a fraction of requests answer 429, 500, or hang).

Run by hand:
    python3 Tests/Simulators/kube/kube_sim.py --port 8001 --config sim.json

The config file (JSON, every key optional):
    {"tokens": {"TOKEN": {"user": "sluice", "verbs": ["*"]}},   # no tokens: anonymous may do anything
     "availableAfterSeconds": 0.2,                              # Deployment pods become available
     "objects": [ {...manifest...} ]}                           # created at start

Control endpoints for tests (no token needed, never faulted), all JSON:
    GET  /_sim/healthz                              -> {"ok": true}
    POST /_sim/faults {"fraction": 0.2, "kinds": ["429", "500", "hang"], "retryAfterSeconds": 1,
                       "hangSeconds": 30, "seed": 1, "pathContains": ""}
    POST /_sim/config {"availableAfterSeconds": 0.5}
    POST /_sim/deployments/NS/NAME/status {"mode": "auto" | "available" | "unavailable"}
    POST /_sim/touch/PLURAL/NS/NAME                 -> bumps resourceVersion (another writer)
    GET  /_sim/config                               -> {"availableAfterSeconds": 0.5}
    GET  /_sim/requests                             -> the last 2000 requests (method, path, query,
                                                       contentType, user, status, body)
    GET  /_sim/verbs                                -> {"users": {USER: [{"group", "resource", "verb"}]}}: every
                                                       authorized request since the start, per user

A token with `"rbac": true` (e.g. {"user": "system:serviceaccount:sluice:sluice", "rbac": true}) is authorized
by the RBAC objects stored in the simulator (ClusterRoleBindings, and RoleBindings of the request's namespace,
to ClusterRoles and Roles), so `kubectl apply -f manifests/` sets what Sluice may do.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SERVER_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-sluice-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class ResourceType:
    """One served resource: its group, version, names, and how it is printed."""

    def __init__(self, group, version, plural, singular, kind, short=(), custom=False, subresources=(),
                 namespaced=True):
        self.group = group
        self.version = version
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.short = list(short)
        self.custom = custom  # a CRD: no strategic merge patch, list items carry kind/apiVersion
        self.subresources = list(subresources)
        self.namespaced = namespaced  # False: cluster-scoped (Namespace, ClusterRole, ClusterRoleBinding)

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural


RBAC = "rbac.authorization.k8s.io"
RESOURCES = [
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", ["ns"], subresources=["status"],
                 namespaced=False),
    ResourceType("", "v1", "services", "service", "Service", ["svc"], subresources=["status"]),
    ResourceType("", "v1", "events", "event", "Event", ["ev"]),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", ["sa"]),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", ["cm"]),
    ResourceType("", "v1", "secrets", "secret", "Secret"),
    ResourceType("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", ["pvc"],
                 subresources=["status"]),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", ["deploy"],
                 subresources=["status", "scale"]),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", ["rs"], subresources=["status"]),
    ResourceType("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", ["ing"], subresources=["status"]),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease"),
    ResourceType("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", ["pdb"],
                 subresources=["status"]),
    ResourceType("gateway.networking.k8s.io", "v1", "httproutes", "httproute", "HTTPRoute", custom=True,
                 subresources=["status"]),
    ResourceType(RBAC, "v1", "roles", "role", "Role"),
    ResourceType(RBAC, "v1", "rolebindings", "rolebinding", "RoleBinding"),
    ResourceType(RBAC, "v1", "clusterroles", "clusterrole", "ClusterRole", namespaced=False),
    ResourceType(RBAC, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", namespaced=False),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}

# Strategic merge patch: list fields merged by a key instead of replaced (the Kubernetes types' patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
}
# `ports` are keyed by `containerPort` inside containers and by `port` in a Service spec.
PORT_KEYS = ("containerPort", "port")


class APIError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value):
    if not value:
        return None
    try:
        value = re.sub(r"\.\d+", "", value).replace("Z", "+00:00")
        return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def human_age(created):
    """kubectl's short duration format: 5s, 3m2s, 4h, 2d."""
    start = parse_time(created)
    if start is None:
        return "<unknown>"
    seconds = max(0, int(time.time() - start))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


# ---- patches ------------------------------------------------------------------------------------


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target, patch, field=None):
    """The subset of strategic merge patch that kubectl and Sluice send: maps merge, lists with a
    merge key merge by that key, `$patch: replace|delete`, `$setElementOrder/...`, `$retainKeys`,
    `$deleteFromPrimitiveList/...`; other lists are replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [item for item in result.get(name, []) if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            merge_key = list_merge_key(key, value, result.get(key))
            if merge_key:
                result[key] = merge_list(result.get(key) or [], value, merge_key)
            else:
                result[key] = copy.deepcopy(value)
        else:
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def list_merge_key(field, patch_items, current):
    if field == "ports":
        for candidate in PORT_KEYS:
            if any(isinstance(i, dict) and candidate in i for i in (patch_items or []) + (current or [])):
                return candidate
        return None
    return MERGE_KEYS.get(field)


def merge_list(current, patch_items, key):
    result = copy.deepcopy(current)
    for item in patch_items:
        if not isinstance(item, dict) or key not in item:
            raise APIError(422, "Invalid", f"strategic merge patch: list item without merge key {key!r}")
        index = next((i for i, existing in enumerate(result) if existing.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def json_pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise APIError(422, "Invalid", f"json patch: path {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(document, operations):
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise APIError(400, "BadRequest", "json patch: the body must be a JSON array of operations")
    doc = copy.deepcopy(document)

    def parent(tokens):
        node = doc
        for token in tokens[:-1]:
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node

    def get(tokens):
        node = doc
        for token in tokens:
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node

    def remove(tokens):
        p = parent(tokens)
        return p.pop(int(tokens[-1])) if isinstance(p, list) else p.pop(tokens[-1])

    def add(tokens, value):
        p = parent(tokens)
        if isinstance(p, list):
            if tokens[-1] == "-":
                p.append(value)
            else:
                p.insert(int(tokens[-1]), value)
        else:
            p[tokens[-1]] = value

    for op in operations:
        kind = op.get("op")
        tokens = json_pointer(op.get("path", ""))
        try:
            if kind == "add":
                add(tokens, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(tokens)
            elif kind == "replace":
                get(tokens)  # must exist
                p = parent(tokens)
                if isinstance(p, list):
                    p[int(tokens[-1])] = copy.deepcopy(op["value"])
                else:
                    p[tokens[-1]] = copy.deepcopy(op["value"])
            elif kind == "move":
                add(tokens, remove(json_pointer(op["from"])))
            elif kind == "copy":
                add(tokens, copy.deepcopy(get(json_pointer(op["from"]))))
            elif kind == "test":
                if get(tokens) != op.get("value"):
                    raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                   f"testing value {op.get('path')} failed")
            else:
                raise APIError(400, "BadRequest", f"json patch: unknown op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError):
            raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                           f"json patch {kind} operation does not apply: doc is missing path: {op.get('path')!r}")
    return doc


# ---- selectors ----------------------------------------------------------------------------------


def label_matches(labels, selector):
    """Equality- and set-based label selectors: a=b, a==b, a!=b, a, !a, a in (x,y), a notin (x,y)."""
    if not selector:
        return True
    labels = labels or {}
    for term in re.split(r",(?![^()]*\))", selector):
        term = term.strip()
        if not term:
            continue
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\((.*)\)$", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            present = m.group(1) in labels and labels[m.group(1)] in values
            if (m.group(2) == "in") != present:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split(r"==?", term, 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_value(obj, path):
    node = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return "" if node is None else str(node)


def field_matches(obj, selector):
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if field_value(obj, key.strip()) == value.strip():
                return False
        else:
            key, value = re.split(r"==?", term, 1)
            if field_value(obj, key.strip()) != value.strip():
                return False
    return True


# ---- the store ----------------------------------------------------------------------------------


class Store:
    """Objects by (resource, namespace, name) with a global resourceVersion counter."""

    def __init__(self, available_after):
        self.lock = threading.RLock()
        self.objects = {}
        self.revision = 100
        self.available_after = available_after
        self.rollouts = {}  # deployment key -> {"changed": t, "previous": n, "template_changed": b, "mode": s}
        self.faults = {"fraction": 0.0, "kinds": [], "retryAfterSeconds": 1, "hangSeconds": 30,
                       "pathContains": ""}
        self.fault_seed = 1
        self.fault_counts = {}  # (method, path) -> requests seen since the faults were set
        self.requests = []
        self.verbs = {}  # user -> {(group, resource, verb)} of every authorized request

    def next_revision(self):
        self.revision += 1
        return str(self.revision)

    # Deployment status, as the Deployment and ReplicaSet controllers would write it.
    def refresh_deployment(self, key, obj):
        spec = obj.get("spec", {})
        replicas = spec.get("replicas", 1)
        sim = self.rollouts.setdefault(key, {"changed": 0.0, "previous": 0, "template_changed": True,
                                             "mode": "auto"})
        images = [c.get("image", "") for c in spec.get("template", {}).get("spec", {}).get("containers", [])]
        broken = any(image.endswith(":broken") for image in images)
        elapsed = time.time() - sim["changed"]
        # Once the pods of a change are available they stay so (a later, longer delay does not undo it).
        settled = sim.get("settled") or (elapsed >= self.available_after and not broken)
        ready = {"available": True, "unavailable": False}.get(sim["mode"], settled)
        sim["settled"] = settled
        if ready:
            available = updated = replicas
        else:
            available = min(sim["previous"], replicas)
            updated = replicas if (not sim["template_changed"] or elapsed >= self.available_after) else 0
        deadline = spec.get("progressDeadlineSeconds", 600)
        stalled = not ready and elapsed >= deadline
        status = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
        }
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        for field in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
            if status[field] == 0:
                del status[field]
        stamp = (obj.get("status") or {}).get("conditions", [{}])[0].get("lastTransitionTime") or now_rfc3339()
        status["conditions"] = [
            {"type": "Available", "status": "True" if available >= replicas else "False",
             "reason": "MinimumReplicasAvailable" if available >= replicas else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if available >= replicas
             else "Deployment does not have minimum availability.",
             "lastUpdateTime": stamp, "lastTransitionTime": stamp},
            {"type": "Progressing", "status": "False" if stalled else "True",
             "reason": "ProgressDeadlineExceeded" if stalled
             else ("NewReplicaSetAvailable" if ready else "ReplicaSetUpdated"),
             "message": f'ReplicaSet "{obj["metadata"]["name"]}-sim" has timed out progressing.' if stalled
             else f'ReplicaSet "{obj["metadata"]["name"]}-sim" '
                  + ("has successfully progressed." if ready else "is progressing."),
             "lastUpdateTime": stamp, "lastTransitionTime": stamp},
        ]
        if obj.get("status") != status:
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self.next_revision()

    def deployment_changed(self, key, old, new):
        """Record a spec change: new pods take `available_after` seconds (old ones keep serving)."""
        old_spec = (old or {}).get("spec", {})
        new_spec = new.get("spec", {})
        template_changed = old is None or old_spec.get("template") != new_spec.get("template")
        previous = ((old or {}).get("status") or {}).get("availableReplicas", 0)
        mode = self.rollouts.get(key, {}).get("mode", "auto")
        self.rollouts[key] = {"changed": time.time(), "previous": previous, "template_changed": template_changed,
                              "mode": mode}


def normalize_secret(rtype, obj):
    """A Secret's `stringData` is written into `data` (base64) and never stored, as a real server does."""
    if rtype.kind != "Secret":
        return
    obj.setdefault("type", "Opaque")
    for key, value in (obj.pop("stringData", None) or {}).items():
        obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()


def spec_of(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class Simulator:
    def __init__(self, config):
        self.tokens = config.get("tokens") or {}
        self.cert_users = config.get("certUsers") or {}  # client certificate CN -> {"verbs": [...]}
        self.store = Store(float(config.get("availableAfterSeconds", 0.2)))
        self.address = "127.0.0.1"
        for manifest in config.get("objects", []):
            rtype = BY_KIND.get((manifest.get("apiVersion"), manifest.get("kind")))
            if rtype is None:
                raise SystemExit(f"config: objects: unknown kind {manifest.get('apiVersion')}/{manifest.get('kind')}")
            namespace = manifest.get("metadata", {}).get("namespace", "default") if rtype.namespaced else ""
            self.create(rtype, namespace, manifest, {})

    # ---- authentication and authorization

    def authenticate(self, header, peer_cn=None):
        if not self.tokens and not self.cert_users:
            return {"user": "system:anonymous", "verbs": ["*"]}
        if not header and peer_cn and peer_cn in self.cert_users:
            return {"user": peer_cn, **self.cert_users[peer_cn]}
        if not header or not header.startswith("Bearer "):
            raise APIError(401, "Unauthorized", "Unauthorized")
        entry = self.tokens.get(header[len("Bearer "):].strip())
        if entry is None:
            raise APIError(401, "Unauthorized", "Unauthorized")
        return entry

    def authorize(self, identity, verb, rtype, namespace, name, sub=None):
        """A token's verbs, or with `"rbac": true` the RBAC authorizer over the stored roles and bindings;
        every authorized (group, resource, verb) is recorded per user (`GET /_sim/verbs`)."""
        resource = f"{rtype.plural}/{sub}" if sub else rtype.plural
        if identity.get("rbac"):
            allowed = self.rbac_allows(identity.get("user", ""), verb, rtype.group, resource, namespace, name)
        else:
            verbs = identity.get("verbs", [])
            allowed = "*" in verbs or verb in verbs
        if allowed:
            with self.store.lock:
                self.store.verbs.setdefault(identity.get("user", ""), set()).add((rtype.group, resource, verb))
            return
        what = f'{rtype.qualified} "{name}"' if name else rtype.qualified
        scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        raise APIError(403, "Forbidden",
                       f'{what} is forbidden: User "{identity.get("user", "unknown")}" cannot {verb} resource '
                       f'"{rtype.plural}" in API group "{rtype.group}"{scope}',
                       {"name": name or "", "group": rtype.group, "kind": rtype.plural})

    def rbac_allows(self, user, verb, group, resource, namespace, name):
        """What the RBAC authorizer answers from the stored ClusterRoleBindings (rules everywhere) and the
        RoleBindings of `namespace` (rules there). A ServiceAccount's user is `system:serviceaccount:NS:NAME`."""
        objects = self.store.objects

        def bound(binding):
            for subject in binding.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount" and \
                        user == f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}":
                    return True
                if subject.get("kind") == "User" and user == subject.get("name"):
                    return True
            return False

        def rules(ref, ns):
            if ref.get("kind") == "ClusterRole":
                role = objects.get((f"clusterroles.{RBAC}", "", ref.get("name")))
            else:
                role = objects.get((f"roles.{RBAC}", ns, ref.get("name")))
            return (role or {}).get("rules") or []

        def has(values, value):
            return "*" in (values or []) or value in (values or [])

        found = []
        with self.store.lock:
            for (qualified, ns, _), binding in objects.items():
                if qualified == f"clusterrolebindings.{RBAC}" and bound(binding):
                    found += rules(binding.get("roleRef") or {}, "")
                elif qualified == f"rolebindings.{RBAC}" and namespace and ns == namespace and bound(binding):
                    found += rules(binding.get("roleRef") or {}, ns)
        return any(has(r.get("apiGroups"), group) and has(r.get("resources"), resource) and has(r.get("verbs"), verb)
                   and (not r.get("resourceNames") or name in r["resourceNames"]) for r in found)

    # ---- discovery

    def discovery(self, path):
        if path == "/version":
            return SERVER_VERSION
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}]}
        if path == "/apis":
            groups = []
            for group in sorted({r.group for r in RESOURCES if r.group}):
                version = {"groupVersion": f"{group}/v1", "version": "v1"}
                groups.append({"name": group, "versions": [version], "preferredVersion": version})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path)
        if m:
            group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            served = [r for r in RESOURCES if r.group == group and r.version == version]
            if not served:
                raise APIError(404, "NotFound", "the server could not find the requested resource")
            resources = []
            for r in served:
                resources.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                  "kind": r.kind,
                                  "verbs": ALL_VERBS, "shortNames": r.short or None,
                                  "storageVersionHash": uuid.uuid5(uuid.NAMESPACE_URL, r.qualified).hex[:12]})
                for sub in r.subresources:
                    kind = "Scale" if sub == "scale" else r.kind
                    resources.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                      "kind": kind, "verbs": ["get", "patch", "update"],
                                      **({"group": "autoscaling", "version": "v1"} if sub == "scale" else {})})
            for entry in resources:
                if entry.get("shortNames") is None:
                    entry.pop("shortNames", None)
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m:
            group = m.group(1)
            if not any(r.group == group for r in RESOURCES):
                raise APIError(404, "NotFound", "the server could not find the requested resource")
            version = {"groupVersion": f"{group}/v1", "version": "v1"}
            return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [version],
                    "preferredVersion": version}
        return None

    # ---- objects

    def key(self, rtype, namespace, name):
        return (rtype.qualified, namespace, name)

    def read(self, rtype, namespace, name):
        obj = self.store.objects.get(self.key(rtype, namespace, name))
        if obj is None:
            raise APIError(404, "NotFound", f'{rtype.qualified} "{name}" not found',
                           {"name": name, "group": rtype.group, "kind": rtype.plural})
        if rtype.kind == "Deployment":
            self.store.refresh_deployment(self.key(rtype, namespace, name), obj)
        return obj

    def present(self, rtype, obj, in_list=False):
        out = copy.deepcopy(obj)
        if in_list and not rtype.custom:
            out.pop("kind", None)
            out.pop("apiVersion", None)
        return out

    def list(self, rtype, namespace, query):
        with self.store.lock:
            items = []
            for (qualified, ns, name), obj in sorted(self.store.objects.items()):
                if qualified != rtype.qualified or (namespace and ns != namespace):
                    continue
                if rtype.kind == "Deployment":
                    self.store.refresh_deployment((qualified, ns, name), obj)
                if not label_matches(obj["metadata"].get("labels"), query.get("labelSelector", "")):
                    continue
                if not field_matches(obj, query.get("fieldSelector", "")):
                    continue
                items.append(self.present(rtype, obj, in_list=True))
            return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(self.store.revision)}, "items": items}

    def validate(self, rtype, obj, namespace, name=None):
        if not isinstance(obj, dict):
            raise APIError(400, "BadRequest", "the body of the request must be a JSON object")
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise APIError(422, "Invalid", f'{rtype.kind} "" is invalid: metadata: Required value')
        if obj.get("kind") not in (None, rtype.kind) or obj.get("apiVersion") not in (None, rtype.api_version):
            raise APIError(400, "BadRequest",
                           f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                           f"API version ({rtype.api_version})")
        if rtype.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise APIError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        obj_name = meta.get("name")
        if name is not None and obj_name != name:
            raise APIError(400, "BadRequest", "the name of the object "
                           f"({obj_name}) does not match the name on the URL ({name})")
        if obj_name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", obj_name or ""):
            raise APIError(422, "Invalid", f'{rtype.kind} "{obj_name}" is invalid: metadata.name: Invalid value: '
                           f'"{obj_name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                           "characters, '-' or '.'",
                           {"name": obj_name, "group": rtype.group, "kind": rtype.kind,
                            "causes": [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                        "message": "Invalid value"}]})
        for field in ("labels", "annotations"):
            values = meta.get(field) or {}
            if not isinstance(values, dict) or any(not isinstance(v, str) for v in values.values()):
                raise APIError(422, "Invalid", f'{rtype.kind} "{obj_name}" is invalid: metadata.{field}: '
                               "Invalid value: values must be strings")
        if rtype.kind == "Deployment":
            spec = obj.get("spec") or {}
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not selector:
                raise APIError(422, "Invalid", f'Deployment.apps "{obj_name}" is invalid: spec.selector: '
                               "Required value")
            if any(labels.get(k) != v for k, v in selector.items()):
                raise APIError(422, "Invalid", f'Deployment.apps "{obj_name}" is invalid: spec.template.metadata.'
                               "labels: Invalid value: `selector` does not match template `labels`")
            replicas = spec.get("replicas", 1)
            if not isinstance(replicas, int) or replicas < 0:
                raise APIError(422, "Invalid", f'Deployment.apps "{obj_name}" is invalid: spec.replicas: '
                               "Invalid value: must be greater than or equal to 0")

    def create(self, rtype, namespace, obj, query):
        with self.store.lock:
            self.validate(rtype, obj, namespace)
            obj = copy.deepcopy(obj)
            meta = obj["metadata"]
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
                else:
                    raise APIError(422, "Invalid", f'{rtype.kind} "" is invalid: metadata.name: Required value: '
                                   "name or generateName is required")
            name = meta["name"]
            key = self.key(rtype, namespace, name)
            if key in self.store.objects:
                raise APIError(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists',
                               {"name": name, "group": rtype.group, "kind": rtype.plural})
            if meta.get("resourceVersion"):
                raise APIError(500, "InternalError", "resourceVersion should not be set on objects to be created")
            obj["kind"] = rtype.kind
            obj["apiVersion"] = rtype.api_version
            if rtype.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)  # as a real server does for a cluster-scoped object
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if rtype.kind != "Event":
                meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            if rtype.kind == "Deployment":
                spec = obj.setdefault("spec", {})
                spec.setdefault("replicas", 1)
                spec.setdefault("progressDeadlineSeconds", 600)
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("strategy", {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
                obj.pop("status", None)
                for container in spec.get("template", {}).get("spec", {}).get("containers", []):
                    for port in container.get("ports", []):
                        port.setdefault("protocol", "TCP")
            if rtype.kind == "Service":
                spec = obj.setdefault("spec", {})
                spec.setdefault("type", "ClusterIP")
                spec.setdefault("clusterIP", f"10.96.{self.store.revision % 250}.{len(self.store.objects) % 250 + 1}")
                for port in spec.get("ports", []):
                    port.setdefault("protocol", "TCP")
                    port.setdefault("targetPort", port.get("port"))
            if rtype.kind == "Event":
                obj.setdefault("count", 1)
                obj.setdefault("type", "Normal")
            if rtype.kind == "Namespace":
                obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
                obj["status"] = {"phase": "Active"}
            if rtype.kind == "PersistentVolumeClaim":
                obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
                obj["status"] = {"phase": "Pending"}  # no volume provisioner here
            normalize_secret(rtype, obj)
            meta["resourceVersion"] = self.next_or_dry(query)
            if query.get("dryRun"):
                return obj
            self.store.objects[key] = obj
            if rtype.kind == "Deployment":
                self.store.deployment_changed(key, None, obj)
            return copy.deepcopy(obj)

    def next_or_dry(self, query):
        return str(self.store.revision + 1) if query.get("dryRun") else self.store.next_revision()

    def replace(self, rtype, namespace, name, new, query, subresource=None):
        """Store `new` in place of the current object: checks the resourceVersion precondition and
        bumps resourceVersion (and generation on a spec change)."""
        with self.store.lock:
            current = self.read(rtype, namespace, name)
            self.validate(rtype, new, namespace, name)
            wanted = (new.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise APIError(409, "Conflict",
                               f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has been '
                               "modified; please apply your changes to the latest version and try again",
                               {"name": name, "group": rtype.group, "kind": rtype.plural})
            new = copy.deepcopy(new)
            meta = new["metadata"]
            for field in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                if field in current["metadata"]:
                    meta[field] = current["metadata"][field]
            new["kind"] = rtype.kind
            new["apiVersion"] = rtype.api_version
            if not rtype.namespaced:
                meta.pop("namespace", None)
            normalize_secret(rtype, new)
            if subresource == "status":
                new = {**copy.deepcopy(current), "status": new.get("status")}
                meta = new["metadata"]
            elif rtype.kind == "Deployment":
                new["status"] = current.get("status")
                if (new.get("spec") or {}).get("selector") != (current.get("spec") or {}).get("selector"):
                    raise APIError(422, "Invalid", f'Deployment.apps "{name}" is invalid: spec.selector: Invalid '
                                   "value: field is immutable")
                self.validate(rtype, new, namespace, name)
            if new == current:
                return copy.deepcopy(current)  # a no-op write keeps the resourceVersion, as a real server does
            if spec_of(new) != spec_of(current) and "generation" in meta and subresource != "status":
                meta["generation"] = current["metadata"]["generation"] + 1
            meta["resourceVersion"] = self.next_or_dry(query)
            if query.get("dryRun"):
                return new
            key = self.key(rtype, namespace, name)
            self.store.objects[key] = new
            if rtype.kind == "Deployment" and spec_of(new) != spec_of(current):
                self.store.deployment_changed(key, current, new)
            return copy.deepcopy(new)

    def patch(self, rtype, namespace, name, content_type, body, query, subresource=None):
        with self.store.lock:
            current = self.present(rtype, self.read(rtype, namespace, name))
            if subresource == "scale":
                current = self.scale_of(current)
            media = content_type.split(";")[0].strip()
            if media == "application/merge-patch+json":
                patched = merge_patch(current, body)
            elif media == "application/strategic-merge-patch+json":
                if rtype.custom:
                    raise APIError(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted media types include: "
                                   "application/json-patch+json, application/merge-patch+json, "
                                   "application/apply-patch+yaml")
                patched = strategic_merge_patch(current, body)
            elif media == "application/json-patch+json":
                patched = json_patch(current, body)
            else:
                raise APIError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, "
                               "application/strategic-merge-patch+json")
            if subresource == "scale":
                replicas = (patched.get("spec") or {}).get("replicas")
                full = copy.deepcopy(self.store.objects[self.key(rtype, namespace, name)])
                full["spec"]["replicas"] = replicas
                full["metadata"]["resourceVersion"] = (patched.get("metadata") or {}).get("resourceVersion")
                return self.scale_of(self.replace(rtype, namespace, name, full, query))
            return self.replace(rtype, namespace, name, patched, query, subresource)

    @staticmethod
    def scale_of(obj):
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "spec": {"replicas": obj["spec"].get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in
                                                obj["spec"]["selector"].get("matchLabels", {}).items())}}

    def delete(self, rtype, namespace, name, body, query):
        with self.store.lock:
            current = self.read(rtype, namespace, name)
            wanted = ((body or {}).get("preconditions") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise APIError(409, "Conflict",
                               f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the '
                               "ResourceVersion in the precondition does not match the ResourceVersion in record. The "
                               "object might have been modified")
            if not query.get("dryRun"):
                key = self.key(rtype, namespace, name)
                del self.store.objects[key]
                self.store.rollouts.pop(key, None)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": rtype.group, "kind": rtype.plural,
                                "uid": current["metadata"]["uid"]}}

    # ---- tables (what `kubectl get` prints)

    def table(self, rtype, objects, list_meta):
        columns, cells = table_columns(rtype)
        rows = []
        for obj in objects:
            meta = obj["metadata"]
            rows.append({"cells": cells(obj),
                         "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                    "metadata": meta}})
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
                "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                                       "description": n, "priority": p} for n, t, p in columns],
                "rows": rows}


def table_columns(rtype):
    """The columns a real API server prints for each kind (name, type, priority) and the cells."""
    age = lambda o: human_age(o["metadata"].get("creationTimestamp"))  # noqa: E731
    if rtype.kind == "Deployment":
        def cells(o):
            spec, status = o.get("spec", {}), o.get("status") or {}
            containers = spec.get("template", {}).get("spec", {}).get("containers", [])
            return [o["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
                    status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(o),
                    ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers),
                    ",".join(f"{k}={v}" for k, v in spec.get("selector", {}).get("matchLabels", {}).items())]
        return [("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "integer", 0),
                ("Available", "integer", 0), ("Age", "string", 0), ("Containers", "string", 1),
                ("Images", "string", 1), ("Selector", "string", 1)], cells
    if rtype.kind == "Namespace":
        def cells(o):
            return [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), age(o)]
        return [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)], cells
    if rtype.kind == "Event":
        def cells(o):
            involved = o.get("involvedObject", {})
            last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
            return [human_age(last), o.get("type", ""), o.get("reason", ""),
                    f"{involved.get('kind', '').lower()}/{involved.get('name', '')}", o.get("message", "")]
        return [("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
                ("Object", "string", 0), ("Message", "string", 0)], cells
    if rtype.kind == "Service":
        def cells(o):
            spec = o.get("spec", {})
            ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports", []))
            return [o["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", ""), "<none>",
                    ports or "<none>", age(o)]
        return [("Name", "string", 0), ("Type", "string", 0), ("Cluster-IP", "string", 0),
                ("External-IP", "string", 0), ("Port(s)", "string", 0), ("Age", "string", 0)], cells
    if rtype.kind == "HTTPRoute":
        def cells(o):
            return [o["metadata"]["name"], json.dumps(o.get("spec", {}).get("hostnames", [])), age(o)]
        return [("Name", "string", 0), ("Hostnames", "string", 0), ("Age", "date", 0)], cells
    if rtype.kind == "Lease":
        def cells(o):
            return [o["metadata"]["name"], o.get("spec", {}).get("holderIdentity", ""), age(o)]
        return [("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)], cells
    if rtype.kind == "Ingress":
        def cells(o):
            spec = o.get("spec", {})
            hosts = ",".join(r.get("host", "*") for r in spec.get("rules", [])) or "*"
            return [o["metadata"]["name"], spec.get("ingressClassName", "<none>"), hosts, "", "80", age(o)]
        return [("Name", "string", 0), ("Class", "string", 0), ("Hosts", "string", 0), ("Address", "string", 0),
                ("Ports", "string", 0), ("Age", "string", 0)], cells
    return [("Name", "string", 0), ("Age", "string", 0)], lambda o: [o["metadata"]["name"], age(o)]


# ---- HTTP ---------------------------------------------------------------------------------------

RESOURCE_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-sim/1.33"
    sim = None  # set by main

    def log_message(self, fmt, *args):  # one line a request on stderr, never a token
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def send_json(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, raw
        try:
            return json.loads(raw), raw
        except ValueError as error:
            raise APIError(400, "BadRequest", f"the body of the request could not be decoded as JSON: {error}")

    def handle_any(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        sim = self.sim
        record = {"method": self.command, "path": path, "query": url.query,
                  "contentType": self.headers.get("Content-Type", ""), "user": None, "status": 0}
        code = 500
        try:
            if path.startswith("/_sim/"):
                code, body = self.control(path)
                self.send_json(code, body)
                return
            body, raw = self.read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else (None, b"")
            record["body"] = raw.decode(errors="replace")[:4000]
            if path == "/version":
                code = 200
                self.send_json(200, SERVER_VERSION)
                return
            identity = sim.authenticate(self.headers.get("Authorization"), self.peer_common_name())
            record["user"] = identity.get("user")
            self.inject_fault(path)
            if path in ("/openapi/v2", "/openapi/v3"):
                raise APIError(404, "NotFound", "the server could not find the requested resource")
            found = sim.discovery(path)
            if found is not None:
                code = 200
                self.send_json(200, found)
                return
            code, answer = self.resource(path, query, body, identity)
            self.send_json(code, answer)
        except APIError as error:
            code = error.code
            self.send_json(error.code, error.status(), error.headers)
        except HangUp:
            code = 0
            self.close_connection = True
        finally:
            record["status"] = code
            with sim.store.lock:
                sim.store.requests.append(record)
                del sim.store.requests[:-2000]

    def peer_common_name(self):
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert = getpeercert() if getpeercert else None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    def inject_fault(self, path):
        store = self.sim.store
        with store.lock:
            faults = dict(store.faults)
            eligible = faults["fraction"] > 0 and faults["kinds"] and path.find(faults.get("pathContains", "")) >= 0 \
                and path.startswith(("/api/v1/", "/apis/")) and path.count("/") > 3
            kind = None
            if eligible:
                # The n-th request for one method and path gets the same answer in every run, whatever the order in
                # which concurrent requests arrive and however many other requests a slow machine adds: a draw
                # from one shared random sequence would hand the faults to different requests each run.
                key = (self.command, path)
                count = store.fault_counts[key] = store.fault_counts.get(key, 0) + 1
                digest = hashlib.sha256(f"{store.fault_seed}:{self.command}:{path}:{count}".encode()).digest()
                if int.from_bytes(digest[:4], "big") / 2 ** 32 < faults["fraction"]:
                    kind = faults["kinds"][int.from_bytes(digest[4:8], "big") % len(faults["kinds"])]
        if kind == "429":
            seconds = faults.get("retryAfterSeconds", 1)
            raise APIError(429, "TooManyRequests", "Too many requests, please try again later.",
                           {"causes": [{"message": "client rate limit"}], "retryAfterSeconds": seconds},
                           {"Retry-After": str(seconds)})
        if kind == "500":
            raise APIError(500, "InternalError", "Internal error occurred: injected fault",
                           {"causes": [{"message": "injected fault"}]})
        if kind == "hang":
            time.sleep(float(faults.get("hangSeconds", 30)))
            raise HangUp()

    def resource(self, path, query, body, identity):
        sim = self.sim
        m = RESOURCE_PATH.match(path)
        if not m:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        group, version = ("", "v1") if m.group("core") else (m.group("group"), m.group("version"))
        rtype = BY_PATH.get((group, version, m.group("plural")))
        if rtype is None:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        namespace, name, sub = m.group("namespace"), m.group("name"), m.group("sub")
        if sub and sub not in rtype.subresources:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if not rtype.namespaced:
            if namespace:
                raise APIError(404, "NotFound", "the server could not find the requested resource")
            namespace = ""
        elif name and not namespace:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        method = self.command
        verb = {"GET": "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}[method]
        sim.authorize(identity, verb, rtype, namespace, name, sub)
        accept = self.headers.get("Accept", "")
        if verb == "watch":
            raise APIError(405, "MethodNotAllowed", "watch is not supported by the simulator")
        if verb == "list":
            result = sim.list(rtype, namespace, query)
            if "as=Table" in accept:
                objects = [sim.store.objects[sim.key(rtype, o["metadata"].get("namespace", ""), o["metadata"]["name"])]
                           for o in result["items"]]
                return 200, sim.table(rtype, objects, result["metadata"])
            return 200, result
        if verb == "get":
            with sim.store.lock:
                obj = sim.read(rtype, namespace, name)
                if sub == "scale":
                    return 200, sim.scale_of(obj)
                if "as=Table" in accept:
                    return 200, sim.table(rtype, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]})
                return 200, sim.present(rtype, obj)
        if verb == "create":
            if name or (rtype.namespaced and not namespace):
                raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource")
            return 201, sim.create(rtype, namespace, body, query)
        if verb == "update":
            return 200, sim.replace(rtype, namespace, name, body, query, sub)
        if verb == "patch":
            if body is None:
                raise APIError(400, "BadRequest", "the body of the request was empty")
            return 200, sim.patch(rtype, namespace, name, self.headers.get("Content-Type", ""), body, query, sub)
        if verb == "delete":
            return 200, sim.delete(rtype, namespace, name, body, query)
        raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def control(self, path):
        sim = self.sim
        store = sim.store
        body, _ = self.read_body() if self.command == "POST" else (None, b"")
        body = body or {}
        with store.lock:
            if path == "/_sim/healthz":
                return 200, {"ok": True}
            if path == "/_sim/requests":
                return 200, {"requests": list(store.requests)}
            if path == "/_sim/verbs":
                return 200, {"users": {user: [{"group": g, "resource": r, "verb": v} for g, r, v in sorted(seen)]
                                       for user, seen in store.verbs.items()}}
            if path == "/_sim/faults" and self.command == "POST":
                store.faults = {"fraction": float(body.get("fraction", 0)), "kinds": list(body.get("kinds", [])),
                                "retryAfterSeconds": body.get("retryAfterSeconds", 1),
                                "hangSeconds": body.get("hangSeconds", 30),
                                "pathContains": body.get("pathContains", "")}
                store.fault_seed = body.get("seed", 1)
                store.fault_counts = {}
                return 200, store.faults
            if path == "/_sim/config" and self.command == "GET":
                return 200, {"availableAfterSeconds": store.available_after}
            if path == "/_sim/config" and self.command == "POST":
                if "availableAfterSeconds" in body:
                    store.available_after = float(body["availableAfterSeconds"])
                return 200, {"availableAfterSeconds": store.available_after}
            m = re.fullmatch(r"/_sim/deployments/([^/]+)/([^/]+)/status", path)
            if m and self.command == "POST":
                key = ("deployments.apps", m.group(1), m.group(2))
                if key not in store.objects:
                    return 404, {"error": "no such deployment"}
                mode = body.get("mode", "auto")
                if mode not in ("auto", "available", "unavailable"):
                    return 400, {"error": "mode must be auto, available or unavailable"}
                store.rollouts.setdefault(key, {"changed": time.time(), "previous": 0, "template_changed": True})
                store.rollouts[key]["mode"] = mode
                store.refresh_deployment(key, store.objects[key])
                return 200, store.objects[key]
            m = re.fullmatch(r"/_sim/touch/([^/]+)/([^/]+)/([^/]+)", path)
            if m and self.command == "POST":
                rtype = next((r for r in RESOURCES if r.plural == m.group(1)), None)
                obj = store.objects.get(sim.key(rtype, m.group(2), m.group(3))) if rtype else None
                if obj is None:
                    return 404, {"error": "no such object"}
                obj["metadata"].setdefault("annotations", {})["sim.sluice.dev/touched"] = str(time.time())
                obj["metadata"]["resourceVersion"] = store.next_revision()
                return 200, obj
        return 404, {"error": f"unknown control path {path}"}


class ControlHandler(Handler):
    """Serves only /_sim/* (plain HTTP beside an HTTPS API, so tests need no CA to drive it)."""

    def handle_any(self):
        if not urlsplit(self.path).path.startswith("/_sim/"):
            self.send_json(404, {"error": "control port: only /_sim/* is served here"})
            return
        super().handle_any()


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(path + ".tmp", path)


class HangUp(Exception):
    """Close the connection without an answer (after the hang)."""


def main():
    # A child of a Swift test process (Foundation's Process) starts with every signal blocked: unblock SIGTERM
    # and SIGINT, or stopping the simulator waits out the launcher's whole grace period before SIGKILL.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser(description="Kubernetes API simulator for Sluice tests")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see --port-file)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", help="JSON config: tokens, availableAfterSeconds, objects")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's key (PEM)")
    parser.add_argument("--client-ca", help="accept client certificates signed by this CA (user = CN)")
    parser.add_argument("--control-port-file",
                        help="also serve /_sim/* over plain HTTP on a free port, written to this file")
    args = parser.parse_args()
    config = {}
    if args.config:
        with open(args.config) as f:
            config = json.load(f)
    sim = Simulator(config)
    Handler.sim = sim
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(args.client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    sim.address = f"{args.host}:{port}"
    if args.control_port_file:
        control = ThreadingHTTPServer((args.host, 0), ControlHandler)
        threading.Thread(target=control.serve_forever, daemon=True).start()
        write_port(args.control_port_file, control.server_address[1])
    if args.port_file:
        write_port(args.port_file, port)
    sys.stderr.write(f"kube-sim listening on {args.host}:{port}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
