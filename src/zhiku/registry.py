"""A registry by name: built-ins are registered the same way a plugin would be.

Each registry belongs to one concept (``"method"``, ``"embedder"``, ``"index"``, …). The first time
a name is looked up, the registry imports every module that ``zhiku.builtins`` lists for its
concept, then every plugin of the ``zhiku.plugins`` entry-point group, so which backends exist never
depends on what happened to be imported first. An unknown name raises an error that lists the
registered names, built from the registry itself so the list never goes stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from zhiku.errors import ConfigError, UnknownNameError

T = TypeVar("T")

#: entry-point group of third-party backends: each entry point names a module (or a callable taking
#: no argument) that registers its backends on import, exactly as a built-in module does
PLUGIN_GROUP = "zhiku.plugins"

_plugins_loaded = False
_plugins_loading = False

#: held while a registry imports its modules. The server's threads look names up concurrently (the
#: first uploads check file types at once): without it, a second thread saw a registry marked loaded
#: but still half-filled and refused a .md file as unsupported (the soak's 415s). Reentrant: a
#: module imported for one registry may look names up in another, on the same thread.
_LOADING = threading.RLock()


def load_plugins() -> None:
    """Import every ``zhiku.plugins`` entry point once per process.

    Marked loaded only once every plugin imported: a failure is raised again on the next lookup,
    never hidden behind a half-filled registry. A failing plugin is one error that names it.
    """
    global _plugins_loaded, _plugins_loading
    if _plugins_loaded:
        return
    with _LOADING:
        if _plugins_loaded or _plugins_loading:  # done by another thread, or re-entered by a plugin
            return
        _plugins_loading = True
        try:
            from importlib.metadata import entry_points

            for ep in entry_points(group=PLUGIN_GROUP):
                try:
                    obj = ep.load()
                    if callable(obj) and not isinstance(obj, type):
                        obj()
                except Exception as e:
                    dist = ep.dist.name if ep.dist is not None else "its package"
                    raise ConfigError(
                        f"the zhiku plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}",
                        f"Fix or uninstall {dist} (entry point group {PLUGIN_GROUP!r})",
                    ) from e
            _plugins_loaded = True
        finally:
            _plugins_loading = False


class Registry(Generic[T]):
    """Name -> backend for one concept.

    ``concept`` keys ``zhiku.builtins.BUILTINS``; ``what`` is how error messages name an entry.
    """

    def __init__(self, concept: str, what: str | None = None) -> None:
        self.concept = concept
        self.what = what or concept
        self._items: dict[str, T] = {}
        self._loaded = False  # every module imported: lookups need no lock from then on
        self._loading = False  # this registry's modules are being imported (under _LOADING)

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        existing = self._items.get(name)
        if existing is not None and existing is not obj:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = obj

    def load(self) -> None:
        """Import the built-in modules of this concept, then the plugins (once)."""
        if self._loaded:
            return
        with _LOADING:
            if self._loaded or self._loading:  # done by another thread, or re-entered from below
                return
            self._loading = True
            try:
                from importlib import import_module

                from zhiku.builtins import BUILTINS

                for module in BUILTINS.get(self.concept, ()):
                    import_module(module)
                load_plugins()
                self._loaded = True  # last: another thread must not see it half-filled
            finally:
                self._loading = False

    def get(self, name: str) -> T:
        self.load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.what} {name!r}",
                f"Choose one of: {', '.join(self.names())}",
            ) from None

    def names(self) -> list[str]:
        self.load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        self.load()
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items
