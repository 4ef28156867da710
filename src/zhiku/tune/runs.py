"""The tune steps end to end — questions, adapter, reranker, route — for the CLI and the API alike.

Each ``run_*`` opens nothing and prints nothing: it takes an open ``KnowledgeBase``, does the step,
writes its files (questions, models, report.md / results.json / chart.png) and returns an
``Outcome``: a JSON-able ``info`` (what ``--json`` prints and what an API job returns) and, for the
steps that evaluate, the before/after reports for the CLI to draw as tables. ``say`` gets one line
per step (the CLI prints them); ``steps`` gets phases with counts (a server job's progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import UsageError
from zhiku.progress import NoProgress, Progress

if TYPE_CHECKING:
    from zhiku.eval.report import Report
    from zhiku.service import KnowledgeBase
    from zhiku.tune.compare import Comparison
    from zhiku.tune.questions import Question

Say = Callable[[str], None]
OFFLINE_KINDS = ("ict", "keywords", "article")


@dataclass
class Outcome:
    info: dict[str, Any]
    report: Report | None = None
    extra: Report | None = None  # the same comparison on --eval FILE, real questions
    verdict: Comparison | None = None
    notes: list[str] = field(default_factory=list)


def _quiet(_msg: str) -> None:
    pass


class Prefixed:
    """``steps`` with every phase label prefixed ("validate dense"), for the evaluation's phases."""

    def __init__(self, steps: Progress | None, prefix: str) -> None:
        self.steps = steps or NoProgress()
        self.prefix = prefix

    def start(self, label: str, total: int) -> None:
        self.steps.start(f"{self.prefix} {label}", total)

    def advance(self, n: int) -> None:
        self.steps.advance(n)

    def close(self) -> None:
        self.steps.close()


def questions_path(kb: KnowledgeBase, given: str | Path | None) -> Path:
    return Path(given) if given else kb.layout.root / "tune" / "questions.jsonl"


def run_questions(
    kb: KnowledgeBase,
    *,
    out: Path | None = None,
    sample: int | None = None,
    kinds: tuple[str, ...] = OFFLINE_KINDS,
    filter_method: str | None = "bm25",
    depth: int = 100,
    max_ties: int = 5,
    validation: float = 0.2,
    seed: int = 0,
    raw: Callable[[list[Any]], tuple[list[Question], dict[str, Any]]] | None = None,
    steps: Progress | None = None,
) -> Outcome:
    """Questions for (a sample of) the KB's chunks, filtered and split by document.

    ``raw`` makes the unfiltered questions from the picked chunks (an LLM's, with what to record
    about the run); None makes offline pseudo-questions of ``kinds``.
    """
    from zhiku.tune import questions as tq

    steps = steps or NoProgress()
    if sample is not None and sample < 1:
        raise UsageError(f"--sample must be at least 1, got {sample}", "Use --sample 500, for example")
    unknown = set(kinds) - set(OFFLINE_KINDS)
    if unknown:
        raise UsageError(f"unknown offline kinds: {', '.join(sorted(unknown))}", "Use ict, keywords, article")
    out = out or questions_path(kb, None)
    t0 = time.perf_counter()
    chunks = tq.source_chunks(kb)
    if not chunks:
        raise UsageError(
            f"knowledge base {kb.name!r} has no chunks",
            f"Ingest documents first: zhiku ingest PATH --kb {kb.name}",
        )
    picked = tq.sample_chunks(chunks, sample, seed)
    info: dict[str, Any] = {"kb": kb.name, "chunks": len(picked)}
    if raw is not None:
        made, extra = raw(picked)
        info.update(extra)
    else:
        steps.start("generate", len(picked))
        made = list(tq.offline_questions(picked, kinds, seed, all_chunks=chunks))
        steps.advance(len(picked))
        info.update(generator="offline", generated=len(made))
    # The answerability filter searches every question once: one phase, counted when it is done.
    steps.start(f"filter ({filter_method or 'none'})", len(made))
    stats, counts = tq.finish(
        kb,
        made,
        out,
        filter_method=filter_method,
        depth=depth,
        max_ties=max_ties,
        validation=validation,
        seed=seed,
    )
    steps.advance(len(made))
    steps.close()
    train_path, val_path = tq.split_paths(out)
    by_kind: dict[str, int] = {}
    for q in tq.read_jsonl(out):
        by_kind[q.generator] = by_kind.get(q.generator, 0) + 1
    info.update(
        duplicates=stats.duplicates,
        not_found=stats.not_found,
        ambiguous=stats.ambiguous,
        kept=stats.kept,
        **counts,
        seconds=round(time.perf_counter() - t0, 1),
        files={"all": str(out), "train": str(train_path), "validation": str(val_path)},
        notes=stats.notes,
        by_generator=by_kind,
        filter={"method": filter_method or "none", "depth": depth, "max_ties": max_ties},
    )
    return Outcome(info)


