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
  Serves discovery (/version, /api, /apis, ...), Services (v1) and EndpointSlices
  (discovery.k8s.io/v1): get, list (fieldSelector, labelSelector, limit/continue) and watch
  (resourceVersion, allowWatchBookmarks, timeoutSeconds; chunked newline-delimited events).
- Plain-HTTP control API on 127.0.0.1:C for tests (no auth): PUT /objects, DELETE
  /objects/{services|endpointslices}/{ns}/{name}, POST /compact, /close-watches, /bookmark,
  /listening {"up": bool}, /fail {"status": S, "count": N}, GET /requests, GET /state
  (resourceVersion, compactedResourceVersion, open watches).
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

RESOURCES = {
    # resource -> (apiVersion, kind, list kind)
    "services": ("v1", "Service", "ServiceList"),
    "endpointslices": ("discovery.k8s.io/v1", "EndpointSlice", "EndpointSliceList"),
}
KIND_TO_RESOURCE = {kind: resource for resource, (_, kind, _) in RESOURCES.items()}

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 422: "Invalid",
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

class Watcher:
    def __init__(self, selection, bookmarks):
        self.filter = selection
        self.bookmarks = bookmarks
        self.queue = []         # (type, object) to send, bounded by MAX_WATCH_QUEUE
        self.closed = False     # end the stream cleanly (terminating chunk)
        self.killed = False     # drop the connection without a terminating chunk


