#!/usr/bin/env python3
"""A test Kubernetes API server: what passgate (and kubectl get/watch) use of the documented API.

Debian has no kube-apiserver, so the tests run this instead. Python 3 standard library only.

  kube_api_server.py --dir DIR --port P --control-port C [--watch-timeout-seconds N]

- DIR gets (when missing) a CA (ca.crt, ca.key), a server certificate for IP 127.0.0.1 and DNS
  localhost (server.crt, server.key), a client certificate with CN=passgate (client.crt,
  client.key) from the same CA, made with the openssl CLI, and a random bearer token (token).
- HTTPS API on 127.0.0.1:P (HTTP/1.1). A request is authenticated by "Authorization: Bearer
  <DIR/token, stripped>" (the file is re-read on every request, so a test rotates the token by
  rewriting it) or by a client certificate from the CA; otherwise 401 with a Status body.
  Writes are authenticated the same way.
- Discovery (legacy only: /version, /api, /api/v1, /apis, /apis/GROUP, /apis/GROUP/VERSION;
  kubectl 1.20 reads these, a newer kubectl asking for aggregated discovery falls back to them).
- Kinds (RESOURCES below): core v1 Services and Namespaces (cluster-scoped), discovery.k8s.io/v1
  EndpointSlices, coordination.k8s.io/v1 Leases, and gateway.networking.k8s.io GatewayClasses
  (cluster-scoped; v1, v1beta1), Gateways (v1, v1beta1), TLSRoutes (v1, v1alpha3, v1alpha2) and
  ReferenceGrants (v1, v1beta1). Objects are stored version-agnostically: any served version
  answers, with that version's apiVersion (objects, list, watch events, bookmarks).
- Reads of every kind: get, list (fieldSelector metadata.name/metadata.namespace, equality
  labelSelector, limit/continue) and watch (resourceVersion, allowWatchBookmarks, timeoutSeconds;
  chunked newline-delimited events; 410 Expired after compaction), per namespace or cluster-wide
  (/apis/gateway.networking.k8s.io/v1/tlsroutes). With "Accept: ...;as=Table" (kubectl get
  without -o) the Gateway API kinds answer with a meta.k8s.io/v1 Table of their CRDs' printer
  columns; the other kinds answer with the object or list (kubectl prints NAME and AGE).
- Writes: PATCH .../{name}/status of the Gateway API kinds with application/merge-patch+json
  (RFC 7386; only .status changes, other fields of the patch are ignored;
  metadata.resourceVersion, when present, must be current: 409 Conflict), PUT .../{name}/status
  (the whole object; metadata.resourceVersion required (422) and current (409); only .status is
  taken); Leases: POST create (201; 409 AlreadyExists), PUT update (metadata.resourceVersion,
  when present, must be current: 409), PATCH merge patch. Other writes: 405. A change gets the
  next resourceVersion and a MODIFIED event; a write that changes nothing is a no-op (no new
  resourceVersion, no event), as on the real server. metadata.generation of the Gateway API kinds
  counts spec changes only (status writes keep it). A missing object: 404 with a Status body.
- Plain-HTTP control API on 127.0.0.1:C for tests (no auth): PUT /objects (any kind above in any
  served version, status as given), GET and DELETE /objects/{resource}/{ns}/{name}
  (/objects/{resource}/{name} for a cluster-scoped kind), POST /compact, /close-watches,
  /bookmark, /listening {"up": bool}, /fail {"status": S, "count": N} (also for writes),
  GET /requests (method, path, query, token, client_cn, status, watch, content_type, body: a
  write's body as text), GET /state (resourceVersion, compactedResourceVersion, open watches).
  POST /churn {"variants": [objects...], "rate": R, "seconds": S} (perf/kubernetes): a thread
  here puts variants[0], variants[1], ... (cyclically) R times a second for S seconds, each a
  change as PUT /objects makes it; GET /churn: {"running", "applied", "max_lag_seconds"}.
- Prints "ready" on stdout once both ports listen. SIGTERM/SIGINT: exits 0.

Like etcd, one global resourceVersion counter; every object carries the RV of its last change.
Every queue, history and log here is bounded.
"""

import argparse
import base64
import datetime
import errno
import http.server
import json
import os
import secrets
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

MAX_BODY_BYTES = 1 << 20          # control API request bodies
MAX_HISTORY_EVENTS = 10000        # older events are compacted away automatically
MAX_WATCH_QUEUE = 10000           # a watcher this far behind has its stream ended (it re-watches)
MAX_REQUEST_LOG = 10000
MAX_LIST_SNAPSHOTS = 32           # consistent snapshots behind "continue" tokens
MAX_CHURN_RATE = 100000           # POST /churn: puts a second
MAX_CHURN_SECONDS = 3600
MAX_CONNECTIONS = 256             # concurrent API connections; more are closed at once
IDLE_TIMEOUT_SECONDS = 60         # an idle keep-alive connection is closed after this
DEFAULT_WATCH_TIMEOUT_SECONDS = 1800  # kube-apiserver's --min-request-timeout

GATEWAY_GROUP = "gateway.networking.k8s.io"
# The verbs of a CustomResourceDefinition's resource and of its status subresource, as discovery
# lists them (only some are implemented here: get, list, watch; patch and update of the status).
CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


class Kind:
    """One resource type: where it is served (group, versions, preferred first), its names as
    discovery lists them, whether it is namespaced, whether it has a status subresource, whether
    metadata.generation counts its spec changes (CRDs), and the columns of its Table form."""

    def __init__(self, resource, group, versions, kind, namespaced, verbs, short_names=(),
                 singular="", categories=(), status=False, generation=False, columns=None):
        self.resource, self.group, self.versions, self.kind = resource, group, versions, kind
        self.list_kind = kind + "List"
        self.namespaced, self.verbs, self.short_names = namespaced, verbs, list(short_names)
        self.singular, self.categories, self.status = singular, list(categories), status
        self.generation, self.columns = generation, columns

    def api_version(self, version):
        return version if not self.group else self.group + "/" + version

    def api_versions(self):
        return [self.api_version(version) for version in self.versions]

    def qualified(self):
        """"tlsroutes.gateway.networking.k8s.io" as the real server names it in messages."""
        return self.resource if not self.group else self.resource + "." + self.group


