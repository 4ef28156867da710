"""Before/after evaluation of tuned methods, and the test that decides whether one becomes default.

The decision uses a **paired bootstrap** on per-question reciprocal ranks (RR@10): the mean
difference tuned − default, resampled over questions 10,000 times with a fixed seed; the tuned
method is made default only if the mean difference is positive and the one-sided p-value (the
share of resamples whose mean difference is ≤ 0) is below ``alpha`` (0.05). Why not a sign test
alone: most RR differences are exact ties (both rank 1, or both miss), which a sign test throws
away, and it weighs a move from rank 10 to rank 9 the same as from a miss to rank 1; the bootstrap
keeps the magnitudes and the ties (the sample size). The sign test is still reported next to it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.eval.report import MethodResult, Report

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase

ALPHA = 0.05
RESAMPLES = 10_000


@dataclass
class Comparison:
    challenger: str
    incumbent: str
    questions: int
    mean_challenger: float
    mean_incumbent: float
    mean_difference: float
    ci_low: float
    ci_high: float
    p_bootstrap: float
    wins: int
    losses: int
    ties: int
    p_sign: float
    significant: bool
    why: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def paired_bootstrap(
    a: list[float], b: list[float], resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """(one-sided p that mean(b − a) ≤ 0, 2.5th and 97.5th percentiles of the resampled mean)."""
    import numpy as np

    d = np.asarray(b, float) - np.asarray(a, float)
    if not len(d):
        return 1.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    return float((means <= 0).mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def sign_test(a: list[float], b: list[float]) -> tuple[int, int, int, float]:
    """(wins of b, losses, ties, exact two-sided binomial p over the non-tied pairs)."""
    wins = sum(1 for x, y in zip(a, b, strict=True) if y > x)
    losses = sum(1 for x, y in zip(a, b, strict=True) if y < x)
    n = wins + losses
    if n == 0:
        return wins, losses, len(a), 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(wins, losses) + 1)) / 2**n
    return wins, losses, len(a) - n, min(1.0, 2 * tail)


def per_question(result: MethodResult, key: str) -> dict[str, float]:
    return {q.query_id: float(q.scores.get(key, 0.0)) for q in result.per_query}


def compare(report: Report, challenger: str, incumbent: str, alpha: float = ALPHA) -> Comparison:
    """Whether ``challenger`` beats ``incumbent`` on ``report``'s questions by more than noise."""
    by = {m.method: m for m in report.methods}
    key = f"mrr@{report.k}"
    a_map, b_map = per_question(by[incumbent], key), per_question(by[challenger], key)
    qids = [q for q in a_map if q in b_map]
    a, b = [a_map[q] for q in qids], [b_map[q] for q in qids]
    p, lo, hi = paired_bootstrap(a, b)
    wins, losses, ties, p_sign = sign_test(a, b)
    ma, mb = (sum(a) / len(a), sum(b) / len(b)) if qids else (0.0, 0.0)
    diff = mb - ma
    if challenger == incumbent:
        ok, why = False, f"{challenger} is already the default"
    elif diff <= 0:
        ok, why = (
            False,
            (f"{challenger} does not beat {incumbent} on validation: MRR@{report.k} {mb:.4f} vs {ma:.4f}"),
        )
    elif p >= alpha:
        ok, why = (
            False,
            (
                f"{challenger} beats {incumbent} by {diff:+.4f} MRR@{report.k}, within noise "
                f"(paired bootstrap p = {p:.3f} ≥ {alpha}, 95% CI {lo:+.4f}..{hi:+.4f})"
            ),
        )
    else:
        ok, why = (
            True,
            (
                f"{challenger} beats {incumbent} by {diff:+.4f} MRR@{report.k} (paired bootstrap "
                f"p = {p:.4f} < {alpha}, 95% CI {lo:+.4f}..{hi:+.4f}; sign test {wins} wins, "
                f"{losses} losses, {ties} ties)"
            ),
        )
    return Comparison(
        challenger, incumbent, len(qids), mb, ma, diff, lo, hi, p, wins, losses, ties, p_sign, ok, why
    )


def evaluate_methods(
    kb: KnowledgeBase, dataset_path: Path, names: list[str], command: str = "", progress: Any = None
) -> Report:
    """``names`` on the questions of ``dataset_path``; ``progress``: one phase per method."""
    from zhiku.eval.datasets import load_dataset
    from zhiku.eval.runner import run_eval

    dataset = load_dataset(dataset_path, fmt="zhiku-qa")
    return run_eval(dataset, list(dict.fromkeys(names)), kb=kb, command=command, progress=progress)


def write_report(report: Report, out: Path, notes: list[str]) -> list[Path]:
    """results.json, report.md and chart.png (as ``zhiku eval`` writes them) with ``notes`` added."""
    from zhiku.errors import DependencyMissingError
    from zhiku.eval.report import write_chart_png, write_report_md, write_results_json

    for m in report.methods:
        m.notes = [*m.notes, *notes] if m is report.methods[-1] else m.notes
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "report.md"]
    write_results_json(report, written[0])
    write_report_md(report, written[1])
    try:
        write_chart_png(report, out / "chart.png")
        written.append(out / "chart.png")
    except DependencyMissingError:
        pass
    return written


def save_config(kb: KnowledgeBase, method: tuple[str, Any] | None = None, **changes: Any) -> None:
    """Apply ``changes`` (and add or replace ``method``, a (name, MethodConfig) pair) to the KB's
    zhiku.toml, re-read under the writer lock so a concurrent edit of another setting is kept."""
    from zhiku.config import KBConfig

    with kb.layout.writer_lock():
        current = KBConfig.load(kb.layout.config)
        if method is not None:
            changes["methods"] = {**current.methods, method[0]: method[1]}
        updated = current.updated(**changes)
        updated.save(kb.layout.config)
    kb.config = updated
