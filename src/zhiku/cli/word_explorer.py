"""The word explorer over a KB's trained Word2Vec: look words up, and draw them on a 2-D map.

Words are looked up the way the corpus was tokenised: "cats" is found as the stem "cat", and a
phrase jieba splits ("农业保险" → 农业 | 保险) is explained rather than reported as unknown.
The map is a PCA projection of the words and their nearest neighbours (matplotlib, no display).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zhiku.errors import NotFoundError

if TYPE_CHECKING:
    from zhiku.service import WordVectors


def resolve_word(wv: WordVectors, word: str, tokenizer: Callable[[str], list[str]], method: str) -> str:
    """The vocabulary entry for ``word``, or a NotFoundError that names the closest known words."""
    if word in wv:
        return word
    tokens = tokenizer(word)
    if len(tokens) == 1 and tokens[0] in wv:
        return tokens[0]  # the corpus's own form: folded, stemmed
    if len(tokens) > 1 and all(t in wv for t in tokens):
        raise NotFoundError(
            f"{word!r} is not one word to the tokenizer: it reads {' | '.join(tokens)}",
            f"Ask about one of them, e.g. `zhiku words similar {tokens[0]}`",
        )
    close = wv.closest_spellings(word)
    hint = (
        f"Closest known words: {', '.join(close)}"
        if close
        else f"Words seen fewer than min_count times are not learned; lower [methods.{method}.options] "
        "min_count"
    )
    raise NotFoundError(f"{word!r} is not in the vocabulary of {method} ({len(wv)} words)", hint)


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """PCA to two dimensions (centred, by SVD); fewer than two points land on the origin."""
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    return out if out.shape[1] == 2 else np.hstack([out, np.zeros((len(out), 2 - out.shape[1]))])


@dataclass(frozen=True)
class WordMap:
    path: Path
    words: list[str]  # every word drawn, the asked-for ones first
    font: str | None  # the font file used for the labels (None: matplotlib's default)
    missing_glyphs: bool  # Chinese labels but no font with Chinese glyphs: they show as boxes


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The path of an installed font with Chinese glyphs, or None.

    fontconfig is asked first: matplotlib's own font list is a cache that does not notice fonts
    installed after it was written.
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    # LastResort maps every character to a placeholder box: it "has" the glyph but shows no Chinese.
    known = sorted({f.fname for f in font_manager.fontManager.ttflist if "lastresort" not in f.fname.lower()})
    hints = (
        "cjk",
        "noto sans sc",
        "wqy",
        "wenquanyi",
        "simhei",
        "droid",
        "hei",
        "song",
        "ming",
        "ukai",
        "uming",
    )
    likely = [f for f in known if any(h in f.lower() for h in hints)]
    regular_sans_first = sorted(_fontconfig_cjk(), key=lambda f: ("Sans" not in f, "Regular" not in f, f))
    for path in regular_sans_first + likely + [f for f in known if f not in likely]:
        try:
            if FT2Font(path).get_char_index(ord("中")):
                return path
        except (OSError, RuntimeError):
            continue
    return None


def _fontconfig_cjk() -> list[str]:
    import shutil
    import subprocess

    if not shutil.which("fc-list"):
        return []
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":")[0].strip() for line in out.splitlines() if line.strip()]


def plot_words(
    wv: WordVectors,
    words: Sequence[str],
    out: Path,
    neighbours: int = 5,
    title: str = "",
    font: str | None = None,
) -> WordMap:
    """Draw ``words`` (already resolved) and their ``neighbours`` nearest words, PCA-projected, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties

    group: dict[str, int] = {}
    for g, w in enumerate(words):
        group.setdefault(w, g)
    for g, w in enumerate(words):
        for n, _ in wv.most_similar([w], n=neighbours):
            group.setdefault(n, g)
    drawn = list(group)
    xy = project_2d(np.stack([wv.vector(w) for w in drawn])) if drawn else np.zeros((0, 2))
    font = font or (cjk_font() if any(_has_cjk(w) for w in drawn) else None)
    props = FontProperties(fname=font) if font else None
    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    colors = plt.get_cmap("tab10")
    asked = set(words)
    for (x, y), w in zip(xy, drawn, strict=True):
        c = colors(group[w] % 10)
        ax.scatter([x], [y], color=c, s=60 if w in asked else 20, zorder=2)
        ax.annotate(
            w,
            (x, y),
            xytext=(4, 3),
            textcoords="offset points",
            color=c,
            fontproperties=props,
            fontsize=12 if w in asked else 9,
            fontweight="bold" if w in asked else "normal",
        )
    ax.set_title(title or "word vectors, PCA projection", fontproperties=props)
    ax.set_xticks([])
    ax.set_yticks([])
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # "Glyph … missing from font": reported once, through WordMap.missing_glyphs, not per label.
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
        fig.savefig(out)
    plt.close(fig)
    return WordMap(out, drawn, font, font is None and any(_has_cjk(w) for w in drawn))
