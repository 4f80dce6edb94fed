"""The project's exceptions.

Every user-facing error is a :class:`SmoError`: the CLI prints its message on one line and exits
with code 2. Messages name the key, file or value, the rule, and the fix.
"""

from __future__ import annotations


class SmoError(Exception):
    """Base class for errors caused by the user's input (config, data, environment)."""

    exit_code = 2


class ConfigError(SmoError):
    """An experiment config is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}{self.problems[0]}"
        else:
            message = f"{where}{len(self.problems)} problems: " + "; ".join(self.problems)
        super().__init__(message)


class DataError(SmoError):
    """A dataset is missing, unreadable, or fails validation."""


class TrackingError(SmoError):
    """The tracking store cannot be reached or written."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM: CI cancellation, ``timeout``, Kubernetes).

    A KeyboardInterrupt, so that every path that handles Ctrl-C (runs marked KILLED, worker
    processes stopped) handles it too; the command exits 143 instead of 130.
    """
