"""Named component registries with did-you-mean lookup.

Components are referred to from YAML by short registered names, never by import paths, so the set
of things a config can instantiate is closed, listable (``smo-impact list``) and checkable.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from smo_impact.errors import shorten

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | set[str] | tuple[str, ...]) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or "" when nothing is close."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        # 'label_nosie' -> 'noise': also match the parts of a compound name.
        for part in name.replace("-", "_").split("_"):
            close = difflib.get_close_matches(part, choices, n=1, cutoff=0.75)
            if close:
                break
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name_message(kind: str, name: str, choices: list[str] | set[str] | tuple[str, ...]) -> str:
    """The one-line message for an unknown registered name."""
    return (
        f"Unknown {kind} '{shorten(name)}'.{did_you_mean(name, choices)} "
        f"Available: {', '.join(sorted(choices))}."
    )


class Registry(Generic[T]):
    """A closed mapping from short names to components of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Look up ``name``; raise KeyError with a did-you-mean message when unknown."""
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(unknown_name_message(self.kind, name, list(self._items))) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]
