"""Fusion, in one place: which parts are fused, with which weights (per language), and how.

Every fusion in zhiku goes through here: a configured ``hybrid`` method (``HybridOptions``, its
``by_language`` settings, ``plan_fusion`` and ``fuse``), an ad-hoc ``a+b`` method name
(``adhoc_fusion``), RAG-Fusion's query variants (``reciprocal_rank_fusion``) and the router's
weight search in ``zhiku tune route`` (``fuse_lists``). The combining functions are pure functions
over lists of hits.

``fusion = "rrf"`` (reciprocal rank fusion, the default) or ``"score"`` (scores normalised per
method, then weighted and added); ``weights`` say how much each method counts. ``by_language``
overrides these for questions in one language ("zh", "en" or "mixed", by ``language_of``): how
much a model's ranking is worth depends on how well it reads that language (e5 is far ahead of
BM25 on everyday Chinese wording, level with it on English). Which combination a KB uses by
default is chosen from measurements (README, BENCHMARKS.md), never on a test split.

``engine`` says who fuses: zhiku (the lists of the parts, fused here) or Milvus, in one
``hybrid_search`` request, when the words (a ``bm25`` with ``index = "milvus"``) and the vectors
(a vector method with ``index = "milvus"``, whose collection keeps the words too) live in the same
Milvus (``one_engine``): RRF becomes Milvus's ``RRFRanker``, score fusion its ``WeightedRanker``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhiku.config import MethodConfig
from zhiku.errors import UsageError
from zhiku.retrieve.base import EngineSide, MethodOptions
from zhiku.text.normalise import language_of
from zhiku.types import Hit

#: a method name made of several joined by '+' is their fusion (``bm25+dense``)
FUSION_SEP = "+"

Fusion = Literal["rrf", "score"]
Normalize = Literal["minmax", "zscore"]
Engine = Literal["auto", "zhiku", "milvus"]

#: who fuses under ``engine = "auto"``: zhiku, measured better where it matters (bm25 and e5 both
#: in Milvus Lite, same KB, MRR@10; benchmarks/results/milvus_hybrid.json, load 10-25): with the
#: default fusion (score, BM25 1 : e5 2) CMRC 2018 dev (3,219 questions) zhiku 0.9860, Milvus's
#: WeightedRanker 0.9891; laws dev (60 questions, the 28 named laws + 150 others) zhiku 0.6749,
#: Milvus 0.5871. Milvus's (unweighted) RRF: 0.9845 and 0.5911. Milvus maps scores through a
#: fixed arctan curve, not min-max per query, so a sharp BM25 peak counts less: +0.003 on CMRC's
#: questions in the passage's words, -0.088 on everyday-worded law questions. The one request
#: was slower too (p50 60 vs 48 ms on CMRC, Milvus Lite).
AUTO_ENGINE: Literal["zhiku", "milvus"] = "zhiku"


class LanguageFusion(BaseModel):
    """``[methods.<name>.options.by_language.<language>]``: what changes for such questions."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    weights: list[float] | None = None
    fusion: Fusion | None = None
    normalize: Normalize | None = None


class HybridOptions(MethodOptions):
    of: list[str] = Field(default_factory=lambda: ["bm25", "dense"], min_length=1)
    weights: list[float] | None = None
    fusion: Fusion = "rrf"
    normalize: Normalize = Field("minmax", description="score fusion only")
    k_rrf: int = Field(60, ge=1)
    depth: int = Field(50, ge=1, description="how many hits of each method are fused")
    by_language: dict[Literal["zh", "en", "mixed"], LanguageFusion] = Field(
        default_factory=dict, description="weights, fusion or normalize for questions in one language"
    )
    engine: Engine = Field(
        "auto", description="who fuses: zhiku, or milvus in one request when both parts live there"
    )

    @model_validator(mode="after")
    def _weights_match(self) -> HybridOptions:
        tables = [("weights", self.weights)] + [
            (f"by_language.{lang}.weights", s.weights) for lang, s in self.by_language.items()
        ]
        for where, weights in tables:
            if weights is not None and len(weights) != len(self.of):
                raise ValueError(f"{where} has {len(weights)} values for {len(self.of)} methods")
        return self

    def only(self, keep: list[str]) -> dict[str, Any]:
        """These options for a fusion of ``keep`` alone (parts of ``of``), every weight list following."""

        def sub(weights: list[float]) -> list[float]:
            return [w for p, w in zip(self.of, weights, strict=True) if p in keep]

        data = self.model_dump(mode="json", exclude_none=True)
        data["of"] = [p for p in self.of if p in keep]
        if self.weights is not None:
            data["weights"] = sub(self.weights)
        for language, settings in self.by_language.items():
            if settings.weights is not None:
                data["by_language"][language]["weights"] = sub(settings.weights)
        return data


