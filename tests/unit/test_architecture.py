"""Regression tests for the shape of the code: registries, tokenizers per KB, one method resolver.

Each test here failed before the redesign of issue 9 (the failure it guards against is named).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zhiku.cli.app import main
from zhiku.config import KBConfig, MethodConfig, TokenizerConfig
from zhiku.errors import IndexError_
from zhiku.service import KnowledgeBase

SRC = Path(__file__).resolve().parents[2] / "src" / "zhiku"


def run_fresh(code: str, env_path: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter: nothing imported before it but what it imports."""
    import os

    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = env_path + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env
    )


# -- 1. which backends exist never depends on import order ------------------------------------------
def test_every_registry_is_complete_in_a_fresh_process() -> None:
    """Before: a w2v-sg method with index = "milvus" failed with "unknown vector index 'milvus'"
    unless a dense method happened to be imported first."""
    p = run_fresh(
        """
        import json
        from zhiku.index.base import indexes
        from zhiku.embed.base import embedders
        from zhiku.retrieve.base import methods
        from zhiku.generate.base import generators
        from zhiku.ingest.loaders import LOADERS
        print(json.dumps({"index": indexes.names(), "embedder": embedders.names(), "method": methods.names(),
                          "generator": generators.names(), "loader": LOADERS.names()}))
        """
    )
    assert p.returncode == 0, p.stderr
    names = json.loads(p.stdout)
    assert "milvus" in names["index"] and "faiss-hnsw" in names["index"]
    assert {"word2vec", "doc2vec", "sbert", "ollama", "openai"} <= set(names["embedder"])
    assert {"bm25", "dense", "w2v-sg", "hybrid", "bm25-expand", "fusion"} <= set(names["method"])
    assert {"extractive", "ollama", "openai", "local"} <= set(names["generator"])
    assert {".txt", ".md", ".pdf", ".docx"} <= set(names["loader"])


def test_w2v_method_on_a_non_faiss_index_in_a_fresh_process(tmp_path: Path) -> None:
    p = run_fresh(
        f"""
        from zhiku.config import KBConfig, MethodConfig
        from zhiku.service import KnowledgeBase
        opts = {{"index": "flat", "dim": 8, "min_count": 1, "epochs": 1, "workers": 1}}
        cfg = KBConfig(methods={{"w": MethodConfig(kind="w2v-sg", enabled=True, options=opts)}})
        with KnowledgeBase.open({str(tmp_path / "kb")!r}, config=cfg) as kb:
            kb.add_texts([("a.md", "a", "保险 理赔 保险公司"), ("b.md", "b", "cat kitten milk")])
            print(kb.search("保险", 1, "w")[0].doc.source)
        """
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "a.md"


def test_a_plugin_registers_through_the_entry_point_group(tmp_path: Path) -> None:
    """Third-party backends take the same path as built-ins: an entry point of ``zhiku.plugins``."""
    (tmp_path / "zhiku_toy.py").write_text(
        textwrap.dedent(
            """
            from zhiku.embed.base import embedders
            from zhiku.embed.hashing import HashingEmbedder

            class ToyEmbedder(HashingEmbedder):
                name = "toy"

            embedders.add("toy", ToyEmbedder)
            """
        ),
        encoding="utf-8",
    )
    dist = tmp_path / "zhiku_toy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zhiku-toy\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[zhiku.plugins]\ntoy = zhiku_toy\n", encoding="utf-8")
    p = run_fresh(
        """
        from zhiku.embed.base import embedders
        print(embedders.get("toy")(dim=8).embed(["hello"]).shape)
        """,
        env_path=str(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "(1, 8)"


# -- 2. a user dictionary belongs to its KB -------------------------------------------------------
def test_a_user_dictionary_changes_only_its_own_kb(tmp_path: Path) -> None:
    """Before: opening a KB with a user dictionary changed how every other KB in the process split
    text, and that KB's BM25 index silently stopped matching."""
    words = tmp_path / "dict.txt"
    words.write_text("混合检索融合 100 n\n", encoding="utf-8")
    plain_cfg = KBConfig(methods={"bm25": MethodConfig(kind="bm25")})
    with KnowledgeBase.open(str(tmp_path / "plain"), config=plain_cfg) as plain:
        plain.add_texts(
            [("guide.md", "指南", "我们使用混合检索融合多种方法的结果。"), ("x.md", "x", "无关的内容")]
        )
        before = plain.tokenizer("混合检索融合")
        assert len(before) > 1
        custom_cfg = plain_cfg.model_copy(update={"tokenizer": TokenizerConfig(user_dict=str(words))})
        with KnowledgeBase.open(str(tmp_path / "custom"), config=custom_cfg) as custom:
            assert custom.tokenizer("混合检索融合") == ["混合检索融合"]
            custom.add_texts([("a.md", "a", "混合检索融合是本系统的特点。")])
            assert custom.search("混合检索融合", 1)[0].doc.source == "a.md"
        assert plain.tokenizer("混合检索融合") == before
        assert plain.search("混合检索融合", 1)[0].doc.source == "guide.md"


def test_a_changed_dictionary_makes_the_index_stale(tmp_path: Path) -> None:
    words = tmp_path / "dict.txt"
    words.write_text("年休假 100 n\n", encoding="utf-8")
    cfg = KBConfig(
        methods={"bm25": MethodConfig(kind="bm25")}, tokenizer=TokenizerConfig(user_dict=str(words))
    )
    with KnowledgeBase.open(str(tmp_path / "kb"), config=cfg) as kb:
        kb.add_texts([("a.md", "a", "职工的年休假天数。")])
        assert all(s.fresh for s in kb.status())
        before = kb.manifest("bm25")
        assert before is not None and before["tokenizer"]["user_dict"]
    words.write_text("年休假 100 n\n职工 100 n\n", encoding="utf-8")
    with KnowledgeBase.open(str(tmp_path / "kb")) as kb:
        assert not kb.method_status("bm25").fresh
        # A read never builds (issue 29): an index built with another tokenizer is not searched
        # (its tokens disagree with the query's), and the error says how to rebuild it.
        with pytest.raises(IndexError_, match="not built: built with other settings"):
            kb.search("年休假", 1)
        kb.build()
        assert kb.method_status("bm25").fresh
        assert kb.search("年休假", 1)


# -- 3. one resolver of method names for every command ---------------------------------------------
def _kb_with_words(tmp_path: Path) -> str:
    from tests.helpers.word_corpus import FAST_TRAINING, topic_documents

    root = tmp_path / "kb"
    cfg = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "w2v-sg": MethodConfig(kind="w2v-sg", enabled=False, options=FAST_TRAINING),
            "mix": MethodConfig(kind="hybrid", options={"of": ["bm25", "bm25-expand"]}),
        }
    )
    with KnowledgeBase.open(str(root), config=cfg) as kb:
        kb.add_texts(topic_documents(per_topic=3, sentences=12))
    return str(root)


