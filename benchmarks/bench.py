#!/usr/bin/env python3
"""letterkit performance benchmark: throughput, start-up and memory, as ratios.

Everything runs on this machine and every message goes to a counting SMTP sink
(benchmarks/smtp_sink.py, aiosmtpd) listening on 127.0.0.1 in its own process.

    python3 -m pip install '.[bench]'
    python3 benchmarks/bench.py                      # everything: N=2,000 x5, 20,000 once
    python3 benchmarks/bench.py --only throughput --repeat 9
    python3 benchmarks/bench.py --skip-big --json benchmarks/results/run.json
    python3 benchmarks/bench.py --only profile       # cProfile of one `letterkit send`

What is measured (see benchmarks/README.md for the method and fairness notes):

* bare     one smtplib.SMTP connection, ``sendmail`` of N messages built and
           serialised with the stdlib ``email`` package *before* the clock starts
           (the limit: no rendering, no outbox, no ledger), then QUIT.
* letterkit  ``letterkit --campaign DIR send protest --yes --rate 0 --json``
           as a subprocess, in a fresh data dir each repeat: rendering,
           validation, durable outbox, delivery and ledger all included.
* mailmerge  mailmerge 2.3.0 ``--no-dry-run --no-limit`` on the same body (for
           the record; it opens one connection per message).
* start-up  ``python -c pass``, ``letterkit --version|contacts --json|templates``
           and ``mailmerge --help`` (stdout to a pipe), plus ``letterkit
           templates`` on a pseudo-terminal.
* memory   the peak RSS (``os.wait4`` ru_maxrss) of ``letterkit send`` for N and
           for --big recipients.

Only the standard library is used here (plus aiosmtpd in the sink and the
letterkit / mailmerge console scripts next to ``sys.executable``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import fcntl
import json
import os
import platform
import pty
import re
import resource
import select
import shutil
import signal
import smtplib
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # the only address anything here ever talks to
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
LETTERKIT = BIN / "letterkit"
MAILMERGE = BIN / "mailmerge"
TEMPLATE = "protest"
SIGNER_NAME = "Bench Signer"
SIGNER_EMAIL = "bench@example.org"
ACCOUNT = "bench"

# Targets (the acceptance criteria)
TARGET_THROUGHPUT = 1.5  # letterkit time / bare time (issue 11: stdlib-built messages, no polling)
TARGET_STARTUP = 1.0  # letterkit command time / mailmerge --help time (issue 11: without the start-up tricks)
TARGET_RSS_MIB = 60.0  # peak RSS of letterkit send, N=2,000
TARGET_RSS_GROWTH = 1.10  # RSS(big) / RSS(N)


class BenchError(RuntimeError):
    """Something did not happen as it must (wrong count, a failed command): fail loudly."""


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the sink


class Sink:
    """benchmarks/smtp_sink.py in its own process, with its control port."""

    def __init__(self, logdir: Path) -> None:
        self.stderr = open(logdir / "sink.stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "smtp_sink.py"), "--port", "0"],
            stdin=subprocess.PIPE,  # the sink stops when this pipe closes (or we die)
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        assert self.proc.stdout is not None
        lines: list[int] = []
        deadline = time.monotonic() + 30
        buf = b""
        while len(lines) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.close()
                raise BenchError(
                    f"the SMTP sink did not start; see {logdir / 'sink.stderr'}"
                    " (is aiosmtpd installed? python3 -m pip install '.[bench]')"
                )
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                buf += chunk
                *done, buf = buf.split(b"\n")
                lines += [int(x) for x in done if x.strip()]
                if not chunk and len(lines) < 2:
                    continue
        self.port, self.control_port = lines[0], lines[1]
        self._ctl = socket.create_connection((HOST, self.control_port), timeout=30)
        self._ctl_file = self._ctl.makefile("rwb")

    def _ask(self, command: str) -> dict[str, Any]:
        self._ctl_file.write(command.encode() + b"\n")
        self._ctl_file.flush()
        line = self._ctl_file.readline()
        if not line:
            raise BenchError("the SMTP sink's control connection closed")
        result: dict[str, Any] = json.loads(line)
        return result

    def stats(self) -> dict[str, Any]:
        return self._ask("STATS")

    def reset(self) -> None:
        self._ask("RESET")

    def cpu_seconds(self) -> float:
        """User + system CPU time the sink process has used so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ctl_file.close()
            self._ctl.close()
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()


# ------------------------------------------------------- campaign and inputs


def bundled_templates() -> Path:
    try:
        from letterkit.campaign import bundled_campaign_dir

        path = bundled_campaign_dir() / "templates"
    except ImportError:  # letterkit not importable from this interpreter: the checkout
        path = HERE.parent / "templates"
    if not (path / "campaign.toml").is_file():
        raise BenchError(f"bundled templates not found at {path}")
    return path