def _split(kb: KnowledgeBase, questions: str | Path | None) -> tuple[Path, Path, Path]:
    from zhiku.errors import NotFoundError
    from zhiku.tune.questions import split_paths

    qpath = questions_path(kb, questions)
    train_path, val_path = split_paths(qpath)
    if not train_path.is_file() or not val_path.is_file():
        raise NotFoundError(
            f"no tune questions at {qpath} (train and validation files)",
            f"Generate them first: zhiku tune questions --kb {kb.name}",
        )
    return qpath, train_path, val_path


def validate(
    kb: KnowledgeBase,
    name: str,
    base: str,
    incumbent: str,
    val_path: Path,
    notes: list[str],
    out: Path,
    eval_file: str | Path | None = None,
    command: str = "",
    steps: Progress | None = None,
) -> tuple[Report, Report | None, Comparison]:
    """Before/after on validation (and ``eval_file``), reports written, and the default changed only
    if the tuned method beats the current default by more than noise."""
    from zhiku.tune.compare import compare, evaluate_methods, save_config, write_report

    names = list(dict.fromkeys([base, name, incumbent]))
    report = evaluate_methods(kb, val_path, names, command=command, progress=Prefixed(steps, "validate"))
    verdict = compare(report, name, incumbent)
    outcome = ("made " + name) if verdict.significant else ("kept " + incumbent)
    write_report(report, out / "validation", [*notes, f"default: {outcome}: {verdict.why}"])
    extra = None
    if eval_file:
        extra = evaluate_methods(
            kb, Path(eval_file), names, command=command, progress=Prefixed(steps, "eval")
        )
        write_report(extra, out / "eval", [f"{eval_file}: real questions, never tuned on"])
    if verdict.significant:
        save_config(kb, default_method=name)
    return report, extra, verdict


def table(report: Report | None) -> list[dict[str, Any]] | None:
    """The before/after table of a report: one row per method, its mean metrics and notes."""
    if report is None:
        return None
    return [
        {
            "method": m.method,
            "metrics": {k: round(v, 4) for k, v in m.metrics.items()},
            "latency_ms_p50": round(m.latency_ms_p50, 3),
            "notes": list(m.notes),
        }
        for m in report.methods
    ]


