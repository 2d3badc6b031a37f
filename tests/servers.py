"""Helpers for tests that start a real HTTP server on 127.0.0.1."""

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(
    command: Sequence[str], ready_url: str, log: Path, env: dict | None = None
) -> Iterator[subprocess.Popen]:
    """Start a server whose output goes to ``log`` (a pipe nobody reads would stall it).

    Yields once ``ready_url`` answers; stops the server on exit.
    """
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(ready_url, process, log)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, deadline_s: float = 120) -> None:
    """Return once ``url`` answers; fail (showing the server's log) if it exits or times out."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline_s} s:\n{log.read_text()}")
