"""The project's exceptions.

Every user-facing error is a :class:`SmoError`: the CLI prints its message on one line and exits
with code 2. Messages name the key, file or value, the rule, and the fix.
"""

from __future__ import annotations

import errno
import os
import stat


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


# -- quoting user values in messages -----------------------------------------------------------
# A label, task id, key or column name may be a 200 MB text or a 10 000-item list: a message
# quotes about this many characters of it, never all of it.
SHOWN_CHARS = 100


def shorten(text: object, limit: int = SHOWN_CHARS) -> str:
    """``str(text)``, cut to ``limit`` characters (``...`` marks the cut): for names and keys."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters: for a user's value quoted in a message. numpy
    scalars print as plain numbers (7, not np.int64(7))."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # type: ignore[attr-defined]
    if isinstance(value, int) and value.bit_length() > 4 * limit:  # repr of 4300+ digits raises
        return f"<a {value.bit_length()}-bit integer>"
    return shorten(repr(value), limit)


def listing(names: list | tuple, most: int = 20) -> str:
    """``a, b, c`` of the first ``most`` names, each shortened, and how many were left out."""
    names = list(names)
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return ", ".join(shorten(n) for n in names[:most]) + more


def not_a_regular_file(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it names something other than a readable regular file ("is a named
    pipe (FIFO), not a regular file"), or None for a regular file, a directory or a path that does
    not exist (callers say 'is a directory' / 'not found' in their own words). Only stat()s the
    path: opening a FIFO with no writer blocks forever and /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (it leads back to itself)"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"is a symbolic link to {shorten(os.readlink(path))}, which does not exist"
        if exc.errno == errno.ENOENT:
            return None
        return f"cannot be read ({exc.strerror})"
    kinds = (
        (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file"),
        (stat.S_ISCHR, "is a character device (like /dev/zero), not a regular file"),
        (stat.S_ISBLK, "is a block device, not a regular file"),
        (stat.S_ISSOCK, "is a socket, not a regular file"),
    )
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((what for test, what in kinds if test(mode)), "is not a regular file")


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM: CI cancellation, ``timeout``, Kubernetes).

    A KeyboardInterrupt, so that every path that handles Ctrl-C (runs marked KILLED, worker
    processes stopped) handles it too; the command exits 143 instead of 130.
    """
