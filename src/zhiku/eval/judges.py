"""Judges: what a list of hits means for one query of a dataset.

A retriever returns chunks; a dataset judges passages (SQuAD, BEIR, RGB) or evidence and documents
(zhiku QA). A judge turns the hits of one query into ranked unit ids and the query's relevant units,
which is all the pure metrics need. So the runner never knows which kind of dataset it scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from zhiku.eval.datasets import Dataset, normalize_evidence, source_matches
from zhiku.eval.metrics import dedup
from zhiku.types import Hit


class Judge(Protocol):
    #: True when the relevant set only covers what was retrieved (no full scan of the corpus was
    #: possible): then only hit@k and MRR are meaningful, and recall/nDCG are left out.
    partial: bool

    def judge(self, qid: str, hits: Sequence[Hit]) -> tuple[list[str], dict[str, int]]:
        """``(ranked unit ids, relevant unit id -> grade)`` for one query's hits."""
        ...

    def gold_snippet(self, qid: str) -> str:
        """A short text that shows a reader what a right answer looks like."""
        ...

    def snippet(self, unit: str, hits: Sequence[Hit]) -> str:
        """The text of a retrieved unit, for the report's "what came back instead"."""
        ...


def _chunk_text(hit: Hit) -> str:
    return hit.chunk.text if hit.chunk is not None else ""


class PassageJudge:
    """Datasets with a corpus: a hit counts for the passage its chunk was ingested from.

    The evaluation KB stores each passage as one document whose ``source`` is the passage id, so
    ``hit.doc.source`` is the passage. ``aliases`` maps a stored passage id to every dataset passage
    with the same text (the catalog keeps identical texts once; BEIR corpora have a few duplicates).
    """

    partial = False

    def __init__(self, dataset: Dataset, aliases: Mapping[str, Sequence[str]] | None = None) -> None:
        self.dataset = dataset
        self.aliases = aliases or {}

    def unit(self, hit: Hit) -> str:
        return hit.doc.source if hit.doc is not None else hit.chunk_id

    def judge(self, qid: str, hits: Sequence[Hit]) -> tuple[list[str], dict[str, int]]:
        relevant = self.dataset.qrels.get(qid, {})
        ranked: list[str] = []
        for h in hits:
            unit = self.unit(h)
            same = self.aliases.get(unit, (unit,))
            # Identical passages are one retrieved text: the relevant copy (if any) takes its rank.
            ranked.extend(sorted(same, key=lambda p: -relevant.get(p, 0)))
        return dedup(ranked), dict(relevant)

    def gold_snippet(self, qid: str) -> str:
        for pid in self.dataset.qrels.get(qid, {}):
            passage = self.dataset.corpus.get(pid)
            if passage is not None:
                return passage.text
        return ""

    def snippet(self, unit: str, hits: Sequence[Hit]) -> str:
        passage = self.dataset.corpus.get(unit)
        if passage is not None:
            return passage.text
        return next((_chunk_text(h) for h in hits if self.unit(h) == unit), "")


class EvidenceJudge:
    """zhiku QA sets, judged against an existing knowledge base.

    A question with evidence is about chunks (the passage must contain the evidence, and come from
    the named document if one is given); a question with only a document is about documents, so
    five chunks of the right law count once. With ``chunks`` (every ``(chunk id, source, text)`` of
    the KB) the full relevant set is known and recall/nDCG are exact; without, only the retrieved
    hits are judged (``partial``).
    """

    def __init__(self, dataset: Dataset, chunks: Iterable[tuple[str, str, str]] | None = None) -> None:
        self.dataset = dataset
        self.partial = chunks is None
        self._chunks = [(cid, src, normalize_evidence(text)) for cid, src, text in chunks or ()]
        self._relevant: dict[str, dict[str, int]] = {}
        #: queries for which no chunk of the KB qualifies (evidence split by chunking, a missing doc)
        self.unanswerable: list[str] = []
        if not self.partial:
            for qid in dataset.queries:
                rel = self._scan(qid)
                self._relevant[qid] = rel
                if not rel:
                    self.unanswerable.append(qid)

    def _by_doc(self, qid: str) -> bool:
        return not self.dataset.evidence.get(qid) and bool(self.dataset.doc_gold.get(qid))

    def _scan(self, qid: str) -> dict[str, int]:
        evidence = [e for e in map(normalize_evidence, self.dataset.evidence.get(qid, [])) if e]
        docs = self.dataset.doc_gold.get(qid, [])
        if not evidence and not docs:
            return {}
        sources: dict[str, bool] = {}
        out: dict[str, int] = {}
        for cid, src, text in self._chunks:
            if docs:
                ok = sources.get(src)
                if ok is None:
                    ok = sources[src] = any(source_matches(src, d) for d in docs)
                if not ok:
                    continue
            if evidence and not any(e in text for e in evidence):
                continue
            out[src if self._by_doc(qid) else cid] = 1
        return out

    def _unit(self, qid: str, hit: Hit) -> str:
        return hit.doc.source if self._by_doc(qid) and hit.doc is not None else hit.chunk_id

    def _hit_ok(self, qid: str, hit: Hit) -> bool:
        evidence = [e for e in map(normalize_evidence, self.dataset.evidence.get(qid, [])) if e]
        docs = self.dataset.doc_gold.get(qid, [])
        source = hit.doc.source if hit.doc is not None else ""
        if docs and not any(source_matches(source, d) for d in docs):
            return False
        if evidence:
            text = normalize_evidence(_chunk_text(hit))
            return any(e in text for e in evidence)
        return bool(docs)

    def judge(self, qid: str, hits: Sequence[Hit]) -> tuple[list[str], dict[str, int]]:
        ranked = dedup(self._unit(qid, h) for h in hits)
        if not self.partial:
            return ranked, dict(self._relevant.get(qid, {}))
        relevant = {self._unit(qid, h): 1 for h in hits if self._hit_ok(qid, h)}
        return ranked, relevant

    def gold_snippet(self, qid: str) -> str:
        evidence = self.dataset.evidence.get(qid, [])
        docs = self.dataset.doc_gold.get(qid, [])
        parts = [f"evidence: {' | '.join(evidence)}"] if evidence else []
        parts += [f"doc: {' | '.join(docs)}"] if docs else []
        return "; ".join(parts)

    def snippet(self, unit: str, hits: Sequence[Hit]) -> str:
        for h in hits:
            if h.chunk_id == unit or (h.doc is not None and h.doc.source == unit):
                where = h.doc.source if h.doc is not None else ""
                return f"[{where}] {_chunk_text(h)}" if where else _chunk_text(h)
        return ""
