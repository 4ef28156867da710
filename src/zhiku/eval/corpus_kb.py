"""The knowledge base an evaluation runs against, and the methods it needs.

A dataset with a corpus becomes a temporary KB: each passage is one document whose ``source`` is
the passage id, so any hit maps back to its passage, and chunking, tokenisation and indexing are
exactly what a user's KB gets. Method names are resolved here: a name the config has, a registered
kind (``tfidf`` → ``MethodConfig(kind="tfidf")``), or an ad-hoc fusion written ``bm25+dense``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.config import KBConfig, MethodConfig
from zhiku.errors import UnknownNameError, UsageError
from zhiku.eval.datasets import Dataset

if TYPE_CHECKING:
    from zhiku.service import BuildProgress, KnowledgeBase

FUSION_SEP = "+"


def _unknown(name: str, config: KBConfig, kinds: Sequence[str]) -> UnknownNameError:
    return UnknownNameError(
        f"unknown method {name!r}",
        f"Choose from the KB's methods ({', '.join(config.methods)}), a registered kind "
        f"({', '.join(kinds)}), or fuse methods with '+', e.g. bm25+dense",
    )


def plan_methods(config: KBConfig, names: Sequence[str], allow_new_indexes: bool = True) -> KBConfig:
    """``config`` with every name in ``names`` configured (and the parts of fusions).

    ``allow_new_indexes=False`` (an existing user KB) only admits fusions of configured methods:
    a new indexed method would have to be built into, and saved in, the user's KB.
    """
    from zhiku.retrieve.base import methods

    if not names:
        raise UsageError("no methods to evaluate", "Pass --methods bm25,dense,hybrid for example")
    added: dict[str, MethodConfig] = {}

    def resolve(name: str) -> None:
        name = name.strip()
        if not name:
            raise UsageError("an empty method name", "Separate method names with commas: bm25,dense")
        if name in config.methods or name in added:
            return
        if FUSION_SEP in name:
            parts = [p.strip() for p in name.split(FUSION_SEP)]
            if len(parts) < 2 or not all(parts):
                raise UsageError(f"{name!r} is not a fusion of methods", "Write it like bm25+dense")
            for part in parts:
                resolve(part)
            added[name] = MethodConfig(kind="hybrid", options={"of": parts})
            return
        if name in methods and allow_new_indexes:
            added[name] = MethodConfig(kind=name)
            return
        if name in methods:
            raise UsageError(
                f"method {name!r} is not configured in this knowledge base",
                f'Add [methods.{name}] kind = "{name}" to its zhiku.toml and run '
                f"`zhiku build --method {name}`",
            )
        raise _unknown(name, config, methods.names())

    for n in names:
        resolve(n)
    return config.updated(methods={**config.methods, **added}) if added else config


def check_built(kb: KnowledgeBase, names: Sequence[str]) -> None:
    """Every method ``names`` need is built in the user's KB (an evaluation builds nothing there)."""
    for name in names:
        for part in kb.indexed_parts(name):
            if not kb.method_status(part).built:
                raise UsageError(
                    f"method {part!r} is not built in knowledge base {kb.name!r}",
                    f"Build it first: `zhiku build --kb {kb.name} --method {part}`",
                )


def index_cost(kb: KnowledgeBase, name: str) -> tuple[float, int]:
    """(build seconds from the manifests, bytes on disk) of what ``name`` needs; a fusion costs what
    its parts cost, since it cannot run without them."""
    seconds, size = 0.0, 0
    for part in kb.indexed_parts(name):
        manifest = kb.manifest(part) or {}
        seconds += float(manifest.get("seconds", 0.0))
        size += kb.index_bytes(part)
    return seconds, size