# Additional printer columns of the Gateway API CRDs (name, type, JSON path, priority): the Table
# a kubectl get without -o asks for. JSON paths here are plain field paths; "[Type]" picks the
# status of the condition of that type, "[*].value" joins the values of a list.
AGE_COLUMN = ("Age", "date", ".metadata.creationTimestamp", 0)
COLUMNS = {
    "gatewayclasses": [("Controller", "string", ".spec.controllerName", 0),
                       ("Accepted", "string", ".status.conditions[Accepted]", 0), AGE_COLUMN,
                       ("Description", "string", ".spec.description", 1)],
    "gateways": [("Class", "string", ".spec.gatewayClassName", 0),
                 ("Address", "string", ".status.addresses[*].value", 0),
                 ("Programmed", "string", ".status.conditions[Programmed]", 0), AGE_COLUMN],
    "tlsroutes": [AGE_COLUMN],
    "referencegrants": [AGE_COLUMN],
}

KINDS = [
    Kind("services", "", ["v1"], "Service", True, ["get", "list", "watch"], ["svc"], categories=["all"]),
    Kind("namespaces", "", ["v1"], "Namespace", False,
         ["create", "delete", "get", "list", "patch", "update", "watch"], ["ns"]),
    Kind("endpointslices", "discovery.k8s.io", ["v1"], "EndpointSlice", True, ["get", "list", "watch"]),
    Kind("leases", "coordination.k8s.io", ["v1"], "Lease", True,
         ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    Kind("gatewayclasses", GATEWAY_GROUP, ["v1", "v1beta1"], "GatewayClass", False, CRD_VERBS,
         ["gc"], "gatewayclass", ["gateway-api"], True, True, COLUMNS["gatewayclasses"]),
    Kind("gateways", GATEWAY_GROUP, ["v1", "v1beta1"], "Gateway", True, CRD_VERBS,
         ["gtw"], "gateway", ["gateway-api"], True, True, COLUMNS["gateways"]),
    Kind("tlsroutes", GATEWAY_GROUP, ["v1", "v1alpha3", "v1alpha2"], "TLSRoute", True, CRD_VERBS,
         [], "tlsroute", ["gateway-api"], True, True, COLUMNS["tlsroutes"]),
    Kind("referencegrants", GATEWAY_GROUP, ["v1", "v1beta1"], "ReferenceGrant", True, CRD_VERBS,
         ["refgrant"], "referencegrant", ["gateway-api"], False, True, COLUMNS["referencegrants"]),
]
RESOURCES = {kind.resource: kind for kind in KINDS}
KIND_TO_RESOURCE = {kind.kind: kind.resource for kind in KINDS}
# Versions of each group, preferred first (the order /apis lists them in).
GROUP_VERSIONS = {
    "discovery.k8s.io": ["v1"],
    "coordination.k8s.io": ["v1"],
    GATEWAY_GROUP: ["v1", "v1beta1", "v1alpha3", "v1alpha2"],
}

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
           415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


def status_object(code, message, reason=None, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason or REASONS.get(code, ""), "code": code}
    if details:
        body["details"] = details
    return body


def compact_json(value):
    """JSON without spaces, as the real server writes it."""
    return json.dumps(value, separators=(",", ":")).encode()


def log(text):
    print("kube_api_server: " + text, file=sys.stderr, flush=True)


# ---- certificates -------------------------------------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def make_credentials(directory):
    """CA, server and client certificates (EC P-256) and the token, each only when missing."""
    def path(name):
        return os.path.join(directory, name)
    os.makedirs(directory, exist_ok=True)
    key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if not (os.path.exists(path("ca.crt")) and os.path.exists(path("ca.key"))):
        openssl("req", "-x509", *key_args, "-keyout", path("ca.key"), "-out", path("ca.crt"),
                "-days", "3650", "-subj", "/CN=passgate-test-kubernetes-ca",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaves = [("server", "/CN=localhost",
               "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
              ("client", "/O=system:masters/CN=passgate", "extendedKeyUsage=clientAuth\n")]
    for name, subject, extensions in leaves:
        if os.path.exists(path(name + ".crt")) and os.path.exists(path(name + ".key")):
            continue
        with open(path(name + ".ext"), "w") as out:
            out.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions)
        openssl("req", "-new", *key_args, "-keyout", path(name + ".key"),
                "-out", path(name + ".csr"), "-subj", subject)
        openssl("x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.crt"),
                "-CAkey", path("ca.key"), "-set_serial", str(secrets.randbits(63)),
                "-days", "3650", "-extfile", path(name + ".ext"), "-out", path(name + ".crt"))
    if not os.path.exists(path("token")):
        with open(path("token"), "w") as out:
            out.write(secrets.token_hex(24) + "\n")


# ---- selectors ----------------------------------------------------------------------------------

def parse_selector(text):
    """Equality-based selector "a=b,c==d,e!=f,g,!h" -> list of (key, op, value); None if invalid."""
    terms = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "!=" in part:
            key, value = part.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "==" in part:
            key, value = part.split("==", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif "=" in part:
            key, value = part.split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "!", None))
        elif " " in part or "(" in part:
            return None  # set-based selectors are not supported here
        else:
            terms.append((part, "exists", None))
    return terms


def selector_matches(terms, values):
    for key, op, value in terms:
        present = key in values
        if op == "=" and (not present or values[key] != value):
            return False
        if op == "!=" and present and values[key] == value:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def field_values(obj):
    meta = obj.get("metadata", {})
    return {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}


class Filter:
    """Which objects a list or watch wants: resource, namespace (None: all), selectors."""

    def __init__(self, resource, namespace, labels, fields):
        self.resource, self.namespace, self.labels, self.fields = resource, namespace, labels, fields

    def matches(self, resource, obj):
        if obj is None or resource != self.resource:
            return False
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return (selector_matches(self.labels, meta.get("labels") or {}) and
                selector_matches(self.fields, field_values(obj)))


# ---- state --------------------------------------------------------------------------------------

class ApiError(Exception):
    """An API request that fails with `code` and a Status body."""

    def __init__(self, code, message, reason=None, details=None):
        super().__init__(message)
        self.code = code
        self.body = status_object(code, message, reason, details)


def not_found(kind, name):
    return ApiError(404, '%s "%s" not found' % (kind.qualified(), name), "NotFound",
                    {"name": name, "group": kind.group, "kind": kind.resource})


def conflict(kind, name):
    return ApiError(409, 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                    "please apply your changes to the latest version and try again"
                    % (kind.qualified(), name), "Conflict",
                    {"name": name, "group": kind.group, "kind": kind.resource})


