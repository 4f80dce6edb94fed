"""Stop a sweep on Ctrl-C or SIGTERM, but never in the middle of a write to the tracking store.

Python raises KeyboardInterrupt wherever the main thread is when the signal arrives, including
inside a SQLite write: the interrupted connection can keep its lock, and marking the runs KILLED
then fails after 20 s with "database is locked" and a page of tracebacks. So, while a tracker call
runs, the handlers below only note the signal; it is raised as soon as the call returns, and the
runner's Ctrl-C paths (runs marked KILLED, worker processes stopped) take over.

SIGTERM (CI cancellation, ``timeout``, Kubernetes) raises :class:`~smo_impact.errors.Terminated`,
a KeyboardInterrupt, so it takes the same paths; the command then exits 143 instead of 130.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Iterator
from typing import Any

from smo_impact.errors import Terminated

_depth = 0  # tracker calls in progress (the store must not be interrupted)
_pending: type[KeyboardInterrupt] | None = None  # a signal that arrived during one


def _handler(signum: int, frame: object) -> None:
    global _pending
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough; SIGKILL still stops everything
    interrupt = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    if _depth:
        _pending = interrupt
        return
    raise interrupt()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, Ctrl-C raises KeyboardInterrupt and SIGTERM Terminated, outside tracker calls."""
    global _depth, _pending
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _depth, _pending = 0, None


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise them."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            interrupt, _pending = _pending, None
            raise interrupt()


class Uninterrupted:
    """A tracker whose every call runs :func:`uninterrupted`."""

    def __init__(self, tracker: Any) -> None:
        self._tracker = tracker

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._tracker, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            with uninterrupted():
                result = attribute(*args, **kwargs)
            # A context manager (the tracker's batch, lock) writes on enter and exit, after this
            # call returned: those run uninterrupted too.
            if hasattr(result, "__enter__") and hasattr(result, "__exit__"):
                return _Guarded(result)
            return result

        return call


__all__ = ["Uninterrupted", "stop_on_signals", "uninterrupted"]


class _Guarded:
    """A context manager whose enter and exit run :func:`uninterrupted` (the block itself does not)."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager

    def __enter__(self) -> Any:
        with uninterrupted():
            return self._manager.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        with uninterrupted():
            return self._manager.__exit__(*exc)
