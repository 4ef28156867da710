"""``zhiku eval``: score retrieval methods (and answers) on a dataset, side by side, in one run.

Writes a terminal table, ``results.json``, ``report.md`` and ``chart.png``. Settings of the
temporary KB are changed with ``--config zhiku.toml`` and/or ``--set KEY=VALUE`` (dotted paths into
the KB config, values in TOML syntax), e.g. ``--set methods.dense.options.embedder=hashing`` or
``--set chunking.size=1000``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.cli.common import PhaseBar, print_json, show_progress

if TYPE_CHECKING:
    from zhiku.config import KBConfig
    from zhiku.eval import Report

_DESCRIPTION = """\
Score retrieval methods (and answers) on a dataset, side by side, in one run: a table here, and
results.json, report.md and chart.png in --out. The temporary KB built from the dataset takes its
settings from --config zhiku.toml and --set KEY=VALUE (a dotted path into the KB config, a TOML
value), e.g. --set methods.dense.options.embedder=hashing or --set chunking.size=1000.
"""

_EPILOG = """\
datasets: a SQuAD-style .json (CMRC 2018, SQuAD, DRCD), a BEIR folder (corpus.jsonl, queries.jsonl,
qrels/<split>.tsv), RGB JSON lines, or a zhiku QA .jsonl (question, answer, evidence, doc) with --kb.
methods: names from the KB config (bm25, dense, hybrid), registered kinds, or fusions like bm25+dense.
examples:
  zhiku eval cmrc2018_dev.json --methods bm25
  zhiku eval dev-v1.1.json --methods bm25,dense,hybrid --limit 2000
  zhiku eval my-questions.jsonl --kb laws --methods bm25,hybrid --answers
  zhiku eval scifact/ --split test --set methods.dense.options.model=/models/bge-small
  zhiku eval cmrc2018_dev.json --methods bm25 --rerank cross-encoder:/models/bge-reranker-base
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    # Not built on `common`: there --kb defaults to "default", here its absence means "build a
    # temporary KB from the dataset".
    p = sub.add_parser(
        "eval",
        help="score retrieval methods on a dataset, side by side",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", metavar="DATASET", help="dataset file or BEIR folder")
    p.add_argument(
        "--methods",
        "-m",
        default=None,
        help="comma-separated methods (default: each method the KB would build for this language)",
    )
    p.add_argument("--k", "-k", type=int, default=10, help="cut-off for MRR, nDCG and recall (default 10)")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where to write the report (default ./zhiku-eval-<dataset>-<timestamp>)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate N sampled queries")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    p.add_argument("--format", default="auto", help="auto, squad, beir, rgb or zhiku-qa (default auto)")
    p.add_argument("--kb", default=None, help="evaluate a zhiku QA set against this existing knowledge base")
    p.add_argument("--home", default=None, help="where knowledge bases live (with --kb)")
    p.add_argument("--answers", action="store_true", help="also ask every question: EM, F1, citations")
    p.add_argument(
        "--answer-k", type=int, default=5, metavar="N", help="chunks of context per answer (default 5)"
    )
    p.add_argument(
        "--config", default=None, metavar="TOML", help="settings of the temporary KB (a zhiku.toml)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="change one setting of the temporary KB (repeatable)",
    )
    p.add_argument(
        "--workdir",
        default=None,
        metavar="DIR",
        help="build the temporary KB in DIR and keep it (default: a temp folder, removed)",
    )
    p.add_argument(
        "--rerank",
        default=None,
        metavar="KIND[:MODEL_OR_URL]",
        help="also evaluate each method followed by this reranker (cross-encoder:/path, "
        "remote:URL, llm), as rows METHOD>KIND with the rerank stage's latency",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(run=run_eval_cmd)


def parse_value(text: str) -> Any:
    """A TOML value (``1000``, ``true``, ``["bm25", "dense"]``, ``"x"``), else the text itself."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: KBConfig, assignments: list[str]) -> KBConfig:
    """``config`` with each ``a.b.c=value`` assignment applied, validated as a whole."""
    from zhiku.config import KBConfig, validated
    from zhiku.errors import ConfigError, UsageError

    data = config.model_dump(mode="json")
    for item in assignments:
        key, sep, raw = item.partition("=")
        path = [p.strip() for p in key.strip().split(".")]
        if not sep or not all(path):
            raise UsageError(f"--set {item!r} is not KEY=VALUE", "For example: --set chunking.size=1000")
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {key}: {part!r} is a value, not a table", "Check the setting's path"
                )
            node = child
        node[path[-1]] = parse_value(raw.strip())
    return validated(KBConfig, data, "--set: ", "See zhiku.toml for the settings and their types")


def _config(args: argparse.Namespace) -> KBConfig | None:
    from zhiku.config import KBConfig
    from zhiku.errors import NotFoundError, UsageError

    if args.kb and (args.config or args.overrides):
        raise UsageError(
            "--config and --set change the temporary KB; with --kb the KB's own zhiku.toml is used",
            "Drop them, or edit that KB's zhiku.toml",
        )
    if not (args.config or args.overrides):
        return None
    config = KBConfig()
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise NotFoundError(f"no such config file: {path}", "Pass a zhiku.toml with --config")
        config = KBConfig.load(path)
    return apply_overrides(config, args.overrides)


def _command(args: argparse.Namespace) -> str:
    """The command that reproduces this run (options that differ from the defaults)."""
    parts = ["zhiku", "eval", args.dataset]
    for flag, value, default in (
        ("--methods", args.methods, None),
        ("--k", args.k, 10),
        ("--limit", args.limit, None),
        ("--seed", args.seed, 0),
        ("--split", args.split, "test"),
        ("--format", args.format, "auto"),
        ("--kb", args.kb, None),
        ("--answer-k", args.answer_k if args.answers else 5, 5),
        ("--config", args.config, None),
        ("--rerank", args.rerank, None),
    ):
        if value != default:
            parts += [flag, str(value)]
    parts += [f"--set={o}" for o in args.overrides]
    parts += ["--answers"] if args.answers else []
    return shlex.join(parts)


def _out_dir(args: argparse.Namespace, dataset: str) -> Path:
    if args.out:
        return Path(args.out)
    import re
    from datetime import datetime

    safe = re.sub(r"[^\w.-]+", "-", dataset).strip("-") or "dataset"
    return Path(f"zhiku-eval-{safe}-{datetime.now():%Y%m%d-%H%M%S}")


def write_outputs(report: Report, out: Path) -> list[Path]:
    """results.json, report.md and chart.png in ``out``; the chart is skipped (with a note on
    stderr) where matplotlib is missing, the rest is still written."""
    from zhiku.errors import DependencyMissingError
    from zhiku.eval import write_chart_png, write_report_md, write_results_json

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "report.md"]
    write_results_json(report, written[0])
    write_report_md(report, written[1], chart_name="chart.png")
    try:
        write_chart_png(report, out / "chart.png")
        written.append(out / "chart.png")
    except DependencyMissingError as e:
        print(f"note: chart not drawn: {e.one_line()}", file=sys.stderr)
    return written


def run_eval_cmd(args: argparse.Namespace) -> int:
    from zhiku.errors import UsageError
    from zhiku.eval import format_table, load_dataset, run_eval

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}", "Use --limit 200, for example")
    if args.answer_k < 1:
        raise UsageError(f"--answer-k must be at least 1, got {args.answer_k}", "Use --answer-k 5")
    config = _config(args)
    dataset = load_dataset(Path(args.dataset), fmt=args.format, split=args.split)
    methods = [m for m in args.methods.split(",")] if args.methods else None
    bars = show_progress() and not args.json
    kb = None
    if args.kb:
        from zhiku.service import KnowledgeBase

        kb = KnowledgeBase.open(args.kb, home=Path(args.home) if args.home else None, create=False)
    try:
        report = run_eval(
            dataset,
            methods,
            k=args.k,
            kb=kb,
            config=config,
            workdir=args.workdir,
            limit=args.limit,
            seed=args.seed,
            answers=args.answers,
            answer_k=args.answer_k,
            progress=PhaseBar(unit="item", prefix="", leave=False) if bars else None,
            build_progress=PhaseBar() if bars else None,
            command=_command(args),
            rerank=args.rerank,
        )
    finally:
        if kb is not None:
            kb.close()
    out = _out_dir(args, dataset.name)
    written = write_outputs(report, out)
    if args.json:
        print_json(
            {
                "dataset": report.dataset,
                "k": report.k,
                "out": str(out),
                "files": [str(p) for p in written],
                "methods": {
                    m.method: {
                        **m.metrics,
                        "latency_ms_p50": m.latency_ms_p50,
                        "latency_ms_p95": m.latency_ms_p95,
                        "build_seconds": m.build_seconds,
                        "index_bytes": m.index_bytes,
                        **m.stages,
                    }
                    for m in report.methods
                },
            }
        )
        return 0
    queries = report.settings.get("queries", 0)
    print(f"{report.dataset}: {queries} queries, k = {report.k}")
    print(format_table(report))
    # Notes describe themselves ("dense: …", "answers of hybrid: …"); a fusion repeats its parts'.
    for note in dict.fromkeys(n for m in report.methods for n in m.notes):
        print(f"note: {note}")
    if report.settings.get("methods left out"):
        print(f"note: {report.settings['methods left out']}")
    print(f"wrote {', '.join(p.name for p in written)} to {out}")
    return 0
