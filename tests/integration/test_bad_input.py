"""Every user error gets one clear line, a non-zero exit code, no traceback, and loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.corpus import EN_GUIDE, fast_config, make_pdf

from zhiku.cli.app import main
from zhiku.service import KnowledgeBase
from zhiku.store.catalog import Catalog


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def kb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "kb"
    KnowledgeBase.open(str(root), config=fast_config()).close()
    docs = tmp_path / "good"
    docs.mkdir()
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    assert run(capsys, "ingest", str(docs), "--kb", str(root))[0] == 0
    return root


def one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_missing_path(capsys: pytest.CaptureFixture[str], kb: Path) -> None:
    code, _, err = run(capsys, "ingest", "/no/such/folder", "--kb", str(kb))
    assert code == 3 and "no such file or folder: /no/such/folder" in one_error_line(err)


def test_unknown_kb(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "search", "hello", "--kb", "nope")
    line = one_error_line(err)
    assert code == 3 and "no knowledge base 'nope'" in line and "zhiku ingest PATH --kb nope" in line


def test_invalid_kb_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "search", "hello", "--kb", "bad name!")
    assert code == 2 and "invalid knowledge base name" in one_error_line(err)


def test_unknown_method_lists_the_configured_ones(capsys: pytest.CaptureFixture[str], kb: Path) -> None:
    code, _, err = run(capsys, "search", "roses", "--kb", str(kb), "--method", "magic")
    assert (
        code == 3 and "unknown method 'magic'" in one_error_line(err) and "bm25, dense, minilm, hybrid" in err
    )


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query(capsys: pytest.CaptureFixture[str], kb: Path, query: str) -> None:
    code, _, err = run(capsys, "search", query, "--kb", str(kb))
    assert code == 2 and "the query is empty" in one_error_line(err)
    code, _, err = run(capsys, "ask", query, "--kb", str(kb))
    assert code == 2 and "the query is empty" in one_error_line(err)


def test_bad_k(capsys: pytest.CaptureFixture[str], kb: Path) -> None:
    code, _, err = run(capsys, "search", "roses", "--kb", str(kb), "-k", "0")
    assert code == 2 and "k must be at least 1" in one_error_line(err)


BAD_FILES = {
    "image.txt": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "image.txt"),
    "fake.pdf": (b"this is not a pdf at all", "fake.pdf"),
    "truncated.pdf": (make_pdf(["Hello"])[:60], "truncated.pdf"),
    "fake.docx": (b"plain text pretending to be a Word file", "fake.docx"),
    "broken.docx": (b"PK\x03\x04" + b"\x00" * 100, "broken.docx"),
    "empty.md": (b"", "empty.md"),
    "blank.txt": (b"  \n\n \t ", "blank.txt"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_reported_and_the_rest_is_ingested(
    capsys: pytest.CaptureFixture[str], kb: Path, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / f"mixed-{name}"
    folder.mkdir()
    data, _ = BAD_FILES[name]
    (folder / name).write_bytes(data)
    (folder / "ok.txt").write_text("Lighthouses use Fresnel lenses.", encoding="utf-8")
    before = KnowledgeBase.open(str(kb)).documents()
    code, out, _ = run(capsys, "ingest", str(folder), "--kb", str(kb))
    assert code == 1, out
    failed = [line for line in out.splitlines() if line.strip().startswith("failed:")]
    assert len(failed) == 1 and name in failed[0], out
    assert "1 added" in out and "1 failed" in out
    after = KnowledgeBase.open(str(kb)).documents()
    assert {d.source for d in before} < {d.source for d in after}  # nothing lost, the good file added
    code, out, _ = run(capsys, "search", "Fresnel", "--kb", str(kb), "--json", "--method", "bm25")
    assert json.loads(out)[0]["path"].endswith("ok.txt")


def test_huge_file_is_refused_without_reading_it(
    capsys: pytest.CaptureFixture[str], kb: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big" / "huge.txt"
    big.parent.mkdir()
    with big.open("wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: 200 MB on paper, nothing on disk
    code, out, _ = run(capsys, "ingest", str(big), "--kb", str(kb))
    assert code == 1
    assert "huge.txt is 200.0 MB, over the 50.0 MB limit" in out and "max_file_mb" in out


def test_explicit_unsupported_file(capsys: pytest.CaptureFixture[str], kb: Path, tmp_path: Path) -> None:
    f = tmp_path / "slides.key"  # Keynote: a format zhiku does not read
    f.write_bytes(b"PK")
    code, out, _ = run(capsys, "ingest", str(f), "--kb", str(kb))
    assert code == 1 and "unsupported file extension '.key'" in out and ".docx" in out


def test_broken_config_is_one_line(capsys: pytest.CaptureFixture[str], kb: Path) -> None:
    (kb / "zhiku.toml").write_text("[chunking]\nsize = 'big'\n", encoding="utf-8")
    code, _, err = run(capsys, "search", "roses", "--kb", str(kb))
    assert code == 2 and "chunking.size" in one_error_line(err)
    (kb / "zhiku.toml").write_text("this is [not toml", encoding="utf-8")
    code, _, err = run(capsys, "search", "roses", "--kb", str(kb))
    assert code == 2 and "is not valid TOML" in one_error_line(err)


def test_subprocess_shows_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ZHIKU_HOME": str(tmp_path / "home")}
    p = subprocess.run(
        [sys.executable, "-m", "zhiku", "ask", "hello", "--kb", "missing"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert p.returncode == 3 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: no knowledge base 'missing'")


def test_interrupted_ingest_keeps_whole_documents_and_the_next_run_completes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "kb2"
    KnowledgeBase.open(str(root), config=fast_config()).close()
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(6):
        (docs / f"doc{i}.txt").write_text(
            f"Document number {i} talks about topic{i}.\n\nMore text {i}.", encoding="utf-8"
        )
    real_put = Catalog.put_document
    calls = {"n": 0}

    def flaky_put(self: Catalog, doc: object, chunks: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run
        real_put(self, doc, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(Catalog, "put_document", flaky_put)
    code, _, err = run(capsys, "ingest", str(docs), "--kb", str(root))
    assert code == 130 and "run the same command again" in err
    with KnowledgeBase.open(str(root)) as kb:
        docs_now = kb.documents()
        assert len(docs_now) == 3
        # whole documents only: every stored document has all its chunks, none orphaned
        assert sum(d.n_chunks for d in docs_now) == kb.catalog.chunk_count()
        assert kb.catalog.last_runs(1)[0][3] == "interrupted"
    monkeypatch.setattr(Catalog, "put_document", real_put)
    code, out, _ = run(capsys, "ingest", str(docs), "--kb", str(root))
    assert code == 0 and "3 added" in out and "3 unchanged" in out
    code, out, _ = run(capsys, "status", "--kb", str(root), "--json")
    st = json.loads(out)
    assert st["documents"] == 6 and all(m["fresh"] for m in st["methods"])


def test_second_writer_is_refused_while_one_holds_the_lock(
    capsys: pytest.CaptureFixture[str], kb: Path, tmp_path: Path
) -> None:
    from zhiku.store.layout import KBLayout

    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("hello there", encoding="utf-8")
    with KBLayout(kb).writer_lock():
        code = subprocess.run(
            [sys.executable, "-m", "zhiku", "ingest", str(other), "--kb", str(kb)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert code.returncode == 8 and "is being changed by another process" in code.stderr
    # readers are not blocked
    code2, out, _ = run(capsys, "search", "roses prune", "--kb", str(kb), "--method", "bm25", "--json")
    assert code2 == 0 and json.loads(out)


def test_killed_ingest_leaves_a_consistent_catalog(tmp_path: Path) -> None:
    """SIGKILL mid-run (no cleanup code runs): whole documents only, and the next run completes."""
    import signal
    import sqlite3
    import time

    # The kill must land mid-way: if the ingest finished first, the test would check nothing, so a
    # bigger corpus is tried until it does.
    for total in (400, 1600, 6400):
        root = tmp_path / f"kb3-{total}"
        KnowledgeBase.open(str(root), config=fast_config()).close()
        docs = tmp_path / f"lots-{total}"
        docs.mkdir()
        for i in range(total):
            (docs / f"n{i:04d}.md").write_text(
                f"# Note {i}\n\n" + f"Paragraph about subject{i}. " * 40, encoding="utf-8"
            )
        proc = subprocess.Popen(
            [sys.executable, "-m", "zhiku", "ingest", str(docs), "--kb", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        n = 0
        while time.time() < deadline and proc.poll() is None:
            try:
                with sqlite3.connect(root / "catalog.sqlite", timeout=5) as db:
                    n = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= 5:
                break
            time.sleep(0.02)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        print(f"killed={killed} after {n} of {total} documents")
        if killed:
            break
    assert killed, "the ingest always finished before it could be killed"
    with sqlite3.connect(root / "catalog.sqlite", timeout=5) as db:
        stored_now = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    assert 0 < stored_now < total, "killed mid-way: some documents stored, not all"
    with KnowledgeBase.open(str(root)) as kb:
        stored = kb.documents()
        assert sum(d.n_chunks for d in stored) == kb.chunk_count()
    with sqlite3.connect(root / "catalog.sqlite", timeout=5) as db:
        orphans = db.execute(
            "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)"
        ).fetchone()[0]
    assert orphans == 0
    done = subprocess.run(
        [sys.executable, "-m", "zhiku", "ingest", str(docs), "--kb", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["added"]) + report["unchanged"] == total
    with KnowledgeBase.open(str(root)) as kb:
        assert len(kb.documents()) == total and all(s.fresh for s in kb.status())
        last = total - 1
        assert kb.search(f"subject{last}", method="bm25")[0].doc.title == f"Note {last}"