def make_campaign(root: Path, n: int) -> Path:
    """A copy of the bundled templates with N e-mail recipients, protest cc = []."""
    camp = root / f"campaign-{n}"
    if camp.exists():
        return camp
    shutil.copytree(bundled_templates(), camp / "templates")
    # The protest is copied to group:osce, which in the bundled campaign is the OSCE
    # Secretariat (no e-mail: a PDF "by hand") and the OSCE delegation. Our generated
    # recipients.toml has only the N e-mail contacts, so the selector must go: every
    # tool then sends exactly N messages with one recipient each.
    patched = 0
    for tpl in sorted((camp / "templates").glob(f"{TEMPLATE}.*.txt.j2")):
        text = tpl.read_text(encoding="utf-8")
        new, k = re.subn(r"(?m)^cc\s*=.*$", "cc = []", text, count=1)
        patched += k
        tpl.write_text(new, encoding="utf-8")
    if not patched:
        raise BenchError(f"could not patch the cc line of {TEMPLATE}.*.txt.j2")
    with open(camp / "recipients.toml", "w", encoding="utf-8") as f:
        f.write(f"# letterkit benchmark: {n} generated recipients (example.org only)\n")
        for i in range(1, n + 1):
            f.write(
                f'\n[[contact]]\nid = "r{i:04d}"\nname = "Recipient {i:04d}"\n'
                f'groups = ["kazakhstan"]\nemail = "r{i:04d}@example.org"\n'
                f'language = "en"\nsource = "benchmark"\nchecked = "2026-11"\n'
            )
    return camp


