#!/usr/bin/python3
# A passgate fleet behind ECMP, in network namespaces on one machine (issue 18; FLEET.md has the
# topology, the choices and the figures):
#   pgf-r   router: BIRD 2 learns the VIP from every node over BGP, installs one ECMP route
#           (merge paths), L4 hash (fib_multipath_hash_policy 3, fields 0x37: see FLEET.md)
#   pgf-n1..3  nodes: the build's passgate on VIP:443 (maglev on the source IP) and ExaBGP's
#           packaged healthcheck announcing the VIP while `curl -sf /readyz` succeeds
#   pgf-b   backends: four addresses, one fleet_load.py backend process, reached by every node
#   pgf-c   client: 300 source addresses, fleet_load.py client (checksummed streams)
# Cases (one JUnit case each): spreading, affinity, planned drain (plain ECMP and resilient
# nexthop group), crash (SIGKILL) and return, reload of all nodes under load.
# Needs root, bird2, exabgp, curl, iproute2. Everything it creates is removed at exit, even on
# failure. PASSGATE_FLEET_LONG=1 adds the longer measurements FLEET.md quotes (repeats, silent
# death by the BGP hold timer, drain without drain_delay).
#
#   fleet_test.py REPORT.xml          (env: PASSGATE_BINARY, PASSGATE_CLIENTHELLOS)
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from xml.sax.saxutils import quoteattr

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"  # Debian's: ExaBGP's module lives there, not in a python3 earlier on PATH
PREFIX = "pgf-"
ROUTER, CLIENT, BACKENDS = "pgf-r", "pgf-c", "pgf-b"
NODES = ["pgf-n1", "pgf-n2", "pgf-n3"]
VIP = "10.77.100.1"
PORT = 443
BACKEND_ADDRESSES = [f"10.77.250.{i}" for i in range(11, 15)]
SOURCES = [f"10.77.201.{i}" for i in range(1, 251)] + [f"10.77.202.{i}" for i in range(1, 51)]
NODE_OF = {f"10.77.{i}.2": f"n{i}" for i in (1, 2, 3)}  # the address a backend sees -> node
DRAIN_DELAY = 4
has_drain_delay = False  # set once: does this passgate know [runtime] drain_delay?
LONG = os.environ.get("PASSGATE_FLEET_LONG") == "1"

started = time.monotonic()
work = None
processes = []  # every Popen this test started (killed by process group at exit)
cases = []
figures = {}


def elapsed():
    return f"{time.monotonic() - started:.1f}s"


def run(cmd, timeout=30, check=True, input=None):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {result.returncode}: {result.stderr.strip()[:500]}")
    return result.stdout


def ip_batch(lines):
    """Runs ip commands in batches; a line "-n NS ..." runs in namespace NS (consecutive lines of
    one namespace share one `ip -n NS -batch`)."""
    groups = []
    for line in lines:
        ns, command = (line.split(" ", 2)[1], line.split(" ", 2)[2]) if line.startswith("-n ") else ("", line)
        if groups and groups[-1][0] == ns:
            groups[-1][1].append(command)
        else:
            groups.append((ns, [command]))
    for ns, commands in groups:
        run(["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"], input="\n".join(commands) + "\n")


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def spawn(cmd, log, **kw):
    out = open(log, "ab")
    process = subprocess.Popen(cmd, stdout=kw.pop("stdout", out), stderr=out, stdin=subprocess.DEVNULL,
                               start_new_session=True, **kw)
    processes.append(process)
    return process