class State:
    """Objects, the global resourceVersion, event history and open watches, under one lock."""

    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {}       # (resource, namespace, name) -> object (with kind/apiVersion)
        self.history = []       # (rv, resource, previous object or None, object, deleted)
        self.compacted_rv = 1   # a watch from an RV below this gets 410 Expired
        self.watchers = set()
        self.snapshots = {}     # rv -> sorted item list, for continue tokens
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

    def put(self, obj):
        kind = obj.get("kind")
        resource = KIND_TO_RESOURCE.get(kind)
        if resource is None or obj.get("apiVersion") != RESOURCES[resource][0]:
            raise ValueError("kind/apiVersion must be v1 Service or discovery.k8s.io/v1 EndpointSlice")
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("metadata.name is required")
        meta.setdefault("namespace", "default")
        key = (resource, meta["namespace"], meta["name"])
        with self.cond:
            previous = self.objects.get(key)
            self.rv += 1
            if previous is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
            else:
                meta["uid"] = previous["metadata"]["uid"]
                meta["creationTimestamp"] = previous["metadata"]["creationTimestamp"]
            meta["resourceVersion"] = str(self.rv)
            self.objects[key] = obj
            self._record(resource, previous, obj, False)
            return obj

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
                    api_version, kind, _ = RESOURCES[watcher.filter.resource]
                    self._enqueue(watcher, ("BOOKMARK", {"kind": kind, "apiVersion": api_version,
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

    def start_watch(self, selection, since_rv, bookmarks):
        """A registered Watcher with its initial events queued, or an error message (410)."""
        with self.cond:
            watcher = Watcher(selection, bookmarks)
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

def discovery_documents(port):
    group_version = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
    group = {"name": "discovery.k8s.io", "versions": [group_version], "preferredVersion": group_version}
    verbs = ["get", "list", "watch"]
    return {
        "/version": {"major": "1", "minor": "20", "gitVersion": "v1.20.15", "gitCommit": "",
                     "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                     "goVersion": "go1.19", "compiler": "gc", "platform": "linux/amd64"},
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": "127.0.0.1:%d" % port}]},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]},
        "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "services", "singularName": "", "namespaced": True, "kind": "Service",
             "verbs": verbs, "shortNames": ["svc"], "categories": ["all"]}]},
        "/apis/discovery.k8s.io": dict({"kind": "APIGroup", "apiVersion": "v1"}, **group),
        "/apis/discovery.k8s.io/v1": {"kind": "APIResourceList", "apiVersion": "v1",
                                      "groupVersion": "discovery.k8s.io/v1", "resources": [
            {"name": "endpointslices", "singularName": "", "namespaced": True,
             "kind": "EndpointSlice", "verbs": verbs}]},
    }


def parse_resource_path(path):
    """(resource, namespace or None, name or None) for the object paths, else None."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif parts[:3] == ["apis", "discovery.k8s.io", "v1"]:
        rest = parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] not in RESOURCES or len(rest) > 2:
        return None
    expected = "v1" if parts[0] == "api" else "discovery.k8s.io/v1"
    if RESOURCES[rest[0]][0] != expected:
        return None
    return rest[0], namespace, (rest[1] if len(rest) == 2 else None)


def encode_continue(rv, offset):
    text = json.dumps({"rv": rv, "offset": offset}).encode()
    return base64.urlsafe_b64encode(text).decode()


def decode_continue(token):
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(value["rv"]), int(value["offset"])
    except (ValueError, KeyError, TypeError):
        return None


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
        entry = {"method": self.command, "path": url.path, "query": url.query, "token": token,
                 "client_cn": self.client_cn, "status": 0, "watch": is_watch}
        self.log_entry = entry
        code = self.route(url.path, param, is_watch, token)
        if self.log_entry is not None:
            entry["status"] = code
            self.app.state.log_request(entry)

    def do_POST(self):
        self.refuse(405)

    do_PUT = do_POST
    do_DELETE = do_POST
    do_PATCH = do_POST

    def refuse(self, code):
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True
        self.app.state.log_request({"method": self.command, "path": self.path, "query": "",
                                    "token": self.presented_token(), "client_cn": self.client_cn,
                                    "status": code, "watch": False})
        self.send_json(code, status_object(code, "this test server is read-only"))

    def route(self, path, param, is_watch, token):
        """Answers one GET; returns the status code sent."""
        if not self.authenticated(token):
            self.send_json(401, status_object(401, "Unauthorized"))
            return 401
        failure = self.app.state.take_failure()
        if failure:
            self.send_json(failure, status_object(failure, "injected failure (test server)"))
            return failure
        documents = self.app.discovery
        if path.rstrip("/") in documents or path == "/":
            self.send_json(200, documents.get(path.rstrip("/") or "/", {"paths": sorted(documents)}))
            return 200
        target = parse_resource_path(path)
        if target is None:
            self.send_json(404, status_object(404, "the server could not find the requested resource"))
            return 404
        resource, namespace, name = target
        labels = parse_selector(param("labelSelector"))
        fields = parse_selector(param("fieldSelector"))
        if labels is None or fields is None or any(
                key not in ("metadata.name", "metadata.namespace") for key, _, _ in fields):
            self.send_json(400, status_object(400, "unsupported selector in this test server"))
            return 400
        if name is not None:
            if is_watch:
                fields = fields + [("metadata.name", "=", name)]
            else:
                return self.get_one(resource, namespace, name)
        selection = Filter(resource, namespace, labels, fields)
        if is_watch:
            return self.watch(selection, param)
        return self.list(selection, param)

    def get_one(self, resource, namespace, name):
        with self.app.state.cond:
            obj = self.app.state.objects.get((resource, namespace, name))
        if obj is None:
            group = "discovery.k8s.io" if resource == "endpointslices" else ""
            message = '%s "%s" not found' % (resource if not group else resource + "." + group, name)
            self.send_json(404, status_object(404, message, details={
                "name": name, "group": group, "kind": resource}))
            return 404
        self.send_json(200, obj)
        return 200

    def list(self, selection, param):
        state = self.app.state
        api_version, _, list_kind = RESOURCES[selection.resource]
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
            rv, offset = decoded
            with state.cond:
                items = state.snapshots.get(rv)
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
            with state.cond:
                state.snapshots[rv] = items
                while len(state.snapshots) > MAX_LIST_SNAPSHOTS:
                    state.snapshots.pop(min(state.snapshots))
            metadata["continue"] = encode_continue(rv, following)
            metadata["remainingItemCount"] = len(items) - following
        # List items carry no kind/apiVersion, as the real server encodes them.
        body_items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
                      for item in page]
        self.send_json(200, {"kind": list_kind, "apiVersion": api_version, "metadata": metadata,
                             "items": body_items})
        return 200

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def client_gone(self):
        """True when a watching client closed its connection: it sends nothing while it watches
        (HTTP/1.1, no pipelining), so anything readable is its end. Without this check an
        abandoned watch would linger until its next write or its timeout."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        return bool(readable)

    def watch(self, selection, param):
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
        watcher, error = state.start_watch(selection, since_rv, param("allowWatchBookmarks") == "true")
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
                    self.write_chunk(compact_json({"type": kind, "object": obj}) + b"\n")
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
                raise ValueError("churn: each variant must be a Service or an EndpointSlice")
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
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "objects" or parts[1] not in RESOURCES:
            return self.reply(404, {"error": "DELETE /objects/{services|endpointslices}/{ns}/{name}"})
        gone = self.server.app.state.delete(parts[1], parts[2], parts[3])
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
