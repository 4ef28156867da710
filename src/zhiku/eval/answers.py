"""Answer metrics: ``ask`` every question of a dataset and score the answers and their citations.

Exact match and token F1 (characters for Chinese) against the gold answers, ``contains`` (every
part of the gold answer occurs in the answer: RGB's accuracy, and the fair measure for an answerer
that quotes whole sentences), and ``citation_ok``: whether a citation points at a relevant passage.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zhiku.eval.datasets import Dataset
from zhiku.eval.judges import Judge
from zhiku.eval.metrics import contains_answer, exact_match, percentile, token_f1

if TYPE_CHECKING:
    from zhiku.progress import Progress as EvalProgress
    from zhiku.service import KnowledgeBase
    from zhiku.types import Answer, Hit

_CITE = re.compile(r"\s*\[\d{1,3}\]")

ANSWER_KEYS = ("answer_em", "answer_f1", "answer_contains", "citation_ok", "answered")


def strip_citations(text: str) -> str:
    """The answer without its ``[n]`` markers: they are references, not part of the answer."""
    return _CITE.sub("", text).strip()


@dataclass
class AnswerScores:
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def note(self, method: str, generator: str, k: int, reused: bool = False) -> str:
        lat = self.latencies_ms or [0.0]
        what = "answer (retrieval reused)" if reused else "ask"
        return (
            f"answers of {method}: generator {generator}, {k} chunks of context, {what} p50 "
            f"{percentile(lat, 50):.1f} ms / p95 {percentile(lat, 95):.1f} ms per question"
        )


def score_answer(answer: Answer, qid: str, dataset: Dataset, judge: Judge) -> dict[str, float]:
    """One answer's scores; answer-text metrics only where the dataset has gold answers."""
    out = {"answered": float(answer.found)}
    golds = dataset.answers.get(qid) or []
    if golds:
        text = strip_citations(answer.text) if answer.found else ""
        parts = dataset.answer_parts.get(qid) or [golds]
        out.update(
            answer_em=exact_match(text, golds),
            answer_f1=token_f1(text, golds),
            answer_contains=contains_answer(text, parts),
        )
    cited = {c.chunk_id for c in answer.citations}
    hits = [h for h in answer.hits if h.chunk_id in cited]
    units, relevant = judge.judge(qid, hits)
    out["citation_ok"] = float(any(u in relevant for u in units))
    return out


def _means(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    # Averaged over the questions that have the metric: a question without a gold answer must not
    # count as a wrong answer.
    out = {}
    for key in ANSWER_KEYS:
        values = [row[key] for row in per_query.values() if key in row]
        if values:
            out[key] = sum(values) / len(values)
    return out


def score_answers(
    kb: KnowledgeBase,
    method: str,
    dataset: Dataset,
    judge: Judge,
    *,
    k: int = 5,
    generator: Any = None,
    progress: EvalProgress | None = None,
    qids: Sequence[str] | None = None,
    hits: Mapping[str, Sequence[Hit]] | None = None,
) -> AnswerScores:
    """Ask every question (``kb.ask`` with ``method``) and score the answers.

    ``hits``: each question's ranked hits from the retrieval pass, best first. ``kb.ask`` is
    search + answer, and the top ``k`` of those hits are what its search returns, so they are
    answered from directly instead of retrieving again; the latency is then the answer's alone.
    """
    from zhiku.generate.answer import answer_question, make_generator

    gen = generator or make_generator(kb.config.generator)
    scores = AnswerScores()
    todo = list(qids or dataset.queries)
    if progress:
        progress.start(f"answer {method}", len(todo))
    try:
        for qid in todo:
            t0 = time.perf_counter()
            if hits is not None and qid in hits:
                answer = answer_question(dataset.queries[qid], list(hits[qid])[:k], gen)
            else:
                answer = kb.ask(dataset.queries[qid], k=k, method=method, generator=gen)
            scores.latencies_ms.append((time.perf_counter() - t0) * 1000)
            scores.per_query[qid] = score_answer(answer, qid, dataset, judge)
            scores.texts[qid] = answer.text
            if progress:
                progress.advance(1)
    finally:
        if progress:
            progress.close()
    scores.means = _means(scores.per_query)
    return scores
