"""Retrieval (and answer) quality of every method on four public datasets, in one run per dataset.

    .venv/bin/python benchmarks/quality.py [--datasets cmrc2018,squad,scifact,rgb-zh]
        [--methods bm25,dense,hybrid] [--limit N] [--squad-limit N] [--no-answers]

Reads ../shared/data (never copied into the project), runs ``zhiku.eval.run_eval`` exactly as
``zhiku eval`` does, and writes benchmarks/results/quality/<dataset>/{results.json, report.md,
chart.png}, a summary chart, and the "quality" section of BENCHMARKS.md. Dense is the default
all-MiniLM-L6-v2; it is English-only and is run on the Chinese sets only because it is named here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine, md_table, replace_section  # noqa: E402

from zhiku.eval import load_dataset, run_eval  # noqa: E402
from zhiku.eval.report import (  # noqa: E402
    Report,
    format_table,
    read_results_json,
    worst_queries,
    write_chart_png,
    write_report_md,
    write_results_json,
)

DATASETS: dict[str, tuple[str, str]] = {
    "cmrc2018": ("cmrc2018/cmrc2018_dev.json", "CMRC 2018 dev (zh, 848 paragraphs, 3,219 questions)"),
    "squad": ("squad-v1.1/dev-v1.1.json", "SQuAD 1.1 dev (en, 2,067 paragraphs, 10,570 questions)"),
    "scifact": ("scifact-beir", "SciFact, BEIR test split (en, 5,183 abstracts, 300 claims)"),
    "rgb-zh": ("rgb-zh/zh_refine.json", "RGB zh_refine (zh, 7,337 passages, 300 queries, ~8.6 relevant)"),
}
KEEP_WORST = 50  # per method, in the committed results.json (zhiku eval itself keeps every query)
COLUMNS = ["hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10"]
ANSWER_COLUMNS = ["answer_f1", "answer_contains", "citation_ok"]


def trimmed(report: Report) -> Report:
    """The report with only each method's worst queries: the full per-query results of SQuAD are
    tens of megabytes, too much to keep in the repository."""
    from dataclasses import replace

    methods = [replace(m, per_query=worst_queries(m, KEEP_WORST)) for m in report.methods]
    settings = {**report.settings, "per-query results": f"the {KEEP_WORST} worst queries of each method"}
    return replace(report, methods=methods, settings=settings)


def summary_rows(report: Report) -> list[list[str]]:
    rows = []
    for m in report.methods:
        cells = [m.method] + [f"{m.metrics.get(c, float('nan')):.3f}" for c in COLUMNS]
        cells += [f"{m.metrics[c]:.3f}" if c in m.metrics else "-" for c in ANSWER_COLUMNS]
        cells += [
            f"{m.latency_ms_p50:.1f}",
            f"{m.latency_ms_p95:.1f}",
            f"{m.build_seconds:.1f}",
            f"{m.index_bytes / 2**20:.1f}",
        ]
        rows.append(cells)
    return rows


def hybrid_note(report: Report) -> str:
    """Whether fusion beat the best single method on MRR@10, and the numbers that say why (not)."""
    by = {m.method: m for m in report.methods}
    if "hybrid" not in by or not {"bm25", "dense"} <= set(by):
        return ""
    mrr = {n: by[n].metrics["mrr@10"] for n in ("bm25", "dense", "hybrid")}
    best = max(("bm25", "dense"), key=lambda n: mrr[n])
    other = "dense" if best == "bm25" else "bm25"
    first = {n: {q.query_id: q.first_rank for q in by[n].per_query} for n in ("bm25", "dense")}
    only_best = sum(1 for q, r in first[best].items() if r == 1 and first[other][q] != 1)
    only_other = sum(1 for q, r in first[other].items() if r == 1 and first[best][q] != 1)
    n = len(first[best])
    verdict = "beats" if mrr["hybrid"] > mrr[best] else "does not beat"
    return (
        f"hybrid (RRF, k=60, equal weights) {verdict} the best single method on MRR@10: "
        f"{mrr['hybrid']:.3f} vs {best} {mrr[best]:.3f} ({other} {mrr[other]:.3f}). {best} alone puts the "
        f"gold passage first in {only_best} of {n} queries where {other} does not, {other} alone in "
        f"{only_other}; with equal weights a fusion gains only where the weaker method adds more rank-1 "
        f"rescues than the rank-1 positions it dilutes."
    )


def summary_chart(reports: dict[str, Report], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("mrr@10", "ndcg@10"), strict=True):
        names = list(reports)
        methods = list(dict.fromkeys(m.method for r in reports.values() for m in r.methods))
        width = 0.8 / max(len(methods), 1)
        for i, method in enumerate(methods):
            ys = [
                next((m.metrics[metric] for m in reports[d].methods if m.method == method), 0.0)
                for d in names
            ]
            ax.bar([x + i * width - 0.4 + width / 2 for x in range(len(names))], ys, width, label=method)
        ax.set_xticks(range(len(names)), names)
        ax.set(title=metric.replace("mrr", "MRR").replace("ndcg", "nDCG"), ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("zhiku retrieval quality per dataset and method")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--methods", default="bm25,dense,hybrid")
    p.add_argument("--limit", type=int, default=None, help="sample N queries of every dataset (quick runs)")
    p.add_argument("--squad-limit", type=int, default=None, help="sample N SQuAD queries (it has 10,570)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-answers", action="store_true", help="skip the answer metrics")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=RESULTS / "quality")
    p.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    p.add_argument("--render-only", action="store_true", help="redraw from the stored results.json files")
    args = p.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join([".venv/bin/python", "benchmarks/quality.py", *given])

    reports: dict[str, Report] = {}
    seconds: dict[str, float] = {}
    for key in [] if args.render_only else args.datasets.split(","):
        rel, _ = DATASETS[key]
        dataset = load_dataset(args.data / rel)
        limit = args.squad_limit if key == "squad" and args.squad_limit else args.limit
        answers = not args.no_answers and bool(dataset.answers)
        cmd = shlex.join(
            [
                "zhiku",
                "eval",
                str(Path("../shared/data") / rel),
                "--methods",
                args.methods,
                *(["--limit", str(limit)] if limit else []),
                *(["--answers"] if answers else []),
            ]
        )
        print(f"== {key}: {len(dataset.queries)} queries, {len(dataset.corpus)} passages", file=sys.stderr)
        t0 = time.perf_counter()
        report = run_eval(
            dataset, args.methods.split(","), limit=limit, seed=args.seed, answers=answers, command=cmd
        )
        seconds[key] = time.perf_counter() - t0
        report.settings["run seconds"] = round(seconds[key], 1)
        report.settings["benchmark command"] = command
        # Needs every query: computed before results.json keeps only the worst ones.
        report.settings["hybrid note"] = hybrid_note(report)
        out = args.out / key
        out.mkdir(parents=True, exist_ok=True)
        write_results_json(trimmed(report), out / "results.json")
        write_report_md(report, out / "report.md")
        write_chart_png(report, out / "chart.png")
        reports[key] = report
        print(format_table(report), file=sys.stderr)
        print(f"   {seconds[key]:.0f} s", file=sys.stderr)
    # Datasets not run this time keep their last results, so one dataset can be re-run alone.
    for key in DATASETS:
        done = args.out / key / "results.json"
        if key not in reports and done.exists():
            reports[key] = read_results_json(done)
            seconds[key] = float(reports[key].settings.get("run seconds", 0.0))
    reports = {key: reports[key] for key in DATASETS if key in reports}
    summary_chart(reports, args.out / "summary.png")
    (args.out / "summary.json").write_text(
        json.dumps(
            {
                key: {
                    "seconds": round(seconds[key], 1),
                    "settings": r.settings,
                    "methods": {
                        m.method: {
                            **m.metrics,
                            "p50_ms": m.latency_ms_p50,
                            "p95_ms": m.latency_ms_p95,
                            "build_s": m.build_seconds,
                            "index_bytes": m.index_bytes,
                            "qps": m.queries_per_second,
                        }
                        for m in r.methods
                    },
                }
                for key, r in reports.items()
            },
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    if not args.no_markdown:
        replace_section("quality", render(reports, seconds))
    return 0


def render(reports: dict[str, Report], seconds: dict[str, float]) -> str:
    headers = [
        "method",
        *[c.replace("mrr", "MRR").replace("ndcg", "nDCG") for c in COLUMNS],
        "answer F1",
        "answer contains",
        "citation ok",
        "p50 ms",
        "p95 ms",
        "build s",
        "index MB",
    ]
    out = [
        "## Retrieval quality (`benchmarks/quality.py`)",
        "",
        f"Measured on {machine()}, commit `{commit()}`. Commands:",
        "",
        "```",
        *dict.fromkeys(str(r.settings.get("benchmark command", "")) for r in reports.values()),
        "```",
        "",
        "![MRR@10 and nDCG@10 per dataset and method](benchmarks/results/quality/summary.png)",
        "",
    ]
    for key, report in reports.items():
        s = report.settings
        out += [f"### {DATASETS[key][1]}", ""]
        sampled = f" (sampled, seed {s['seed']})" if s.get("limit") else ""
        out += [
            f"{s['queries']} queries{sampled}; "
            f"{s['documents']} passages in {s['chunks']} chunks (chunk size {s['chunking']['size']}); "
            f"{seconds[key]:.0f} s for the whole run. Same as `{report.command}`.",
            "",
        ]
        out += [md_table(headers, summary_rows(report)), ""]
        notes = [n for m in report.methods for n in m.notes if not n.startswith("answers")]
        note = str(s.get("hybrid note", ""))
        out += [f"- {n}" for n in dict.fromkeys(notes)] + ([f"- {note}"] if note else [])
        folder = f"benchmarks/results/quality/{key}"
        out += [
            "",
            f"Chart: [{folder}/chart.png]({folder}/chart.png). A run also writes `report.md` (the "
            f"worst queries with what was retrieved instead) and `results.json` (per query) there; they "
            f"quote the licensed dataset, so they stay local.",
            "",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