def run_adapter(
    kb: KnowledgeBase,
    base: str,
    *,
    kind: str = "linear",
    name: str | None = None,
    questions: str | Path | None = None,
    eval_file: str | Path | None = None,
    epochs: int = 30,
    max_train: int = 3000,
    max_validation: int = 500,
    out: Path | None = None,
    seed: int = 0,
    say: Say | None = None,
    steps: Progress | None = None,
    command: str = "",
) -> Outcome:
    from zhiku.config import MethodConfig
    from zhiku.service import VERSION
    from zhiku.tune import questions as tq
    from zhiku.tune.adapter import AdapterSettings, data_hash, save_adapter, train_adapter
    from zhiku.tune.compare import save_config

    if kind not in ("linear", "residual"):
        raise UsageError(f"unknown adapter kind {kind!r}", "Use linear or residual")
    say = say or _quiet
    qpath, train_path, val_path = _split(kb, questions)
    train, val = tq.read_jsonl(train_path), tq.read_jsonl(val_path)
    name = name or f"{base}-tuned"
    settings = AdapterSettings(
        kind=kind,  # type: ignore[arg-type]
        epochs=epochs,
        max_train=max_train,
        max_validation=max_validation,
        seed=seed,
    )
    result = train_adapter(kb, base, train, val, settings, progress=say, steps=steps)
    folder = kb.layout.models / name
    incumbent = kb.default_method()
    manifest: dict[str, Any] = {
        "method": name,
        "kind": "adapted",
        "base": base,
        "base_settings": kb.method(base).describe(),
        "data_hash": data_hash(train, val),
        "questions": str(qpath),
        "settings": settings.__dict__,
        "train_questions": result.train_questions,
        "validation_questions": result.validation_questions,
        "validation_mrr@10": {
            "before": round(result.validation_before, 4),
            "after": round(result.validation_after, 4),
        },
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "history": result.history,
        "training_seconds": round(result.seconds, 1),
        "embed_seconds": round(result.embed_seconds, 1),
        "zhiku_version": VERSION,
        "created": time.time(),
    }
    save_adapter(folder, result, manifest)
    save_config(kb, method=(name, MethodConfig(kind="adapted", options={"base": base})))
    notes = [
        f"adapter ({kind}) trained on {result.train_questions} train questions, best epoch "
        f"{result.best_epoch} of {result.epochs_run}, {result.seconds:.0f} s"
    ]
    out = out or kb.layout.root / "tune" / name
    report, extra, verdict = validate(
        kb, name, base, incumbent, val_path, notes, out, eval_file, command, steps
    )
    manifest["decision"] = verdict.to_json()
    save_adapter(folder, result, manifest)
    info = {
        "method": name,
        "manifest": manifest,
        "out": str(out),
        "folder": str(folder),
        "validation": {m.method: m.metrics for m in report.methods},
        "eval": {m.method: m.metrics for m in extra.methods} if extra else None,
        "decision": verdict.to_json(),
        "default_method": kb.default_method(),
        "table": table(report),
        "eval_table": table(extra),
    }
    return Outcome(info, report, extra, verdict)


def run_route(
    kb: KnowledgeBase,
    *,
    methods: list[str] | None = None,
    questions: str | Path | None = None,
    out: Path | None = None,
    say: Say | None = None,
    steps: Progress | None = None,
) -> Outcome:
    import json

    from zhiku.tune.route import route

    qpath, _, _ = _split(kb, questions)
    out = out or kb.layout.root / "tune" / "route"
    decision = route(kb, qpath, methods, out, progress=say, steps=steps)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    rows = [
        {"method": m["method"], "metrics": {k: round(v, 4) for k, v in m["metrics"].items()}}
        for m in results.get("methods", [])
    ]
    return Outcome({**decision, "table": rows, "default_method": kb.default_method()})


