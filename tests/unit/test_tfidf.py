"""TF-IDF: weights (checked against scikit-learn where it is installed), ranking, plain-file storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zhiku.config import KBConfig, MethodConfig
from zhiku.retrieve.methods.tfidf import count_matrix, weigh
from zhiku.service import KnowledgeBase

DOCS = [
    ["保险", "理赔", "保险", "保险金"],
    ["劳动者", "工资", "加班费"],
    ["cat", "kitten", "cat", "cat", "milk"],
    ["保险", "cat"],
    [],
]


def fit(docs: list[list[str]], sublinear: bool) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    vocab = {w: i for i, w in enumerate(sorted({t for d in docs for t in d}))}
    counts = count_matrix(docs, vocab)
    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = (np.log((1 + len(docs)) / (1 + df)) + 1).astype(np.float32)
    return vocab, idf, weigh(counts, idf, sublinear).toarray()


@pytest.mark.parametrize("sublinear", [False, True])
def test_weights_match_scikit_learn(sublinear: bool) -> None:
    text = pytest.importorskip("sklearn.feature_extraction.text")
    vocab, _, ours = fit(DOCS, sublinear)
    ref = text.TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=sublinear, vocabulary=vocab).fit_transform(
        DOCS
    )
    np.testing.assert_allclose(ours, ref.toarray(), atol=1e-6)


def test_rows_are_unit_length_and_sublinear_damps_repeats() -> None:
    _, _, raw = fit(DOCS, False)
    _, _, sub = fit(DOCS, True)
    np.testing.assert_allclose(np.linalg.norm(raw[:4], axis=1), 1.0, atol=1e-6)
    assert not raw[4].any()  # an empty chunk stays the zero vector
    vocab, _, _ = fit(DOCS, False)
    cat, milk = vocab["cat"], vocab["milk"]
    # "cat" three times vs "milk" once: sublinear TF narrows the gap.
    assert raw[2, cat] / raw[2, milk] > sub[2, cat] / sub[2, milk] > 1


def make_kb(root: Path, **options: object) -> KnowledgeBase:
    config = KBConfig(methods={"tfidf": MethodConfig(kind="tfidf", enabled=True, options=dict(options))})
    kb = KnowledgeBase.open(str(root), config=config)
    kb.add_texts(
        [
            ("ins.md", "保险", "保险公司应当及时理赔，向被保险人支付保险金。"),
            ("lab.md", "劳动", "用人单位应当向劳动者支付加班费和工资。"),
            ("cat.md", "cats", "The cat drinks milk. A kitten is a young cat."),
            ("mix.md", "混合", "保险 and a cat."),
        ]
    )
    return kb


@pytest.mark.parametrize("sublinear", [False, True])
def test_search_ranks_by_cosine_and_reloads(tmp_path: Path, sublinear: bool) -> None:
    with make_kb(tmp_path / "kb", sublinear_tf=sublinear) as kb:
        hits = kb.search("保险金 理赔", 3, "tfidf")
        assert hits[0].doc.source == "ins.md"
        assert all(0 < h.score <= 1 + 1e-6 for h in hits)
        assert [h.doc.source for h in kb.search("young kitten", 3, "tfidf")] == ["cat.md"]
        first = [(h.chunk_id, round(h.score, 6)) for h in kb.search("保险 cat", 4, "tfidf")]
        files = sorted(p.name for p in kb.layout.index_dir("tfidf").iterdir())
    # Plain files only, readable without pickle.
    assert files == ["idf.npy", "ids.json", "manifest.json", "matrix.npz", "vocab.json"]
    with np.load(tmp_path / "kb" / "indexes" / "tfidf" / "matrix.npz", allow_pickle=False) as z:
        assert "data" in z.files
    with KnowledgeBase.open(str(tmp_path / "kb"), create=False) as kb:
        assert [(h.chunk_id, round(h.score, 6)) for h in kb.search("保险 cat", 4, "tfidf")] == first


def test_min_df_and_max_df_prune_the_vocabulary(tmp_path: Path) -> None:
    with make_kb(tmp_path / "kb", min_df=2) as kb:
        m = kb.ready_method("tfidf")
        assert set(m._vocab) <= {"保险", "cat", "应当", "支付"}  # only words found in 2+ chunks
        assert kb.search("理赔", 3, "tfidf") == []
    with make_kb(tmp_path / "kb2", max_df=0.3) as kb:
        assert "保险" not in kb.ready_method("tfidf")._vocab  # in 2 of 4 chunks: too common


def test_options_are_validated(tmp_path: Path) -> None:
    from zhiku.errors import ConfigError

    with make_kb(tmp_path / "kb") as kb:
        pass
    config = KBConfig(methods={"tfidf": MethodConfig(kind="tfidf", options={"sublinear": True})})
    with (
        KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb,
        pytest.raises(ConfigError, match="sublinear"),
    ):
        kb.method("tfidf")