def kill_group(process, sig=signal.SIGKILL):
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def poll(condition, seconds, step=0.02):
    """Polls until condition() is truthy or the deadline passes; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


# --- topology --------------------------------------------------------------------------------

def remove_namespaces():
    listed = run(["ip", "netns", "list"], check=False)
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pids = run(["ip", "netns", "pids", name], check=False).split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        for _ in range(100):
            if not run(["ip", "netns", "pids", name], check=False).split():
                break
            time.sleep(0.05)
        run(["ip", "netns", "del", name], check=False)


def build_topology():
    remove_namespaces()  # a run killed hard may have left its namespaces
    lines = []
    for ns in [ROUTER, CLIENT, BACKENDS] + NODES:
        run(["ip", "netns", "add", ns])
        lines.append(f"-n {ns} link set lo up")
    for i, node in enumerate(NODES, 1):
        lines += [f"link add r-n{i} netns {ROUTER} type veth peer name n{i}-r netns {node}",
                  f"-n {ROUTER} addr add 10.77.{i}.1/24 dev r-n{i}", f"-n {node} addr add 10.77.{i}.2/24 dev n{i}-r",
                  f"-n {ROUTER} link set r-n{i} up", f"-n {node} link set n{i}-r up",
                  f"-n {node} addr add {VIP}/32 dev lo",  # every node owns the VIP
                  f"-n {node} route add 10.77.0.0/16 via 10.77.{i}.1"]
    lines += [f"link add r-c netns {ROUTER} type veth peer name c-r netns {CLIENT}",
              f"-n {ROUTER} addr add 10.77.200.1/24 dev r-c", f"-n {CLIENT} addr add 10.77.200.2/24 dev c-r",
              f"-n {ROUTER} link set r-c up", f"-n {CLIENT} link set c-r up",
              f"-n {CLIENT} route add default via 10.77.200.1",
              f"-n {ROUTER} route add 10.77.201.0/24 via 10.77.200.2",
              f"-n {ROUTER} route add 10.77.202.0/24 via 10.77.200.2",
              f"link add r-b netns {ROUTER} type veth peer name b-r netns {BACKENDS}",
              f"-n {ROUTER} addr add 10.77.250.1/24 dev r-b", f"-n {ROUTER} link set r-b up",
              f"-n {BACKENDS} link set b-r up"]
    lines += [f"-n {BACKENDS} addr add {a}/24 dev b-r" for a in BACKEND_ADDRESSES]
    lines += [f"-n {BACKENDS} route add default via 10.77.250.1"]
    lines += [f"-n {CLIENT} addr add {a}/32 dev c-r" for a in SOURCES]
    ip_batch(lines)
    # The L4 hash on the fields themselves (policy 3), not policy 1: see FLEET.md.
    run(in_ns(ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=3",
              "net.ipv4.fib_multipath_hash_fields=0x0037", "net.ipv4.conf.all.rp_filter=0"))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def router_config(bfd_on_n3=False):
    d = f"{work}/r"
    peers = "\n".join(f"protocol bgp n{i} from node {{ neighbor 10.77.{i}.2 as 65001;"
                      f"{' bfd on;' if bfd_on_n3 and i == 3 else ''} }}" for i in (1, 2, 3))
    return f"""log "{d}/bird.log" all;
router id 10.77.200.1;
protocol device {{}}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
  merge paths on limit 8;
}}
template bgp node {{
  local as 65000;
  hold time 9; keepalive time 3; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import all; export none; }};
}}
protocol bfd {{ interface "r-*" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}
{peers}
"""


def start_router():
    d = f"{work}/r"
    os.makedirs(d)
    write(f"{d}/bird.conf", router_config())
    spawn(in_ns(ROUTER, "bird", "-f", "-c", f"{d}/bird.conf", "-s", f"{d}/bird.ctl", "-P", f"{d}/bird.pid"),
          f"{d}/bird.out")


def passgate_config(i, drain_delay, connect_timeout="3s"):
    endpoints = ", ".join(f'"{a}:9000"' for a in BACKEND_ADDRESSES)
    delay = f'drain_delay = "{drain_delay}s"\n' if drain_delay is not None and has_drain_delay else ""
    return f"""[runtime]
workers = 2
shutdown_timeout = "5s"
{delay}
[admin]
address = "127.0.0.1:9901"

[[listener]]
name = "vip"
address = "{VIP}:{PORT}"
default_route = "all"

[[route]]
name = "all"
listeners = ["vip"]
backends = [ {{ service = "pool" }} ]

[[service]]
name = "pool"
endpoints = [{endpoints}]
balance = "maglev"
hash_key = "source_ip"
connect_timeout = "{connect_timeout}"
"""


class Node:
    def __init__(self, i):
        self.i, self.ns, self.dir = i, NODES[i - 1], f"{work}/n{i}"
        self.passgate = None
        self.exabgp = None
        os.makedirs(self.dir)

    def start_passgate(self, drain_delay=DRAIN_DELAY):
        write(f"{self.dir}/passgate.toml", passgate_config(self.i, drain_delay))
        self.passgate = spawn(in_ns(self.ns, os.environ["PASSGATE_BINARY"], "--allow-root", "--config", f"{self.dir}/passgate.toml"),
                              f"{self.dir}/passgate.log")

    def ready(self):
        return subprocess.run(in_ns(self.ns, "curl", "-sf", "--max-time", "1", "http://127.0.0.1:9901/readyz"),
                              capture_output=True, timeout=5).returncode == 0

    def metrics(self):
        return run(in_ns(self.ns, "curl", "-sf", "--max-time", "2", "http://127.0.0.1:9901/metrics"), check=False)

    def start_exabgp(self):
        i = self.i
        write(f"{self.dir}/exabgp.conf", f"""process hc {{
  run {PY} -m exabgp healthcheck --no-syslog --name vip --interval 1 --fast-interval 1 --rise 1 --fall 1 --timeout 1 --no-ip-setup --withdraw-on-down --ip {VIP}/32 --cmd "curl -sf --max-time 1 http://127.0.0.1:9901/readyz";
  encoder text;
}}
neighbor 10.77.{i}.1 {{
  router-id 10.77.{i}.2; local-address 10.77.{i}.2; local-as 65001; peer-as 65000; hold-time 9;
  api {{ processes [ hc ]; }}
}}
""")
        env = dict(os.environ, **{"exabgp.daemon.user": "root", "exabgp.api.cli": "false",
                                  "exabgp.log.destination": f"{self.dir}/exabgp.log",
                                  "exabgp.daemon.pid": f"{self.dir}/exabgp.pid"})
        self.exabgp = spawn(in_ns(self.ns, PY, "-m", "exabgp", f"{self.dir}/exabgp.conf"), f"{self.dir}/exabgp.out",
                            env=env)

    def wait_passgate_exit(self, seconds):
        try:
            return self.passgate.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None


# --- the router's view ------------------------------------------------------------------------

def resilient_members():
    """The members of the mirror's resilient group as gateways (iproute2 6.1 prints no JSON
    for a route with nhid, so the group is read from `ip nexthop show`)."""
    out = run(["ip", "-n", ROUTER, "nexthop", "show", "id", "1000"], check=False).split()
    if "group" not in out or "nhid 1000" not in run(["ip", "-n", ROUTER, "route", "show", "table", "200"], check=False):
        return []
    return sorted(f"10.77.{int(m) - 1000}.2" for m in out[out.index("group") + 1].split("/"))


def gateways(table="main"):
    out = run(["ip", "-n", ROUTER, "-j", "route", "show", f"{VIP}/32", "table", table], check=False) or "[]"
    found = []
    for entry in json.loads(out):
        if "gateway" in entry:
            found.append(entry["gateway"])
        found += [hop["gateway"] for hop in entry.get("nexthops", []) if "gateway" in hop]
    return sorted(found)


class RouteFollower(threading.Thread):
    """Polls BIRD's VIP route every `period` seconds, calls changed(gateways) at every change and
    keeps (time, gateways) of each, until stopped (at most 600 s)."""

    def __init__(self, period):
        super().__init__(daemon=True)
        self.period = period
        self.changes = []
        self.stop = threading.Event()

    def changed(self, gateways_now):
        pass

    def run(self):
        last = None
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            now = gateways()
            if now != last:
                self.changed(now)
                self.changes.append((time.monotonic(), now))
                last = now
            time.sleep(self.period)


class RouteWatch(RouteFollower):
    """Keeps the times of the route's changes (10 ms poll)."""

    def __init__(self):
        super().__init__(0.01)

    def first_change(self, after, predicate):
        for t, gws in list(self.changes):
            if t >= after and predicate(gws):
                return t
        return None