def run_reranker(
    kb: KnowledgeBase,
    model: Path,
    *,
    name: str | None = None,
    questions: str | Path | None = None,
    eval_file: str | Path | None = None,
    settings: Any = None,
    out: Path | None = None,
    say: Say | None = None,
    steps: Progress | None = None,
    command: str = "",
) -> Outcome:
    """Fine-tune ``model`` (a local cross-encoder), then compare on validation the KB's default
    method alone, followed by ``model``, and followed by the tuned model (and by the KB's current
    ``[rerank]`` if it is something else). The tuned one becomes the KB's ``[rerank]`` only if it
    beats the current setting by more than noise."""
    from zhiku.service import VERSION
    from zhiku.store.files import atomic_write_json
    from zhiku.tune import questions as tq
    from zhiku.tune.compare import write_report
    from zhiku.tune.reranker import RerankerSettings, evaluate_rerankers, finetune_reranker

    say = say or _quiet
    steps = steps or NoProgress()
    settings = settings or RerankerSettings()
    model = model.expanduser().resolve()
    qpath, train_path, val_path = _split(kb, questions)
    name = name or f"{model.name}-tuned"
    folder = (kb.layout.models / name / "model").resolve()
    current = kb.config.rerank
    current_model = current.options.get("model") if current.kind == "cross-encoder" else None
    current_path = Path(current_model).expanduser().resolve() if current_model else None
    if current_path == folder:
        raise UsageError(
            f"the KB's reranker is {folder}, which this run would overwrite",
            "Pass another --name, or turn reranking off first",
        )
    method = kb.default_method()
    train, val = tq.read_jsonl(train_path), tq.read_jsonl(val_path)
    manifest = finetune_reranker(kb, model, train, val, folder, settings, progress=say, steps=steps)
    base_label, tuned_label = f"{method}>{model.name}", f"{method}>{name}"
    rows: dict[str, str | None] = {
        method: "off",
        base_label: f"cross-encoder:{model}",
        tuned_label: f"cross-encoder:{folder}",
    }
    if current.kind is None:
        incumbent = method
    elif current_path == model:
        incumbent = base_label
    else:
        incumbent = f"{method}>{current.kind} (current)"
        rows[incumbent] = None
    say(f"validating: {', '.join(rows)}")
    report = evaluate_rerankers(
        kb, val_path, method, rows, command=command, progress=Prefixed(steps, "validate")
    )
    verdict = adopt_reranker(kb, report, tuned_label, incumbent, folder)
    out = out or kb.layout.root / "tune" / name
    outcome = (
        f"[rerank] is now {folder}"
        if verdict.significant
        else f"[rerank] stays {current.kind or 'off'}; the tuned model is kept in {folder}, not enabled"
    )
    notes = [
        f"cross-encoder fine-tuned from {model} on {manifest['pairs']} pairs ({manifest['negatives']} "
        f"hard negatives), best epoch {manifest['best_epoch']} of {manifest['epochs_run']}, "
        f"{manifest['training_seconds']} s",
        f"{outcome}: {verdict.why}",
    ]
    write_report(report, out / "validation", notes)
    extra = None
    if eval_file:
        extra = evaluate_rerankers(
            kb, Path(eval_file), method, rows, command=command, progress=Prefixed(steps, "eval")
        )
        write_report(extra, out / "eval", [f"{eval_file}: real questions, never tuned on"])
    manifest = {
        "name": name,
        "kind": "cross-encoder",
        **manifest,
        "questions": str(qpath),
        "rerank": {"kind": "cross-encoder", "options": {"model": str(folder)}},
        "use": f"--rerank cross-encoder:{folder}",
        "decision": verdict.to_json(),
        "enabled": verdict.significant,
        "zhiku_version": VERSION,
        "created": time.time(),
    }
    atomic_write_json(kb.layout.models / name / "manifest.json", manifest)
    info = {
        "reranker": name,
        "model": str(folder),
        "manifest": manifest,
        "out": str(out),
        "validation": {m.method: m.metrics for m in report.methods},
        "eval": {m.method: m.metrics for m in extra.methods} if extra else None,
        "decision": verdict.to_json(),
        "enabled": verdict.significant,
        "outcome": outcome,
        "table": table(report),
        "eval_table": table(extra),
    }
    return Outcome(info, report, extra, verdict, notes)


def adopt_reranker(kb: KnowledgeBase, report: Report, tuned: str, incumbent: str, folder: Path) -> Comparison:
    """The paired test of the row ``tuned`` (the default method followed by the tuned model in
    ``folder``) against ``incumbent`` (the current setting's row); only if it wins by more than noise
    does the KB's ``[rerank]`` become that model. The rest of ``[rerank]`` is kept (``top_n``,
    ``threshold``, and a cross-encoder's options), as the validation rows were scored with it."""
    from zhiku.retrieve.rerank import rerank_config
    from zhiku.tune.compare import compare, save_config

    verdict = compare(report, tuned, incumbent)
    if verdict.significant:
        enabled = rerank_config(f"cross-encoder:{folder}", kb.config.rerank)
        save_config(kb, rerank=enabled.model_dump(mode="json"))
    return verdict


