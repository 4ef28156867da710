"""Word2Vec / Doc2Vec methods trained on the KB's own corpus: pooling, determinism, model reuse,
retraining, staleness after ingest and delete, L2 output, and query expansion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.corpus import fast_config
from tests.helpers.word_corpus import (
    FAST_TRAINING,
    TARGET_QUERY,
    TARGET_SOURCE,
    TARGET_TEXT,
    corpus_vector_config,
    topic_documents,
)

from zhiku.config import KBConfig, MethodConfig
from zhiku.embed.word2vec import SentencePooler, WordVectors
from zhiku.errors import IndexError_
from zhiku.service import BuildProgress, KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]


def toy_vectors() -> WordVectors:
    words = ["king", "queen", "man", "woman", "apple", "the"]
    v = np.array(
        [[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5]],
        dtype=np.float32,
    )
    return WordVectors(words, v, np.array([5, 5, 50, 50, 3, 1000]), np.array([2, 2, 4, 4, 1, 6]), 6)


def test_most_similar_solves_analogies_and_never_returns_its_inputs() -> None:
    wv = toy_vectors()
    assert wv.most_similar(["king", "woman"], negative=["man"], n=1)[0][0] == "queen"
    assert all(w not in {"king", "man", "woman"} for w, _ in wv.most_similar(["king", "woman"], ["man"], n=5))
    assert wv.similarity("king", "king") == pytest.approx(1.0)
    assert wv.most_similar(["apple"], n=10, exclude=["the"])[-1][0] != "the"
    assert "queen" in wv.closest_spellings("queem")


def test_pooling_mean_tfidf_and_sif() -> None:
    wv = toy_vectors()
    mean = SentencePooler(wv, "mean").pool([["man", "woman", "unknown"], ["zzz"], []])
    np.testing.assert_allclose(mean[0], (wv.vector("man") + wv.vector("woman")) / 2)
    assert not mean[1].any() and not mean[2].any()  # nothing known: the zero vector
    tfidf = SentencePooler(wv, "tfidf").pool([["apple", "the"]])[0]
    idf_apple, idf_the = np.log(7 / 2) + 1, np.log(7 / 7) + 1
    np.testing.assert_allclose(
        tfidf,
        (idf_apple * wv.vector("apple") + idf_the * wv.vector("the")) / (idf_apple + idf_the),
        rtol=1e-5,
    )
    # SIF: frequent words weigh less; the corpus's common direction is removed from every sentence.
    sentences = [[w, "the"] for w in ("king", "queen", "man", "woman", "apple")] * 2
    small = WordVectors(wv.words, wv.vectors[:, :2].copy(), wv.counts, wv.df, 6)
    pooler = SentencePooler(small, "sif")
    matrix = pooler.pool_corpus(sentences)
    assert pooler.component is not None
    np.testing.assert_allclose(matrix @ pooler.component, 0, atol=1e-5)
    np.testing.assert_allclose(
        pooler.pool([sentences[3]])[0], matrix[3], atol=1e-6
    )  # a query is pooled the same way


def make_kb(root: Path, config: KBConfig | None = None, target: bool = True) -> KnowledgeBase:
    kb = KnowledgeBase.open(str(root), config=config or corpus_vector_config())
    records = topic_documents(per_topic=3, sentences=12)
    kb.add_texts([*records, (TARGET_SOURCE, "灯塔守则", TARGET_TEXT)] if target else records)
    return kb


def ranking(kb: KnowledgeBase, method: str, query: str = "保险 理赔 cat") -> list[tuple[str, float]]:
    return [(h.chunk_id, round(h.score, 5)) for h in kb.search(query, 8, method)]


def model_manifest(kb: KnowledgeBase, name: str) -> dict:
    return json.loads((kb.layout.models / name / "manifest.json").read_text(encoding="utf-8"))


SUBPROCESS_SEARCH = """
import json, sys
from zhiku.service import KnowledgeBase
out = []
for root in sys.argv[1:]:
    with KnowledgeBase.open(root, create=False) as kb:  # trained here (a search never builds)
        kb.build()
        out.append({m: [(h.chunk_id, round(h.score, 5)) for h in kb.search("保险 理赔 cat", 8, m)]
                    for m in ("w2v-sg", "d2v-dbow")})