class Mirror(RouteFollower):
    """Stands in for the daemon support that is missing (FLEET.md): mirrors BIRD's ECMP route for
    the VIP into a resilient nexthop group served from table 200 (20 ms poll). BIRD still selects
    the routes. `changes` holds the times the copy was written."""

    def __init__(self, buckets=128, idle_timer=120, unbalanced_timer=0):
        super().__init__(0.02)
        self.group = f"type resilient buckets {buckets} idle_timer {idle_timer} unbalanced_timer {unbalanced_timer}"

    def changed(self, now):
        if not now:
            run(["ip", "-n", ROUTER, "route", "del", f"{VIP}/32", "table", "200"], check=False)
            return
        ids = [str(1000 + int(g.split(".")[2])) for g in now]
        lines = [f"-n {ROUTER} nexthop replace id {1000 + int(g.split('.')[2])} via {g} dev r-n{g.split('.')[2]}"
                 for g in now]
        lines.append(f"-n {ROUTER} nexthop replace id 1000 group {'/'.join(ids)} {self.group}")
        lines.append(f"-n {ROUTER} route replace {VIP}/32 nhid 1000 table 200")
        try:
            ip_batch(lines)
        except RuntimeError:  # the group does not exist yet: add it
            lines[-2] = lines[-2].replace("nexthop replace id 1000", "nexthop add id 1000")
            ip_batch(lines)

    def install(self):
        self.start()
        run(["ip", "-n", ROUTER, "rule", "add", "to", f"{VIP}/32", "lookup", "200", "pref", "100"])

    def remove(self):
        self.stop.set()
        self.join(5)
        run(["ip", "-n", ROUTER, "rule", "del", "to", f"{VIP}/32", "lookup", "200", "pref", "100"], check=False)
        run(["ip", "-n", ROUTER, "route", "flush", "table", "200"], check=False)
        run(["ip", "-n", ROUTER, "nexthop", "flush"], check=False)


# --- traffic --------------------------------------------------------------------------------

def hello():
    return os.path.join(os.environ["PASSGATE_CLIENTHELLOS"], "curl-h2.bin")


def start_backends():
    d = f"{work}/b"
    os.makedirs(d)
    process = spawn(in_ns(BACKENDS, PY, f"{HERE}/fleet_load.py", "backend", "--hello", hello(), "--seconds", "1200",
                          "--listen", *[f"{a}:9000" for a in BACKEND_ADDRESSES]), f"{d}/backend.log",
                    stdout=subprocess.PIPE)
    line = process.stdout.readline().decode()
    if not line.startswith("listening"):
        raise RuntimeError(f"backend did not start: {line!r}")