def run_encoder(
    kb: KnowledgeBase,
    model: Path,
    *,
    settings: Any,
    name: str | None = None,
    base: str | None = None,
    questions: str | Path | None = None,
    eval_file: str | Path | None = None,
    out: Path | None = None,
    say: Say | None = None,
    command: str = "",
) -> Outcome:
    """Fine-tune a sentence encoder on the train questions, add it (and its base, unless named) as
    dense methods, build both, and keep it as the default only if it wins on validation."""
    from zhiku.config import MethodConfig
    from zhiku.store.files import atomic_write_json
    from zhiku.tune import questions as tq
    from zhiku.tune.compare import save_config
    from zhiku.tune.encoder import finetune_encoder

    qpath = questions_path(kb, questions)
    train_path, val_path = tq.split_paths(qpath)
    train = tq.read_jsonl(train_path)
    name = name or f"{model.name}-tuned"
    given_base = base
    base = base or f"{model.name}-base"
    incumbent = kb.default_method()
    folder = kb.layout.models / name / "model"
    manifest = finetune_encoder(kb, model, train, folder, settings, progress=say)
    # Both on the int8 engine (e5_folder.py): the corpus is re-embedded at that engine's rate, and
    # the comparison is like for like. A folder that cannot convert stays on torch (one warning).
    fast = {"engine": "int8"}
    if not given_base:
        opts = {"embedder": "sbert", "model": str(model), "embedder_options": fast}
        save_config(kb, method=(base, MethodConfig(kind="dense", enabled=True, options=opts)))
    opts = {"embedder": "sbert", "model": str(folder), "embedder_options": fast}
    save_config(kb, method=(name, MethodConfig(kind="dense", enabled=True, options=opts)))
    kb.build([base, name])  # the corpus embedded by the tuned model (and by the original, to compare)
    notes = [
        f"encoder fine-tuned from {model} on {manifest['pairs']} pairs in {manifest['training_seconds']} s"
    ]
    out = out or kb.layout.root / "tune" / name
    report, extra, verdict = validate(kb, name, base, incumbent, val_path, notes, out, eval_file, command)
    manifest = {"method": name, "base": base, **manifest, "decision": verdict.to_json()}
    atomic_write_json(kb.layout.models / name / "manifest.json", manifest)
    info = {
        "method": name,
        "manifest": manifest,
        "out": str(out),
        "folder": str(folder),
        "incumbent": incumbent,
        "validation": {m.method: m.metrics for m in report.methods},
        "eval": {m.method: m.metrics for m in extra.methods} if extra else None,
    }
    return Outcome(info, report, extra, verdict)


def llm_question_maker(
    kb: KnowledgeBase,
    llm: str,
    base_url: str | None,
    out: Path,
    per_chunk: int,
    bar: Callable[[int], Any] | None = None,
) -> Callable[[list[Any]], tuple[list[Question], dict[str, Any]]]:
    """What makes the raw questions with an LLM (``llm``: BACKEND:MODEL, or "kb" for the KB's
    generator), resumable from ``<out>.raw.jsonl``; ``bar(total)`` makes a progress bar (update, close)."""
    from zhiku.generate.llm import generator_config, make_backend
    from zhiku.tune import questions as tq
    from zhiku.tune.llm_questions import generate

    cfg = kb.config.generator if llm == "kb" else generator_config(llm, base_url, kb.config.generator)
    if cfg.kind == "extractive":
        raise UsageError(
            "the KB's generator is the extractive answerer, not an LLM",
            "Name one: --llm ollama:qwen2.5:7b (or openai:MODEL, local:PATH)",
        )
    backend = make_backend(cfg.kind, cfg.options)

    def make(picked: list[Any]) -> tuple[list[Question], dict[str, Any]]:
        raw_path = out.with_name(out.name.replace(".jsonl", "") + ".raw.jsonl")
        progress = bar(len(picked)) if bar else None
        try:
            run = generate(
                backend, picked, raw_path, per_chunk, progress=progress.update if progress else None
            )
        finally:
            if progress:
                progress.close()
        return tq.read_jsonl(raw_path), {
            "generator": f"llm:{backend.describe()}",
            "generated": run.generated,
            "chunks_done": run.chunks,
            "resumed": run.skipped,
            "unparsed_replies": run.unparsed,
            "failed_chunks": run.failed,
        }

    return make


def question_files(kb: KnowledgeBase) -> tuple[Path, Path, Path]:
    """(questions file, its train split, its validation split) at the KB's default place."""
    from zhiku.tune.questions import split_paths

    qpath = questions_path(kb, None)
    return (qpath, *split_paths(qpath))


def adapter_bases(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """The configured methods a query adapter can start from (those searching vectors), built or not."""
    status = {s.name: s for s in kb.status()}
    bases = []
    for name in kb.config.methods:
        try:
            vector = kb.method(name).vectors
        except Exception:  # noqa: BLE001  (a method that cannot even be described is no base)
            vector = False
        if vector:
            bases.append({"name": name, "built": bool(status.get(name) and status[name].built)})
    return bases
