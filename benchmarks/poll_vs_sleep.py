#!/usr/bin/env python3
"""Why letterkit polls a fast server for its replies instead of sleeping until they come.

The same bare smtplib loop as bench.py (N pre-built messages, one connection, to the
counting sink on 127.0.0.1), run two ways in alternating rounds:

* sleep: each reply is read with a blocking read, as smtplib does;
* poll:  the socket is polled (``poll(0)``) for up to 2 ms before that read, as
         letterkit's SmtpTransport does for a server that answers that fast.

It prints the wall time and the sink's CPU time of each, and their medians.

    python3 benchmarks/poll_vs_sleep.py [--n 2000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import select
import smtplib
import statistics
import tempfile
import time
from pathlib import Path

from bench import HOST, Sink, build_bare_messages

BODY = "Dear Recipient,\n\n" + "We write about the prisoners of Dolinka prison. " * 60 + "\n"


def run(sink: Sink, messages: list[tuple[str, list[str], bytes]], budget: float) -> tuple[float, float]:
    sink.reset()
    cpu0 = sink.cpu_seconds()
    t0 = time.perf_counter()
    with smtplib.SMTP(HOST, sink.port, timeout=60) as smtp:
        smtp.ehlo()
        assert smtp.sock is not None
        poller = select.poll()
        poller.register(smtp.sock, select.POLLIN)

        def reply() -> int:
            if budget:
                deadline = time.perf_counter() + budget
                while not poller.poll(0) and time.perf_counter() < deadline:
                    pass
            return smtp.getreply()[0]

        for mail_from, rcpt, data in messages:
            for command in (f"MAIL FROM:<{mail_from}>", f"RCPT TO:<{rcpt[0]}>", "DATA"):
                smtp.putcmd(command)
                reply()
            smtp.send(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b".\r\n")
            if reply() != 250:
                raise SystemExit("the sink refused a message")
    wall = time.perf_counter() - t0
    if sink.stats()["messages"] != len(messages):
        raise SystemExit("the sink did not receive every message")
    return wall, sink.cpu_seconds() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sink = Sink(Path(tmp))
        try:
            messages = build_bare_messages(args.n, "Dolinka prison", BODY)
            results: dict[str, list[tuple[float, float]]] = {"sleep": [], "poll": []}
            for r in range(args.rounds):
                for way, budget in (("sleep", 0.0), ("poll", 0.002)):
                    results[way].append(run(sink, messages, budget))
                last = [(w, v[-1]) for w, v in results.items()]
                line = "  ".join(f"{w} {wall:.3f} s (sink CPU {cpu:.2f} s)" for w, (wall, cpu) in last)
                print(f"round {r + 1}: {line}", flush=True)
            for way, v in results.items():
                print(
                    f"{way:5s}  median wall {statistics.median(x[0] for x in v):.3f} s,"
                    f" sink CPU {statistics.median(x[1] for x in v):.2f} s"
                )
        finally:
            sink.close()


if __name__ == "__main__":
    main()
