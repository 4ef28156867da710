"""A registry by name: built-ins are registered the same way a plugin would be.

An unknown name raises an error that lists the registered names, built from the registry itself so
the list never goes stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from zhiku.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.what} {name!r}",
                f"Choose one of: {', '.join(self.names())}",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
