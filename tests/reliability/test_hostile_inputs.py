"""Issue 14: a hostile-input corpus (tests/helpers/hostile.py). For every kind: one line for the
user, never a traceback, and nothing already stored lost; through the CLI (slow): a peak memory
bound. The table in BENCHMARKS.md comes from benchmarks/hostile.py over the same kinds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.hostile import KINDS, MARKER, TEA, Kind, measure
from zhiku.errors import ZhikuError
from zhiku.service import KnowledgeBase

LIGHT = [k for k in KINDS if not k.heavy]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    from tests.helpers.crashkit import init_kb

    home = tmp_path_factory.mktemp("hostile") / "home"
    init_kb(home)
    tea = home.parent / "tea.md"
    tea.write_text(TEA, encoding="utf-8")
    with KnowledgeBase.open("k", home=home, create=False) as kb:
        kb.ingest([tea])
        yield kb


def test_corpus_has_at_least_30_kinds() -> None:
    assert len(KINDS) >= 30 and len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", LIGHT, ids=[k.name for k in LIGHT])
def test_hostile_kind_gives_one_line_and_loses_nothing(kind: Kind, kb: KnowledgeBase, tmp_path: Path) -> None:
    target = kind.make(tmp_path)
    before = kb.catalog.chunk_count()
    try:
        report, _ = kb.ingest([target], prune=False)
    except ZhikuError as e:  # the whole command refused: one line
        lines = [e.one_line()]
    else:
        lines = [err for _, err in report.failed] + [why for _, why in report.skipped]
        # a file whose bytes are stored already is one document (issue 29), reported as a duplicate
        lines += [f"{path} is the same file as {other}" for path, other in report.duplicates]
        assert report.added or lines, "neither ingested nor reported"
    for line in lines:
        assert line and "Traceback" not in line
    assert kb.catalog.chunk_count() >= before
    hits = kb.search(MARKER, k=10, method="bm25")
    assert any(h.doc.title == "茶" for h in hits), "the document stored before is lost"


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_hostile_kind_through_the_cli(kind: Kind, tmp_path: Path) -> None:
    from tests.helpers.crashkit import init_kb, run

    home = tmp_path / "home"
    init_kb(home)
    (tmp_path / "tea.md").write_text(TEA, encoding="utf-8")
    assert run(home, "ingest", str(tmp_path / "tea.md"), "--kb", "k").returncode == 0
    out = measure(kind, tmp_path / "work", home)
    assert not out.traceback and out.line and "\n" not in out.line, out
    assert out.rc in (0, 1, 3, 4), out
    assert not out.lost, out
    assert out.peak_mb < kind.peak_mb, out