def served(obj, api_version):
    """The stored object as a version serves it: objects are stored version-agnostically (the
    Gateway API versions have the same schema for what is used here), only apiVersion differs."""
    if obj is None or obj.get("apiVersion") == api_version:
        return obj
    return dict(obj, apiVersion=api_version)


def now_timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def spec_of(obj):
    """What metadata.generation counts: everything but metadata, status, kind and apiVersion."""
    return {key: value for key, value in obj.items()
            if key not in ("metadata", "status", "kind", "apiVersion")}


class Watcher:
    def __init__(self, selection, api_version, bookmarks):
        self.filter = selection
        self.api_version = api_version  # the version the watch was made on: events are served so
        self.bookmarks = bookmarks
        self.queue = []         # (type, object) to send, bounded by MAX_WATCH_QUEUE
        self.closed = False     # end the stream cleanly (terminating chunk)
        self.killed = False     # drop the connection without a terminating chunk


class State:
    """Objects, the global resourceVersion, event history and open watches, under one lock.
    Stored objects are never changed in place (a change stores a new object), so an object handed
    to a watcher or a list stays as it was."""

    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {}       # (resource, namespace or "" when cluster-scoped, name) -> object
        self.history = []       # (rv, resource, previous object or None, object, deleted)
        self.compacted_rv = 1   # a watch from an RV below this gets 410 Expired
        self.watchers = set()
        self.snapshots = {}     # snapshot id -> (rv, sorted item list), for continue tokens
        self.next_snapshot = 1
        self.requests = []
        self.fail_status = 0
        self.fail_count = 0

    # Called with the lock held.
    def _record(self, resource, previous, obj, deleted):
        self.history.append((self.rv, resource, previous, obj, deleted))
        if len(self.history) > MAX_HISTORY_EVENTS:
            dropped = self.history.pop(0)
            self.compacted_rv = dropped[0] + 1
        for watcher in list(self.watchers):
            event = watch_event(watcher.filter, resource, previous, obj, deleted)
            if event:
                self._enqueue(watcher, event)
        self.cond.notify_all()

    def _enqueue(self, watcher, event):
        if len(watcher.queue) >= MAX_WATCH_QUEUE:
            watcher.closed = True  # too slow: end its stream, it re-watches from its last RV
            return
        watcher.queue.append(event)

    # Called with the lock held: stores `obj` (a new object) as the next change of `key`.
    def _store(self, kind, key, previous, obj):
        meta = obj["metadata"]
        self.rv += 1
        if previous is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_timestamp()
            if kind.generation:
                meta["generation"] = 1
        else:
            meta["uid"] = previous["metadata"]["uid"]
            meta["creationTimestamp"] = previous["metadata"]["creationTimestamp"]
            if kind.generation:
                # As for a CRD with a status subresource: only a spec change counts.
                meta["generation"] = previous["metadata"].get("generation", 1) + (
                    1 if spec_of(previous) != spec_of(obj) else 0)
        meta["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._record(kind.resource, previous, obj, False)
        return obj

    def put(self, obj):
        """The control API's create-or-replace: any kind here in any of its served versions."""
        if not isinstance(obj, dict):
            raise ValueError("an object is required")
        resource = KIND_TO_RESOURCE.get(obj.get("kind"))
        if resource is None or obj.get("apiVersion") not in RESOURCES[resource].api_versions():
            raise ValueError("kind/apiVersion must be one of: " + ", ".join(
                "%s %s" % (" or ".join(kind.api_versions()), kind.kind) for kind in KINDS))
        kind = RESOURCES[resource]
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ValueError("metadata.name is required")
        if kind.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)  # as the real server does for a cluster-scoped object
        key = (resource, meta.get("namespace", ""), meta["name"])
        with self.cond:
            return self._store(kind, key, self.objects.get(key), obj)

    def create(self, kind, namespace, obj):
        """An API create (POST): 409 AlreadyExists when the name is taken."""
        key = (kind.resource, namespace or "", obj["metadata"]["name"])
        with self.cond:
            if key in self.objects:
                raise ApiError(409, '%s "%s" already exists' % (kind.qualified(), key[2]),
                               "AlreadyExists", {"name": key[2], "group": kind.group,
                                                 "kind": kind.resource})
            return self._store(kind, key, None, obj)

    def modify(self, kind, namespace, name, change):
        """An API update or patch: change(current object) returns the new object (a fresh one)
        or raises ApiError; under the lock, so the resourceVersion precondition it checks holds.
        An update that changes nothing is a no-op, as on the real server (no new resourceVersion,
        no event): a controller that rewrites the same status does not wake its own watch."""
        key = (kind.resource, namespace or "", name)
        with self.cond:
            current = self.objects.get(key)
            if current is None:
                raise not_found(kind, name)
            obj = change(current)
            meta = obj.setdefault("metadata", {})
            for field in ("uid", "creationTimestamp", "resourceVersion", "generation"):
                if field in current["metadata"]:
                    meta[field] = current["metadata"][field]
            if obj == current:
                return current
            return self._store(kind, key, current, obj)

    def delete(self, resource, namespace, name):
        with self.cond:
            previous = self.objects.pop((resource, namespace, name), None)
            if previous is None:
                return None
            self.rv += 1
            gone = json.loads(json.dumps(previous))
            gone["metadata"]["resourceVersion"] = str(self.rv)  # as the real server reports it
            self._record(resource, previous, gone, True)
            return gone

    def get(self, resource, namespace, name):
        with self.cond:
            return self.objects.get((resource, namespace or "", name))

    def compact(self):
        with self.cond:
            self.compacted_rv = self.rv
            self.history = []
            self.snapshots = {}
            return self.rv

    def end_watches(self, kill):
        with self.cond:
            for watcher in self.watchers:
                watcher.closed = True
                watcher.killed = watcher.killed or kill
            self.cond.notify_all()

    def bookmark(self):
        with self.cond:
            count = 0
            for watcher in self.watchers:
                if watcher.bookmarks:
                    kind = RESOURCES[watcher.filter.resource].kind
                    self._enqueue(watcher, ("BOOKMARK", {"kind": kind, "apiVersion": watcher.api_version,
                                                         "metadata": {"resourceVersion": str(self.rv)}}))
                    count += 1
            self.cond.notify_all()
            return count

    def list(self, selection):
        """(resourceVersion, sorted matching items) now."""
        with self.cond:
            items = [obj for (resource, namespace, name), obj in sorted(self.objects.items())
                     if selection.matches(resource, obj)]
            return self.rv, items

    def save_snapshot(self, rv, items):
        """An id for the rest of a paged list (each list its own: two lists at one RV differ)."""
        with self.cond:
            snapshot = self.next_snapshot
            self.next_snapshot += 1
            self.snapshots[snapshot] = (rv, items)
            while len(self.snapshots) > MAX_LIST_SNAPSHOTS:
                self.snapshots.pop(min(self.snapshots))
            return snapshot

    def start_watch(self, selection, api_version, since_rv, bookmarks):
        """A registered Watcher with its initial events queued, or an error message (410)."""
        with self.cond:
            watcher = Watcher(selection, api_version, bookmarks)
            if since_rv is None:
                # No RV (or "0"): synthetic ADDED events for the current state, then changes.
                for key in sorted(self.objects):
                    if selection.matches(key[0], self.objects[key]):
                        watcher.queue.append(("ADDED", self.objects[key]))
            else:
                if since_rv < self.compacted_rv:
                    return None, "too old resource version: %d (%d)" % (since_rv, self.compacted_rv)
                for rv, resource, previous, obj, deleted in self.history:
                    if rv > since_rv:
                        event = watch_event(selection, resource, previous, obj, deleted)
                        if event:
                            watcher.queue.append(event)
            self.watchers.add(watcher)
            return watcher, None

    def stop_watch(self, watcher):
        with self.cond:
            self.watchers.discard(watcher)

    def log_request(self, entry):
        with self.cond:
            self.requests.append(entry)
            if len(self.requests) > MAX_REQUEST_LOG:
                self.requests.pop(0)

    def take_failure(self):
        with self.cond:
            if self.fail_count <= 0:
                return 0
            self.fail_count -= 1
            return self.fail_status