def test_search_accepts_an_adhoc_fusion_like_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `zhiku search --method bm25+w2v-sg` said "unknown method"."""
    kb = _kb_with_words(tmp_path)
    assert main(["build", "--kb", kb, "--method", "w2v-sg"]) == 0
    capsys.readouterr()
    assert main(["search", "保险 理赔", "--kb", kb, "--method", "bm25+w2v-sg", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and hits[0]["method"] == "bm25+w2v-sg"


def test_building_a_composite_builds_its_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `zhiku build --method bm25-expand` exited 0 doing nothing, `zhiku eval --methods
    bm25-expand` kept saying "not configured", and status called a hybrid over it "not built"."""
    kb = _kb_with_words(tmp_path)
    with KnowledgeBase.open(kb) as k:
        # w2v-sg is disabled in zhiku.toml: the fusion over it falls back to bm25, and says why.
        mix = k.method_status("mix")
        assert mix.parts == ["bm25"] and "disabled in zhiku.toml" in mix.reason
        assert not k.method_status("w2v-sg").built
    assert main(["build", "--kb", kb, "--method", "bm25-expand"]) == 0
    assert "built w2v-sg" in capsys.readouterr().out
    with KnowledgeBase.open(kb) as k:
        assert k.method_status("w2v-sg").built and k.method_status("mix").built
        assert k.method_status("mix").fresh
        assert k.search("保险", 3, "mix")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"question": "保险 理赔", "evidence": "保险"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert (
        main(["eval", str(qa), "--kb", kb, "--methods", "bm25-expand,mix", "--out", str(tmp_path / "out")])
        == 0
    )