def child_env(config_home: Path, data_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETTERKIT_")}
    env.update(
        XDG_CONFIG_HOME=str(config_home),
        XDG_DATA_HOME=str(data_home),
        # never touch the desktop keyring (the bench account has no password anyway)
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    env.update(extra)
    return env


FALLBACK_SUBJECT = "Dolinka prison: end the beatings and abuse of prisoners"


def rendered_letter(camp: Path, env: dict[str, str], cwd: Path) -> tuple[str, str, str]:
    """Subject and body of letterkit's own protest letter to r0001 (not timed), and where
    they came from.  Without a working ``letterkit preview``: a stand-in body of the
    usual size (~3.2 kB), so the bare and mailmerge runs still mean something."""
    try:
        return (*_preview_letter(camp, env, cwd), "letterkit preview")
    except (OSError, BenchError, ValueError, LookupError) as exc:
        log(f"letterkit preview unavailable ({exc}); using a stand-in body of the same size")
    line = "I am writing to express my grave concern about the abuse of prisoners.\n"
    return FALLBACK_SUBJECT, "Dear Sir or Madam,\n\n" + line * 44, "stand-in (letterkit preview failed)"


def _preview_letter(camp: Path, env: dict[str, str], cwd: Path) -> tuple[str, str]:
    out = subprocess.run(
        [
            str(LETTERKIT),
            "--campaign",
            str(camp),
            "preview",
            TEMPLATE,
            "--to",
            "r0001",
            "--json",
            "--name",
            SIGNER_NAME,
            "--email",
            SIGNER_EMAIL,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    if out.returncode != 0:
        raise BenchError(f"letterkit preview failed ({out.returncode}): {out.stderr.strip()}")
    letter = json.loads(out.stdout)["letters"][0]
    return letter["subject"], letter["body"]


def build_bare_messages(n: int, subject: str, body: str) -> list[tuple[str, list[str], bytes]]:
    """N messages like letterkit's (From/To/Subject/Date/Message-ID, UTF-8), as bytes."""
    out = []
    sender = formataddr((SIGNER_NAME, SIGNER_EMAIL))
    for i in range(1, n + 1):
        addr = f"r{i:04d}@example.org"
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = formataddr((f"Recipient {i:04d}", addr))
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="example.org")
        msg.set_content(body, charset="utf-8")
        # letterkit writes it too (after set_content, which drops Content-* headers)
        msg["Content-Language"] = "en"
        out.append((SIGNER_EMAIL, [addr], msg.as_bytes(policy=SMTP_POLICY)))
    return out


def write_mailmerge_inputs(root: Path, n: int, subject: str, body: str, port: int) -> Path:
    d = root / f"mailmerge-{n}-{port}"
    if d.exists():
        return d
    d.mkdir(parents=True)
    (d / "mailmerge_template.txt").write_text(
        "TO: {{name}} <{{email}}>\n"
        f"FROM: {SIGNER_NAME} <{SIGNER_EMAIL}>\n"
        f"SUBJECT: {subject}\n"
        "\n"
        "{% raw %}" + body + "{% endraw %}\n",
        encoding="utf-8",
    )
    with open(d / "mailmerge_database.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email", "name"])
        for i in range(1, n + 1):
            w.writerow([f"r{i:04d}@example.org", f"Recipient {i:04d}"])
    # mailmerge 2.3.0 reads [smtp_server] host, port, security, username, ratelimit;
    # "security = Never" is its legacy spelling of "no TLS, no login" (no password asked).
    (d / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = {HOST}\nport = {port}\nsecurity = Never\nratelimit = 0\n",
        encoding="utf-8",
    )
    return d


# ------------------------------------------------------------- measurement


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    stdout: Path,
    stderr: Path,
    timeout: float,
) -> dict[str, Any]:
    """Run cmd, wait with os.wait4: wall time, exit code, the child's own peak RSS and CPU."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        t0 = time.perf_counter()
        started = time.time()
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        killer = threading.Timer(timeout, proc.kill)  # bounded: never wait forever
        killer.start()
        sampler = RssSampler(proc.pid)
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
            sampler.stop()
        wall = time.perf_counter() - t0
        ended = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall,
        "started": started,
        "ended": ended,
        "rc": proc.returncode,
        "rss_mib": ru.ru_maxrss / 1024.0,  # Linux: KiB
        "cpu": ru.ru_utime + ru.ru_stime,
        "timed_out": proc.returncode == -signal.SIGKILL,
        # where the resident memory was, sampled from /proc/PID/status (MiB, peak of each)
        "rss_split": sampler.peaks,
    }


class RssSampler:
    """Samples /proc/PID/status every 50 ms: peak RssAnon, RssFile, RssShmem (Linux)."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                text = self.path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                key, _, value = line.partition(":")
                if key in self.FIELDS:
                    mib = int(value.split()[0]) / 1024.0
                    if mib > self.peaks.get(key, 0.0):
                        self.peaks[key] = mib

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def check_sink(sink: Sink, n: int, what: str) -> dict[str, Any]:
    stats = sink.stats()
    if stats["messages"] != n or stats["recipients"] != n:
        raise BenchError(
            f"{what}: the sink counted {stats['messages']} messages / "
            f"{stats['recipients']} recipients, expected {n}"
        )
    return stats


def bare_once(sink: Sink, msgs: list[tuple[str, list[str], bytes]]) -> dict[str, Any]:
    sink.reset()
    cpu0 = sink.cpu_seconds()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    t0 = time.perf_counter()
    with smtplib.SMTP(HOST, sink.port, timeout=60) as smtp:
        for mail_from, rcpt, data in msgs:
            smtp.sendmail(mail_from, rcpt, data)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    stats = check_sink(sink, len(msgs), "bare smtplib loop")
    return {
        "wall": wall,
        "started": started,
        "cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "sink_cpu": sink.cpu_seconds() - cpu0,
        "rss_mib": None,
        **_sink_fields(stats, started),
    }


def _sink_fields(stats: dict[str, Any], started: float) -> dict[str, Any]:
    n = max(stats["messages"], 1)
    return {
        "messages": stats["messages"],
        "connections": stats["connections"],
        "bytes_per_msg": stats["bytes"] / n,
        # time from launch to the first message reaching the sink: start-up,
        # loading, rendering and queueing before delivery begins
        "first_msg_after": (stats["first"] - started) if stats.get("first") else None,
    }


def letterkit_available(env: dict[str, str], cwd: Path) -> tuple[bool, str]:
    if not LETTERKIT.exists():
        return False, f"{LETTERKIT} not found"
    out = subprocess.run(
        [str(LETTERKIT), "account", "add", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if out.returncode != 0:
        return False, (out.stderr.strip().splitlines() or ["?"])[-1]
    return True, ""


def setup_account(env: dict[str, str], cwd: Path, port: int) -> None:
    cmd = [
        str(LETTERKIT),
        "account",
        "add",
        ACCOUNT,
        "--host",
        HOST,
        "--port",
        str(port),
        "--security",
        "none",
        "--from",
        SIGNER_EMAIL,
        "--no-login",
        "--default",
    ]
    # --no-login: without it the username defaults to --from and letterkit asks for AUTH,
    # which the sink (like any loopback relay without a login) does not offer.
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, stdin=subprocess.DEVNULL, timeout=60
    )
    if out.returncode != 0:
        raise BenchError(f"letterkit account add failed ({out.returncode}): {out.stderr.strip()}")


def letterkit_send_cmd(camp: Path, *, profile_to: Path | None = None) -> list[str]:
    args = [
        "--campaign",
        str(camp),
        "send",
        TEMPLATE,
        "--yes",
        "--rate",
        "0",
        "--json",
        "--name",
        SIGNER_NAME,
        "--email",
        SIGNER_EMAIL,
    ]
    if profile_to is not None:
        return [sys.executable, "-m", "cProfile", "-o", str(profile_to), "-m", "letterkit", *args]
    return [str(LETTERKIT), *args]


def letterkit_once(
    sink: Sink,
    camp: Path,
    n: int,
    config_home: Path,
    work: Path,
    tag: str,
    *,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    data_home = work / f"data-{tag}"  # fresh outbox and ledger: every letter really goes
    if data_home.exists():
        shutil.rmtree(data_home)
    data_home.mkdir(parents=True)
    env = child_env(config_home, data_home)
    sink.reset()
    cpu0 = sink.cpu_seconds()
    res = run_measured(
        letterkit_send_cmd(camp, profile_to=profile_to),
        env=env,
        cwd=work,
        stdout=work / f"letterkit-{tag}.json",
        stderr=work / f"letterkit-{tag}.stderr",
        timeout=max(300.0, n * 0.1),
    )
    res["sink_cpu"] = sink.cpu_seconds() - cpu0
    err_tail = (work / f"letterkit-{tag}.stderr").read_text(errors="replace").strip()[-800:]
    if res["timed_out"]:
        raise BenchError(f"letterkit send ({tag}) timed out and was killed")
    if res["rc"] != 0:
        raise BenchError(f"letterkit send ({tag}) exited {res['rc']}: {err_tail}")
    try:
        doc = json.loads((work / f"letterkit-{tag}.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BenchError(f"letterkit send ({tag}) printed no valid JSON: {exc}") from exc
    sent, failed = len(doc.get("sent", [])), len(doc.get("failed", []))
    queued = len(doc.get("queued", []))
    if sent != n or failed or queued:
        raise BenchError(
            f"letterkit send ({tag}): JSON says sent={sent} queued={queued} failed={failed},"
            f" expected sent={n}; stderr: {err_tail}"
        )
    stats = check_sink(sink, n, f"letterkit send ({tag})")
    res.update(_sink_fields(stats, res["started"]))
    # the durable side (spot check): the ledger says N sent, sent/ holds N files,
    # the outbox is empty
    res["durable"] = durable_state(data_home / "letterkit", n, tag)
    res["data_dir_mib"] = _du(data_home) / 2**20
    # Not deleted here: removing thousands of files just before the next timed run makes
    # the file system (ext4 with discard) slow to create new ones. The whole work dir
    # goes at the end.
    return res


def durable_state(root: Path, n: int, tag: str) -> dict[str, Any]:
    """What letterkit left on disk after a send: ledger rows by status, files in sent/."""
    import sqlite3

    state: dict[str, Any] = {}
    ledger = root / "ledger.sqlite3"
    if not ledger.is_file():
        raise BenchError(f"letterkit send ({tag}): no ledger at {ledger}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
            state["ledger"] = dict(
                db.execute("SELECT status, count(*) FROM letters GROUP BY status").fetchall()
            )
    except sqlite3.Error as exc:  # schema changed: report, don't guess
        state["ledger"] = f"unreadable: {exc}"
    state["sent_files"] = sum(1 for p in (root / "sent").rglob("*") if p.is_file())
    state["outbox_files"] = sum(1 for p in (root / "outbox").rglob("*") if p.is_file())
    ledger_sent = state["ledger"].get("sent") if isinstance(state["ledger"], dict) else None
    if ledger_sent is not None and ledger_sent != n:
        raise BenchError(f"letterkit send ({tag}): the ledger records {ledger_sent} sent, not {n}")
    if state["sent_files"] != n:
        raise BenchError(f"letterkit send ({tag}): {state['sent_files']} files in sent/, expected {n}")
    return state


def mailmerge_once(sink: Sink, d: Path, n: int, work: Path, tag: str) -> dict[str, Any]:
    sink.reset()
    cpu0 = sink.cpu_seconds()
    cmd = [
        str(MAILMERGE),
        "--no-dry-run",
        "--no-limit",
        "--output-format",
        "raw",
        "--template",
        str(d / "mailmerge_template.txt"),
        "--database",
        str(d / "mailmerge_database.csv"),
        "--config",
        str(d / "mailmerge_server.conf"),
    ]
    res = run_measured(
        cmd,
        env=dict(os.environ),
        cwd=d,
        stdout=Path(os.devnull),
        stderr=work / f"mailmerge-{tag}.stderr",
        timeout=max(300.0, n * 0.2),
    )
    res["sink_cpu"] = sink.cpu_seconds() - cpu0
    if res["rc"] != 0 or res["timed_out"]:
        tail = (work / f"mailmerge-{tag}.stderr").read_text(errors="replace")[-800:]
        raise BenchError(f"mailmerge exited {res['rc']}: {tail}")
    stats = check_sink(sink, n, "mailmerge")
    res.update(_sink_fields(stats, res["started"]))
    return res


def _du(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                total += p.stat().st_size
    return total


def fsync_probe(where: Path, count: int = 100) -> float:
    """fsyncs per second of a small file + its directory here (context for durability)."""
    d = where / "fsync-probe"
    d.mkdir(exist_ok=True)
    dfd = os.open(d, os.O_RDONLY)
    data = b"x" * 3000
    t0 = time.perf_counter()
    try:
        for i in range(count):
            fd = os.open(d / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.fsync(dfd)
    finally:
        os.close(dfd)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(d, ignore_errors=True)
    return count / elapsed


# ------------------------------------------------------------------ start-up


def _run_pipe(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(
        list(cmd), stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=cwd, timeout=60
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr[-400:]!r}")
    return wall


def _run_pty(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "50"}
    env.pop("NO_COLOR", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:  # bounded
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        rc = proc.wait(30)
    finally:
        os.close(master)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise BenchError(f"{' '.join(cmd)} on a terminal exited {rc}: {output[-400:]!r}")
    return wall


def compile_letterkit() -> None:
    """Byte-code as an installed package has it: pip compiles wheels at install time, but an
    editable checkout with PYTHONDONTWRITEBYTECODE=1 would compile every module again on
    every run (0.2-0.4 s of a `letterkit send` on the reference VM)."""
    import compileall

    import letterkit

    compileall.compile_dir(Path(letterkit.__file__).parent, quiet=1)


def startup(runs: int, env: dict[str, str], cwd: Path) -> dict[str, dict[str, Any]]:
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    lk = str(LETTERKIT)
    cases: dict[str, tuple[list[str], bool]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], False),
        "letterkit --version": ([lk, "--version"], False),
        "letterkit contacts --json": ([lk, "contacts", "--json"], False),
        "letterkit templates": ([lk, "templates"], False),
        "letterkit templates (tty)": ([lk, "templates"], True),
        "letterkit preview protest": (
            [lk, "preview", "protest", "--name", "Bench Signer", "--email", "bench@example.org"],
            False,
        ),
        "mailmerge --help": ([str(MAILMERGE), "--help"], False),
    }
    if not MAILMERGE.exists():
        del cases["mailmerge --help"]
    if not LETTERKIT.exists():
        cases = {k: v for k, v in cases.items() if not k.startswith("letterkit")}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for round_ in range(runs + 2):  # two warm-up rounds (bytecode caches, page cache)
        for name, (cmd, tty) in cases.items():  # interleaved: drift hits all alike
            wall = (_run_pty if tty else _run_pipe)(cmd, env, cwd)
            if round_ >= 2:
                times[name].append(wall)
    return {
        name: {"median": statistics.median(ts), "min": min(ts), "runs": len(ts)} for name, ts in times.items()
    }


# ------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kib / 2**20:.1f} GiB"
    versions = {}
    for dist in ("letterkit", "aiosmtpd", "mailmerge", "jinja2", "typer", "rich"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = None
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": nproc,
        "cpu": model,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "loadavg_start": os.getloadavg(),
    }


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec).strip()


def verdict(ok: bool | None) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def summarise(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    walls = [r["wall"] for r in runs]
    med = statistics.median(walls)
    rss = [r["rss_mib"] for r in runs if r.get("rss_mib") is not None]
    firsts = [r["first_msg_after"] for r in runs if r.get("first_msg_after") is not None]
    return {
        "n": n,
        "runs": len(runs),
        "wall_median": med,
        "wall_all": walls,
        "msgs_per_s": n / med,
        "rss_mib": statistics.median(rss) if rss else None,
        "cpu": statistics.median(r["cpu"] for r in runs),
        "sink_cpu": statistics.median(r["sink_cpu"] for r in runs),
        "connections": runs[-1]["connections"],
        "bytes_per_msg": runs[-1]["bytes_per_msg"],
        "first_msg_after": statistics.median(firsts) if firsts else None,
        "durable": runs[-1].get("durable"),
        "runs_raw": runs,
    }


def _split(run: dict[str, Any]) -> str:
    split = run.get("rss_split") or {}
    parts = [f"{k[3:].lower()} {split[k]:.1f}" for k in ("RssAnon", "RssFile", "RssShmem") if split.get(k)]
    return f"[sampled peaks, MiB: {', '.join(parts)}]" if parts else ""


def print_report(res: dict[str, Any]) -> None:
    m = res["machine"]
    p = print
    p()
    p("=" * 78)
    p(f"letterkit benchmark  {m['date']}")
    p(f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['memory']} RAM; Python {m['python']}; {m['platform']}")
    p("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    p(
        f"load average at start {tuple(round(x, 2) for x in m['loadavg_start'])},"
        f" at end {tuple(round(x, 2) for x in m.get('loadavg_end', ()))}"
    )
    if res.get("fsync_per_s"):
        p(f"temp dir {res['tmp']}: {res['fsync_per_s']:.0f} file+dir fsyncs/s")
    checks: list[tuple[str, str, bool | None]] = []

    tp = res.get("throughput")
    if tp:
        n = tp["n"]
        p()
        p(f"Throughput: {n} messages to aiosmtpd on {HOST} (median of {tp['repeat']})")
        p(
            f"  {'':11} {'wall s':>8} {'msgs/s':>8} {'peak RSS':>9} {'CPU s':>7} {'sink CPU':>9}"
            f" {'conns':>6} {'B/msg':>6} {'1st msg':>8}  all runs (wall s)"
        )
        for key in ("bare", "letterkit", "mailmerge"):
            s = tp.get(key)
            if not s:
                p(f"  {key:11} {'skipped: ' + tp.get(key + '_skipped', ''):>8}")
                continue
            rss = f"{s['rss_mib']:.1f} MiB" if s["rss_mib"] else "-"
            first = f"{s['first_msg_after']:.2f} s" if s["first_msg_after"] is not None else "-"
            p(
                f"  {key:11} {s['wall_median']:8.3f} {s['msgs_per_s']:8.0f} {rss:>9}"
                f" {s['cpu']:7.2f} {s['sink_cpu']:9.2f} {s['connections']:6d}"
                f" {s['bytes_per_msg']:6.0f} {first:>8}  " + " ".join(f"{w:.3f}" for w in s["wall_all"])
            )
        bare, lk, mm = tp.get("bare"), tp.get("letterkit"), tp.get("mailmerge")
        if lk and lk.get("durable"):
            d = lk["durable"]
            p(
                f"  letterkit left on disk (last run): ledger {d['ledger']},"
                f" {d['sent_files']} files in sent/, {d['outbox_files']} in outbox/"
            )
        if lk and bare:
            r = lk["wall_median"] / bare["wall_median"]
            tp["ratio_letterkit_bare"] = r
            p(f"  letterkit / bare       = {r:.2f}x time  ({1 / r:.2f}x the limit's throughput)")
            pairs = [a / b for a, b in zip(lk["wall_all"], bare["wall_all"], strict=False)]
            if len(pairs) > 1:  # each round runs bare, then letterkit: a drift hits both
                tp["ratio_letterkit_bare_paired"] = statistics.median(pairs)
                p(
                    f"  (round by round: {' '.join(f'{x:.2f}' for x in pairs)};"
                    f" median {statistics.median(pairs):.2f}x)"
                )
            checks.append(
                (f"throughput: letterkit/bare {r:.2f} <= {TARGET_THROUGHPUT}", "", r <= TARGET_THROUGHPUT)
            )
        else:
            checks.append((f"throughput: letterkit/bare <= {TARGET_THROUGHPUT}", "", None))
        if mm and bare:
            r = mm["wall_median"] / bare["wall_median"]
            tp["ratio_mailmerge_bare"] = r
            p(f"  mailmerge / bare       = {r:.2f}x time  ({1 / r:.2f}x the limit's throughput)")
        if lk and mm:
            r = lk["wall_median"] / mm["wall_median"]
            tp["ratio_letterkit_mailmerge"] = r
            p(f"  letterkit / mailmerge  = {r:.2f}x time  ({1 / r:.2f}x mailmerge's throughput)")
        if bare and bare["sink_cpu"] > 0.8 * bare["wall_median"]:
            p(
                f"  note: the sink was busy {bare['sink_cpu'] / bare['wall_median']:.0%} of the"
                " bare run: the limit is the server's speed, which compresses the ratios"
            )

    su = res.get("startup")
    if su:
        p()
        p(
            f"Start-up: median wall time of {next(iter(su.values()))['runs']} runs"
            " (stdout to a pipe unless marked tty)"
        )
        base = su.get("mailmerge --help")
        py = su.get("python -c pass")
        for name, s in su.items():
            extra = ""
            if py:
                extra += f"  {s['median'] / py['median']:5.1f}x python"
            if base:
                extra += f"  {s['median'] / base['median']:5.2f}x mailmerge --help"
            p(f"  {name:28} {s['median'] * 1000:7.1f} ms  (min {s['min'] * 1000:6.1f}){extra}")
        for name in ("letterkit --version", "letterkit contacts --json"):  # issue 11: preview is reported
            if base and name in su:
                r = su[name]["median"] / base["median"]
                checks.append(
                    (
                        f"start-up: {name} / mailmerge --help {r:.2f} <= {TARGET_STARTUP}",
                        "",
                        r <= TARGET_STARTUP,
                    )
                )
            else:
                checks.append((f"start-up: {name} / mailmerge --help <= {TARGET_STARTUP}", "", None))

    mem = res.get("memory")
    if mem:
        p()
        p("Memory: peak RSS of letterkit send (os.wait4 ru_maxrss of the child)")
        small, big = mem.get("small"), mem.get("big")
        if small:
            p(
                f"  N={small['n']:<6} {small['rss_mib']:7.1f} MiB   wall {small['wall']:.2f} s"
                f"  {_split(small)}"
            )
            checks.append(
                (
                    f"memory: RSS({small['n']}) {small['rss_mib']:.1f} MiB <= {TARGET_RSS_MIB:.0f} MiB",
                    "",
                    small["rss_mib"] <= TARGET_RSS_MIB,
                )
            )
        else:
            checks.append((f"memory: RSS <= {TARGET_RSS_MIB:.0f} MiB", "", None))
        if big:
            p(
                f"  N={big['n']:<6} {big['rss_mib']:7.1f} MiB   wall {big['wall']:.2f} s"
                f"  ({big['n'] / big['wall']:.0f} msgs/s)  {_split(big)}"
            )
        if small and big:
            g = big["rss_mib"] / small["rss_mib"]
            mem["growth"] = g
            checks.append(
                (
                    f"memory: RSS({big['n']}) / RSS({small['n']}) {g:.2f} <= {TARGET_RSS_GROWTH}",
                    "",
                    g <= TARGET_RSS_GROWTH,
                )
            )
        elif not mem.get("skip_big"):
            checks.append((f"memory: RSS(big)/RSS(N) <= {TARGET_RSS_GROWTH}", "", None))
        if mem.get("skipped"):
            p(f"  skipped: {mem['skipped']}")

    if checks:
        p()
        p("Targets")
        for text, _, ok in checks:
            p(f"  [{verdict(ok)}] {text}")
    res["checks"] = [{"target": t, "result": verdict(ok)} for t, _, ok in checks]
    if res.get("notes"):
        p()
        for note in res["notes"]:
            p(f"note: {note}")
    p("=" * 78)


def print_profile(prof: Path, top: int = 25) -> str:
    """Top functions by cumulative and by own time, with their share of the whole run."""
    import pstats

    stats = pstats.Stats(str(prof))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]

    def where(key: tuple[str, int, str]) -> str:
        file, line, func = key
        if file == "~":
            return func  # a built-in
        m = re.search(r"(letterkit/.*)$", file)
        short = m.group(1) if m else Path(file).name
        return f"{short}:{line}({func})"

    def table(title: str, rows: list[tuple[tuple[str, int, str], Any]]) -> list[str]:
        out = [
            f"\n--- {title} ---",
            f"{'cum %':>6} {'cumtime':>8} {'own %':>6} {'tottime':>8} {'calls':>9}  function",
        ]
        for key, (cc, nc, tt, ct, _) in rows:
            calls = f"{nc}" if nc == cc else f"{nc}/{cc}"
            out.append(f"{ct / total:6.1%} {ct:8.3f} {tt / total:6.1%} {tt:8.3f} {calls:>9}  {where(key)}")
        return out

    items = list(raw.items())
    lines = [
        f"Profile of one `letterkit send` under cProfile: {prof}",
        f"total {total:.3f} s (profiling slows Python code more than I/O waits:"
        " compare shares, not seconds, with the timed runs)",
    ]
    lines += table(
        f"top {top} by cumulative time", sorted(items, key=lambda kv: kv[1][3], reverse=True)[:top]
    )
    lines += table(
        f"top {top} by own time (tottime)", sorted(items, key=lambda kv: kv[1][2], reverse=True)[:top]
    )
    own = [kv for kv in items if "/letterkit/" in kv[0][0].replace(os.sep, "/")]
    lines += table(
        f"top {top} letterkit functions by cumulative time",
        sorted(own, key=lambda kv: kv[1][3], reverse=True)[:top],
    )
    text = "\n".join(lines) + "\n"
    print(text)
    return text


# -------------------------------------------------------------------- main


def wait_for_letterkit(env: dict[str, str], cwd: Path, seconds: float) -> tuple[bool, str]:
    deadline = time.monotonic() + seconds
    ok, why = letterkit_available(env, cwd)
    while not ok and time.monotonic() < deadline:  # bounded by --wait
        log(f"letterkit send not available yet ({why}); retrying in 20 s")
        time.sleep(min(20.0, max(0.0, deadline - time.monotonic())))
        ok, why = letterkit_available(env, cwd)
    return ok, why


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="letterkit benchmark: throughput, start-up and memory against a bare "
        "smtplib loop and mailmerge, all on 127.0.0.1.",
    )
    ap.add_argument("--n", type=int, default=2000, help="recipients per run (default 2000)")
    ap.add_argument("--big", type=int, default=20000, help="recipients for the memory run")
    ap.add_argument("--skip-big", action="store_true", help="skip the --big memory run")
    ap.add_argument("--repeat", type=int, default=5, help="throughput runs each (median)")
    ap.add_argument("--startup-runs", type=int, default=20, help="runs per start-up command")
    ap.add_argument(
        "--only", choices=["throughput", "startup", "memory", "profile"], help="run one part only"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also run letterkit send under cProfile (benchmarks/results/send.prof)",
    )
    ap.add_argument("--no-mailmerge", action="store_true", help="skip mailmerge throughput")
    ap.add_argument("--json", metavar="FILE", help="write all figures to FILE as JSON")
    ap.add_argument(
        "--tmp",
        metavar="DIR",
        default=str(Path(__file__).resolve().parent / "results"),
        help="where to put campaigns and data dirs (default: benchmarks/results, on the same "
        "disk as a user's data folder; /tmp may be tmpfs or, on some VMs, much slower)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="if `letterkit send` is not there yet, poll for up to this long",
    )
    args = ap.parse_args(argv)
    if args.n < 1 or args.big < 1 or args.repeat < 1 or args.startup_runs < 1:
        ap.error("--n, --big, --repeat and --startup-runs must be positive")
    if args.n > 10_000_000 or args.big > 10_000_000:
        ap.error("keep --n and --big below 10,000,000")

    parts = {args.only} if args.only else {"throughput", "startup", "memory"}
    if args.profile:
        parts.add("profile")
    RESULTS.mkdir(exist_ok=True)
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="letterkit-bench-", dir=args.tmp))
    res: dict[str, Any] = {"machine": machine(), "tmp": str(work), "notes": [], "args": vars(args)}
    log(f"working in {work}")
    config_home = work / "config"
    config_home.mkdir()
    base_env = child_env(config_home, work / "data-none")
    sink: Sink | None = None
    status = 0
    try:
        compile_letterkit()  # every part runs letterkit as installed: with its byte-code
        res["fsync_per_s"] = fsync_probe(work)
        lk_ok, lk_why = wait_for_letterkit(base_env, work, args.wait)
        if not lk_ok:
            res["notes"].append(f"letterkit send/account not available yet: {lk_why}")
            log(f"letterkit send not available ({lk_why}): its send figures are skipped")
        needs_sink = bool(parts & {"throughput", "memory", "profile"})
        if needs_sink:
            sink = Sink(work)
            log(f"SMTP sink on {HOST}:{sink.port} (control {sink.control_port})")
        camp = make_campaign(work, args.n) if needs_sink else None
        if lk_ok and sink:
            setup_account(base_env, work, sink.port)

        if "throughput" in parts and sink and camp:
            subject, body, body_source = rendered_letter(camp, base_env, work)
            res["body"] = {"source": body_source, "chars": len(body)}
            msgs = build_bare_messages(args.n, subject, body)
            mm_dir = write_mailmerge_inputs(work, args.n, subject, body, sink.port)
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], "letterkit": [], "mailmerge": []}
            for i in range(args.repeat):  # interleaved, so drift hits all three alike
                log(f"throughput round {i + 1}/{args.repeat}: bare")
                runs["bare"].append(bare_once(sink, msgs))
                if lk_ok:
                    log(f"throughput round {i + 1}/{args.repeat}: letterkit send")
                    runs["letterkit"].append(letterkit_once(sink, camp, args.n, config_home, work, f"tp{i}"))
                if not args.no_mailmerge and MAILMERGE.exists():
                    log(f"throughput round {i + 1}/{args.repeat}: mailmerge")
                    runs["mailmerge"].append(mailmerge_once(sink, mm_dir, args.n, work, f"{i}"))
            del msgs
            tp: dict[str, Any] = {"n": args.n, "repeat": args.repeat}
            for key, rs in runs.items():
                if rs:
                    tp[key] = summarise(rs, args.n)
            if not lk_ok:
                tp["letterkit_skipped"] = "letterkit send not available"
            if not runs["mailmerge"]:
                tp["mailmerge_skipped"] = "mailmerge not run"
            res["throughput"] = tp

        if "startup" in parts:
            log(f"start-up: {args.startup_runs} runs each")
            res["startup"] = startup(args.startup_runs, base_env, work)

        if "memory" in parts and sink:
            mem: dict[str, Any] = {"skip_big": args.skip_big}
            if not lk_ok:
                mem["skipped"] = "letterkit send not available"
            else:
                lk_runs = (res.get("throughput") or {}).get("letterkit")
                if lk_runs:
                    mem["small"] = {
                        "n": args.n,
                        "rss_mib": lk_runs["rss_mib"],
                        "wall": lk_runs["wall_median"],
                        "rss_split": lk_runs["runs_raw"][-1].get("rss_split"),
                    }
                else:
                    assert camp is not None
                    log(f"memory: letterkit send N={args.n}")
                    r = letterkit_once(sink, camp, args.n, config_home, work, "mem-small")
                    mem["small"] = {
                        "n": args.n,
                        "rss_mib": r["rss_mib"],
                        "wall": r["wall"],
                        "rss_split": r.get("rss_split"),
                    }
                if not args.skip_big:
                    big_camp = make_campaign(work, args.big)
                    log(f"memory: letterkit send N={args.big} (this takes a while)")
                    r = letterkit_once(sink, big_camp, args.big, config_home, work, "mem-big")
                    mem["big"] = {
                        "n": args.big,
                        "rss_mib": r["rss_mib"],
                        "wall": r["wall"],
                        "first_msg_after": r["first_msg_after"],
                        "rss_split": r.get("rss_split"),
                        "data_dir_mib": r["data_dir_mib"],
                    }
            res["memory"] = mem

        if "profile" in parts and sink and camp:
            if not lk_ok:
                res["notes"].append("profile skipped: letterkit send not available")
            else:
                prof = RESULTS / "send.prof"
                log(f"profile: letterkit send N={args.n} under cProfile -> {prof}")
                r = letterkit_once(sink, camp, args.n, config_home, work, "profile", profile_to=prof)
                res["profile"] = {"file": str(prof), "wall_under_profiler": r["wall"]}
                text = print_profile(prof)
                (RESULTS / "send-profile.txt").write_text(text, encoding="utf-8")
    except BenchError as exc:
        log(f"BENCHMARK FAILED: {exc}")
        res["error"] = str(exc)
        status = 2
    finally:
        if sink:
            sink.close()
        res["machine"]["loadavg_end"] = os.getloadavg()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    print_report(res)
    payload = json.dumps(res, indent=2, default=str)
    (RESULTS / "last-run.json").write_text(payload, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(payload, encoding="utf-8")
    if status == 0 and any(c["result"] == "FAIL" for c in res.get("checks", [])):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
