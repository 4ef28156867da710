"""Issue 28 (2): ``zhiku check`` compares the catalog with every built index and the uploads folder.
Each test breaks one thing on purpose and sees the check catch it (and the CLI exit 1)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from tests.helpers.crashkit import init_kb, run

from zhiku.service import KnowledgeBase

DOCS = {
    "tea.md": "# Tea\n\nBoil the kettle and steep green tea for two minutes.",
    "法律.md": "# 农业保险\n\n保险机构应当按照合同约定及时支付赔偿金。",
    "bikes.md": "# Bikes\n\nOil the chain every month and check the tyre pressure.",
}


@pytest.fixture
def kb_root(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    root = init_kb(home, methods=("bm25", "tfidf"))
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    with KnowledgeBase.open(root) as kb:
        kb.ingest([docs])
    return root


def check(root: Path) -> dict:
    with KnowledgeBase.open(root, create=False) as kb:
        return kb.check().to_json()


def test_a_fresh_kb_is_clean_and_the_cli_exits_0(kb_root: Path) -> None:
    report = check(kb_root)
    assert report["ok"], report
    assert report["indexes"] == {"bm25": "fresh", "tfidf": "fresh"}
    assert report["documents"] == 3 and report["chunks"] >= 3
    r = run(kb_root.parent, "check", "--kb", "k", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True


def ids_file(root: Path, method: str = "bm25") -> Path:
    return root / "indexes" / method / "ids.json"


def test_an_index_missing_a_chunk_is_caught(kb_root: Path) -> None:
    path = ids_file(kb_root)
    ids = json.loads(path.read_text())
    path.write_text(json.dumps(ids[:-1]))
    report = check(kb_root)
    assert not report["ok"] and report["indexes"]["bm25"] == "broken"
    assert any("disagree with its own manifest" in p for p in report["problems"]), report
    r = run(kb_root.parent, "check", "--kb", "k")
    assert r.returncode == 1 and "problem: index bm25" in r.stdout, r.stdout + r.stderr


def test_an_index_vouching_for_the_catalog_with_other_ids_is_caught(kb_root: Path) -> None:
    """Same count and fingerprint (the fingerprint reads an id's first 15 hex digits), other ids."""
    path = ids_file(kb_root, "tfidf")
    ids = json.loads(path.read_text())
    ids[0] = ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1")
    path.write_text(json.dumps(ids))
    report = check(kb_root)
    assert report["indexes"]["tfidf"] == "broken"
    assert any("lacks 1 of its chunks and holds 1" in p for p in report["problems"]), report


def test_a_catalog_changed_behind_its_fingerprint_is_caught(kb_root: Path) -> None:
    db = sqlite3.connect(kb_root / "catalog.sqlite")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM documents WHERE source LIKE '%bikes.md'")
    db.commit()
    db.close()
    report = check(kb_root)
    assert any("catalog: its fingerprint" in p for p in report["problems"]), report


def test_an_index_without_its_manifest_is_caught(kb_root: Path) -> None:
    (kb_root / "indexes" / "bm25" / "manifest.json").unlink()
    report = check(kb_root)
    assert report["indexes"]["bm25"] == "broken" and not report["ok"]


def test_leftovers_of_a_killed_writer_are_caught(kb_root: Path) -> None:
    (kb_root / "indexes" / ".bm25.half").mkdir()
    uploads = kb_root / "uploads"
    (uploads / ".staging" / "dead").mkdir(parents=True)
    (uploads / ".staging" / "dead" / ".owner").write_text("999999999")
    with KnowledgeBase.open(kb_root, create=False) as kb:
        kb.catalog.start_run()
    report = check(kb_root)
    problems = "\n".join(report["problems"])
    assert "half-built index" in problems and "left by a killed upload" in problems
    assert "runs still marked running" in problems


def test_a_stray_upload_and_a_missing_upload_are_caught(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from zhiku.api.app import create_app

    root = init_kb(tmp_path / "home")
    files = [
        ("files", (n, t.encode(), "text/markdown"))
        for n, t in [("kept.md", "A kettle."), ("gone.md", "A bike.")]
    ]
    with TestClient(create_app(root.parent)) as client:
        r = client.post("/kbs/k/documents", params={"wait": "true"}, files=files)
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
    assert check(root)["ok"]
    uploads = root.resolve() / "uploads"
    (uploads / "gone.md").unlink()
    (uploads / "stray.md").write_text("never ingested", encoding="utf-8")
    problems = "\n".join(check(root)["problems"])
    assert "uploads/gone.md: in the catalog, but the file is gone" in problems
    assert "uploads/stray.md: a file the catalog never took in" in problems


def test_a_stale_index_is_reported_but_not_a_problem(kb_root: Path, tmp_path: Path) -> None:
    more = tmp_path / "more"
    more.mkdir()
    (more / "new.md").write_text("# New\n\nA brand new page about kites.", encoding="utf-8")
    with KnowledgeBase.open(kb_root, create=False) as kb:
        kb.ingest([more], build=False)
    report = check(kb_root)
    assert report["ok"], report
    assert report["indexes"]["bm25"] == "stale"


def test_a_running_writer_is_noted_not_blamed(kb_root: Path) -> None:
    (kb_root / "indexes" / ".bm25.inprogress").mkdir()  # what a build in progress looks like
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a writer holding the lock until the parent is done
        from zhiku.store.layout import KBLayout

        with KBLayout(kb_root).writer_lock():
            os.write(ready_w, b"x")
            os.read(done_r, 1)
        os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"x"
        report = check(kb_root)
    finally:
        os.write(done_w, b"y")
        os.waitpid(pid, 0)
    assert report["ok"], report
    assert any("a writer is at work" in n for n in report["notes"])


def test_the_api_offers_the_check(kb_root: Path) -> None:
    from fastapi.testclient import TestClient

    from zhiku.api.app import create_app

    with TestClient(create_app(kb_root.parent)) as client:
        r = client.get("/kbs/k/check")
        assert r.status_code == 200 and r.json()["ok"] is True, r.text