def test_eval_on_a_user_kb_builds_nothing_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = _kb_with_words(tmp_path)
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"question": "保险", "evidence": "保险"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert main(["eval", str(qa), "--kb", kb, "--methods", "tfidf", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err
    assert "not built" in err and "zhiku build" in err and "--method tfidf" in err
    assert not (Path(kb) / "indexes" / "tfidf").exists()


# -- the layering ----------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_api_never_imports_the_cli() -> None:
    for f in (SRC / "api").rglob("*.py"):
        assert not any(m.startswith("zhiku.cli") for m in _imports(f)), f


def test_cli_and_api_reach_no_further_than_the_facade() -> None:
    import re

    reach = re.compile(r"kb\.catalog|\._\w*method|hasattr\(")
    for folder in ("cli", "api"):
        for f in (SRC / folder).rglob("*.py"):
            text = f.read_text(encoding="utf-8")
            assert not reach.search(text), f"{f}: {reach.search(text)}"


def _runtime_imports(tree: ast.AST) -> set[str]:
    """zhiku modules imported anywhere in a module (functions too), except under TYPE_CHECKING."""
    deps: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []  # annotations only: never executed
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zhiku"):
            deps.add(node.module)
        elif isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if a.name.startswith("zhiku"))
    return deps


def test_no_import_cycle() -> None:
    """No cycle among zhiku's modules, lazy imports inside functions included (before: retrieve <->
    lexical through the registry, eval.answers <-> eval.runner)."""
    graph: dict[str, set[str]] = {}
    for f in SRC.rglob("*.py"):
        mod = ("zhiku." + ".".join(f.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        graph[mod] = _runtime_imports(ast.parse(f.read_text(encoding="utf-8")))
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d not in graph or d == m:
                continue
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


# -- issue 24: the registry trusts only a complete load ----------------------------------------------
def test_a_failing_plugin_is_one_error_naming_it_and_the_registry_stays_unloaded(tmp_path: Path) -> None:
    """Before: the registry marked itself loaded before importing, so after a plugin failed to import
    the next lookup trusted a half-filled registry (and the error named no plugin)."""
    (tmp_path / "zhiku_broken.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    dist = tmp_path / "zhiku_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: zhiku-broken\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text("[zhiku.plugins]\nbroken = zhiku_broken\n", encoding="utf-8")
    p = run_fresh(
        """
        from zhiku.errors import ConfigError
        from zhiku.embed.base import embedders
        for _ in range(2):  # the second lookup fails again: nothing was marked loaded
            try:
                embedders.get("hashing")
            except ConfigError as e:
                print(e.one_line())
        """,
        env_path=str(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 2, p.stdout
    assert all("plugin 'broken'" in line and "boom" in line and "zhiku-broken" in line for line in lines)


# -- issue 24: the layers are enforced by import-linter, not by review --------------------------------
def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    import os
    import shutil

    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {**os.environ, "PYTHONPATH": str(src)}
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [exe, "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=src,
    )


def test_the_import_contracts_hold() -> None:
    p = _lint_imports(SRC.parent)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 broken" in p.stdout


@pytest.mark.parametrize(
    ("face", "reach", "contract"),
    [
        ("cli", "from zhiku.store.catalog import Catalog", "Faces call the facade"),
        ("api", "from zhiku.tune.runs import run_route", "Faces call the facade"),
        ("retrieve", "from zhiku.service import KnowledgeBase", "Layers:"),
    ],
)
def test_a_new_reach_in_fails_lint_naming_the_contract(
    tmp_path: Path, face: str, reach: str, contract: str
) -> None:
    import shutil

    shutil.copytree(SRC, tmp_path / "zhiku", ignore=shutil.ignore_patterns("__pycache__", "static", "data"))
    (tmp_path / "zhiku" / face / "reach_in.py").write_text(
        f"from __future__ import annotations\n\n{reach}\n", encoding="utf-8"
    )
    p = _lint_imports(tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert contract in p.stdout and "BROKEN" in p.stdout
    assert f"zhiku.{face}.reach_in" in p.stdout


def test_backends_sit_at_most_two_classes_below_their_contract() -> None:
    """Before: Method -> VectorMethod -> Word2VecMethod -> Word2VecCBOW; variants are settings now."""
    from zhiku.embed.base import Embedder, embedders
    from zhiku.index.base import VectorIndex, indexes
    from zhiku.retrieve.base import Method, methods

    for registry, contract in ((methods, Method), (embedders, Embedder), (indexes, VectorIndex)):
        for name, cls in registry.items():
            if isinstance(cls, type):
                assert cls.__mro__.index(contract) <= 2, f"{name}: {[c.__name__ for c in cls.__mro__]}"


def test_capabilities_are_asked_by_name_not_probed() -> None:
    """Before: isinstance(m, VectorMethod) in tune/adapter.py, retrieve/methods/adapted.py and the API;
    assert isinstance(m, HybridMethod) in kb/search.py; hasattr(retriever, "warm") in eval/runner.py."""
    import re

    probe = re.compile(r"isinstance\([^)]*(VectorMethod|HybridMethod)\)|hasattr\((retriever|m|method|kb)\b")
    for f in SRC.rglob("*.py"):
        assert not probe.search(f.read_text(encoding="utf-8")), f


def test_no_import_cycle_even_under_type_checking() -> None:
    """grimp's graph (what lint-imports reads) has every import: lazy ones and those for type
    checkers only. Before: kb/indexes, kb/methods, kb/search <-> service; embed/base <-> word2vec
    <-> gensim_training."""
    grimp = pytest.importorskip("grimp", reason="pip install -r requirements.lock (import-linter's grimp)")
    graph = grimp.build_graph("zhiku", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) - {m} for m in graph.modules}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