class Load:
    """One fleet_load.py client in the client namespace."""

    def __init__(self, name, sources=SOURCES, **options):
        self.log = f"{work}/{name}.client.log"
        args = [PY, f"{HERE}/fleet_load.py", "client", "--hello", hello(), "--vip", f"{VIP}:{PORT}",
                "--sources", ",".join(sources)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.process = spawn(in_ns(CLIENT, *args), self.log, stdout=subprocess.PIPE)
        self.established = self.process.stdout.readline().decode().strip()

    def result(self, seconds=120):
        out, _ = self.process.communicate(timeout=seconds)
        if self.process.returncode != 0:
            raise RuntimeError(f"client exit {self.process.returncode}: {open(self.log).read()[-800:]}")
        return json.loads(out)["records"]


def by_node(records):
    counts = {"n1": 0, "n2": 0, "n3": 0}
    for r in records:
        if "node" in r:
            counts[NODE_OF.get(r["node"], r["node"])] = counts.get(NODE_OF.get(r["node"], r["node"]), 0) + 1
    return counts


def failures(records):
    return [r for r in records if not r.get("ok")]


# --- cases ------------------------------------------------------------------------------------

def case(name):
    def wrap(function):
        def runner(*args):
            try:
                text = function(*args) or ""
                cases.append((name, None, text))
                print(f"ok   {name} ({elapsed()})\n     " + text.replace("\n", "\n     "), flush=True)
                return True
            except Exception as error:  # the case fails; the next ones still run
                message = f"{error}\n{traceback.format_exc()[-1500:]}"
                cases.append((name, message, ""))
                print(f"FAIL {name} ({elapsed()})\n     {message}", flush=True)
                return False
        return runner
    return wrap


def check(condition, message):
    if not condition:
        raise AssertionError(message)


@case("fleet up: BIRD has one ECMP route to the VIP over the three nodes")
def fleet_up(nodes):
    check(poll(lambda: all(n.ready() for n in nodes), 20, 0.1), "passgate /readyz not 200 on every node")
    t = time.monotonic()
    check(poll(lambda: len(gateways()) == 3, 40, 0.05), f"route {gateways()} after 40 s")
    return f"3 paths {time.monotonic() - t:.1f} s after every /readyz answered 200"


@case("spreading: 3,000 connections from 300 addresses land on every node (each >= 20%)")
def spreading():
    records = Load("spreading", burst=3000, concurrency=100).result()
    bad = failures(records)
    counts = by_node(records)
    figures.setdefault("spreading", []).append({"connections": len(records), "failed": len(bad), "by_node": counts})
    check(not bad, f"{len(bad)} failed, e.g. {bad[:3]}")
    check(all(c >= 0.2 * len(records) for c in counts.values()), f"by node: {counts}")
    return f"by node {counts}, 0 failed"


@case("affinity: each client address reaches the same backend through each node in turn")
def affinity():
    seen = {}
    for i in (1, 2, 3):
        # Forces every client through node i (a policy rule in front of the ECMP route).
        ip_batch([f"-n {ROUTER} route replace {VIP}/32 via 10.77.{i}.2 table 10{i}",
                  f"-n {ROUTER} rule add from 10.77.200.0/22 to {VIP}/32 lookup 10{i} pref 50"])
        try:
            records = Load(f"affinity-n{i}", burst=len(SOURCES), concurrency=100).result()
        finally:
            run(["ip", "-n", ROUTER, "rule", "del", "pref", "50"], check=False)
        bad = failures(records)
        check(not bad, f"through n{i}: {len(bad)} failed, e.g. {bad[:3]}")
        check(by_node(records)[f"n{i}"] == len(SOURCES), f"forced through n{i}, landed {by_node(records)}")
        for r in records:
            seen.setdefault(r["src"], []).append(r["backend"])
    differing = {src: b for src, b in seen.items() if len(set(b)) != 1}
    used = {b[0] for b in seen.values()}
    figures.setdefault("affinity", []).append({"sources": len(seen), "differing": len(differing),
                                               "backends_used": len(used)})
    check(len(seen) == len(SOURCES), f"{len(seen)} sources answered")
    check(not differing, f"{len(differing)} sources saw different backends, e.g. {list(differing.items())[:3]}")
    check(len(used) == len(BACKEND_ADDRESSES), f"only backends {used} used")
    return f"{len(seen)} addresses x 3 nodes: same backend every time; {len(used)} backends used"


def restart(node, seconds=20, drain_delay=DRAIN_DELAY):
    """Starts passgate on the node again and waits for the route to have all three paths."""
    node.start_passgate(drain_delay)
    t = time.monotonic()
    check(poll(lambda: len(gateways()) == 3, seconds, 0.02), f"route {gateways()} {seconds} s after restart")
    return time.monotonic() - t


PINNED = "10.77.201.0/27"  # in the drain: 31 client addresses kept on the drained node (below)


def pinned(source):
    return source.startswith("10.77.201.") and 1 <= int(source.split(".")[3]) <= 31


def drain(node, variant, drain_delay):
    """SIGTERM to node (an end member of the ECMP set) under load; returns the figures.
    The streams of 31 client addresses are pinned to the node by a policy rule in the router, as
    a flow-aware L4 tier would keep them there: they show what passgate does with established
    streams while it drains. All the others follow the routing daemon."""
    mirror = None
    if variant == "resilient":
        mirror = Mirror()
        mirror.install()
        check(poll(lambda: len(resilient_members()) == 3, 5), "mirror did not install the resilient route")
    ip_batch([f"-n {ROUTER} route replace {VIP}/32 via 10.77.{node.i}.2 table 10{node.i}",
              f"-n {ROUTER} rule add from {PINNED} to {VIP}/32 lookup 10{node.i} pref 50"])
    try:
        watch = RouteWatch()
        watch.start()
        load = Load(f"drain-{variant}", streams=240, stream_seconds=6, rate=100, seconds=8, timeout=3)
        check(load.established == "established 240", f"streams: {load.established}")
        t_term = time.monotonic()
        node.passgate.send_signal(signal.SIGTERM)
        records = load.result()
        code = node.wait_passgate_exit(drain_delay + 10)
        watch.stop.set()
        t_gone = watch.first_change(t_term, lambda g: f"10.77.{node.i}.2" not in g)
        mine = f"10.77.{node.i}.2"
        streams = [r for r in records if r["kind"] == "stream" and not pinned(r["src"])]
        kept = [r for r in records if r["kind"] == "stream" and pinned(r["src"])]
        drained = [r for r in streams if r.get("node") == mine]
        others = [r for r in streams if r.get("node") not in (None, mine)]
        new = [r for r in records if r["kind"] == "short" and r["start"] >= t_term and not pinned(r["src"])]
        # When the router's choice changes (BIRD's route; with the mirror, its copy a moment
        # later), a short connection that happens to be in flight may be moved and reset like any
        # established flow. That is the route change, not the drain: counted apart. What the
        # drain must avoid is a new connection refused (or unanswered) by the draining node.
        t_change = t_gone
        if mirror and t_gone:
            t_change = next((t for t, g in mirror.changes if t >= t_gone - 0.05), t_gone)

        def in_flight(r):
            return t_change is not None and r["start"] <= t_change + 0.1 and r["end"] >= t_change - 0.1

        refused = [r for r in failures(new) if r["error"].startswith("connect")]
        result = {
            "withdrawn_after_s": round(t_gone - t_term, 3) if t_gone else None,
            "new_connections": len(new), "new_failed": len(failures(new)), "new_refused": len(refused),
            "new_reset_in_flight_at_route_change": sum(1 for r in failures(new) if r not in refused and in_flight(r)),
            "new_failed_otherwise": sum(1 for r in failures(new) if r not in refused and not in_flight(r)),
            "new_on_drained_node_after_sigterm": sum(1 for r in new if r.get("node") == mine),
            "pinned_streams": len(kept), "pinned_streams_broken": len(failures(kept)),
            "drained_streams": len(drained), "drained_streams_broken": len(failures(drained)),
            "other_streams": len(others), "other_streams_broken": len(failures(others)),
            "exit_code": code,
        }
        if mirror and t_gone:
            result["mirror_lag_s"] = round(t_change - t_gone, 3)
        return result
    finally:
        run(["ip", "-n", ROUTER, "rule", "del", "pref", "50"], check=False)
        if mirror:
            mirror.remove()
        if node.passgate.poll() is None:
            node.passgate.kill()
            node.passgate.wait(5)


def drain_case(variant, nodes):
    @case(f"planned drain, {variant}: SIGTERM with drain_delay under load")
    def body():
        node = nodes[0]  # n1: the first of BIRD's sorted nexthops, an end member (FLEET.md)
        result = drain(node, variant, DRAIN_DELAY)
        result["back_after_restart_s"] = round(restart(node), 2)
        figures.setdefault(f"drain_{variant}", []).append(result)
        text = json.dumps(result)
        check(has_drain_delay, f"this passgate does not know [runtime] drain_delay: {text}")
        check(result["withdrawn_after_s"] is not None, f"route never withdrawn: {text}")
        check(result["new_refused"] == 0 and result["new_failed_otherwise"] == 0,
              f"new connections failed during the drain: {text}")
        check(result["exit_code"] == 0, f"passgate exit code {result['exit_code']}")
        check(result["pinned_streams"] == 31 and result["pinned_streams_broken"] == 0,
              f"established streams kept on the draining node did not all complete: {text}")
        if variant == "resilient":
            check(result["other_streams_broken"] == 0, f"other nodes' streams broke: {text}")
        else:
            # End member of hash-threshold ECMP: about a quarter of the survivors' flows move.
            check(result["other_streams_broken"] > 0, f"plain ECMP moved none of the other nodes' flows: {text}")
        return text
    return body


@case("crash: SIGKILL of passgate, withdrawal, failed connections, return and ramp-up")
def crash(nodes):
    node = nodes[0]
    mine = f"10.77.{node.i}.2"
    watch = RouteWatch()
    watch.start()
    load = Load("crash", rate=100, seconds=12, timeout=2)
    time.sleep(2)  # the load's schedule: 2 s of the whole fleet first
    t_kill = time.monotonic()
    node.passgate.kill()
    node.passgate.wait(5)
    check(poll(lambda: mine not in gateways(), 10, 0.01), "route not withdrawn 10 s after the crash")
    t_gone = time.monotonic()
    back = restart(node)
    t_back = time.monotonic()
    records = load.result()
    watch.stop.set()
    t_gone = watch.first_change(t_kill, lambda g: mine not in g) or t_gone
    t_back = watch.first_change(t_gone, lambda g: mine in g) or t_back
    bad = failures(records)
    after = [r for r in records if r["start"] >= t_back + 1]
    # Two windows may fail connections: the crash until the withdrawal (connections sent to the
    # dead node), and the return, when plain ECMP rehashes some flows in flight onto the
    # returning node (which has no socket for them and resets them).
    # The route watch sees a change up to ~20 ms late (10 ms poll + one `ip` run): 0.1 s of slack.
    def in_crash(r):
        return r["end"] >= t_kill and r["start"] <= t_gone + 0.2

    def at_return(r):
        return r["end"] >= t_back - 0.1 and r["start"] <= t_back + 0.2

    result = {"withdrawn_after_s": round(t_gone - t_kill, 3), "failed": len(bad),
              "failed_until_withdrawn": sum(1 for r in bad if in_crash(r)),
              "failed_at_return": sum(1 for r in bad if at_return(r) and not in_crash(r)),
              "back_after_restart_s": round(back, 2),
              "first_s_after_return_share": None, "later_share": None}
    first = [r for r in records if t_back <= r["start"] < t_back + 1]
    if first:
        result["first_s_after_return_share"] = round(by_node(first)["n1"] / len(first), 2)
    if after:
        result["later_share"] = round(by_node(after)["n1"] / len(after), 2)
    figures.setdefault("crash_sigkill", []).append(result)
    text = json.dumps(result)
    outside = [dict(r, start=round(r["start"] - t_kill, 3), end=round(r["end"] - t_kill, 3)) for r in bad
               if not in_crash(r) and not at_return(r)]
    check(not outside, f"failures outside the crash window: {text}; outside (times from the kill): {outside[:4]}")
    check(after and result["later_share"] >= 0.2, f"n1 did not take its share back: {text}")
    return text


@case("reload: SIGHUP to every node at once under load, twice: 0 failed connections")
def reload_all(nodes):
    load = Load("reload", streams=60, stream_seconds=6, rate=100, seconds=6, timeout=3)
    check(load.established == "established 60", f"streams: {load.established}")
    for timeout in ("4s", "3s"):
        for n in nodes:  # a real change (connect_timeout), so each reload installs a new config
            write(f"{n.dir}/passgate.toml", passgate_config(n.i, DRAIN_DELAY, timeout))
        for n in nodes:
            n.passgate.send_signal(signal.SIGHUP)
        time.sleep(1.5)  # the load's schedule: the second reload comes mid-load
    records = load.result()
    bad = failures(records)
    reloads = {}
    for n in nodes:
        line = [l for l in n.metrics().splitlines() if l.startswith('passgate_config_reloads_total{result="success"}')]
        reloads[f"n{n.i}"] = float(line[0].split()[-1]) if line else 0
    figures.setdefault("reload", []).append({"connections": len(records), "failed": len(bad), "reloads": reloads})
    check(not bad, f"{len(bad)} failed, e.g. {bad[:3]}")
    check(all(v == 2 for v in reloads.values()), f"reloads counted: {reloads}")
    return f"{len(records)} connections (60 streams), 0 failed; reloads {reloads}"


# --- longer measurements (PASSGATE_FLEET_LONG=1) ------------------------------------------------

@case("measure: drain with drain_delay 0s (refusals until the withdrawal)")
def drain_without_delay(nodes):
    node = nodes[0]
    node.passgate.kill()
    node.passgate.wait(5)
    check(poll(lambda: f"10.77.{node.i}.2" not in gateways(), 10, 0.01), "n1 not withdrawn after SIGKILL")
    restart(node, drain_delay=0)
    result = drain(node, "plain", 0)
    restart(node)
    figures.setdefault("drain_delay_0", []).append(result)
    return json.dumps(result)


@case("measure: a node's return under a resilient group (idle_timer 2 s, unbalanced_timer 10 s)")
def resilient_return(nodes):
    """A returning node gets only buckets idle for idle_timer, all of its share once the group
    has been unbalanced for unbalanced_timer: its share of new connections, second by second."""
    node = nodes[0]
    mirror = Mirror(buckets=128, idle_timer=2, unbalanced_timer=10)
    mirror.install()
    try:
        check(poll(lambda: len(resilient_members()) == 3, 5), "mirror did not install the resilient route")
        node.passgate.kill()
        node.passgate.wait(5)
        check(poll(lambda: len(resilient_members()) == 2, 10, 0.01), "n1 not removed from the group")
        load = Load("resilient-return", rate=100, seconds=16, timeout=2)
        time.sleep(1)  # the load's schedule: 1 s on two nodes first
        back = restart(node)
        check(poll(lambda: len(resilient_members()) == 3, 5), "n1 not back in the group")
        t_back = time.monotonic()
        buckets = []  # n1's buckets, once a second
        for _ in range(14):
            out = run(["ip", "-n", ROUTER, "nexthop", "bucket", "show", "id", "1000"], check=False)
            buckets.append(sum(1 for line in out.splitlines() if f"nhid {1000 + node.i}" in line))
            time.sleep(max(0.0, t_back + len(buckets) - time.monotonic()))
        records = load.result()
    finally:
        mirror.remove()
    shares = []
    for second in range(14):
        window = [r for r in records if t_back + second <= r["start"] < t_back + second + 1]
        if window:
            shares.append(round(by_node(window)["n1"] / len(window), 2))
    result = {"back_after_restart_s": round(back, 2), "failed": len(failures(records)),
              "n1_share_by_second_after_return": shares, "n1_buckets_of_128_by_second": buckets}
    figures.setdefault("resilient_return", []).append(result)
    return json.dumps(result)


@case("measure: silent death (passgate and ExaBGP frozen by SIGSTOP): BGP hold timer")
def silent_death(nodes):
    node = nodes[0]
    return freeze(node, (node.passgate, node.exabgp), "silent_death", 16)


def freeze(node, frozen, key, seconds):
    """Under 100 new connections a second, freezes the node's processes (SIGSTOP: no FIN, no
    notification, as a hung machine) until the router withdraws its path, then thaws them."""
    mine = f"10.77.{node.i}.2"
    load = Load(key, rate=100, seconds=seconds, timeout=2)
    time.sleep(2)  # the load's schedule: 2 s of the whole fleet first
    t_stop = time.monotonic()
    for process in frozen:
        kill_group(process, signal.SIGSTOP)
    try:
        check(poll(lambda: mine not in gateways(), 15, 0.005), "route not withdrawn 15 s after the freeze")
        t_gone = time.monotonic()
    finally:
        for process in frozen:
            kill_group(process, signal.SIGCONT)
    check(poll(lambda: mine in gateways(), 20, 0.01), "route not back 20 s after SIGCONT")
    t_back = time.monotonic()
    records = load.result()
    bad = failures(records)
    result = {"withdrawn_after_s": round(t_gone - t_stop, 3), "back_after_sigcont_s": round(t_back - t_gone, 2),
              "failed": len(bad), "failed_while_frozen": sum(1 for r in bad if t_stop <= r["start"] <= t_gone),
              "connections_while_frozen": sum(1 for r in records if t_stop <= r["start"] <= t_gone)}
    figures.setdefault(key, []).append(result)
    return json.dumps(result)


@case("measure: silent death of a BIRD speaker with BFD (100 ms x 3)")
def bfd_death(nodes):
    """n3's ExaBGP gives way to BIRD (no BFD in ExaBGP) driven by a readiness loop on /readyz;
    the router turns BFD on toward it. Then n3 (passgate, BIRD, the loop) freezes under load."""
    node = nodes[2]
    mine = f"10.77.{node.i}.2"
    kill_group(node.exabgp, signal.SIGTERM)
    node.exabgp.wait(10)
    d = node.dir
    write(f"{d}/bird.conf", f"""log "{d}/bird.log" all;
router id {mine};
protocol device {{}}
protocol static vip {{ ipv4; route {VIP}/32 blackhole; }}
protocol bfd {{ interface "n{node.i}-r" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}
protocol bgp rtr {{
  local {mine} as 65001; neighbor 10.77.{node.i}.1 as 65000;
  hold time 9; keepalive time 3; connect retry time 1; error wait time 1, 5; bfd on;
  ipv4 {{ import none; export filter {{ if proto = "vip" then {{ bgp_med = 100; accept; }} reject; }}; next hop self; }};
}}
""")
    write(f"{work}/r/bird.conf", router_config(bfd_on_n3=True))
    run(in_ns(ROUTER, "birdc", "-s", f"{work}/r/bird.ctl", "configure"))
    speaker = spawn(in_ns(node.ns, "bird", "-f", "-c", f"{d}/bird.conf", "-s", f"{d}/bird.ctl", "-P", f"{d}/bird.pid"),
                    f"{d}/bird.out")
    # The readiness loop (FLEET.md): the VIP's static protocol follows /readyz.
    loop = spawn(in_ns(node.ns, "bash", "-c", f"for _ in $(seq 1500); do if curl -sf --max-time 1 http://127.0.0.1:9901/readyz "
                       f">/dev/null; then birdc -s {d}/bird.ctl enable vip; else birdc -s {d}/bird.ctl disable vip; "
                       f"fi >/dev/null; sleep 0.2; done"), f"{d}/readiness.log")
    check(poll(lambda: mine in gateways() and len(gateways()) == 3, 30, 0.05), f"BIRD speaker's route: {gateways()}")
    check(poll(lambda: "Up" in run(in_ns(ROUTER, "birdc", "-s", f"{work}/r/bird.ctl", "show", "bfd", "sessions"),
                                   check=False), 10, 0.1), "no BFD session up")
    return freeze(node, (node.passgate, speaker, loop), "bfd_death", 10)


# --- report ------------------------------------------------------------------------------------

def write_report(path):
    body = ""
    for name, failure, _ in cases:
        if failure is None:
            body += f'<testcase classname="fleet" name={quoteattr(name)}/>'
        else:
            body += (f'<testcase classname="fleet" name={quoteattr(name)}>'
                     f'<failure message={quoteattr(failure[:3000])}/></testcase>')
    failed = sum(1 for c in cases if c[1] is not None)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f'<?xml version="1.0"?>\n<testsuites><testsuite name="fleet" tests="{len(cases)}" '
                f'failures="{failed}">{body}</testsuite></testsuites>\n')


