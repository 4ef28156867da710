"""Evaluation reports: a terminal table, results.json, a Markdown report and a PNG chart.

The report is built from plain dataclasses so that every method (BM25, dense, hybrid, fine-tuned)
is reported the same way. matplotlib is imported only inside :func:`write_chart_png`, so the rest
works (and ``zhiku --help`` stays fast) without it.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zhiku.errors import DependencyMissingError
from zhiku.store.files import atomic_write_bytes, atomic_write_json, atomic_write_text

RESULTS_SCHEMA = 1
_MB = 1024 * 1024


@dataclass
class QueryResult:
    """How one method did on one query. ``retrieved`` holds the top 10 ids and ``snippets`` the texts
    of the first few, enough to show what came back instead of the gold passage without bloating
    results.json. ``scores`` are this query's metrics (the means of which are the method's);
    ``answer`` is the generated answer when answers were evaluated."""

    query_id: str
    query: str
    relevant: list[str]
    retrieved: list[str]
    snippets: list[str]
    first_rank: int | None
    hit: bool
    gold_snippet: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    answer: str = ""


@dataclass
class MethodResult:
    method: str
    metrics: dict[str, float]
    latency_ms_p50: float
    latency_ms_p95: float
    build_seconds: float
    index_bytes: int
    per_query: list[QueryResult] = field(default_factory=list)
    #: queries per second over the whole run (batched where the method batches), for throughput
    queries_per_second: float = 0.0
    #: what a reader should know to read the numbers right ("dense model is English-only", …)
    notes: list[str] = field(default_factory=list)
    #: per-stage latencies where the method has stages (``rerank_ms_p50``, ``first_stage_ms_p50``)
    stages: dict[str, float] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Report:
    dataset: str
    methods: list[MethodResult]
    k: int = 10
    created: str = field(default_factory=_now)
    command: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


# --- the table --------------------------------------------------------------------------------------


def _hit_ks(report: Report) -> list[int]:
    ks = {int(key[4:]) for m in report.methods for key in m.metrics if key.startswith("hit@")}
    return sorted(ks or {1, 3, 5, report.k})


def _metric_keys(report: Report) -> list[str]:
    k = report.k
    keys = [f"hit@{n}" for n in _hit_ks(report)] + [f"mrr@{k}", f"ndcg@{k}", f"recall@{k}"]
    # Whatever else the runner measured (EM, F1, precision@k) follows, so nothing is dropped silently.
    extra = sorted({key for m in report.methods for key in m.metrics} - set(keys) - {f"precision@{k}"})
    return keys + extra


def _label(key: str) -> str:
    return key.replace("mrr", "MRR").replace("ndcg", "nDCG")


def _table(report: Report) -> tuple[list[str], list[list[str]]]:
    keys = _metric_keys(report)
    # The rerank stage's own latency gets a column only in runs that rerank.
    rerank = any("rerank_ms_p50" in m.stages for m in report.methods)
    headers = [
        "method",
        *map(_label, keys),
        "p50 ms",
        "p95 ms",
        *(["rerank ms"] if rerank else []),
        "build s",
        "size MB",
    ]
    rows = []
    for m in report.methods:
        cells = [m.method]
        cells += [f"{m.metrics[key]:.3f}" if key in m.metrics else "-" for key in keys]
        cells += [f"{m.latency_ms_p50:.1f}", f"{m.latency_ms_p95:.1f}"]
        if rerank:
            cells.append(f"{m.stages['rerank_ms_p50']:.1f}" if "rerank_ms_p50" in m.stages else "-")
        cells += [f"{m.build_seconds:.1f}", f"{m.index_bytes / _MB:.1f}"]
        rows.append(cells)
    return headers, rows


def format_table(report: Report) -> str:
    """Methods as rows, metrics as aligned columns (numbers right-aligned) for a terminal."""
    headers, rows = _table(report)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *map(line, rows)])


def _markdown_table(report: Report) -> str:
    headers, rows = _table(report)
    align = [":---"] + ["---:"] * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


# --- files ------------------------------------------------------------------------------------------


def write_results_json(report: Report, path: Path) -> None:
    """Everything, per query included, so a later run can be compared without re-running this one."""
    atomic_write_json(Path(path), {"schema": RESULTS_SCHEMA, **asdict(report)})


def read_results_json(path: Path) -> Report:
    """A report written by :func:`write_results_json`, to compare with or re-render without re-running."""
    import json

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data.pop("schema", None)
    methods = [
        MethodResult(**{**m, "per_query": [QueryResult(**q) for q in m.get("per_query", [])]})
        for m in data.pop("methods")
    ]
    return Report(methods=methods, **data)


def _snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def worst_queries(result: MethodResult, n: int = 5) -> list[QueryResult]:
    """Queries with no relevant passage retrieved first, then the worst ranks; rank 1 is never "worst"."""
    misses = [q for q in result.per_query if q.first_rank is None]
    late = [q for q in result.per_query if q.first_rank is not None and q.first_rank > 1]
    late.sort(key=lambda q: -(q.first_rank or 0))
    return (misses + late)[:n]


def _method_section(result: MethodResult, k: int, n: int) -> list[str]:
    out = [f"### {result.method}", ""]
    out += [f"> {note}" for note in result.notes]
    out += [""] if result.notes else []
    worst = worst_queries(result, n)
    if not worst:
        out += ["Every query had a relevant passage at rank 1.", ""]
        return out
    misses = sum(1 for q in result.per_query if q.first_rank is None)
    out += [f"{misses} of {len(result.per_query)} queries had no relevant passage in the top {k}.", ""]
    for q in worst:
        where = f"no hit in top {k}" if q.first_rank is None else f"first relevant at rank {q.first_rank}"
        out.append(f"- **{_snippet(q.query, 200)}** (`{q.query_id}`, {where})")
        if q.gold_snippet:
            out.append(f"  - gold: {_snippet(q.gold_snippet)}")
        elif q.relevant:
            out.append(f"  - gold: `{', '.join(q.relevant[:3])}`")
        for i, (doc, text) in enumerate(zip(q.retrieved[:3], q.snippets[:3], strict=False), start=1):
            out.append(f"  - retrieved {i}: `{doc}` {_snippet(text)}")
        if q.answer:
            out.append(f"  - answer: {_snippet(q.answer)}")
    out.append("")
    return out


def write_report_md(report: Report, path: Path, chart_name: str = "chart.png", worst: int = 5) -> None:
    """A Markdown report: table, chart, the exact command, and each method's worst queries."""
    out = [f"# zhiku evaluation: {report.dataset}", "", f"Created {report.created}, k = {report.k}.", ""]
    out += [_markdown_table(report), "", f"![hit@k and latency per method]({chart_name})", ""]
    out += ["## Command", "", "```", report.command or "(not recorded)", "```", ""]
    if report.settings:
        out += ["## Settings", ""]
        out += [f"- {key}: `{value}`" for key, value in sorted(report.settings.items())]
        out.append("")
    out += ["## Worst queries", ""]
    for result in report.methods:
        out += _method_section(result, report.k, worst)
    atomic_write_text(Path(path), "\n".join(out).rstrip() + "\n")


