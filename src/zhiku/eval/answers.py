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

ANSWER_KEYS = (
    "answer_em",
    "answer_f1",
    "answer_contains",
    "citation_ok",
    "answered",
    "refused",
    "false_refusal_rank1",
    "unanswerable_refused",
)


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
    """One answer's scores; answer-text metrics only where the dataset has gold answers.

    ``refused``: the answerer said it found nothing; ``answer_chars``: the answer's length without
    its citation markers (answers only); ``false_refusal_rank1``: refused although retrieval's
    first passage is a relevant one (only for such questions)."""
    out = {"answered": float(answer.found), "refused": float(not answer.found)}
    if answer.found:
        out["answer_chars"] = float(len(strip_citations(answer.text)))
    if answer.hits and _is_gold(judge, qid, answer.hits[0]):
        out["false_refusal_rank1"] = float(not answer.found)
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


def _is_gold(judge: Judge, qid: str, hit: Hit) -> bool:
    units, relevant = judge.judge(qid, [hit])
    return any(u in relevant for u in units)


def _has_gold(dataset: Dataset, qid: str) -> bool:
    return bool(dataset.qrels.get(qid) or dataset.evidence.get(qid))


def without_gold(judge: Judge, qid: str, hits: Sequence[Hit]) -> list[Hit]:
    """The hits minus those of the question's own passage(s): what a KB that never held the
    answering passage would retrieve (the rest keep their order, so the next ones move up)."""
    return [h for h in hits if not _is_gold(judge, qid, h)]


def _means(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    # Averaged over the questions that have the metric: a question without a gold answer must not
    # count as a wrong answer.
    out = {}
    for key in ANSWER_KEYS:
        values = [row[key] for row in per_query.values() if key in row]
        if values:
            out[key] = sum(values) / len(values)
    lengths = [row["answer_chars"] for row in per_query.values() if "answer_chars" in row]
    if lengths:
        out["answer_chars_p50"] = percentile(lengths, 50)
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
    unanswerable: bool = True,
) -> AnswerScores:
    """Ask every question (``kb.ask`` with ``method``) and score the answers.

    ``hits``: each question's ranked hits from the retrieval pass, best first. ``kb.ask`` is
    search + answer, and the top ``k`` of those hits are what its search returns, so they are
    answered from directly instead of retrieving again; the latency is then the answer's alone.

    ``unanswerable``: each question is asked once more of a KB from which its own
    passage was removed, emulated by removing the relevant hits from its retrieved list (the
    others move up, as they would in that KB); ``unanswerable_refused`` is whether it then refused.
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
            # Without the retrieval pass's hits, the answer's own k hits stand in (the gold ones
            # removed, nothing moves up from below k).
            retrieved = list(hits[qid]) if hits is not None and qid in hits else list(answer.hits)
            if unanswerable and _has_gold(dataset, qid):
                rest = without_gold(judge, qid, retrieved)[:k]
                if len(rest) < len(retrieved):  # the gold passage was among them
                    other = answer_question(dataset.queries[qid], rest, gen)
                    scores.per_query[qid]["unanswerable_refused"] = float(not other.found)
            scores.texts[qid] = answer.text
            if progress:
                progress.advance(1)
    finally:
        if progress:
            progress.close()
    scores.means = _means(scores.per_query)
    return scores
