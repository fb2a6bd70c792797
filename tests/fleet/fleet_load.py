#!/usr/bin/python3
# The fleet test's traffic: a backend and a client for checksummed streams through passgate.
#
# Protocol (behind a captured TLS ClientHello, which passgate routes and forwards unchanged):
#   client -> backend: ClientHello | 8-byte big-endian length N | N pseudo-random bytes
#   backend -> client: 64-byte identity line "BACKEND_ADDR PEER_ADDR HELLO_EXACT" right after the
#                      hello, then the SHA-256 of the N bytes once they all arrived, then FIN.
# PEER_ADDR is the address the backend sees: the node's own link address (passgate connects from
# it), so every connection says which node carried it and which backend it reached.
#
#   fleet_load.py backend --hello FILE --listen IP:PORT [IP:PORT...] --seconds S
#   fleet_load.py client  --hello FILE --vip IP:PORT --sources A,B,... [--burst N --concurrency C]
#                         [--streams N --stream-seconds S] [--rate R --seconds S] [--timeout S]
# The client prints "established N" once its long streams are all past the identity line (the
# test acts on the fleet after that), then one JSON object: every connection's record.
# Everything is bounded: each connection by --timeout, the whole run by its own deadline.
import argparse
import asyncio
import hashlib
import json
import random
import socket
import struct
import sys
import time

IDENT_SIZE = 64
IP_BIND_ADDRESS_NO_PORT = 24


def payload(seed, size):
    return random.Random(seed).randbytes(size)


async def read_hello(reader):
    header = await reader.readexactly(5)
    return header + await reader.readexactly(struct.unpack(">H", header[3:5])[0])


async def serve(args):
    hello = open(args.hello, "rb").read()

    async def handle(reader, writer):
        try:
            exact = await read_hello(reader) == hello
            me = writer.get_extra_info("sockname")[0]
            peer = writer.get_extra_info("peername")[0]
            writer.write(f"{me} {peer} {int(exact)}\n".encode().ljust(IDENT_SIZE))
            size = struct.unpack(">Q", await reader.readexactly(8))[0]
            digest = hashlib.sha256()
            while size:
                chunk = await reader.read(min(size, 65536))
                if not chunk:
                    return
                digest.update(chunk)
                size -= len(chunk)
            writer.write(digest.digest())
            await writer.drain()
            # The client closes first: the TIME_WAIT stays on the connecting sides (client, node),
            # whose kernels pick ports around it, not on the backend where a node's later SYN
            # with a reused port would meet it.
            await asyncio.wait_for(reader.read(1), 10)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    servers = []  # kept: the servers live as long as this list
    for address in args.listen:
        host, port = address.rsplit(":", 1)
        servers.append(await asyncio.start_server(handle, host, int(port), backlog=1024, reuse_address=True))
    print("listening", flush=True)
    await asyncio.sleep(args.seconds)


class Client:
    def __init__(self, args):
        self.args = args
        self.hello = open(args.hello, "rb").read()
        host, port = args.vip.rsplit(":", 1)
        self.vip = (host, int(port))
        self.records = []

    @staticmethod
    def now():
        # CLOCK_MONOTONIC is one clock for every network namespace: the test lines these times up
        # with its own events (a node stopped, the route withdrawn).
        return round(time.monotonic(), 4)

    async def connection(self, number, source, size, seconds, established=None):
        record = {"n": number, "src": source, "start": self.now(), "kind": "stream" if seconds else "short"}
        self.records.append(record)
        sock = None
        stage = "connect"
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, self.vip), self.args.timeout)
            record["sport"] = sock.getsockname()[1]
            reader, writer = await asyncio.open_connection(sock=sock)
            sock = None  # the stream owns it now
            data = payload(number, size)
            writer.write(self.hello)
            stage = "identity"
            ident = (await asyncio.wait_for(reader.readexactly(IDENT_SIZE), self.args.timeout)).split()
            record["backend"], record["node"], record["hello_exact"] = ident[0].decode(), ident[1].decode(), ident[2] == b"1"
            if established:
                established()
            stage = "stream"
            writer.write(struct.pack(">Q", size))
            # A stream is paced over `seconds` (10 chunks a second) so that it is mid-flight
            # whenever the fleet changes under it.
            chunks = max(1, int(seconds * 10))
            step = -(-size // chunks)
            for offset in range(0, size, step):
                writer.write(data[offset:offset + step])
                await asyncio.wait_for(writer.drain(), self.args.timeout)
                if seconds:
                    await asyncio.sleep(seconds / chunks)
            stage = "digest"
            digest = await asyncio.wait_for(reader.readexactly(32), self.args.timeout)
            record["ok"] = digest == hashlib.sha256(data).digest() and record["hello_exact"]
            if not record["ok"]:
                record["error"] = "checksum"
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as error:
            record["ok"] = False
            record["error"] = f"{stage}: {type(error).__name__} {error}"[:120]
        finally:
            if sock is not None:
                sock.close()
            record["end"] = self.now()

    async def run(self):
        args = self.args
        sources = args.sources.split(",")
        tasks = []
        number = 0
        deadline = args.seconds + args.stream_seconds + 4 * args.timeout + 10
        left = [0]
        if args.streams:
            left = [args.streams]
            done = asyncio.Event()

            def established():
                left[0] -= 1
                if left[0] == 0:
                    done.set()

            for i in range(args.streams):
                tasks.append(asyncio.create_task(self.connection(
                    number, sources[i % len(sources)], args.stream_bytes, args.stream_seconds, established)))
                number += 1
            try:
                await asyncio.wait_for(done.wait(), args.timeout + 2)
            except asyncio.TimeoutError:
                pass
        print(f"established {args.streams - left[0] if args.streams else 0}", flush=True)
        if args.burst:
            limit = asyncio.Semaphore(args.concurrency)

            async def limited(n, source):
                async with limit:
                    await self.connection(n, source, args.size, 0)

            for i in range(args.burst):
                tasks.append(asyncio.create_task(limited(number, sources[i % len(sources)])))
                number += 1
        if args.rate:
            # Open loop: new short connections on a fixed schedule, whatever completes.
            interval = 1.0 / args.rate
            start = time.monotonic()
            for i in range(int(args.rate * args.seconds)):
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.connection(number, sources[number % len(sources)], args.size, 0)))
                number += 1
        await asyncio.wait_for(asyncio.gather(*tasks), deadline)
        json.dump({"records": self.records}, sys.stdout)
        print(flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["backend", "client"])
    parser.add_argument("--hello", required=True)
    parser.add_argument("--listen", nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--vip", default="")
    parser.add_argument("--sources", default="")
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--streams", type=int, default=0)
    parser.add_argument("--stream-seconds", type=float, default=0)
    parser.add_argument("--stream-bytes", type=int, default=256 * 1024)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--timeout", type=float, default=3)
    args = parser.parse_args()
    asyncio.run(serve(args) if args.mode == "backend" else Client(args).run())


if __name__ == "__main__":
    main()
