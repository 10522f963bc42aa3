#!/usr/bin/env python3
"""A counting SMTP sink on 127.0.0.1 for the letterkit benchmarks.

Runs an aiosmtpd server in its own process (so the client being measured and
the server never share a GIL), accepts every message, counts messages,
recipients, bytes and connections, and throws the messages away.

    python benchmarks/smtp_sink.py --port 0

prints two lines on stdout, then serves until stdin reaches EOF (the parent
closed it or died), SIGTERM/SIGINT, or --max-seconds elapse:

    line 1: the SMTP port
    line 2: the control port

The control port (also 127.0.0.1) speaks one line per request:

    STATS   ->  {"messages": 12, "recipients": 12, "bytes": 34567, "connections": 1,
                 "first": 1764138000.12, "last": 1764138001.5}   (time.time() of the
                 first and last message since the last reset, or null)
    RESET   ->  the same JSON (the counts before the reset), then zeroes them
    QUIT    ->  "bye", then the sink stops

No TLS, no AUTH: the sink only ever listens on the loopback interface.
Only the standard library and aiosmtpd are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"


class Counter:
    """The handler: counts each DATA transaction and discards it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> dict[str, int]:
        before = self.stats() if hasattr(self, "messages") else {}
        self.messages = 0
        self.recipients = 0
        self.bytes = 0
        self.connections = 0
        self.first: float | None = None  # time.time() of the first and last message
        self.last: float | None = None
        return before

    def stats(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "recipients": self.recipients,
            "bytes": self.bytes,
            "connections": self.connections,
            "first": self.first,
            "last": self.last,
        }

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        now = time.time()
        if self.first is None:
            self.first = now
        self.last = now
        self.messages += 1
        self.recipients += len(envelope.rcpt_tos)  # type: ignore[attr-defined]
        self.bytes += len(envelope.original_content or b"")  # type: ignore[attr-defined]
        return "250 OK discarded"


class CountingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, counting connections."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.event_handler.connections += 1
        super().connection_made(transport)


async def _control(
    counter: Counter, stop: asyncio.Event, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        for _ in range(10_000):  # bounded: a control client sends a few lines
            line = await reader.readline()
            if not line:
                break
            cmd = line.strip().upper()
            if cmd == b"STATS":
                writer.write(json.dumps(counter.stats()).encode() + b"\n")
            elif cmd == b"RESET":
                writer.write(json.dumps(counter.reset()).encode() + b"\n")
            elif cmd == b"QUIT":
                writer.write(b"bye\n")
                await writer.drain()
                stop.set()
                break
            else:
                writer.write(b'{"error": "unknown command; use STATS, RESET or QUIT"}\n')
            await writer.drain()
    except (asyncio.CancelledError, ConnectionError):
        pass  # the sink is stopping, or the client went away
    finally:
        writer.close()


async def serve(port: int, control_port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    counter = Counter()
    stop = asyncio.Event()

    def factory() -> SMTP:
        # hostname given: aiosmtpd would otherwise call socket.getfqdn() (a DNS lookup).
        return CountingSMTP(
            counter,
            hostname="sink.localhost",
            ident="letterkit-bench-sink",
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=64 * 1024 * 1024,
        )

    smtp_server = await loop.create_server(factory, HOST, port, backlog=512)
    ctl_server = await asyncio.start_server(lambda r, w: _control(counter, stop, r, w), HOST, control_port)
    smtp_port = smtp_server.sockets[0].getsockname()[1]
    ctl_port = ctl_server.sockets[0].getsockname()[1]
    print(smtp_port, flush=True)
    print(ctl_port, flush=True)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        # When the parent closes our stdin (or dies), stop serving.
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(stop.set)

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()

    try:
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    except TimeoutError:
        print("smtp_sink: --max-seconds reached, stopping", file=sys.stderr)
    smtp_server.close()
    ctl_server.close()
    print(json.dumps(counter.stats()), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="SMTP port (0: any free port)")
    parser.add_argument("--control-port", type=int, default=0, help="control port (0: any)")
    parser.add_argument(
        "--max-seconds", type=float, default=4 * 3600, help="stop after this long (a safety bound)"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.control_port, args.max_seconds))


if __name__ == "__main__":
    main()
