#!/usr/bin/env python3
"""An SMTP server on 127.0.0.1 with faults and latency, for benchmarks/pacing_bench.py.

    python benchmarks/faulty_smtp.py [--tempfail-every 5] [--drop-every 40]
                                     [--pipelining] [--latency-ms 20]

prints the port to connect to on stdout, then serves until stdin reaches EOF (the
parent closed it or died).  ``--tempfail-every N`` answers every N-th DATA command
``451 4.3.0`` (N=5: 20% of messages); ``--drop-every M`` closes the connection
without a reply at every M-th DATA; ``--pipelining`` offers PIPELINING (RFC 2920);
``--latency-ms D`` puts a TCP proxy in front of the server that holds every chunk
D ms in each direction (a round trip costs 2·D), as a distant server would.

A line ``STATS`` on stdin prints ``{"messages": ..., "data": ..., "drops": ...,
"connections": ...}``.  Every message is counted and thrown away; only loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


class Handler:
    def __init__(self, tempfail_every: int, drop_every: int, pipelining: bool) -> None:
        self.tempfail_every, self.drop_every, self.pipelining = tempfail_every, drop_every, pipelining
        self.lock = threading.Lock()
        self.messages = self.data = self.drops = self.connections = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data += 1
            n = self.data
        if self.drop_every and n % self.drop_every == 0:
            with self.lock:
                self.drops += 1
            server.transport.close()
            return "421 4.3.2 closing"  # never arrives: the connection is gone
        if self.tempfail_every and n % self.tempfail_every == 0:
            return "451 4.3.0 Temporary local problem, try again later"
        with self.lock:
            self.messages += 1
        return "250 2.0.0 Ok: queued"

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "messages": self.messages,
                "data": self.data,
                "drops": self.drops,
                "connections": self.connections,
            }


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward ``reader`` to ``writer``, each chunk ``delay`` seconds late (order kept)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def later() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                writer.close()
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(later())
    try:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, chunk))
    except ConnectionError:
        pass
    queue.put_nowait((time.monotonic() + delay, b""))
    await sender


def start_proxy(target: int, delay: float) -> int:
    """A latency-adding TCP proxy to 127.0.0.1:target in its own thread; returns its port."""
    ready: list[int] = []
    event = threading.Event()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, target)
        for w in (writer, up_writer):  # small writes go at once (as the client's own socket does)
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay))

    async def main() -> None:
        server = await asyncio.start_server(client, HOST, 0)
        ready.append(server.sockets[0].getsockname()[1])
        event.set()
        await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    event.wait(10)
    return ready[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tempfail-every", type=int, default=0)
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--latency-ms", type=float, default=0.0)
    args = p.parse_args()
    handler = Handler(args.tempfail_every, args.drop_every, args.pipelining)
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    controller = Controller(handler, hostname=HOST, port=port, ready_timeout=10)
    controller.start()
    if args.latency_ms:
        port = start_proxy(port, args.latency_ms / 1000)
    print(port, flush=True)
    for line in sys.stdin:
        if line.strip() == "STATS":
            print(json.dumps(handler.stats()), flush=True)
    controller.stop()


if __name__ == "__main__":
    main()
