"""Who owns a leftover, and is it still running? Process identity across recycled pids.

A staging folder or an MLflow run records the process that made it: its pid, its
start time and its host. A pid alone is not an identity (the system gives a dead
process's pid to a new one), so on Linux the start time (``/proc/<pid>/stat``, in
clock ticks since boot) must match as well. Where it cannot be read the check falls
back to whether any process has that pid. Pids are only comparable within one pid
namespace: two containers may share a host name (``--network host``) and a volume,
so on Linux the namespace is part of the host's identity.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from dataclasses import dataclass
from functools import cache

__all__ = [
    "ProcessIdentity",
    "current_process",
    "host_name",
    "is_running",
    "pid_namespace",
    "start_time",
]

_PROC = "/proc"


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, told apart from a later one that reuses its pid.

    Attributes
    ----------
    pid : int
        Process id.
    start : str
        Start time in clock ticks since boot (Linux), ``""`` where unknown.
    host : str
        Host name of the machine it runs on.
    namespace : str
        Its pid namespace (Linux: ``pid:[<inode>]``), ``""`` where unknown.
    """

    pid: int
    start: str
    host: str
    namespace: str = ""

    @property
    def host_key(self) -> str:
        """8 hex digits naming the host and pid namespace, short enough for a folder name."""
        return hashlib.sha256(f"{self.host}\0{self.namespace}".encode()).hexdigest()[:8]


@cache
def host_name() -> str:
    """Return this machine's host name."""
    return socket.gethostname()


@cache
def pid_namespace() -> str:
    """Return this process's pid namespace (Linux), ``""`` where unknown."""
    try:
        return os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return ""


def start_time(pid: int) -> str:
    """Return the start time of process ``pid`` (Linux), ``""`` if unknown or not running."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else ""


def current_process() -> ProcessIdentity:
    """Return the identity of this process (read again after a fork: the pid changes)."""
    pid = os.getpid()
    return ProcessIdentity(pid, _own_start(pid), host_name(), pid_namespace())


@cache
def _own_start(pid: int) -> str:
    return start_time(pid)


def is_running(pid: int, start: str = "") -> bool:
    """Tell whether process ``pid`` (started at ``start``, if known) still runs here.

    A zombie (ended, not yet reaped) is not running. When in doubt (a process of
    another user that cannot be inspected, an unknown platform), the answer is yes:
    a live owner's files must never be taken for leftovers.
    """
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is not None:
        if fields[0] in ("Z", "X"):
            return False
        return not start or len(fields) <= 19 or fields[19] == start
    if os.path.exists(f"{_PROC}/self/stat"):
        # Linux, yet no stat for ``pid``: gone, unless hidden (``hidepid``) from us.
        return _signal_zero(pid)
    if sys.platform == "win32":
        return _windows_running(pid)
    return _signal_zero(pid)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces and parentheses.
    return text[text.rfind(")") + 1 :].split()


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal is sent: only the existence check
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return True
    return True


def _windows_running(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    # os.kill(pid, 0) would terminate the process on Windows: ask the kernel instead.
    try:
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    except Exception:
        return True
