#!/usr/bin/env python3
"""HTTPS test server for tests/discovery/http_client_test.cpp (Python 3 standard library only).

Usage: http_test_server.py DIR TOKEN

Makes certificates with the openssl CLI in DIR (a CA, a server certificate for IP 127.0.0.1, a
client certificate, and an unrelated CA), listens on two ports of 127.0.0.1 chosen by the kernel
(the second requires a client certificate from the CA), then writes "PORT CLIENT_CERT_PORT" to
DIR/ports (atomically: once it exists the server accepts). Runs until killed or its parent exits.

Paths:
  /fixed             200, "hello from the test server\\n" with Content-Length
  /large?bytes=N     200, N bytes of 'x'
  /lines             200, chunked: lines with 100 ms pauses, one line split across chunks, a last line
                     without '\\n'
  /count?lines=N     200, chunked: "line 1" .. "line N", each '\\n'-terminated, then the end
  /silent            200, chunked: one line, then nothing for 30 s
  /unauthorized      401 with a JSON Status body
  /error?bytes=N     500 with N bytes of 'e'
  /slow?ms=N         waits N ms, then 200 "late\\n"
  /longline?bytes=N  200, chunked: one line of N bytes of 'y' and '\\n'
  /token             200, "match" when "Authorization: Bearer TOKEN" came, else "mismatch"
  /echo              any method: 200, "METHOD CONTENT-TYPE BODY-LENGTH\n" then the request's body
"""

import http.server
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(directory, name):
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name)
    return key, crt


def make_leaf(directory, name, ca_key, ca_crt, extensions):
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    crt = os.path.join(directory, name + ".crt")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write(extensions)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return key, crt


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    token = ""

    def log_message(self, fmt, *args):
        pass

    def fixed(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        number = lambda name, default: int(query.get(name, default))
        if url.path == "/fixed":
            self.fixed(200, b"hello from the test server\n")
        elif url.path == "/large":
            self.fixed(200, b"x" * number("bytes", 1000))
        elif url.path == "/lines":
            self.start_chunked()
            for part in [b"first line\nsecond ", b"line, split across chunks\n", b"third",
                         b" line\nfourth line\n", b"last line without newline"]:
                self.chunk(part)
                time.sleep(0.1)
            self.end_chunked()
        elif url.path == "/count":
            self.start_chunked()
            for i in range(1, number("lines", 10) + 1):
                self.chunk(b"line %d\n" % i)
            self.end_chunked()
        elif url.path == "/silent":
            self.start_chunked()
            self.chunk(b"one line, then silence\n")
            time.sleep(30)
            self.end_chunked()
        elif url.path == "/unauthorized":
            self.fixed(401, b'{"kind":"Status","apiVersion":"v1","status":"Failure",'
                            b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n',
                       "application/json")
        elif url.path == "/error":
            self.fixed(500, b"e" * number("bytes", 100))
        elif url.path == "/slow":
            time.sleep(number("ms", 5000) / 1000)
            self.fixed(200, b"late\n")
        elif url.path == "/longline":
            self.start_chunked()
            self.chunk(b"y" * number("bytes", 1000) + b"\n")
            self.end_chunked()
        elif url.path == "/echo":
            self.echo()
        elif url.path == "/token":
            matched = self.headers.get("Authorization") == "Bearer " + Handler.token
            self.fixed(200, b"match" if matched else b"mismatch")
        else:
            self.fixed(404, b"not found\n")


    def echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        head = "%s %s %d\n" % (self.command, self.headers.get("Content-Type") or "-", len(body))
        self.fixed(200, head.encode() + body)

    def do_body_method(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/echo":
            self.echo()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 0:
                self.rfile.read(length)
            self.fixed(404, b"not found\n")

    do_PATCH = do_body_method
    do_PUT = do_body_method
    do_POST = do_body_method
    do_DELETE = do_body_method


class TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, context):
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = context

    def finish_request(self, request, client_address):
        # The handshake runs in the request's thread: a stalled or failing client blocks no one.
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients that go away mid-response are what some tests do


def exit_with_parent():
    # A test binary that dies without its destructors (a signal) leaves no server behind.
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    directory, Handler.token = sys.argv[1], sys.argv[2]
    threading.Thread(target=exit_with_parent, daemon=True).start()
    ca_key, ca_crt = make_ca(directory, "ca")
    make_ca(directory, "other-ca")
    server_key, server_crt = make_leaf(directory, "server", ca_key, ca_crt,
                                       "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    make_leaf(directory, "client", ca_key, ca_crt, "extendedKeyUsage=clientAuth\n")

    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    plain.load_cert_chain(server_crt, server_key)
    mutual = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    mutual.load_cert_chain(server_crt, server_key)
    mutual.load_verify_locations(ca_crt)
    mutual.verify_mode = ssl.CERT_REQUIRED

    servers = [TlsServer(plain), TlsServer(mutual)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = " ".join(str(server.server_address[1]) for server in servers)
    with open(os.path.join(directory, "ports.tmp"), "w") as f:
        f.write(ports + "\n")
    os.rename(os.path.join(directory, "ports.tmp"), os.path.join(directory, "ports"))
    threading.Event().wait()


if __name__ == "__main__":
    main()
