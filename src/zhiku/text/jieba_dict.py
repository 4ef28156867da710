"""jieba segmenters whose dictionary loads only as far as the text needs it.

``jieba.initialize()`` unmarshals its whole prefix dictionary (~500,000 entries; 0.3-0.5 s, or a
second when it builds it from ``dict.txt``) and a KB's own segmenter then adds its user dictionary
and synonym words one ``add_word`` at a time, in every process. A one-off ``zhiku search`` paid that
for one question. Here the finished dictionary (jieba's, plus the KB's words, plus its total) is
written once to a ``ShardTable`` in the user's cache folder (``zhiku.user_cache``), keyed by
everything it was made from; later processes fill ``FREQ`` shard by shard from it before each cut.

Exact: jieba reads ``FREQ`` only for substrings of the text it cuts (``get_DAG``, ``calc``, the HMM
step and ``cut_for_search``'s grams all do), and every ``cut`` starts with ``get_DAG`` of the block,
where the shards of the block's characters are loaded first. ``tests/unit/test_jieba_dict.py``
checks the cuts against jieba's own on Chinese text, with and without a user dictionary.

jieba's own prefix cache (used only to build ours) lives in the same folder, not in the system's
temporary folder, where a cleaner may delete it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from zhiku.user_cache import DamagedCacheFile, ShardTable, cache_root, write_table

#: bump when what the table holds changes
FORMAT = 1
log = logging.getLogger("zhiku.text")
_lock = threading.Lock()


def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def table_path(digest: str | None, words: tuple[str, ...]) -> Path:
    """Where the dictionary made from jieba's ``dict.txt``, the user dictionary whose content hash
    is ``digest`` and ``words`` is kept: any change among them is another file."""
    jieba = _jieba()
    stat = os.stat(Path(jieba.__file__).parent / jieba.DEFAULT_DICT_NAME)
    # jieba's own __version__: importlib.metadata would cost more than the lookups it guards
    made_of = [FORMAT, jieba.__version__, stat.st_size, stat.st_mtime_ns, digest, *words]
    key = hashlib.sha256(repr(made_of).encode()).hexdigest()[:20]
    return cache_root() / "jieba" / f"dict-{key}.shards"


def full_segmenter(user_dict: str | None, words: tuple[str, ...]) -> Any:
    """A segmenter with the whole dictionary loaded, as jieba builds it (the slow path)."""
    jieba = _jieba()
    seg = jieba.Tokenizer()
    seg.tmp_dir = str(cache_root() / "jieba")
    try:
        Path(seg.tmp_dir).mkdir(parents=True, exist_ok=True)
    except OSError:
        seg.tmp_dir = None  # an unwritable cache folder: jieba's default (the temporary folder)
    seg.initialize()
    if user_dict:
        seg.load_userdict(user_dict)
    for word in words:
        # No frequency: jieba suggests one just high enough to keep the word whole, as it does for a
        # user-dictionary line without one; a higher frequency from the user dictionary is kept.
        seg.add_word(word)
    return seg


def segmenter(user_dict: str | None, digest: str | None, words: tuple[str, ...]) -> Any:
    """A jieba segmenter for this dictionary: lazy from the cache, or built whole (and cached)."""
    path = table_path(digest, words)
    with _lock:
        try:
            return _lazy_class()(ShardTable(path), lambda: full_segmenter(user_dict, words))
        except DamagedCacheFile as e:
            if path.exists():
                log.info("the jieba dictionary cache %s is damaged (%s); rebuilding it", path, e)
        whole = full_segmenter(user_dict, words)
        _save(path, whole)
        return _lazy_class()(None, lambda: whole, whole)


def _save(path: Path, seg: Any) -> None:
    try:
        write_table(path, seg.FREQ.items(), {"total": seg.total})
    except OSError as e:  # a read-only cache folder: every process loads the whole dictionary
        log.info("cannot write the jieba dictionary cache %s (%s)", path, e)


_LAZY: Any = None


def _lazy_class() -> Any:
    """``LazySegmenter`` (over a table, or a whole dictionary already loaded), defined on first use
    so that ``import zhiku`` does not import jieba."""
    global _LAZY
    if _LAZY is not None:
        return _LAZY
    jieba = _jieba()

    class LazySegmenter(jieba.Tokenizer):  # type: ignore[name-defined]
        """jieba's Tokenizer over a ``ShardTable``: ``FREQ`` holds the shards loaded so far."""

        def __init__(self, table: ShardTable | None, rebuild: Any, whole: Any = None) -> None:
            super().__init__()
            self._table = table
            self._rebuild = rebuild
            if whole is not None:  # built the slow way in this process: nothing left to load
                self.FREQ, self.total = whole.FREQ, whole.total
            elif table is not None:
                self.total = int(table.extra["total"])
            self.initialized = True  # jieba would load its whole dictionary otherwise

        def _fill(self, text: str | None) -> None:
            table = self._table
            if table is None:
                return
            try:
                if text is None:
                    table.fill_all(self.FREQ)
                else:
                    table.fill(self.FREQ, text)
            except DamagedCacheFile as e:
                # A shard damaged since the file was opened: this process takes the whole dictionary
                # the slow way (the same one), and the file is written again for the next.
                log.info("the jieba dictionary cache is damaged (%s); rebuilding it", e)
                whole = self._rebuild()
                self.FREQ, self.total, self._table = whole.FREQ, whole.total, None
                _save(table.path, whole)

        def get_DAG(self, sentence: str) -> Any:  # noqa: N802  jieba's name
            self._fill(sentence)
            return super().get_DAG(sentence)

        def load_all(self) -> None:
            """Every shard now (before forking ingest workers, which then share it)."""
            self._fill(None)

    _LAZY = LazySegmenter
    return _LAZY
