#!/usr/bin/env python3
"""Deferral and PIPELINING benchmarks (issue 13); everything goes to 127.0.0.1 only.

    python benchmarks/pacing_bench.py faults   [--n 300] [--base 2 0.5]
    python benchmarks/pacing_bench.py pipelining [--n 50] [--latency-ms 20] [--no-mailmerge]

``faults``: a batch of N letters (``--rate 0``) to benchmarks/faulty_smtp.py answering
every 5th DATA ``451 4.3.0`` (20% of messages) and dropping the connection at every
40th; once without faults for comparison, then once for each back-off base.
``pipelining``: N letters through a proxy adding the latency each way, to a server
offering PIPELINING (and to one that does not): letters a second for letterkit
with and without pipelining, a bare smtplib loop over one connection, and
mailmerge 2.3.0 (a connection per message; ``pip install '.[bench]'``).

letterkit is driven through its library (``deliver``), timed from the first
letter to the last; composing and queueing (the same in every run) are left out.
Prints Markdown tables (the ones in benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import csv
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
SENDER = "bench@example.org"
BODY = ("I write to ask you to act now. " * 2 + "\n") * 20  # about the size of a real letter


class Server:
    """benchmarks/faulty_smtp.py in its own process (it never shares the client's GIL)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "faulty_smtp.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> dict[str, int]:
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("STATS\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def make_campaign(root: Path, n: int) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "campaign.toml").write_text(
        'id = "bench"\ntitle = "Benchmark"\ndemands = ["An end to the beatings."]\n', encoding="utf-8"
    )
    (root / "templates" / "protest.en.txt.j2").write_text(
        '+++\nsubject = "An appeal"\nto = ["group:all"]\nlanguage = "en"\n+++\n'
        "{{ recipient.salutation }}\n\n" + BODY + "\n{{ signer.name }}\n",
        encoding="utf-8",
    )
    contacts = "".join(
        f'[[contact]]\nid = "r{i:04d}"\nname = "Recipient {i}"\ngroups = ["all"]\n'
        f'email = "r{i:04d}@example.org"\nchecked = "2026-11"\n\n'
        for i in range(1, n + 1)
    )
    (root / "recipients.toml").write_text(contacts, encoding="utf-8")
    return root


def queue(work: Path, n: int, tag: str) -> Any:
    """A fresh data folder with ``n`` queued letters; returns the Outbox."""
    os.environ["XDG_DATA_HOME"] = str(work / f"data-{tag}")
    from letterkit.campaign import load_campaign
    from letterkit.config import Signer
    from letterkit.letters import compose
    from letterkit.outbox import Outbox

    camp = work / f"camp-{n}"
    if not camp.exists():
        make_campaign(camp, n)
    box = Outbox()
    signer = Signer(name="A. Person", email="a.person@home.internal", city="Leeds", country="UK")
    box.queue(compose(load_campaign(str(camp)), "protest", signer, cc=()))
    return box


def letterkit_run(work: Path, server: Server, n: int, tag: str, base: float = 2.0) -> dict[str, Any]:
    from letterkit.config import Account
    from letterkit.delivery import deliver
    from letterkit.schedule import Schedule
    from letterkit.transport import SmtpTransport

    box = queue(work, n, tag)
    account = Account(name="bench", host=HOST, port=server.port, security="none", from_addr=SENDER)
    transport = SmtpTransport(account)
    waits: list[float] = []
    start = time.perf_counter()
    try:
        report = deliver(box, transport, rate=0, on_wait=waits.append, schedule=Schedule(backoff_base=base))
        attempts = max(r.attempts for r in box.iter_rows())
    finally:
        transport.close()
        box.close()
    seconds = time.perf_counter() - start
    if report.sent != n:
        raise SystemExit(f"BENCHMARK FAILED: {tag}: {report.sent} of {n} sent ({report.error})")
    return {"seconds": seconds, "waits": waits, "attempts": attempts, "stats": server.stats()}


def faults(args: argparse.Namespace, work: Path) -> None:
    clean = Server()
    try:
        free = letterkit_run(work, clean, args.n, "clean")
    finally:
        clean.close()
    print(
        f"| run ({args.n} letters, --rate 0) | back-off base | time | of it waiting | letters re-tried "
        "| most attempts | last back-off | target: 2 × fault-free + last back-off |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| no faults | – | {free['seconds']:.2f} s | 0 s | 0 | 1 | – | – |")
    for base in args.base:
        server = Server("--tempfail-every", "5", "--drop-every", "40")
        try:
            run = letterkit_run(work, server, args.n, f"faults-{base:g}", base)
        finally:
            server.close()
        # the back-off before the last attempt of the most-tried letter (nominal; jitter adds up to 25%)
        last = base * 2 ** (run["attempts"] - 2) if run["attempts"] > 1 else 0.0
        target = 2 * free["seconds"] + last
        stats = run["stats"]
        verdict = "met" if run["seconds"] <= target else "missed"
        print(
            f"| 451 on every 5th DATA, drop every 40th | {base:g} s | {run['seconds']:.2f} s | "
            f"{sum(run['waits']):.2f} s | {stats['data'] - args.n} ({stats['drops']} drops) | "
            f"{run['attempts']} | {last:g} s | ≤ {target:.2f} s: {verdict} |"
        )


def bare_run(server: Server, n: int) -> float:
    msg = (
        f"From: A. Person <{SENDER}>\r\nTo: r@example.org\r\nSubject: An appeal\r\n\r\n"
        + BODY.replace("\n", "\r\n")
    ).encode()
    start = time.perf_counter()
    with smtplib.SMTP(HOST, server.port, local_hostname="[127.0.0.1]") as smtp:
        for i in range(1, n + 1):
            smtp.sendmail(SENDER, [f"r{i:04d}@example.org"], msg)
    return time.perf_counter() - start


def mailmerge_run(work: Path, server: Server, n: int) -> float | None:
    exe = Path(sys.executable).parent / "mailmerge"
    if not exe.exists():
        return None
    d = work / f"mailmerge-{server.port}"
    d.mkdir()
    (d / "t.txt").write_text(
        f"TO: {{{{email}}}}\nFROM: A. Person <{SENDER}>\nSUBJECT: An appeal\n\n" + BODY,
        encoding="utf-8",
    )
    with open(d / "db.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email"])
        w.writerows([f"r{i:04d}@example.org"] for i in range(1, n + 1))
    (d / "s.conf").write_text(
        f"[smtp_server]\nhost = {HOST}\nport = {server.port}\nsecurity = Never\nratelimit = 0\n",
        encoding="utf-8",
    )
    cmd = [str(exe), "--no-dry-run", "--no-limit", "--output-format", "raw"]
    cmd += ["--template", str(d / "t.txt"), "--database", str(d / "db.csv"), "--config", str(d / "s.conf")]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def pipelining(args: argparse.Namespace, work: Path) -> None:
    latency = ["--latency-ms", str(args.latency_ms)]
    rtt = 2 * args.latency_ms / 1000
    rows: list[tuple[str, float | None, float]] = []
    for offer, name in ((True, "letterkit, PIPELINING"), (False, "letterkit, without PIPELINING")):
        server = Server(*latency, *(["--pipelining"] if offer else []))
        try:
            rows.append(
                (name, letterkit_run(work, server, args.n, f"rtt-{offer}")["seconds"], 2 if offer else 4)
            )
        finally:
            server.close()
    server = Server(*latency)
    try:
        rows.append(("bare smtplib loop, one connection", bare_run(server, args.n), 4))
        if not args.no_mailmerge:
            rows.append(
                ("mailmerge 2.3.0 (a connection per message)", mailmerge_run(work, server, args.n), 0)
            )
    finally:
        server.close()
    print(
        f"| {args.n} letters, {args.latency_ms:g} ms each way | letters/s | round trips per letter | floor |"
    )
    print("| --- | --- | --- | --- |")
    for name, seconds, floor in rows:
        if seconds is None:
            print(f"| {name} | not installed | – | – |")
            continue
        per = seconds / args.n / rtt
        print(f"| {name} | {args.n / seconds:.2f} | {per:.2f} | {floor or '–'} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", choices=["faults", "pipelining"])
    p.add_argument("--n", type=int)
    p.add_argument(
        "--base", type=float, nargs="+", default=[2.0, 0.5], help="back-off bases to try (seconds)"
    )
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--no-mailmerge", action="store_true")
    args = p.parse_args()
    args.n = args.n or (300 if args.which == "faults" else 50)
    with tempfile.TemporaryDirectory(prefix="letterkit-pacing-") as tmp:
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
        (faults if args.which == "faults" else pipelining)(args, Path(tmp))


if __name__ == "__main__":
    main()