@dataclass(frozen=True)
class FusionPlan:
    """How one question is fused: its parts (in ``of`` order), their weights, the fusion."""

    parts: list[str]
    weights: list[float] | None
    fusion: Fusion
    normalize: Normalize


def plan_fusion(options: HybridOptions, query: str, readers: Callable[[str], list[str]]) -> FusionPlan:
    """The parts fused for ``query``, with their weights and fusion.

    ``readers(language)``: the parts this KB uses (``MethodContext.parts_in_use``: an English-only
    model of the defaults is not built in a Chinese KB), less those whose model cannot read the
    query's language: MiniLM ranks a Chinese question in a mixed KB at random, and min-max
    normalisation would stretch that noise to full weight. ``by_language`` settings for the
    query's language replace the general ones.
    """
    o = options
    language = language_of(query)
    parts = readers(language)
    own = o.by_language.get(language) or LanguageFusion()  # type: ignore[call-overload]
    all_weights = o.weights if own.weights is None else own.weights
    weights = [w for n, w in zip(o.of, all_weights, strict=True) if n in parts] if all_weights else None
    return FusionPlan(parts, weights, own.fusion or o.fusion, own.normalize or o.normalize)


@dataclass(frozen=True)
class OneEngine:
    """A fusion Milvus runs in one request: the part giving the words, the part whose collection
    ranks vectors and words, and Milvus's ranker for the plan's fusion."""

    words: str
    vectors: str
    ranker: Literal["rrf", "weighted"]
    weights: tuple[float, float]  # words, vectors (the weighted ranker's)
    k_rrf: int


def fusing_engine(
    options: HybridOptions, parts: Sequence[str], sides: dict[str, EngineSide | None]
) -> tuple[Literal["zhiku", "milvus"], str]:
    """Who fuses ``parts``: "milvus" when asked (or chosen by ``auto``) and the parts allow it, else
    "zhiku"; and why not Milvus when Milvus was asked for ("" otherwise)."""
    if (AUTO_ENGINE if options.engine == "auto" else options.engine) != "milvus":
        return "zhiku", ""
    found = {p: sides.get(p) for p in parts}
    words = [p for p, s in found.items() if s is not None and s.role == "words"]
    vectors = [p for p, s in found.items() if s is not None and s.role == "vectors"]
    for p in vectors:  # the most telling reason first: a Milvus without full text, an old collection
        side = found[p]
        if side is not None and side.missing:
            return "zhiku", f"{p}: {side.missing}"
    if len(parts) != 2 or len(words) != 1 or len(vectors) != 1:
        return "zhiku", (
            f"Milvus fuses one bm25 and one vector method both with index = 'milvus'; "
            f"this fuses {', '.join(parts) or 'nothing'}"
        )
    w, v = found[words[0]], found[vectors[0]]
    assert w is not None and v is not None
    if w.uri != v.uri:
        return "zhiku", f"{words[0]} and {vectors[0]} are in two Milvus (uri {w.uri} and {v.uri})"
    if options.fusion == "rrf" and len(set(options.weights or [1.0])) > 1:
        return "zhiku", "Milvus's RRFRanker takes no weights (use fusion = 'score', or equal weights)"
    if (w.k1, w.b) != (v.k1, v.b):
        return "zhiku", (
            f"{vectors[0]} ranks its words with k1 {v.k1}, b {v.b}, {words[0]} with k1 {w.k1}, b {w.b} "
            f"(set bm25_k1 and bm25_b in {vectors[0]}'s index_options)"
        )
    return "milvus", ""


def one_engine(
    options: HybridOptions, plan: FusionPlan, sides: dict[str, EngineSide | None], method: str
) -> tuple[OneEngine | None, str]:
    """The one Milvus request that fuses ``plan``, or None and a one-line note saying why zhiku
    fuses instead of the Milvus asked for ("" when zhiku was asked for)."""
    engine, why = fusing_engine(options, plan.parts, sides)
    if engine != "milvus":
        return None, f"{method}: fused by zhiku, not Milvus: {why}" if why else ""
    if plan.fusion == "rrf" and plan.weights and len(set(plan.weights)) > 1:  # by_language's own
        return None, f"{method}: fused by zhiku, not Milvus: Milvus's RRFRanker takes no weights"
    first = sides[plan.parts[0]]
    words, vectors = plan.parts if first is not None and first.role == "words" else plan.parts[::-1]
    by_part = dict(zip(plan.parts, plan.weights or [1.0, 1.0], strict=True))
    top = max(by_part.values()) or 1.0
    # Milvus wants weights in [0, 1]; only their ratio matters to the order
    weights = (by_part[words] / top, by_part[vectors] / top)
    ranker: Literal["rrf", "weighted"] = "rrf" if plan.fusion == "rrf" else "weighted"
    return OneEngine(words, vectors, ranker, weights, options.k_rrf), ""


