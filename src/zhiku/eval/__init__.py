"""Evaluation: datasets, pure metrics, the runner and reports.

Names are resolved lazily (PEP 562) so ``import zhiku.eval`` costs nothing until a name is used;
matplotlib in particular is only imported when a chart is drawn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # metrics
    "hit_at_k": "metrics",
    "recall_at_k": "metrics",
    "precision_at_k": "metrics",
    "mrr_at_k": "metrics",
    "ndcg_at_k": "metrics",
    "first_relevant_rank": "metrics",
    "ranking_metrics": "metrics",
    "mean_metrics": "metrics",
    "percentile": "metrics",
    "normalize_answer": "metrics",
    "exact_match": "metrics",
    "token_f1": "metrics",
    "contains_answer": "metrics",
    "DEFAULT_KS": "metrics",
    # datasets
    "Dataset": "datasets",
    "Passage": "datasets",
    "FORMATS": "datasets",
    "load_dataset": "datasets",
    "judge_zhiku_qa": "datasets",
    # reports
    "QueryResult": "report",
    "MethodResult": "report",
    "Report": "report",
    "format_table": "report",
    "write_results_json": "report",
    "read_results_json": "report",
    "write_report_md": "report",
    "write_chart_png": "report",
    "worst_queries": "report",
    # running
    "evaluate": "runner",
    "run_eval": "runner",
    "KBRetriever": "runner",
    "EvalProgress": "runner",
}

__all__ = sorted(_EXPORTS)

# For type checkers and IDEs only; at run time the names come from __getattr__ below. The
# "x as x" form marks them as re-exports.
if TYPE_CHECKING:
    from zhiku.eval.datasets import (
        FORMATS as FORMATS,
    )
    from zhiku.eval.datasets import (
        Dataset as Dataset,
    )
    from zhiku.eval.datasets import (
        Passage as Passage,
    )
    from zhiku.eval.datasets import (
        judge_zhiku_qa as judge_zhiku_qa,
    )
    from zhiku.eval.datasets import (
        load_dataset as load_dataset,
    )
    from zhiku.eval.metrics import (
        DEFAULT_KS as DEFAULT_KS,
    )
    from zhiku.eval.metrics import (
        contains_answer as contains_answer,
    )
    from zhiku.eval.metrics import (
        exact_match as exact_match,
    )
    from zhiku.eval.metrics import (
        first_relevant_rank as first_relevant_rank,
    )
    from zhiku.eval.metrics import (
        hit_at_k as hit_at_k,
    )
    from zhiku.eval.metrics import (
        mean_metrics as mean_metrics,
    )
    from zhiku.eval.metrics import (
        mrr_at_k as mrr_at_k,
    )
    from zhiku.eval.metrics import (
        ndcg_at_k as ndcg_at_k,
    )
    from zhiku.eval.metrics import (
        normalize_answer as normalize_answer,
    )
    from zhiku.eval.metrics import (
        percentile as percentile,
    )
    from zhiku.eval.metrics import (
        precision_at_k as precision_at_k,
    )
    from zhiku.eval.metrics import (
        ranking_metrics as ranking_metrics,
    )
    from zhiku.eval.metrics import (
        recall_at_k as recall_at_k,
    )
    from zhiku.eval.metrics import (
        token_f1 as token_f1,
    )
    from zhiku.eval.report import (
        MethodResult as MethodResult,
    )
    from zhiku.eval.report import (
        QueryResult as QueryResult,
    )
    from zhiku.eval.report import (
        Report as Report,
    )
    from zhiku.eval.report import (
        format_table as format_table,
    )
    from zhiku.eval.report import (
        read_results_json as read_results_json,
    )
    from zhiku.eval.report import (
        worst_queries as worst_queries,
    )
    from zhiku.eval.report import (
        write_chart_png as write_chart_png,
    )
    from zhiku.eval.report import (
        write_report_md as write_report_md,
    )
    from zhiku.eval.report import (
        write_results_json as write_results_json,
    )
    from zhiku.eval.runner import (
        EvalProgress as EvalProgress,
    )
    from zhiku.eval.runner import (
        KBRetriever as KBRetriever,
    )
    from zhiku.eval.runner import (
        evaluate as evaluate,
    )
    from zhiku.eval.runner import (
        run_eval as run_eval,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zhiku.eval' has no attribute {name!r}")
    value = getattr(import_module(f"zhiku.eval.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