print(json.dumps(out))
"""


def test_same_ranking_after_a_restart_and_a_deterministic_retrain(tmp_path: Path) -> None:
    config = KBConfig(
        methods={
            "w2v-sg": MethodConfig(kind="w2v-sg", enabled=True, options=FAST_TRAINING),
            "d2v-dbow": MethodConfig(kind="d2v-dbow", enabled=True, options=FAST_TRAINING),
        }
    )
    with make_kb(tmp_path / "a", config) as kb:
        first = {m: ranking(kb, m) for m in ("w2v-sg", "d2v-dbow")}
        again = {m: ranking(kb, m) for m in ("w2v-sg", "d2v-dbow")}  # queries inferred twice: same vectors
        assert first == again and all(first.values())
    with KnowledgeBase.open(str(tmp_path / "b"), config=config) as kb:  # same corpus, not trained yet
        kb.add_texts(
            [*topic_documents(per_topic=3, sentences=12), (TARGET_SOURCE, "灯塔守则", TARGET_TEXT)],
            build=False,
        )
    # Another process with another string-hash seed: loading A's saved models, and training B from
    # scratch (workers=1, same seed), both give the same ranking as here.
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SEARCH, str(tmp_path / "a"), str(tmp_path / "b")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    for result in json.loads(done.stdout):
        assert {m: [tuple(x) for x in v] for m, v in result.items()} == first
    assert (tmp_path / "b" / "models" / "w2v-sg" / "manifest.json").exists()


class Recorder(BuildProgress):
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.current = ""

    def start(self, method: str, total: int) -> None:
        self.current = method
        self.totals[method], self.done[method] = total, 0

    def advance(self, n: int) -> None:
        self.done[self.current] += n


def test_training_reports_progress_and_a_manifest(tmp_path: Path) -> None:
    with make_kb(tmp_path / "kb") as kb:
        progress = Recorder()
        kb.build(["w2v-cbow", "d2v-dm"], force=True, progress=progress)
        assert progress.done == progress.totals and progress.totals["w2v-cbow"] == kb.catalog.chunk_count()
        man = model_manifest(kb, "w2v-cbow")
        assert man["fingerprint"] == kb.catalog.fingerprint() and man["vocabulary"] > 40
        assert (
            man["settings"]["dim"] == 32
            and man["settings"]["kind"] == "w2v-cbow"
            and man["training_seconds"] >= 0
        )
        files = {p.name for p in (kb.layout.models / "d2v-dm").iterdir()}
        assert not {f for f in files if f.endswith((".pkl", ".model", ".pickle"))}  # no pickle anywhere
        index = json.loads((kb.layout.index_dir("w2v-cbow") / "manifest.json").read_text(encoding="utf-8"))
        assert index["details"]["model_id"] == man["model_id"]


def test_model_reuse_and_retraining(tmp_path: Path) -> None:
    with make_kb(tmp_path / "kb") as kb:
        trained = model_manifest(kb, "w2v-sg")["model_id"]
        kb.build(["w2v-sg"], force=True)  # same corpus, same settings: the model is reused
        assert model_manifest(kb, "w2v-sg")["model_id"] == trained
        kb.method("w2v-sg").request_retrain()  # `zhiku build --retrain`
        kb.build(["w2v-sg"], force=True)
        retrained = model_manifest(kb, "w2v-sg")["model_id"]
        assert retrained != trained
        details = json.loads((kb.layout.index_dir("w2v-sg") / "manifest.json").read_text(encoding="utf-8"))[
            "details"
        ]
        assert details["trained"] is True
    # Pooling is not a training setting: the index is rebuilt from the same model.
    opts = {**FAST_TRAINING, "pooling": "mean"}
    config = corpus_vector_config(**{"w2v-sg": MethodConfig(kind="w2v-sg", enabled=True, options=opts)})
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb:
        assert not next(s for s in kb.status() if s.name == "w2v-sg").fresh  # settings changed
        kb.build()  # a search never builds (issue 29)
        assert kb.search("保险", 3, "w2v-sg")
        assert model_manifest(kb, "w2v-sg")["model_id"] == retrained
    # The dimension is: the model is trained again.
    config = corpus_vector_config(
        **{"w2v-sg": MethodConfig(kind="w2v-sg", enabled=True, options={**opts, "dim": 16})}
    )
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb:
        kb.build()
        assert model_manifest(kb, "w2v-sg")["model_id"] != retrained
        assert model_manifest(kb, "w2v-sg")["settings"]["dim"] == 16


@pytest.mark.parametrize("method", ["w2v-cbow", "d2v-dm"])
def test_stale_after_ingest_and_delete(tmp_path: Path, method: str) -> None:
    with make_kb(tmp_path / "kb", target=False) as kb:
        before = model_manifest(kb, method)["model_id"]
        assert kb.search(TARGET_QUERY, 3, method) == []  # its words are not known yet
        kb.add_texts([(TARGET_SOURCE, "灯塔守则", TARGET_TEXT)], build=False)
        assert not next(s for s in kb.status() if s.name == method).fresh  # the status says stale
        stale = kb.search(TARGET_QUERY, 3, method)  # a search never builds: the last build answers
        assert not any(h.doc.source == TARGET_SOURCE for h in stale)  # type: ignore[union-attr]
        assert any("last complete build" in n for n in kb.notes)
        kb.build()  # rebuilds (and retrains)
        hits = kb.search(TARGET_QUERY, 3, method)
        assert any(h.doc.source == TARGET_SOURCE for h in hits)
        after = model_manifest(kb, method)
        assert after["model_id"] != before and after["fingerprint"] == kb.catalog.fingerprint()
        kb.delete(TARGET_SOURCE)
        assert all(h.doc.source != TARGET_SOURCE for h in kb.search(TARGET_QUERY + " 保险", 50, method))
        assert model_manifest(kb, method)["fingerprint"] == kb.catalog.fingerprint()
        assert next(s for s in kb.status() if s.name == method).fresh


def test_a_missing_model_says_how_to_fix_it(tmp_path: Path) -> None:
    import shutil

    with make_kb(tmp_path / "kb"):
        pass
    model = tmp_path / "kb" / "models" / "w2v-sg"
    model.unlink() if model.is_symlink() else shutil.rmtree(model)  # as `rm -rf models/w2v-sg` does
    with (
        KnowledgeBase.open(str(tmp_path / "kb"), create=False) as kb,
        pytest.raises(IndexError_, match="--retrain"),
    ):
        kb.search("保险", 3, "w2v-sg")


def test_a_kind_builds_by_name_and_is_recorded_enabled(tmp_path: Path) -> None:
    with KnowledgeBase.open(str(tmp_path / "kb"), config=fast_config()) as kb:  # no corpus-trained method
        kb.add_texts(topic_documents(per_topic=2, sentences=10))
        assert "w2v-sg" not in kb.method_names()
        kb.build(["w2v-sg"])
        assert kb.search("保险 理赔", 3, "w2v-sg")
    saved = KBConfig.load(tmp_path / "kb" / "zhiku.toml")
    assert saved.methods["w2v-sg"] == MethodConfig(kind="w2v-sg", enabled=True)
    assert "w2v-cbow" not in saved.methods and "tfidf" not in saved.methods
    # Searching with a kind that is not built never trains it (issue 29: a read never builds): the
    # error says how; ingests never train kinds that are not configured.
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        with pytest.raises(IndexError_, match="zhiku build --method d2v-dbow"):
            kb.search("保险 理赔", 3, "d2v-dbow")
        assert "d2v-dbow" not in KBConfig.load(tmp_path / "kb" / "zhiku.toml").methods
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        kb.add_texts([("new.md", "new", "保险公司应当及时理赔。")])
        assert "d2v-dbow" not in kb.method_names()
        w2v = next(s for s in kb.status() if s.name == "w2v-sg")
        assert w2v.built and w2v.fresh  # configured by the build above: kept current


def test_l2_metric_and_hnsw_index(tmp_path: Path) -> None:
    config = corpus_vector_config(
        l2=MethodConfig(kind="w2v-sg", enabled=True, options={**FAST_TRAINING, "metric": "l2"}),
        hnsw=MethodConfig(kind="d2v-dbow", enabled=True, options={**FAST_TRAINING, "index": "faiss-hnsw"}),
    )
    with make_kb(tmp_path / "kb", config) as kb:
        hits = kb.search("保险 理赔", 5, "l2")
        distances = [h.distance for h in hits]
        assert distances == sorted(distances) and all(d is not None and 0 <= d <= 2 for d in distances)
        assert [h.score for h in hits] == [-d for d in distances]  # higher score is still better
        cosine = kb.search(
            "保险 理赔", 5, "w2v-sg"
        )  # same model settings, cosine: same order on unit vectors
        assert [h.chunk_id for h in hits] == [h.chunk_id for h in cosine]
        assert kb.method_settings("l2")["metric"] == "l2"
        assert kb.search(TARGET_QUERY, 3, "hnsw")[0].doc.source == TARGET_SOURCE


def test_query_expansion_adds_neighbours_of_the_same_topic(tmp_path: Path) -> None:
    from tests.helpers.word_corpus import TOPICS

    with make_kb(tmp_path / "kb") as kb:
        m = kb.method("bm25-expand")
        assert m.parts() == ["bm25", "w2v-sg"]
        extra = m.expansion("保险 cat")
        assert extra and all(0 < w <= 0.3 for w in extra.values())
        topic_words = set(kb.tokenizer(" ".join(TOPICS["insurance"][1] + TOPICS["cats"][1])))
        assert set(extra) <= topic_words and not {"保险", "cat"} & set(extra)
        plain = {h.chunk_id: h.score for h in kb.search("保险", 50, "bm25")}
        expanded = kb.search("保险", 50, "bm25-expand")
        assert all(h.score >= plain.get(h.chunk_id, 0.0) - 1e-6 for h in expanded)
        assert expanded[0].extra["expansion"] and expanded[0].method == "bm25-expand"
