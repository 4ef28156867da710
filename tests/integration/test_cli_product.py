"""`zhiku drop` and re-chunking from the stored text (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION

from zhiku.cli.app import main
from zhiku.config import KBConfig, MethodConfig


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _kb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE * 3, encoding="utf-8")
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    home.mkdir()
    (home / "laws").mkdir()
    KBConfig(methods={"bm25": MethodConfig(kind="bm25")}).save(home / "laws" / "zhiku.toml")
    code, _, err = run(capsys, "ingest", str(docs), "--kb", "laws", "--home", str(home))
    assert code == 0, err
    return home, docs


def test_drop_deletes_a_whole_kb_only_with_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home, _ = _kb(tmp_path, capsys)
    code, out, err = run(capsys, "drop", "--kb", "laws", "--home", str(home))
    assert code == 2 and out == ""
    assert "this would delete knowledge base 'laws'" in err and "2 documents" in err
    assert "zhiku drop --kb laws --yes" in err and (home / "laws" / "catalog.sqlite").exists()
    code, out, _ = run(capsys, "drop", "--kb", "laws", "--home", str(home), "--yes")
    assert code == 0 and out.startswith("deleted knowledge base 'laws'")
    assert not (home / "laws").exists()
    code, _, err = run(capsys, "kbs", "--home", str(home))
    code, _, err = run(capsys, "drop", "--kb", "laws", "--home", str(home), "--yes")
    assert code == 3 and "no knowledge base 'laws'" in err


def test_changed_chunking_is_stale_and_rechunk_uses_the_stored_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, docs = _kb(tmp_path, capsys)
    args = ("--kb", "laws", "--home", str(home))
    before = json.loads(run(capsys, "status", *args, "--json")[1])
    assert before["chunking_stale"] is None
    assert "chunks STALE" not in run(capsys, "status", *args)[1]

    toml = home / "laws" / "zhiku.toml"
    config = KBConfig.load(toml)
    config.updated(chunking={"size": 60, "min_size": 10}).save(toml)
    out = run(capsys, "status", *args)[1]
    assert "chunks STALE: settings changed (chunking.size 400 → 60; chunking.min_size 40 → 10)" in out
    assert "zhiku ingest --rechunk" in out

    for f in docs.iterdir():  # the originals are gone: a re-chunk must not need them
        f.unlink()
    code, out, err = run(capsys, "ingest", "--rechunk", *args)
    assert code == 0, err
    assert "re-chunked 2 documents from the stored text" in out and "built bm25" in out
    after = json.loads(run(capsys, "status", *args, "--json")[1])
    assert after["chunking_stale"] is None and after["documents"] == 2
    assert after["chunks"] > before["chunks"]
    hits = json.loads(run(capsys, "search", "十日内 支付 保险金", *args, "--json")[1])
    assert hits[0]["title"] == "示例农业保险办法" and len(hits[0]["text"]) <= 60

    code, _, err = run(capsys, "ingest", *args)
    assert code == 2 and "--rechunk alone" in err


def test_a_taken_port_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run(capsys, "serve", "--home", str(tmp_path), "--port", str(port))
    assert code == 2 and out == ""
    assert (
        err == f"error: port {port} on 127.0.0.1 is already in use (another zhiku serve?). "
        f"Stop that server, or pass another port: --port {port + 1}\n"
    )


def test_an_empty_kb_says_to_add_documents_without_numpy_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "tool.exe").write_bytes(b"MZ")
    args = ("--kb", "e", "--home", str(tmp_path / "home"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" from building an index of nothing
        assert run(capsys, "ingest", str(empty), *args)[0] == 0
        for command in (("ask", "hello"), ("search", "hello")):
            code, out, err = run(capsys, *command, *args)
            assert code == 5 and out == ""
            assert err == (
                "error: knowledge base 'e' is empty: there is nothing to search. Add documents first: "
                "`zhiku ingest PATH --kb e`, or upload them on the web page\n"
            )
        code, _, err = run(capsys, "build", "--method", "bm25", *args)
        assert code == 5 and "Add documents first" in err
