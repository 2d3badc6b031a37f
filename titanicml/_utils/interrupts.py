"""Hold Ctrl-C during a short critical section, so that no step is left half done."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["interrupts_deferred"]


@contextmanager
def interrupts_deferred() -> Iterator[Callable[[], bool]]:
    """Hold SIGINT during a short critical section; yield a function telling if one came.

    Outside the main thread signals cannot be handled, and nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)