def fuse(lists: list[list[Hit]], k: int, method: str, plan: FusionPlan, k_rrf: int = 60) -> list[Hit]:
    """Fuse the lists of ``plan``'s parts (in that order) its way."""
    return fuse_lists(lists, k, method, plan.fusion, plan.weights, plan.normalize, k_rrf)


def fuse_lists(
    lists: Sequence[Sequence[Hit]],
    k: int,
    method: str,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    normalize: str = "minmax",
    k_rrf: int = 60,
) -> list[Hit]:
    """``fusion`` "score" or "rrf" of ``lists`` (one per part, in order)."""
    if fusion == "score":
        return score_fusion(lists, k, method, weights, normalize)
    return reciprocal_rank_fusion(lists, k, method, weights, k_rrf)


def adhoc_fusion(name: str) -> MethodConfig | None:
    """The method an ad-hoc name ``a+b`` stands for (the parts fused with the defaults), or None
    when ``name`` is no fusion of names."""
    if FUSION_SEP not in name:
        return None
    parts = [p.strip() for p in name.split(FUSION_SEP)]
    if len(parts) < 2 or not all(parts):
        raise UsageError(f"{name!r} is not a fusion of methods", "Write it like bm25+dense")
    return MethodConfig(kind="hybrid", options={"of": parts})


def hybrid_config(of: list[str], weights: list[float] | None, fusion: str) -> dict[str, Any]:
    """The options of a hybrid fusing ``of`` (what ``tune route`` saves as the default)."""
    return {"of": of, "weights": weights, "fusion": fusion}


def reciprocal_rank_fusion(
    lists: Sequence[Sequence[Hit]],
    k: int,
    method: str,
    weights: Sequence[float] | None = None,
    k_rrf: int = 60,
) -> list[Hit]:
    """score(d) = Σ_i w_i / (k_rrf + rank_i(d)), rank starting at 1 (Cormack et al., 2009).

    Ties are broken by first appearance, so the result is deterministic.
    """
    weights = list(weights) if weights is not None else [1.0] * len(lists)
    scores: dict[str, float] = {}
    sources: dict[str, dict[str, int]] = {}
    for hits, w in zip(lists, weights, strict=True):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + w / (k_rrf + rank)
            sources.setdefault(hit.chunk_id, {})[hit.method] = rank
    order = sorted(scores, key=lambda c: -scores[c])[:k]
    return [Hit(c, scores[c], method, extra={"ranks": sources[c]}) for c in order]


def normalized_scores(hits: Sequence[Hit], how: str) -> dict[str, float]:
    """Each method's scores on one scale, so they can be added: ``minmax`` maps the list's scores to
    0..1 (a flat list gives 1.0), ``zscore`` to standard deviations from the list's mean."""
    scores = [h.score for h in hits]
    if not scores:
        return {}
    if how == "zscore":
        mean = sum(scores) / len(scores)
        sd = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
        return {h.chunk_id: (h.score - mean) / sd if sd else 0.0 for h in hits}
    lo, hi = min(scores), max(scores)
    return {h.chunk_id: (h.score - lo) / (hi - lo) if hi > lo else 1.0 for h in hits}


def score_fusion(
    lists: Sequence[Sequence[Hit]],
    k: int,
    method: str,
    weights: Sequence[float] | None = None,
    normalize: str = "minmax",
) -> list[Hit]:
    """score(d) = Σ_i w_i · norm_i(d): scores normalised per list, then weighted and added.

    Unlike RRF it keeps how *much* better a method found one chunk than the next (BM25's sharp
    peaks on an exact match survive). A chunk a method did not retrieve gets that method's floor:
    0 for minmax, the list's minimum for zscore. Ties are broken by first appearance.
    """
    weights = list(weights) if weights is not None else [1.0] * len(lists)
    scores: dict[str, float] = {}
    sources: dict[str, dict[str, int]] = {}
    per_list = [normalized_scores(hits, normalize) for hits in lists]
    floors = [min(n.values()) if n and normalize == "zscore" else 0.0 for n in per_list]
    for hits in lists:
        for rank, hit in enumerate(hits, start=1):
            scores.setdefault(hit.chunk_id, 0.0)
            sources.setdefault(hit.chunk_id, {})[hit.method] = rank
    for cid in scores:
        scores[cid] = sum(w * n.get(cid, f) for w, n, f in zip(weights, per_list, floors, strict=True))
    order = sorted(scores, key=lambda c: -scores[c])[:k]
    return [Hit(c, scores[c], method, extra={"ranks": sources[c]}) for c in order]