def write_chart_png(report: Report, path: Path) -> None:
    """Left: hit@k curves per method; right: p50/p95 latency bars per method."""
    try:
        # The object API with an explicit Agg canvas: no pyplot global state, no display needed,
        # and it does not change the backend of a program that already uses pyplot.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise DependencyMissingError(
            "charts need matplotlib, which is not installed", "pip install matplotlib"
        ) from e

    fig = Figure(figsize=(11, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    ks = _hit_ks(report)
    for m in report.methods:
        ys = [m.metrics.get(f"hit@{k}", float("nan")) for k in ks]
        left.plot(ks, ys, marker="o", label=m.method)
    left.set(title="hit@k", xlabel="k", ylabel="share of queries with a relevant passage", ylim=(0, 1.05))
    left.set_xticks(ks)
    left.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize="small")

    names = [m.method for m in report.methods]
    xs = range(len(names))
    width = 0.38
    right.bar([x - width / 2 for x in xs], [m.latency_ms_p50 for m in report.methods], width, label="p50")
    right.bar([x + width / 2 for x in xs], [m.latency_ms_p95 for m in report.methods], width, label="p95")
    right.set(title="query latency", ylabel="ms")
    right.set_xticks(list(xs), names, rotation=20, ha="right")
    right.grid(axis="y", alpha=0.3)
    right.legend(fontsize="small")
    fig.suptitle(f"{report.dataset} ({len(report.methods)} methods)")
    fig.tight_layout()

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())
