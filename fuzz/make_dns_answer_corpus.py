#!/usr/bin/env python3
"""Captures real DNS answers from dnsmasq for the dns_answer seed corpus (fuzz/corpus/dns_answer).

Starts dnsmasq (Debian package) on a free 127.0.0.1 port with a small hosts file and SRV records,
sends A, AAAA and SRV queries over UDP and writes each raw response to NAME.bin. Every wait is
bounded; dnsmasq is stopped by its own PID.

    python3 fuzz/make_dns_answer_corpus.py fuzz/corpus/dns_answer
"""
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

TYPES = {"A": 1, "AAAA": 28, "SRV": 33, "CNAME": 5}

QUERIES = [
    ("a-web", "web.test", "A"),
    ("aaaa-web", "web.test", "AAAA"),
    ("a-many", "many.test", "A"),
    ("a-cname", "alias.test", "A"),
    ("aaaa-nodata", "b.test", "AAAA"),
    ("a-nxdomain", "missing.test", "A"),
    ("srv-tls", "_tls._tcp.svc.test", "SRV"),
    ("srv-nxdomain", "_tls._tcp.none.test", "SRV"),
    ("srv-unavailable", "_x._tcp.off.test", "SRV"),
    ("a-upper", "WEB.TeSt", "A"),
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(name, qtype):
    qid = random.randrange(65536)
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return qid, header + labels + struct.pack(">HH", TYPES[qtype], 1)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/dns_answer"
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        hosts = os.path.join(tmp, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.5 web.test\n::1 web.test\n2001:db8::5 web.test\n127.0.0.6 b.test\n")
            f.write("".join(f"127.0.1.{i} many.test\n" for i in range(1, 31)))
        port = free_port()
        argv = ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", f"--port={port}",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                f"--addn-hosts={hosts}", "--local=/test/", "--local-ttl=42", "--pid-file=",
                "--user=root", "--cname=alias.test,web.test",
                "--srv-host=_tls._tcp.svc.test,web.test,8443,0,10",
                "--srv-host=_tls._tcp.svc.test,b.test,9443,0,0",
                "--srv-host=_tls._tcp.svc.test,c.test,7000,5,5",
                "--srv-host=_x._tcp.off.test"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(0.2)
            for file_name, name, qtype in QUERIES:
                qid, message = query(name, qtype)
                answer = None
                for _ in range(25):  # dnsmasq may still be starting: about 5 s at most
                    sock.sendto(message, ("127.0.0.1", port))
                    try:
                        answer, _ = sock.recvfrom(65535)
                    except socket.timeout:
                        continue
                    if answer[:2] == message[:2]:
                        break
                    answer = None
                if answer is None:
                    sys.exit(f"no answer for {name} {qtype}")
                with open(os.path.join(out, file_name + ".bin"), "wb") as f:
                    f.write(answer)
                print(f"{file_name}.bin: {len(answer)} bytes")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


if __name__ == "__main__":
    main()
