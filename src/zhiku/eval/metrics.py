"""Pure evaluation metrics: ranking metrics over ids and answer metrics over strings.

Every ranking metric takes ``ranked`` (ids, best first) and ``relevant`` (either a mapping of id to
graded relevance, or a plain set meaning relevance 1), so BM25, dense, hybrid and fine-tuned methods are
all scored by the same code. Only relevance > 0 counts as relevant, as in pytrec_eval and BEIR.

``ranked`` is de-duplicated keeping the first occurrence before scoring: several chunks of one document
map to the same document id, and a document must not be counted twice (that would inflate recall and
nDCG above 1) nor push other documents down the list.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Literal

from zhiku.errors import UsageError

Relevant = Mapping[str, int] | AbstractSet[str]
Gain = Literal["linear", "exponential"]

# The cut-offs every report shows; the runner scores with these unless told otherwise.
DEFAULT_KS: tuple[int, ...] = (1, 3, 5, 10)


def dedup(ranked: Iterable[str]) -> list[str]:
    """Ids in order with repeats removed, keeping each id's best (first) rank."""
    return list(dict.fromkeys(ranked))


def _grades(relevant: Relevant) -> dict[str, int]:
    if isinstance(relevant, Mapping):
        return {doc: int(rel) for doc, rel in relevant.items() if rel > 0}
    return dict.fromkeys(relevant, 1)


def _top(ranked: Sequence[str], k: int) -> list[str]:
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}", "Pass a positive cut-off such as k=10")
    return dedup(ranked)[:k]


def hit_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """1.0 if any relevant id is in the top ``k``, else 0.0."""
    grades = _grades(relevant)
    return 1.0 if any(doc in grades for doc in _top(ranked, k)) else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """Share of the relevant ids found in the top ``k`` (0.0 when nothing is relevant)."""
    grades = _grades(relevant)
    if not grades:
        return 0.0
    return sum(1 for doc in _top(ranked, k) if doc in grades) / len(grades)


def precision_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """Relevant ids in the top ``k`` divided by ``k`` (not by the number retrieved, like pytrec_eval P_k)."""
    grades = _grades(relevant)
    return sum(1 for doc in _top(ranked, k) if doc in grades) / k


def first_relevant_rank(ranked: Sequence[str], relevant: Relevant, k: int | None = None) -> int | None:
    """1-based rank of the first relevant id (within ``k`` if given), or None."""
    grades = _grades(relevant)
    top = dedup(ranked) if k is None else _top(ranked, k)
    for rank, doc in enumerate(top, start=1):
        if doc in grades:
            return rank
    return None


def mrr_at_k(ranked: Sequence[str], relevant: Relevant, k: int) -> float:
    """Reciprocal rank of the first relevant id within the top ``k``; 0.0 if none."""
    rank = first_relevant_rank(ranked, relevant, k)
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Relevant, k: int, gain: Gain = "linear") -> float:
    """Normalised discounted cumulative gain with the log2(rank + 1) discount.

    ``gain="linear"`` uses ``rel`` as the gain, as pytrec_eval (and so BEIR) does, which is what
    makes SciFact BM25 come out at the published 0.665; ``"exponential"`` uses ``2**rel - 1``
    (Burges et al.). With binary relevance the two are identical.
    """
    grades = _grades(relevant)
    if not grades:
        return 0.0

    def g(rel: int) -> float:
        return float(rel) if gain == "linear" else float(2**rel - 1)

    dcg = sum(g(grades.get(doc, 0)) / math.log2(i + 2) for i, doc in enumerate(_top(ranked, k)))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g(rel) / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def ranking_metrics(
    ranked: Sequence[str], relevant: Relevant, ks: Sequence[int] = DEFAULT_KS, k: int = 10
) -> dict[str, float]:
    """All per-query ranking metrics under the names reports use: ``hit@n``, ``mrr@k``, ``ndcg@k``,
    ``recall@k``, ``precision@k``."""
    out = {f"hit@{n}": hit_at_k(ranked, relevant, n) for n in sorted(set(ks))}
    out[f"mrr@{k}"] = mrr_at_k(ranked, relevant, k)
    out[f"ndcg@{k}"] = ndcg_at_k(ranked, relevant, k)
    out[f"recall@{k}"] = recall_at_k(ranked, relevant, k)
    out[f"precision@{k}"] = precision_at_k(ranked, relevant, k)
    return out


def mean_metrics(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Macro average over queries (every query weighs the same), key by key."""
    if not per_query:
        return {}
    keys = dict.fromkeys(key for row in per_query for key in row)
    return {key: sum(row.get(key, 0.0) for row in per_query) / len(per_query) for key in keys}


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation, numpy's default method."""
    if not values:
        # Only a bug gets here: a run with no queries is rejected when the dataset loads.
        raise ValueError("percentile of an empty sequence")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    data = sorted(values)
    pos = (len(data) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


# --- answer metrics --------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff\u3040-\u30ff\uac00-\ud7af"
# A CJK character is a token by itself (Chinese has no spaces; character-level F1 is what the CMRC
# and DRCD evaluations use); any other run of non-space characters is one token (an English word).
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_ASCII_PUNCT = frozenset(string.punctuation)


def _is_punct(ch: str) -> bool:
    # Unicode "P*" covers Chinese punctuation (，。、《》“”…); ASCII symbols such as $ + < = > ^ ` | ~
    # are not "P*" but SQuAD's normaliser strips them too, so published EM/F1 stay comparable.
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation extended for Chinese: NFKC, lower case, no punctuation (ASCII and
    Chinese), no English articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if not _is_punct(ch))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens of a normalised answer: each CJK character alone, other words split on whitespace."""
    return _TOKEN.findall(normalize_answer(text))


def _golds(gold: str | Sequence[str]) -> list[str]:
    return [gold] if isinstance(gold, str) else list(gold)


def exact_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return max((1.0 if pred == normalize_answer(g) else 0.0 for g in _golds(gold)), default=0.0)


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        # Two empty answers agree; an empty answer against a non-empty one shares nothing.
        return 1.0 if pred == gold else 0.0
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, gold: str | Sequence[str]) -> float:
    """Token-overlap F1, the maximum over the gold answers (characters for Chinese, words for English)."""
    pred = answer_tokens(prediction)
    return max((_f1(pred, answer_tokens(g)) for g in _golds(gold)), default=0.0)


def contains_answer(prediction: str, parts: Sequence[Sequence[str]]) -> float:
    """RGB's accuracy: 1.0 if, for every part, one of its alternatives occurs in the prediction.

    Containment rather than EM because generated answers are sentences ("死亡人数为12人。"); the
    comparison is on normalised text so full-width digits and case do not matter.
    """
    if not parts:
        return 0.0
    text = normalize_answer(prediction).replace(" ", "")
    return float(
        all(any(normalize_answer(a).replace(" ", "") in text for a in alts if a.strip()) for alts in parts)
    )