def watch_event(selection, resource, previous, obj, deleted):
    """The event a watcher with this filter sees for a change, as the watch cache does: an object
    that stops matching the selector is DELETED for it, one that starts matching is ADDED."""
    was = selection.matches(resource, previous)
    now = selection.matches(resource, obj)
    if deleted:
        return ("DELETED", obj) if was else None
    if was and now:
        return ("MODIFIED", obj)
    if now:
        return ("ADDED", obj)
    if was:
        return ("DELETED", obj)
    return None


# ---- API server ---------------------------------------------------------------------------------

def discovery_resources(group, version):
    """The APIResourceList entries of a group version: each resource served there, then its
    status subresource, as the real server lists them."""
    entries = []
    for kind in KINDS:
        if kind.group != group or version not in kind.versions:
            continue
        entry = {"name": kind.resource, "singularName": kind.singular, "namespaced": kind.namespaced,
                 "kind": kind.kind, "verbs": kind.verbs}
        if kind.short_names:
            entry["shortNames"] = kind.short_names
        if kind.categories:
            entry["categories"] = kind.categories
        entries.append(entry)
        if kind.status:
            entries.append({"name": kind.resource + "/status", "singularName": "",
                            "namespaced": kind.namespaced, "kind": kind.kind, "verbs": STATUS_VERBS})
    return entries


def discovery_documents(port):
    """Legacy discovery (what kubectl 1.20 reads). A newer kubectl asking for aggregated discovery
    (Accept: ...;g=apidiscovery.k8s.io;v=v2...) gets these too and falls back to them."""
    documents = {
        "/version": {"major": "1", "minor": "20", "gitVersion": "v1.20.15", "gitCommit": "",
                     "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                     "goVersion": "go1.19", "compiler": "gc", "platform": "linux/amd64"},
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": "127.0.0.1:%d" % port}]},
        "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1",
                    "resources": discovery_resources("", "v1")},
    }
    groups = []
    for group, versions in GROUP_VERSIONS.items():
        group_versions = [{"groupVersion": group + "/" + version, "version": version}
                          for version in versions]
        description = {"name": group, "versions": group_versions, "preferredVersion": group_versions[0]}
        groups.append(description)
        documents["/apis/" + group] = dict({"kind": "APIGroup", "apiVersion": "v1"}, **description)
        for version in versions:
            documents["/apis/%s/%s" % (group, version)] = {
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group + "/" + version,
                "resources": discovery_resources(group, version)}
    documents["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    return documents


class Target:
    """What an object path names: the kind, the version asked for, namespace (None: all, or a
    cluster-scoped kind), name (None: the collection) and subresource ("status" or None)."""

    def __init__(self, kind, version, namespace, name, subresource):
        self.kind, self.version, self.namespace = kind, version, namespace
        self.name, self.subresource = name, subresource
        self.api_version = kind.api_version(version)


def parse_resource_path(path):
    """The Target of an object path, else None (404):
    /api/v1/[namespaces/NS/]RESOURCE[/NAME[/status]] and
    /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME[/status]]; /api/v1/namespaces[/NAME] for
    the namespaces themselves."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] not in RESOURCES or len(rest) > 3 or "" in rest:
        return None
    kind = RESOURCES[rest[0]]
    if kind.group != group or version not in kind.versions:
        return None
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else None
    if subresource is not None and not (subresource == "status" and kind.status):
        return None
    if not kind.namespaced and namespace is not None:
        return None
    if kind.namespaced and namespace is None and name is not None:
        return None  # a namespaced object is named within its namespace only
    return Target(kind, version, namespace, name, subresource)


def encode_continue(snapshot, offset):
    text = json.dumps({"snapshot": snapshot, "offset": offset}).encode()
    return base64.urlsafe_b64encode(text).decode()


def decode_continue(token):
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(value["snapshot"]), int(value["offset"])
    except (ValueError, KeyError, TypeError):
        return None


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge member by member, null removes, anything else
    replaces. Returns a new value; `target` is not changed."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def deep_copy(value):
    return json.loads(json.dumps(value))


def column_value(obj, path):
    """A printer column's cell: ".a.b", ".status.conditions[Type]" (that condition's status),
    ".status.addresses[*].value" (the values joined with ","). None when absent."""
    value = obj
    for step in path.strip(".").split("."):
        if step.endswith("[*]"):
            value = value.get(step[:-3]) if isinstance(value, dict) else None
            rest = path.split("[*].", 1)[1]
            values = [item.get(rest) for item in (value or []) if isinstance(item, dict)]
            return ",".join(str(item) for item in values if item is not None) or None
        if step.endswith("]"):
            field, condition_type = step[:-1].split("[", 1)
            value = value.get(field) if isinstance(value, dict) else None
            for condition in value or []:
                if isinstance(condition, dict) and condition.get("type") == condition_type:
                    return condition.get("status")
            return None
        value = value.get(step) if isinstance(value, dict) else None
    return value


def human_duration(seconds):
    """An age as kubectl and the server's table convertor print it (Go's duration.HumanDuration)."""
    if seconds < -1:
        return "<invalid>"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return "%ds" % seconds
    minutes = seconds // 60
    if minutes < 10:
        return "%dm" % minutes if seconds % 60 == 0 else "%dm%ds" % (minutes, seconds % 60)
    if minutes < 180:
        return "%dm" % minutes
    hours = minutes // 60
    if hours < 8:
        return "%dh" % hours if minutes % 60 == 0 else "%dh%dm" % (hours, minutes % 60)
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        return "%dd" % (hours // 24) if hours % 24 == 0 else "%dd%dh" % (hours // 24, hours % 24)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    years, days = hours // 24 // 365, (hours // 24) % 365
    if hours < 24 * 365 * 8:
        return "%dy" % years if days == 0 else "%dy%dd" % (years, days)
    return "%dy" % years


def cell(value, type_):
    """A date column's cell is the age, as the server's table convertor writes it."""
    if type_ != "date" or not isinstance(value, str):
        return value
    try:
        then = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return value
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())


def table(kind, items, list_metadata):
    """The meta.k8s.io/v1 Table a kubectl get without -o asks for (Accept: ...;as=Table...): the
    CRD's printer columns, Name first; each row carries the object's metadata (kubectl -A reads
    the namespace from it)."""
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name must be unique "
                "within a namespace.", "priority": 0}]
    for name, type_, path, priority in kind.columns:
        columns.append({"name": name, "type": type_, "format": "", "description": "", "priority": priority})
    rows = []
    for item in items:
        cells = [item["metadata"]["name"]]
        cells += [cell(column_value(item, path), type_) for _, type_, path, _ in kind.columns]
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata",
                                                "apiVersion": "meta.k8s.io/v1",
                                                "metadata": item["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_metadata,
            "columnDefinitions": columns, "rows": rows}


def request_body(raw):
    """The JSON object of a write's body, or 400 as the real server answers."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as error:
        raise ApiError(400, "the body of the request could not be decoded as JSON: %s" % error)
    if not isinstance(body, dict):
        raise ApiError(400, "the body of the request must be a JSON object")
    return body


