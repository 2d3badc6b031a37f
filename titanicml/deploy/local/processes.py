"""Start, probe and stop the background processes of local endpoints.

Each process is started in a session of its own (so Ctrl-C in the terminal that
made it does not stop it, and it outlives the command), with its output in a log
file of the endpoint, and is handed its listening socket already bound on
127.0.0.1: the port is known before the process starts, and no other process can
take it meanwhile. Processes are recorded by pid and start time
(:class:`~titanicml._utils.processes.ProcessIdentity`), so a recycled pid is never
signalled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from titanicml._utils.processes import is_running, start_time

__all__ = [
    "ProbeFailed",
    "Started",
    "bind",
    "bind_local",
    "log_tail",
    "probe",
    "start_process",
    "stop_process",
    "wait_ready",
]

_POLL_SECONDS = 0.1


class ProbeFailed(Exception):
    """A process did not become ready; the message says why (internal)."""


class Started:
    """A process just started: its pid, start time and port."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.pid = process.pid
        self.start = start_time(process.pid)
        self.port = port


def bind(port: int = 0) -> socket.socket:
    """Return a listening socket on 127.0.0.1 (``port`` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def bind_local() -> tuple[socket.socket, str] | None:
    """Return a listening Unix socket with an abstract name (Linux), or ``None`` elsewhere.

    The router reaches instances through it: a Unix socket costs the kernel about half
    what a TCP connection on 127.0.0.1 does per message, and an abstract name is no
    file (no path length limit, nothing left behind).
    """
    if not sys.platform.startswith("linux"):
        return None
    name = f"titanicml-{os.getpid()}-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("\0" + name)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock, name


def start_process(arguments: list[str], sockets: list[socket.socket], log: Path) -> Started:
    """Start ``python -m titanicml.deploy.local.run ARGUMENTS --fd N...`` on ``sockets``.

    The first socket is the TCP one whose port is recorded. The caller's copies of the
    sockets are closed once the process holds them.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    descriptors = tuple(sock.fileno() for sock in sockets)
    command = [sys.executable, "-m", "titanicml.deploy.local.run", *arguments]
    for descriptor in descriptors:
        command += ["--fd", str(descriptor)]
    with log.open("ab") as output:
        output.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting\n".encode())
        output.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=descriptors,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        )
    port = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.close()
    return Started(process, port)


def probe(port: int, path: str, timeout: float) -> bool:
    """Whether ``GET http://127.0.0.1:PORT/PATH`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(started: Started, path: str, deadline_s: float, timeout: float, log: Path) -> None:
    """Return once the process answers ``path``; raise :class:`ProbeFailed` otherwise."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise ProbeFailed(
                f"it exited with status {started.process.returncode}: {log_tail(log, 3)}"
            )
        if probe(started.port, path, timeout):
            return
        time.sleep(_POLL_SECONDS)
    raise ProbeFailed(f"it did not answer {path} within {deadline_s:g} s: {log_tail(log, 3)}")


def stop_process(pid: int, start: str, grace: float = 30.0) -> None:
    """Stop a recorded process: SIGTERM (it finishes its requests), SIGKILL after ``grace``."""
    if not is_running(pid, start):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid, start):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while is_running(pid, start):
        _reap(pid)
        time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status of our own child (else it stays a zombie), if it is one."""
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)


def log_tail(log: Path, lines: int) -> str:
    """Return the last lines of a log file, on one line."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:] if line.strip()) or "(empty log)"
