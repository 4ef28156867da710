"""The hashing embedder's memo of n-gram slots gives the vectors of hashing every n-gram anew."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from zhiku.embed import hashing
from zhiku.embed.base import l2_normalize
from zhiku.embed.hashing import HashingEmbedder
from zhiku.text.normalise import fold


def reference(texts: list[str], dim: int, ngram: int) -> np.ndarray:
    """The embedder as first written: blake2b of each n-gram, ±1 added one at a time."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        t = "".join(fold(text).split())
        for n in range(1, ngram + 1):
            for i in range(len(t) - n + 1):
                v = int.from_bytes(hashlib.blake2b(t[i : i + n].encode(), digest_size=8).digest(), "little")
                out[row, v % dim] += 1.0 if (v >> 32) & 1 else -1.0
    return l2_normalize(out)


def texts(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = (
        "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理世车"
        + "ABCxyz 　ＡＢ繁體中文\n\t"
    )  # noqa: E501
    return ["", " ", "a", "ab"] + ["".join(rng.choices(alphabet, k=rng.randint(0, 400))) for _ in range(60)]


@pytest.mark.parametrize(("dim", "ngram"), [(384, 2), (64, 3), (256, 1)])
def test_same_vectors_as_hashing_each_ngram(dim: int, ngram: int) -> None:
    batch = texts()
    emb = HashingEmbedder(dim=dim, ngram=ngram)
    assert np.array_equal(emb.embed_batch(batch), reference(batch, dim, ngram))
    # the second pass answers from the memo
    assert np.array_equal(emb.embed_batch(batch[::-1]), reference(batch[::-1], dim, ngram))


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "MEMO_SIZE", 50)
    emb = HashingEmbedder(dim=128)
    batch = texts(1)
    assert np.array_equal(emb.embed_batch(batch), reference(batch, 128, 2))
    assert 0 < len(emb._slots) <= 50
