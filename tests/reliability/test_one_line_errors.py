"""Issue 14 (5, 6): what used to be a traceback or a stray line is one line, and the rest works."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers.corpus import make_pdf
from tests.helpers.crashkit import init_kb, run
from zhiku.errors import UsageError
from zhiku.store.layout import check_kb_name

DOC = "# 茶\n\n水壶烧开水泡茶。The kettle boils water for tea.\n"


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr


def kb_with_doc(tmp_path: Path) -> tuple[Path, Path]:
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(DOC, encoding="utf-8")
    init_kb(home)
    r = run(home, "ingest", str(docs), "--kb", "k")
    assert r.returncode == 0, r.stderr
    return home, docs


def test_symlink_loop_is_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    home, docs = kb_with_doc(tmp_path)
    os.symlink("loop.md", docs / "loop.md")
    (docs / "more.md").write_text("# More\n\nAnother page about coffee.\n", encoding="utf-8")
    r = run(home, "ingest", str(docs), "--kb", "k")
    no_traceback(r)
    assert "1 added" in r.stdout and "1 failed" in r.stdout, r.stdout
    [failed] = [line for line in r.stdout.splitlines() if "failed:" in line]
    assert "loop.md" in failed and "symbolic link loop" in failed


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_catalog_says_so_in_one_line(tmp_path: Path, damage: str) -> None:
    home, docs = kb_with_doc(tmp_path)
    for i in range(30):  # enough pages that a truncation cuts tables, not only the header
        (docs / f"d{i}.md").write_text(DOC * 40 + f"\n第{i}页\n", encoding="utf-8")
    assert run(home, "ingest", str(docs), "--kb", "k").returncode == 0
    cat = home / "k" / "catalog.sqlite"
    data = cat.read_bytes()
    cat.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 3])
    for args in (["list"], ["search", "茶"], ["ingest", str(docs)], ["status"]):
        r = run(home, *args, "--kb", "k")
        no_traceback(r)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 9 and len(lines) == 1 and lines[0].startswith("error: catalog damaged"), (
            r.stderr
        )
        assert "ingest your files" in lines[0]


def test_truncated_bm25_files_say_how_to_rebuild_them(tmp_path: Path) -> None:
    home, _ = kb_with_doc(tmp_path)
    index = (home / "k" / "indexes" / "bm25").resolve()
    damaged = 0
    for f in index.iterdir():
        if f.name != "manifest.json":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
            damaged += 1
    assert damaged
    r = run(home, "search", "kettle", "--kb", "k", "--method", "bm25")
    no_traceback(r)
    # a read never builds (issue 29): one line saying what is wrong and the command that rebuilds it
    assert r.returncode != 0 and "zhiku build --method bm25 --force" in r.stderr, r.stderr
    assert run(home, "build", "--method", "bm25", "--force", "--kb", "k").returncode == 0
    r = run(home, "search", "kettle", "--kb", "k", "--method", "bm25")
    assert r.returncode == 0 and "tea.md" in r.stdout, r.stderr


def test_kb_name_with_trailing_newline_is_refused() -> None:
    with pytest.raises(UsageError):
        check_kb_name("kb\n")
    assert check_kb_name("kb") == "kb"


def test_file_name_with_newline_stays_on_its_line_in_list(tmp_path: Path) -> None:
    home, docs = kb_with_doc(tmp_path)
    (docs / "two\nlines.md").write_text(DOC + "\nA second copy, edited.", encoding="utf-8")  # not a duplicate
    assert run(home, "ingest", str(docs), "--kb", "k").returncode == 0
    r = run(home, "list", "--kb", "k")
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and any("two\\nlines.md" in line for line in lines), r.stdout


def test_truncated_pdf_prints_no_stray_line(tmp_path: Path) -> None:
    home, docs = kb_with_doc(tmp_path)
    pdf = make_pdf(["Printer manual.", "Replace the toner."], "Printer")
    (docs / "cut.pdf").write_bytes(pdf[: int(len(pdf) * 0.6)])
    r = run(home, "ingest", str(docs), "--kb", "k")
    no_traceback(r)
    out = (r.stdout + r.stderr).splitlines()
    assert not [line for line in out if "EOF marker" in line and "failed:" not in line], out


def test_next_writer_cleans_half_built_indexes_and_interrupted_runs(tmp_path: Path) -> None:
    home, docs = kb_with_doc(tmp_path)
    half = home / "k" / "indexes" / ".tfidf.abc123"
    half.mkdir()
    (half / "matrix.npz").write_bytes(b"x" * 1000)
    db = sqlite3.connect(home / "k" / "catalog.sqlite")
    db.execute("INSERT INTO runs(started, status) VALUES (1, 'running')")
    db.commit()
    db.close()
    assert run(home, "ingest", str(docs), "--kb", "k").returncode == 0
    assert not half.exists()
    db = sqlite3.connect(home / "k" / "catalog.sqlite")
    assert db.execute("SELECT status FROM runs WHERE started=1").fetchone()[0] == "interrupted"
    db.close()


def test_stale_eval_scratch_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    from zhiku.store.scratch import scratch_dir

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f"zhiku-eval-{dead}-abcd"
    (stale / "kb").mkdir(parents=True)
    mine = scratch_dir("zhiku-eval-", tmp_path)
    assert not stale.exists() and mine.exists() and mine.name.startswith(f"zhiku-eval-{os.getpid()}-")
    assert tempfile.gettempdir()