def teardown():
    for process in processes:
        kill_group(process)
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            pass
    remove_namespaces()
    if work and os.environ.get("PASSGATE_FLEET_KEEP") != "1":
        shutil.rmtree(work, ignore_errors=True)


def main():
    global work
    report = sys.argv[1]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        @case("root and tools present (bird, exabgp, curl, ip)")
        def tools():
            check(os.geteuid() == 0, "needs root (network namespaces)")
            for tool in ("bird", "birdc", "curl", "ip"):
                check(shutil.which(tool), f"missing {tool} (see .ci/packages)")
            check(subprocess.run([PY, "-c", "import exabgp"]).returncode == 0, f"{PY} has no exabgp module")
        if not tools():
            return 1
        work = tempfile.mkdtemp(prefix="passgate-fleet.")
        figures["run"] = {"utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                          "load_average_before": open("/proc/loadavg").read().split()[:3]}
        global has_drain_delay
        has_drain_delay = True
        write(f"{work}/check.toml", passgate_config(1, DRAIN_DELAY))
        has_drain_delay = subprocess.run([os.environ["PASSGATE_BINARY"], "--check", "--config", f"{work}/check.toml"],
                                         capture_output=True).returncode == 0
        build_topology()
        start_backends()
        start_router()
        nodes = [Node(i) for i in (1, 2, 3)]
        for n in nodes:
            n.start_passgate()
            n.start_exabgp()
        if not fleet_up(nodes):
            return 1
        only = os.environ.get("PASSGATE_FLEET_ONLY", "")  # for work on one case: names, comma-separated
        for name, step in [("spreading", spreading), ("affinity", affinity),
                           ("drain-plain", drain_case("plain", nodes)), ("drain-resilient", drain_case("resilient", nodes)),
                           ("crash", lambda: crash(nodes)), ("reload", lambda: reload_all(nodes))]:
            if not only or name in only.split(","):
                step()
        measures = {"nodelay": drain_without_delay, "return": resilient_return, "silent": silent_death}
        if LONG and only in measures:
            measures[only](nodes)
        elif LONG and only != "bfd":  # repeats for the ranges FLEET.md quotes, and what CI need not run
            for _ in range(3):
                drain_case("plain", nodes)()
                drain_case("resilient", nodes)()
                crash(nodes)
            drain_without_delay(nodes)
            resilient_return(nodes)
            silent_death(nodes)
        if LONG and only not in measures:
            bfd_death(nodes)  # last: n3 stays a BIRD speaker
        print("figures " + json.dumps(figures), flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
        with open(os.path.join(os.path.dirname(os.path.abspath(report)), "fleet-figures.json"), "w") as f:
            json.dump(figures, f, indent=1)
    except Exception:
        traceback.print_exc()
        cases.append(("harness", traceback.format_exc()[-3000:], ""))
    finally:
        if any(c[1] for c in cases) and work:
            for log in sorted(os.popen(f"ls {work}/*/*.log {work}/*/*.out 2>/dev/null").read().split()):
                lines = open(log, errors="replace").readlines()
                if log.endswith("passgate.log"):  # the access log: only what did not complete
                    lines = [l for l in lines if "reason=completed" not in l]
                print(f"--- {log}\n" + "".join(lines[-15:]))
        teardown()
        write_report(report)
    return 1 if any(c[1] for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
