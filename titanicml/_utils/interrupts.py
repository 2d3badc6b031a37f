"""Hold Ctrl-C during a short critical section, so that no step is left half done."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["interrupts_deferred"]


@contextmanager
def interrupts_deferred(second_passes: bool = False) -> Iterator[Callable[[], bool]]:
    """Hold SIGINT during a critical section; yield a function telling if one came.

    With ``second_passes``, a second Ctrl-C is not held: it goes to the handler that was
    in place (for a section that can take long, such as an upload). Outside the main
    thread signals cannot be handled, and nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)
        if second_passes and len(received) > 1:
            signal.signal(signal.SIGINT, previous)
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)
