"""Issue 29, the first hour of a new user: settings are the user's, reads never build, writes never
wait on embedding, a KB is honest while it grows, one document per content."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from zhiku.cli.app import main
from zhiku.config import KBConfig, MethodConfig
from zhiku.kb.build_progress import RecordingProgress, progress_file
from zhiku.service import KnowledgeBase

ZH = "农业保险合同的订立、变更与解除，保险人应当及时赔偿。"
EN = "Lighthouses use Fresnel lenses to focus the light of a lamp."


def _docs(folder: Path, n: int, text: str = ZH) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i}.md").write_text(f"# 第{i}篇\n\n{text}编号{i}。" * 3, encoding="utf-8")
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- 1. settings are the user's --------------------------------------------------------------------
def test_a_zhiku_toml_written_before_the_first_ingest_is_kept_and_completed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "zhiku.toml").write_text(
        '# my settings\nlanguage = "zh"  # Chinese only\n\n[methods.dense]\nenabled = false  # tonight\n',
        encoding="utf-8",
    )
    code, out, _ = _run(capsys, "ingest", str(_docs(tmp_path / "docs", 2)), "--kb", str(kb))
    assert code == 0 and "built bm25" in out and "skipped dense: disabled in zhiku.toml" in out
    text = (kb / "zhiku.toml").read_text(encoding="utf-8")
    # the user's lines, comments and order kept; the keys it lacked added with their defaults
    assert text.startswith('# my settings\nlanguage = "zh"  # Chinese only\n')
    assert "enabled = false  # tonight" in text and "[chunking]" in text and "[methods.bm25]" in text
    assert not (kb / "indexes" / "dense").exists()
    cfg = KBConfig.load(kb / "zhiku.toml")
    assert cfg.methods["dense"].enabled is False and cfg.methods["dense"].options["embedder"] == "e5"
    assert cfg.language == "zh" and set(cfg.methods) == {"bm25", "dense", "minilm", "hybrid"}


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[methods.dense]\nenabld = false\n", ", line 2: methods.dense.enabld: unknown key"),
        ('language = "zh"\n\n[chunking]\nsize = 400\nsizes = 3\n', ", line 5: chunking.sizes: unknown key"),
        ("language = \n", "is not valid TOML: Invalid value (at line 1"),
    ],
)
def test_a_bad_zhiku_toml_is_one_line_and_nothing_is_ingested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, expected: str
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "zhiku.toml").write_text(toml, encoding="utf-8")
    code, out, err = _run(capsys, "ingest", str(_docs(tmp_path / "docs", 1)), "--kb", str(kb))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {kb / 'zhiku.toml'}") and expected in err and err.count("\n") == 1
    assert not (kb / "catalog.sqlite").exists()
    assert (kb / "zhiku.toml").read_text(encoding="utf-8") == toml  # not "repaired" behind the user's back


def test_ingest_methods_chooses_what_is_built_now_and_build_adds_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = str(tmp_path / "kb")
    docs = str(_docs(tmp_path / "docs", 2))
    code, _, err = _run(capsys, "ingest", docs, "--kb", kb, "--methods", "bm25,vectors")
    assert code == 3 and "unknown method 'vectors'" in err and "bm25, dense, minilm, hybrid" in err
    assert not (Path(kb) / "catalog.sqlite").exists() or not KnowledgeBase.open(kb).documents()
    code, out, _ = _run(capsys, "ingest", docs, "--kb", kb, "--methods", "bm25")
    assert code == 0 and "built bm25" in out and "built dense" not in out
    assert KBConfig.load(Path(kb) / "zhiku.toml").methods["dense"].enabled is False
    code, out, _ = _run(capsys, "search", "保险合同", "--kb", kb, "--json")
    assert json.loads(out)[0]["parts_used"] == ["bm25"]
    code, out, _ = _run(capsys, "build", "--kb", kb, "--method", "dense")
    assert code == 0 and "built dense" in out
    code, out, err = _run(capsys, "search", "保险合同", "--kb", kb, "--json")
    assert json.loads(out)[0]["parts_used"] == ["bm25", "dense"] and "note" not in err


# -- 2. reads never build, disabled means disabled --------------------------------------------------
def _kb(tmp_path: Path, n: int = 3) -> KnowledgeBase:
    cfg = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "dense": MethodConfig(kind="dense", options={"embedder": "e5"}),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"]}),
        }
    )
    kb = KnowledgeBase.open(str(tmp_path / "kb"), config=cfg)
    kb.add_texts([(f"d{i}", f"第{i}篇", f"{ZH}编号{i}。") for i in range(n)])
    return kb


def test_a_stale_index_answers_from_its_last_build_and_a_search_builds_nothing(tmp_path: Path) -> None:
    with _kb(tmp_path) as kb:
        before = {m: kb.manifest(m)["built_at"] for m in ("bm25", "dense")}  # type: ignore[index]
        kb.add_texts([("new", "新", "灯塔使用菲涅尔透镜聚光。")], build=False)  # as an interrupted ingest
        hits = kb.search("保险合同", 3)
        assert hits and kb.parts_used == ["bm25", "dense"]
        assert any("answers from its last complete build" in n for n in kb.notes)
        kb.ask("保险合同怎么解除", 3)
        assert {m: kb.manifest(m)["built_at"] for m in ("bm25", "dense")} == before  # type: ignore[index]
        assert all(s.reason for s in kb.status() if not s.fresh)


def test_a_disabled_method_is_never_built_nor_used_and_the_fusion_says_so(tmp_path: Path) -> None:
    with _kb(tmp_path) as kb:
        root = kb.layout.root
        cfg = KBConfig.load(root / "zhiku.toml")
        dense = cfg.methods["dense"].model_copy(update={"enabled": False})
        cfg.updated(methods={**cfg.methods, "dense": dense}).save(root / "zhiku.toml")
    with KnowledgeBase.open(str(root)) as kb:
        kb.add_texts([("new", "新", "灯塔使用菲涅尔透镜聚光。")])
        assert kb.default_method() == "hybrid"
        assert kb.search("灯塔", 3) and kb.parts_used == ["bm25"]
        assert any("dense is disabled in zhiku.toml" in n for n in kb.notes)
        status = {s.name: s for s in kb.status()}
        assert "disabled in zhiku.toml" in status["dense"].reason and not status["dense"].fresh
        assert status["hybrid"].parts == ["bm25"] and "disabled" in status["hybrid"].reason
        with pytest.raises(Exception, match="disabled in zhiku.toml"):
            kb.search("灯塔", 3, method="dense")


def test_a_fusion_whose_part_is_being_built_answers_with_the_rest_and_shows_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _kb(tmp_path) as kb:
        root = kb.layout.root
    shutil.rmtree(root / "indexes" / "dense", ignore_errors=True)
    (root / "indexes" / "dense").unlink(missing_ok=True)
    # Another process is embedding: its progress file (this process's pid stands for a live one).
    rec = RecordingProgress(progress_file(root / "indexes", "dense"), "dense", None)
    rec.start("dense", 20611)
    rec.advance(4210)
    rec._write(force=True)
    code, out, err = _run(capsys, "search", "保险合同", "--kb", str(root), "--method", "hybrid", "--json")
    assert code == 0 and json.loads(out)[0]["parts_used"] == ["bm25"]
    assert "dense is not ready (building: 4,210/20,611 chunks" in err
    code, out, _ = _run(capsys, "status", "--kb", str(root))
    assert "dense      dense    not built: building: 4,210/20,611 chunks" in out
    code, out, _ = _run(capsys, "status", "--kb", str(root), "--json")
    dense = next(m for m in json.loads(out)["methods"] if m["name"] == "dense")
    assert dense["progress"] == {"done": 4210, "total": 20611, "running": True, "seconds_left": None}
    # The builder died (kill -9): the same file now says how far it came and how to resume.
    data = json.loads(progress_file(root / "indexes", "dense").read_text(encoding="utf-8"))
    data["pid"] = 2**22 + 7  # no such process
    progress_file(root / "indexes", "dense").write_text(json.dumps(data), encoding="utf-8")
    code, out, _ = _run(capsys, "status", "--kb", str(root))
    assert "interrupted at 4,210/20,611 chunks (its vectors are kept): `zhiku build` resumes it" in out
    code, out, _ = _run(capsys, "build", "--kb", str(root))
    assert "built dense" in out and not progress_file(root / "indexes", "dense").exists()


# -- 3. writes never wait on embedding ----------------------------------------------------------------
def test_a_delete_or_small_ingest_after_an_interrupted_run_leaves_the_backlog_to_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _kb(tmp_path) as kb:
        root = kb.layout.root
        built_at = kb.manifest("dense")["built_at"]  # type: ignore[index]
        # An ingest killed after storing 20 documents: catalog ahead of the vectors.
        kb.add_texts([(f"big{i}", f"大{i}", f"{ZH}第{i}条补充。" * 4) for i in range(20)], build=False)
    # ... killed while embedding: its progress file stays, with a pid that is gone
    path = progress_file(root / "indexes", "dense")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"done": 7, "total": 23, "pid": 2**22 + 7, "updated": 0}), encoding="utf-8")
    code, out, _ = _run(capsys, "delete", "big3", "--kb", str(root))
    assert code == 0 and "deleted big3" in out
    one = tmp_path / "one"
    one.mkdir()
    (one / "new.md").write_text("灯塔使用菲涅尔透镜聚光。", encoding="utf-8")
    code, out, _ = _run(capsys, "ingest", str(one), "--kb", str(root))
    assert code == 0 and "built bm25" in out
    assert "skipped dense: vectors of ~" in out and "missing from an earlier run: `zhiku build" in out
    with KnowledgeBase.open(str(root)) as kb:
        assert kb.manifest("dense")["built_at"] == built_at  # type: ignore[index]
        assert kb.method_status("bm25").fresh and not kb.method_status("dense").fresh
        # the writes' crash recovery kept the interrupted build's progress: status says how far it came
        assert "interrupted at 7/23 chunks" in kb.method_status("dense").reason
        assert kb.search("灯塔 菲涅尔", 3, method="bm25")[0].doc.source.endswith("new.md")  # type: ignore[union-attr]
    code, out, _ = _run(capsys, "build", "--kb", str(root))
    assert "built dense" in out
    with KnowledgeBase.open(str(root)) as kb:
        assert all(s.fresh for s in kb.status())


def test_running_the_interrupted_ingest_again_completes_its_vectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = _docs(tmp_path / "docs", 6)
    kb = str(tmp_path / "kb")
    with KnowledgeBase.open(kb) as k:
        k.ingest([docs / "doc0.md", docs / "doc1.md", docs / "doc2.md", docs / "doc3.md"], build=False)
    code, out, _ = _run(capsys, "ingest", str(docs), "--kb", kb)
    assert code == 0 and "2 added" in out and "built dense" in out


# -- 5. one document per content ------------------------------------------------------------------
def test_the_same_files_from_another_path_add_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = _docs(tmp_path / "docs", 4)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(docs, copy)
    kb = str(tmp_path / "kb")
    assert _run(capsys, "ingest", str(docs), "--kb", kb, "--methods", "bm25")[0] == 0
    code, out, _ = _run(capsys, "ingest", str(copy), "--kb", kb, "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == [] and len(report["duplicates"]) == 4
    assert report["duplicates"][0] == {"path": str(copy / "doc0.md"), "same_as": str(docs / "doc0.md")}
    with KnowledgeBase.open(kb) as k:
        assert len(k.documents()) == 4


def test_settings_file_is_not_rewritten_when_nothing_changed(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "zhiku.toml").write_text("# only a comment\n", encoding="utf-8")
    KnowledgeBase.open(str(kb)).close()
    first = (kb / "zhiku.toml").read_text(encoding="utf-8")
    assert first.startswith("# only a comment\n")
    KnowledgeBase.open(str(kb)).close()
    assert (kb / "zhiku.toml").read_text(encoding="utf-8") == first


# -- 6. markup is not content -----------------------------------------------------------------------
def test_front_matter_and_html_comments_are_stripped_at_ingest(tmp_path: Path) -> None:
    doc = tmp_path / "law.md"
    doc.write_text(
        "---\ntitle: 农业保险条例\ndraft: true\n---\n# 农业保险条例\n\n国务院令\n<!-- INFO END -->\n\n"
        "第一条 为了规范农业保险活动。<!-- a note\nover two lines -->保护当事人的合法权益。\n\n"
        "```html\n<!-- code keeps its comments -->\n```\n",
        encoding="utf-8",
    )
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        kb.ingest([doc], methods=["bm25"])
        (info,) = kb.documents()
        text = kb.document_text(info.id)
    assert info.title == "农业保险条例" and "draft" not in text and "INFO END" not in text
    assert "为了规范农业保险活动。保护当事人的合法权益" in text and "a note" not in text
    assert "<!-- code keeps its comments -->" in text


def test_a_build_state_reads_as_progress_and_an_estimate() -> None:
    from zhiku.kb.build_progress import BuildState

    running = BuildState(4210, 20611, True, 360.0, 0.0)
    assert running.describe() == "building: 4,210/20,611 chunks, ~6 min left"
    assert BuildState(4210, 20611, True, None, 0.0).describe() == "building: 4,210/20,611 chunks"
    assert (
        BuildState(3418, 20611, False, None, 0.0).describe().startswith("interrupted at 3,418/20,611 chunks")
    )
    assert running.as_dict() == {"done": 4210, "total": 20611, "running": True, "seconds_left": 360}
    indexing = BuildState(300_000, 1_003_764, True, 120.0, 0.0, "indexing")
    assert indexing.describe() == "building: indexing 300,000/1,003,764 vectors, ~2 min left"
    stopped = BuildState(300_000, 1_003_764, False, None, 0.0, "indexing").describe()
    assert stopped.startswith("interrupted at indexing 300,000/1,003,764 vectors (its vectors are kept)")


class _Phases:
    """A ``Progress`` that keeps every phase it is told of, and what each counted."""

    def __init__(self) -> None:
        self.phases: list[list[object]] = []

    def start(self, label: str, total: int) -> None:
        self.phases.append([label, total, 0])

    def advance(self, n: int) -> None:
        self.phases[-1][2] = int(str(self.phases[-1][2])) + n

    def close(self) -> None:
        pass


def test_filling_an_hnsw_index_is_a_counted_step_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the chunks are embedded, the vectors going into the graph are counted too (minutes at
    a million, where the status used to sit at "all chunks done"), and the progress file says so."""
    cfg = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "hnsw": MethodConfig(
                kind="dense",
                options={"embedder": "hashing", "dim": 32, "index": "faiss-hnsw", "index_options": {"m": 8}},
            ),
        }
    )
    seen: list[str] = []
    real_next = RecordingProgress.next_phase

    def spy(self: RecordingProgress, phase: str, total: int) -> None:
        real_next(self, phase, total)
        data = json.loads(self.path.read_text(encoding="utf-8"))
        seen.append(f"{data['phase']} {data['done']}/{data['total']}")

    with KnowledgeBase.open(str(tmp_path / "kb"), config=cfg) as kb:
        kb.ingest([_docs(tmp_path / "docs", 12)], build=False)
        chunks = kb.catalog.chunk_count()
        phases = _Phases()
        monkeypatch.setattr(RecordingProgress, "next_phase", spy)
        kb.build(names=["hnsw", "bm25"], progress=phases)
        assert ["hnsw", chunks, chunks] in phases.phases
        assert ["hnsw: indexing", chunks, chunks] in phases.phases
        assert not any("indexing" in str(p[0]) and p[0] != "hnsw: indexing" for p in phases.phases)
        assert seen == [f"indexing 0/{chunks}"]
        assert not progress_file(kb.layout.indexes, "hnsw").exists()


def test_a_method_whose_build_knows_no_phases_still_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin written before ``phase`` existed (``build(corpus, out_dir, progress)``) is called
    as it was: only a method declaring ``reports_phases`` is handed one."""
    from zhiku.retrieve.methods.bm25 import BM25Method

    original = BM25Method.build

    def old_style(self: BM25Method, corpus: Any, out_dir: Path, progress: Any = None) -> dict[str, Any]:
        return original(self, corpus, out_dir, progress)

    monkeypatch.setattr(BM25Method, "build", old_style)
    assert not BM25Method.reports_phases
    with KnowledgeBase.open(
        str(tmp_path / "kb"), config=KBConfig(methods={"bm25": MethodConfig(kind="bm25")})
    ) as kb:
        kb.ingest([_docs(tmp_path / "docs", 3)])
        assert kb.search("农业保险", 3, "bm25")
