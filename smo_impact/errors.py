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