def check_names(target, body):
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(400, "metadata must be an object")
    if meta.get("name") != target.name:
        raise ApiError(400, "the name of the object (%s) does not match the name on the URL (%s)"
                       % (meta.get("name"), target.name))
    if target.namespace is not None and meta.get("namespace", target.namespace) != target.namespace:
        raise ApiError(400, "the namespace of the provided object does not match the namespace "
                       "sent on the request")


def check_resource_version(kind, current, body, required):
    """The optimistic-concurrency precondition of an update or patch: metadata.resourceVersion,
    when given, must be the current one (409 Conflict); `required` for a CRD's update."""
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    expected = meta.get("resourceVersion")
    name = current["metadata"]["name"]
    if not expected:
        if required:
            raise ApiError(422, '%s "%s" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                           "must be specified for an update" % (kind.qualified(), name), "Invalid")
        return
    if str(expected) != current["metadata"]["resourceVersion"]:
        raise conflict(kind, name)


def keep_identity(current, obj):
    """A write cannot change what the object is: kind, apiVersion, name, namespace."""
    obj = dict({"apiVersion": current["apiVersion"], "kind": current["kind"]},
               **{key: value for key, value in obj.items() if key not in ("apiVersion", "kind")})
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    for field in ("name", "namespace"):
        if field in current["metadata"]:
            meta[field] = current["metadata"][field]
        else:
            meta.pop(field, None)
    return obj


def with_status(current, status):
    """A copy of `current` whose .status is `status` (none when None)."""
    obj = deep_copy(current)
    if status is None:
        obj.pop("status", None)
    else:
        obj["status"] = deep_copy(status)
    return obj


def patched(kind, current, patch, status_only):
    """A merge patch's result. On the status subresource only .status changes (the rest of the
    patch is ignored, as the real server does); on the object itself everything but .status of a
    kind with a status subresource."""
    check_resource_version(kind, current, patch, required=False)
    merged = merge_patch(current, patch)
    if status_only:
        return with_status(current, merged.get("status"))
    obj = keep_identity(current, deep_copy(merged))
    return with_status(obj, current.get("status")) if kind.status else obj


def replaced(kind, current, body, status_only):
    """An update's (PUT) result: on the status subresource the body's .status, else the body
    (with the current .status for a kind with a status subresource)."""
    check_resource_version(kind, current, body, required=status_only)
    if status_only:
        return with_status(current, body.get("status"))
    obj = keep_identity(current, deep_copy(body))
    return with_status(obj, current.get("status")) if kind.status else obj


class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "passgate-test-kube-apiserver"
    timeout = IDLE_TIMEOUT_SECONDS

    def setup(self):
        super().setup()
        self.app = self.server.app
        self.app.track_connection(self.connection, True)
        self.client_cn = ""
        try:
            self.connection.do_handshake()
            certificate = self.connection.getpeercert()
            for rdn in (certificate or {}).get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        self.client_cn = value
        except (ssl.SSLError, OSError) as error:
            log("TLS handshake failed: %s" % error)
            self.close_connection = True
            self.handshake_failed = True
        else:
            self.handshake_failed = False

    def handle(self):
        if not self.handshake_failed:
            try:
                super().handle()
            except (OSError, ssl.SSLError):
                pass  # the client went away, or /listening closed the connection

    def finish(self):
        self.app.track_connection(self.connection, False)
        try:
            super().finish()
        except (OSError, ssl.SSLError):
            pass

    def log_message(self, format, *args):
        pass  # GET /requests on the control port has the request log

    def send_json(self, code, body, extra_headers=()):
        data = compact_json(body) + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def presented_token(self):
        header = self.headers.get("Authorization", "")
        return header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""

    def authenticated(self, token):
        if self.client_cn:
            return True
        expected = self.app.read_token()
        return bool(token) and bool(expected) and secrets.compare_digest(token, expected)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        def param(name):
            return query.get(name, [""])[-1]
        token = self.presented_token()
        is_watch = param("watch") in ("true", "1")
        entry = self.new_log_entry(url, token, is_watch)
        self.log_entry = entry
        code = self.route(url.path, param, is_watch, token)
        if self.log_entry is not None:
            entry["status"] = code
            self.app.state.log_request(entry)

    def new_log_entry(self, url, token, is_watch):
        return {"method": self.command, "path": url.path, "query": url.query, "token": token,
                "client_cn": self.client_cn, "status": 0, "watch": is_watch,
                "content_type": self.headers.get("Content-Type", ""), "body": ""}

    def do_POST(self):
        """Writes: status PATCH/PUT of the Gateway API kinds, Lease create/update/patch. The body
        is logged (GET /requests) as text."""
        url = urllib.parse.urlsplit(self.path)
        token = self.presented_token()
        entry = self.new_log_entry(url, token, False)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if self.headers.get("Transfer-Encoding") or not 0 <= length <= MAX_BODY_BYTES:
            # A body this server does not read: the connection cannot be reused.
            self.close_connection = True
            code = 413
            self.send_json(code, status_object(code, "a request body needs a Content-Length of at "
                                               "most %d bytes here" % MAX_BODY_BYTES,
                                               "RequestEntityTooLarge"))
        else:
            raw = self.rfile.read(length) if length else b""
            entry["body"] = raw.decode("utf-8", "replace")
            code = self.route_write(url.path, raw, token)
        entry["status"] = code
        self.app.state.log_request(entry)

    do_PUT = do_POST
    do_DELETE = do_POST
    do_PATCH = do_POST

    def admitted(self, token):
        """Authentication and injected failures, as for every request; the code sent, or 0."""
        if not self.authenticated(token):
            self.send_json(401, status_object(401, "Unauthorized"))
            return 401
        failure = self.app.state.take_failure()
        if failure:
            self.send_json(failure, status_object(failure, "injected failure (test server)"))
            return failure
        return 0

    def route_write(self, path, raw, token):
        refused = self.admitted(token)
        if refused:
            return refused
        target = parse_resource_path(path)
        if target is None:
            self.send_json(404, status_object(404, "the server could not find the requested resource"))
            return 404
        try:
            code, body = self.write(target, raw)
        except ApiError as error:
            code, body = error.code, error.body
        self.send_json(code, body)
        return code

    def write(self, target, raw):
        """(code, body) of a write, or raises ApiError."""
        kind, state = target.kind, self.app.state
        is_status = target.subresource == "status"
        is_lease = kind.resource == "leases"
        if target.name is None:
            if self.command == "POST" and is_lease and target.namespace is not None:
                obj = state.create(kind, target.namespace, self.new_object(target, request_body(raw)))
                return 201, served(obj, target.api_version)
        elif self.command == "PATCH" and (is_status or is_lease):
            media_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media_type != "application/merge-patch+json":
                raise ApiError(415, "the body of the request was in an unknown format - accepted "
                               "media types include: application/merge-patch+json (this test "
                               "server)", "UnsupportedMediaType")
            patch = request_body(raw)
            obj = state.modify(kind, target.namespace, target.name,
                               lambda current: patched(kind, current, patch, is_status))
            return 200, served(obj, target.api_version)
        elif self.command == "PUT" and (is_status or is_lease):
            body = request_body(raw)
            check_names(target, body)
            obj = state.modify(kind, target.namespace, target.name,
                               lambda current: replaced(kind, current, body, is_status))
            return 200, served(obj, target.api_version)
        raise ApiError(405, "the server does not allow this method on the requested resource "
                       "(this test server writes only the status of the Gateway API kinds and "
                       "Leases)", "MethodNotAllowed")

    def new_object(self, target, body):
        """A Lease to create from a POST body, as the real server checks it."""
        kind = target.kind
        if body.get("kind", kind.kind) != kind.kind or body.get("apiVersion", target.api_version) != target.api_version:
            raise ApiError(400, "the object's kind/apiVersion must be %s %s" % (target.api_version, kind.kind))
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if not meta.get("name"):
            raise ApiError(422, '%s.%s "" is invalid: metadata.name: Required value: name or '
                           "generateName is required" % (kind.kind, kind.group), "Invalid")
        if meta.get("namespace", target.namespace) != target.namespace:
            raise ApiError(400, "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        if meta.get("resourceVersion"):
            raise ApiError(500, "resourceVersion should not be set on objects to be created",
                           "InternalError")
        meta["namespace"] = target.namespace
        body["kind"], body["apiVersion"] = kind.kind, target.api_version
        return body

    def route(self, path, param, is_watch, token):
        """Answers one GET; returns the status code sent."""
        refused = self.admitted(token)
        if refused:
            return refused
        documents = self.app.discovery
        if path.rstrip("/") in documents or path == "/":
            self.send_json(200, documents.get(path.rstrip("/") or "/", {"paths": sorted(documents)}))
            return 200
        target = parse_resource_path(path)
        if target is None or (is_watch and target.subresource is not None):
            self.send_json(404, status_object(404, "the server could not find the requested resource"))
            return 404
        labels = parse_selector(param("labelSelector"))
        fields = parse_selector(param("fieldSelector"))
        if labels is None or fields is None or any(
                key not in ("metadata.name", "metadata.namespace") for key, _, _ in fields):
            self.send_json(400, status_object(400, "unsupported selector in this test server"))
            return 400
        if target.name is not None:
            if is_watch:
                fields = fields + [("metadata.name", "=", target.name)]
            else:
                return self.get_one(target)
        selection = Filter(target.kind.resource, target.namespace, labels, fields)
        if is_watch:
            return self.watch(selection, target.api_version, param)
        return self.list(selection, target, param)

    def wants_table(self, kind):
        """kubectl get without -o asks for a Table (Accept: application/json;as=Table;...); the
        Gateway API kinds answer with their CRDs' printer columns, the others with the object or
        list (kubectl then prints NAME and AGE)."""
        return kind.columns is not None and "as=Table" in self.headers.get("Accept", "")

    def get_one(self, target):
        obj = self.app.state.get(target.kind.resource, target.namespace, target.name)
        if obj is None:
            error = not_found(target.kind, target.name)
            self.send_json(error.code, error.body)
            return error.code
        if self.wants_table(target.kind):
            self.send_json(200, table(target.kind, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}))
        else:
            self.send_json(200, served(obj, target.api_version))
        return 200

    def list(self, selection, target, param):
        state = self.app.state
        continue_token = param("continue")
        try:
            limit = int(param("limit") or 0)
        except ValueError:
            limit = -1
        if limit < 0:
            self.send_json(400, status_object(400, "invalid limit"))
            return 400
        if continue_token:
            decoded = decode_continue(continue_token)
            if decoded is None:
                self.send_json(400, status_object(400, "invalid continue token"))
                return 400
            snapshot, offset = decoded
            with state.cond:
                rv, items = state.snapshots.get(snapshot, (0, None))
            if items is None or rv < state.compacted_rv:
                self.send_json(410, status_object(
                    410, "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter.", "Expired"))
                return 410
        else:
            rv, items = state.list(selection)
            offset = 0
        page = items[offset:offset + limit] if limit else items[offset:]
        metadata = {"resourceVersion": str(rv)}
        following = offset + len(page)
        if limit and following < len(items):
            metadata["continue"] = encode_continue(state.save_snapshot(rv, items), following)
            metadata["remainingItemCount"] = len(items) - following
        if self.wants_table(target.kind):
            self.send_json(200, table(target.kind, page, metadata))
            return 200
        # List items carry no kind/apiVersion, as the real server encodes them.
        body_items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
                      for item in page]
        self.send_json(200, {"kind": target.kind.list_kind, "apiVersion": target.api_version,
                             "metadata": metadata, "items": body_items})
        return 200

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def client_gone(self):
        """True when a watching client closed its connection: it sends nothing while it watches
        (HTTP/1.1, no pipelining), so anything readable is its end. Without this check an
        abandoned watch would linger until its next write or its timeout."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        return bool(readable)

    def watch(self, selection, api_version, param):
        state = self.app.state
        rv_text = param("resourceVersion")
        try:
            since_rv = int(rv_text) if rv_text not in ("", "0") else None
            requested_timeout = int(param("timeoutSeconds") or 0)
        except ValueError:
            self.send_json(400, status_object(400, "invalid resourceVersion or timeoutSeconds"))
            return 400
        timeout = self.app.watch_timeout
        if requested_timeout > 0:
            timeout = min(timeout, requested_timeout)
        watcher, error = state.start_watch(selection, api_version, since_rv,
                                           param("allowWatchBookmarks") == "true")
        # Logged now, not when the stream ends: tests look at open watches.
        self.log_entry["status"] = 200
        state.log_request(self.log_entry)
        self.log_entry = None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if watcher is None:
            # An expired resourceVersion: 200, one ERROR event, end of stream.
            self.write_chunk(compact_json({"type": "ERROR",
                                           "object": status_object(410, error, "Expired")}) + b"\n")
            self.write_chunk(b"")
            return 200
        deadline = time.monotonic() + timeout
        try:
            while True:
                with state.cond:
                    left = deadline - time.monotonic()
                    if not watcher.queue and not watcher.closed and left > 0:
                        state.cond.wait(min(left, 1.0))
                    events, watcher.queue = watcher.queue, []
                    closed, killed = watcher.closed, watcher.killed
                if killed:
                    self.close_connection = True
                    return 200
                for kind, obj in events:
                    self.write_chunk(compact_json({"type": kind, "object": served(obj, api_version)})
                                     + b"\n")
                if closed or time.monotonic() >= deadline:
                    self.write_chunk(b"")  # a clean end, as a server-side timeout
                    return 200
                if not events and self.client_gone():
                    self.close_connection = True
                    return 200
        except (OSError, ssl.SSLError):
            self.close_connection = True
            return 200
        finally:
            state.stop_watch(watcher)


class ApiServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, app, port):
        self.app = app
        super().__init__(("127.0.0.1", port), ApiHandler, bind_and_activate=False)
        # The TLS handshake runs in the connection's thread (ApiHandler.setup), not in accept.
        self.socket = app.tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.server_bind()
        self.server_activate()
        # Non-blocking accept: a client that resets between select() and accept() must not park
        # the accept loop (and with it shutdown(), so /listening) until the next client comes.
        self.socket.setblocking(False)

    def verify_request(self, request, client_address):
        return self.app.connection_count() < MAX_CONNECTIONS

    def handle_error(self, request, client_address):
        log("error on an API connection: %s" % (sys.exc_info()[1],))


# ---- churn (perf/kubernetes) --------------------------------------------------------------------

class Churn:
    """Puts `variants` cyclically at `rate` a second for `seconds` on its own thread (one churn at
    a time), so that a benchmark gets a thousand watch events a second without as many HTTP
    requests. A put that falls behind its schedule runs at once (the lag is reported)."""

    def __init__(self, state):
        self.state = state
        self.lock = threading.Lock()
        self.thread = None
        self.applied = 0
        self.max_lag = 0.0

    def start(self, variants, rate, seconds):
        if (not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants)
                or not 0 < rate <= MAX_CHURN_RATE or not 0 < seconds <= MAX_CHURN_SECONDS):
            raise ValueError("churn: variants (objects), 0 < rate <= %d, 0 < seconds <= %d"
                             % (MAX_CHURN_RATE, MAX_CHURN_SECONDS))
        for variant in variants:
            if KIND_TO_RESOURCE.get(variant.get("kind")) is None:
                raise ValueError("churn: each variant must be an object of a kind served here")
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                raise ValueError("churn: one is running already")
            self.applied, self.max_lag = 0, 0.0
            texts = [json.dumps(v) for v in variants]  # put() changes its object: a fresh copy each time
            self.thread = threading.Thread(target=self.run, args=(texts, rate, seconds), daemon=True)
            self.thread.start()

    def run(self, texts, rate, seconds):
        start = time.monotonic()
        total = int(rate * seconds)
        for index in range(total):
            due = start + index / rate
            lag = time.monotonic() - due
            if lag < 0:
                time.sleep(-lag)
            self.state.put(json.loads(texts[index % len(texts)]))
            with self.lock:
                self.applied += 1
                self.max_lag = max(self.max_lag, lag)

    def status(self):
        with self.lock:
            return {"running": self.thread is not None and self.thread.is_alive(),
                    "applied": self.applied, "max_lag_seconds": round(self.max_lag, 6)}


# ---- control server -----------------------------------------------------------------------------

def object_key(path):
    """(resource, namespace or "", name) of a control path /objects/{resource}/{ns}/{name}
    (/objects/{resource}/{name} for a cluster-scoped kind), else None."""
    parts = path.strip("/").split("/")
    kind = RESOURCES.get(parts[1]) if len(parts) >= 2 and parts[0] == "objects" else None
    if kind is None or len(parts) != (4 if kind.namespaced else 3):
        return None
    return kind.resource, (parts[2] if kind.namespaced else ""), parts[-1]


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS

    def log_message(self, format, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("body too large")
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self):
        app = self.server.app
        if self.path == "/requests":
            with app.state.cond:
                self.reply(200, list(app.state.requests))
        elif self.path == "/state":
            with app.state.cond:
                self.reply(200, {"resourceVersion": str(app.state.rv),
                                 "compactedResourceVersion": str(app.state.compacted_rv),
                                 "watches": len(app.state.watchers)})
        elif self.path == "/churn":
            self.reply(200, app.churn.status())
        elif self.path.startswith("/objects/"):
            key = object_key(self.path)
            obj = app.state.get(*key) if key else None
            if obj is None:
                return self.reply(404, {"error": "no such object (GET /objects/{resource}/{ns}/{name}, "
                                        "or /objects/{resource}/{name} for a cluster-scoped one)"})
            self.reply(200, obj)
        else:
            self.reply(404, {"error": "no such control path"})

    def do_PUT(self):
        if self.path != "/objects":
            return self.reply(404, {"error": "no such control path"})
        try:
            self.reply(200, self.server.app.state.put(self.body()))
        except (ValueError, AttributeError) as error:
            self.reply(400, {"error": str(error)})

    def do_DELETE(self):
        key = object_key(self.path)
        if key is None:
            return self.reply(404, {"error": "DELETE /objects/{resource}/{ns}/{name}, or "
                                    "/objects/{resource}/{name} for a cluster-scoped one"})
        gone = self.server.app.state.delete(*key)
        if gone is None:
            return self.reply(404, {"error": "no such object"})
        self.reply(200, gone)

    def do_POST(self):
        app = self.server.app
        try:
            body = self.body()
        except ValueError as error:
            return self.reply(400, {"error": str(error)})
        if self.path == "/compact":
            self.reply(200, {"compactedResourceVersion": str(app.state.compact())})
        elif self.path == "/close-watches":
            app.state.end_watches(kill=False)
            self.reply(200, {})
        elif self.path == "/bookmark":
            self.reply(200, {"bookmarks": app.state.bookmark()})
        elif self.path == "/listening" and isinstance(body, dict) and isinstance(body.get("up"), bool):
            app.set_listening(body["up"])
            self.reply(200, {"up": body["up"]})
        elif self.path == "/fail" and isinstance(body, dict):
            with app.state.cond:
                app.state.fail_status = int(body.get("status", 500))
                app.state.fail_count = int(body.get("count", 1))
            self.reply(200, {})
        elif self.path == "/churn" and isinstance(body, dict):
            try:
                app.churn.start(body.get("variants"), float(body.get("rate", 0)), float(body.get("seconds", 0)))
            except (ValueError, TypeError) as error:
                return self.reply(400, {"error": str(error)})
            self.reply(200, app.churn.status())
        else:
            self.reply(404, {"error": "no such control path or bad body"})


class ControlServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app, port):
        self.app = app
        super().__init__(("127.0.0.1", port), ControlHandler)


# ---- the application ----------------------------------------------------------------------------

class App:
    def __init__(self, directory, port, watch_timeout):
        self.directory = directory
        self.port = port
        self.watch_timeout = watch_timeout
        self.state = State()
        self.churn = Churn(self.state)
        self.discovery = discovery_documents(port)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(os.path.join(directory, "server.crt"), os.path.join(directory, "server.key"))
        self.tls.load_verify_locations(os.path.join(directory, "ca.crt"))
        self.tls.verify_mode = ssl.CERT_OPTIONAL
        self.tls.set_alpn_protocols(["http/1.1"])  # no HTTP/2 here; Go clients fall back
        self.connections_lock = threading.Lock()
        self.connections = set()
        self.listening_lock = threading.Lock()
        self.api = None
        self.api_thread = None

    def read_token(self):
        try:
            with open(os.path.join(self.directory, "token")) as source:
                return source.read().strip()
        except OSError:
            return ""

    def track_connection(self, connection, open_):
        with self.connections_lock:
            if open_:
                self.connections.add(connection)
            else:
                self.connections.discard(connection)

    def connection_count(self):
        with self.connections_lock:
            return len(self.connections)

    def bind_api_server(self):
        # The port may be held a moment longer by the sockets of the connections just shut down
        # (EADDRINUSE): try again for up to 5 s, then let the error end the request.
        for attempt in range(50):
            try:
                return ApiServer(self, self.port)
            except OSError as error:
                if error.errno != errno.EADDRINUSE or attempt == 49:
                    raise
                time.sleep(0.1)

    def set_listening(self, up):
        with self.listening_lock:
            if up and self.api is None:
                self.api = self.bind_api_server()
                self.api_thread = threading.Thread(target=self.api.serve_forever,
                                                   kwargs={"poll_interval": 0.1}, daemon=True)
                self.api_thread.start()
            elif not up and self.api is not None:
                # Everything that can hold a thread first (watch streams, open connections), then
                # the accept loop: a down server refuses connections and keeps its state.
                self.state.end_watches(kill=True)
                with self.connections_lock:
                    open_connections = list(self.connections)
                for connection in open_connections:
                    try:
                        # The plain socket's shutdown: wakes the connection's thread (EOF) without
                        # touching the TLS object that thread is using.
                        socket.socket.shutdown(connection, socket.SHUT_RDWR)
                    except OSError:
                        pass
                self.api.shutdown()
                self.api.server_close()
                self.api_thread.join(5)
                self.api = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--watch-timeout-seconds", type=int, default=DEFAULT_WATCH_TIMEOUT_SECONDS)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    make_credentials(args.dir)
    app = App(args.dir, args.port, max(1, args.watch_timeout_seconds))
    app.set_listening(True)
    control = ControlServer(app, args.control_port)
    control_thread = threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.1},
                                      daemon=True)
    control_thread.start()
    print("ready", flush=True)
    # Short waits: a signal does not interrupt Event.wait (it resumes), so this bounds the exit delay.
    while not stop.wait(0.1):
        pass
    control.shutdown()
    control.server_close()
    app.set_listening(False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
