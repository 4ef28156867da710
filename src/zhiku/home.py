"""``Home``: the folder that holds knowledge bases — list, create, open and delete them.

The CLI (``zhiku kbs``, ``--kb NAME``) and the web API (``GET/POST/DELETE /kbs``) both go through
it, so a name is checked, and a KB created or removed, the same way everywhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from zhiku.config import KBConfig, default_home
from zhiku.errors import AlreadyExistsError, ConfigError, NotFoundError, UnknownNameError, ZhikuError
from zhiku.store.layout import KBLayout, check_kb_name, check_new_kb_name, kb_names
from zhiku.store.liveness import die_with_parent
from zhiku.store.recover import OWNER_FILE, recover_home

# Re-exported for the faces: a KB's folder layout, crash recovery of a whole home, and a worker
# process that dies with the server (the API's writer process).
__all__ = ["OWNER_FILE", "Home", "KBLayout", "die_with_parent", "recover_home"]

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase


class Home:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_home()

    def names(self) -> list[str]:
        return kb_names(self.root)

    def layout(self, name: str) -> KBLayout:
        # Names are checked before they touch the file system: no "..", no slashes, no absolute paths.
        return KBLayout(self.root / check_kb_name(name))

    def exists(self, name: str) -> bool:
        return self.layout(name).exists()

    def open(self, name: str) -> KnowledgeBase:
        from zhiku.service import KnowledgeBase

        return KnowledgeBase.open(name, home=self.root, create=False)

    def create(self, name: str, config: KBConfig | None = None) -> KnowledgeBase:
        """A new, empty KB; its methods are checked now (an unknown kind fails here, not at a search)."""
        from zhiku.service import KnowledgeBase

        layout = self.layout(check_new_kb_name(name, self.names()))
        if layout.exists():
            raise AlreadyExistsError(
                f"knowledge base {name!r} already exists", "Pick another name, or delete it first"
            )
        kb = KnowledgeBase.open(layout.root, create=True, config=config or KBConfig())
        try:
            for method in kb.method_names():
                kb.method(method)
        except ZhikuError as e:
            kb.close()
            shutil.rmtree(layout.root, ignore_errors=True)
            if isinstance(e, UnknownNameError):  # a bad setting, not a missing resource
                raise ConfigError(f"settings: {e.message}", e.hint) from e
            raise
        return kb

    def delete(self, name: str) -> None:
        """Remove a KB and everything in its folder (waits for no writer: fails if one runs)."""
        layout = self.layout(name)
        if not layout.exists():
            raise NotFoundError(f"no knowledge base {name!r} in {self.root}", "See `zhiku kbs`")
        with layout.writer_lock():
            shutil.rmtree(layout.root)