def corpus_records(dataset: Dataset) -> tuple[list[tuple[str, str, str]], dict[str, list[str]]]:
    """``(source, title, text)`` records, one per distinct passage text, and the aliases of the
    passages that were folded into another (the catalog cannot hold one text twice)."""
    records: list[tuple[str, str, str]] = []
    first: dict[str, str] = {}
    aliases: dict[str, list[str]] = {}
    for pid, passage in dataset.corpus.items():
        # A passage with only a title is still findable by its title.
        text = passage.text if passage.text.strip() else passage.title
        if not text.strip():
            continue
        # Keyed on the text alone: chunk ids are derived from the text, so two passages with one
        # text would collide in the catalog even under different titles.
        key = text
        if key in first:
            aliases.setdefault(first[key], [first[key]]).append(pid)
            continue
        first[key] = pid
        records.append((pid, passage.title, text))
    return records, aliases


def ingest_corpus(
    dataset: Dataset,
    root: Path,
    config: KBConfig,
    progress: Any = None,
    batch: int = 500,
) -> tuple[KnowledgeBase, dict[str, list[str]], dict[str, Any]]:
    """A fresh KB at ``root`` holding the dataset's corpus (no index built yet).

    Returns the KB, the passage aliases and what the report should record about the ingest.
    """
    import time

    from zhiku.service import KnowledgeBase

    records, aliases = corpus_records(dataset)
    if not records:
        from zhiku.errors import DatasetError

        raise DatasetError(f"dataset {dataset.name!r} has no passage text", "Check the corpus of the dataset")
    kb = KnowledgeBase.open(str(root.resolve()), config=config)
    try:
        if progress:
            progress.start("ingest", len(records))
        t0 = time.perf_counter()
        chunks = chars = failed = 0
        # In batches, so a bar can move: add_texts itself reports nothing.
        for i in range(0, len(records), batch):
            part = records[i : i + batch]
            report = kb.add_texts(part, build=False)
            chunks, chars, failed = chunks + report.chunks, chars + report.chars, failed + len(report.failed)
            if progress:
                progress.advance(len(part))
        ingest_s = time.perf_counter() - t0
    except BaseException:
        kb.close()
        raise
    finally:
        if progress:
            progress.close()
    info = {
        "passages": len(dataset.corpus),
        "documents": len(records),
        "chunks": chunks,
        "chars": chars,
        "ingest_seconds": round(ingest_s, 3),
        "failed_passages": failed,
    }
    return kb, aliases, info


def build_for(kb: KnowledgeBase, names: Sequence[str], progress: BuildProgress | None = None) -> None:
    """Build (when stale) every index the methods ``names`` need, even those a KB would not build
    by default: a method was asked for by name."""
    needed: list[str] = []
    for name in names:
        needed += [p for p in kb.indexed_parts(name) if p not in needed]
    if needed:
        kb.build(names=needed, progress=progress)


def auto_methods(kb: KnowledgeBase, existing: bool) -> tuple[list[str], list[str]]:
    """The methods to evaluate when none are named, and notes on those left out.

    A temporary KB evaluates every configured method that the KB would build by default (so an
    English-only model is not run on a Chinese corpus); an existing KB, every method it has built.
    """
    chosen: list[str] = []
    notes: list[str] = []
    if existing:
        for st in kb.status():
            (chosen.append(st.name) if st.built else notes.append(f"{st.name}: not built"))
        return chosen, notes
    language = kb.language()
    for name in kb.method_names():
        if kb.method_config(name).enabled is False:
            notes.append(f"{name}: disabled in the configuration")
            continue
        why = next(
            (w for p in kb.indexed_parts(name) for ok, w in [kb.method(p).applicable(language)] if not ok), ""
        )
        method = kb.method(name)
        used = kb.parts_in_use(name) if method.kind == "hybrid" else []
        if why:
            notes.append(f"{name}: left out ({why.split(';')[0]}); name it in --methods to run it anyway")
        elif method.kind == "hybrid" and len(used) < 2:
            # a fusion of one part is that part again (its other parts do not apply here)
            notes.append(f"{name}: left out (only {', '.join(used)} of its parts applies here)")
        else:
            chosen.append(name)
    return chosen, notes
