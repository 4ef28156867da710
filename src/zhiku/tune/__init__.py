"""``zhiku tune``: the corpus teaches its own retriever.

- ``questions.py``: synthetic questions from the KB's own chunks (offline pseudo-questions, or an
  LLM's), filtered, de-duplicated and split by document into train / validation;
- ``adapter.py``: a query-side adapter on top of a built vector method (chunk vectors unchanged);
- ``compare.py``: before/after evaluation and the paired test that decides whether a tuned method
  may become the KB's default;
- ``route.py``: the KB's default method (or hybrid weights, or a query router) chosen on validation.

This module is the public door the faces (CLI, web API) call: the steps end to end (``runs.py``)
and their settings. Names resolve lazily (PEP 562): nothing here is imported by ``import zhiku``;
numpy and torch are imported inside functions.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Outcome": "runs",
    "run_questions": "runs",
    "run_adapter": "runs",
    "run_encoder": "runs",
    "run_route": "runs",
    "run_reranker": "runs",
    "llm_question_maker": "runs",
    "questions_path": "runs",
    "question_files": "runs",
    "adapter_bases": "runs",
    "EncoderSettings": "encoder",
    "RerankerSettings": "reranker",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from zhiku.tune.encoder import EncoderSettings as EncoderSettings
    from zhiku.tune.reranker import RerankerSettings as RerankerSettings
    from zhiku.tune.runs import Outcome as Outcome
    from zhiku.tune.runs import adapter_bases as adapter_bases
    from zhiku.tune.runs import llm_question_maker as llm_question_maker
    from zhiku.tune.runs import question_files as question_files
    from zhiku.tune.runs import questions_path as questions_path
    from zhiku.tune.runs import run_adapter as run_adapter
    from zhiku.tune.runs import run_encoder as run_encoder
    from zhiku.tune.runs import run_questions as run_questions
    from zhiku.tune.runs import run_reranker as run_reranker
    from zhiku.tune.runs import run_route as run_route


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zhiku.tune' has no attribute {name!r}")
    value = getattr(import_module(f"zhiku.tune.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
