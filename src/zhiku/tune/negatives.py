"""Hard negatives for tuning: the chunks a method ranks highest for a question that are not relevant.

Shared by ``tune adapter`` (BM25's negatives next to the base method's own) and ``tune reranker``
(BM25's and the KB's default method's: the candidates the reranker will really be shown). A chunk
that also contains the question's evidence is relevant, never a negative (``relevant_sets``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase


def searched_negatives(
    kb: KnowledgeBase,
    questions: Sequence[str],
    relevant: Sequence[set[str]],
    method: str,
    n: int,
    keep: Callable[[str], bool] | None = None,
    say: Callable[[str], None] | None = None,
) -> list[list[str]]:
    """Per question, up to ``n`` chunk ids that ``method`` ranks highest and that are not relevant
    (and pass ``keep``, e.g. "has a vector"), best first. A method that cannot search (no index)
    gives no negatives rather than failing the run: the other miner's negatives still work."""
    try:
        # The first stage only: a KB's [rerank] must not reorder (or pay for) the mining.
        lists = kb.search_many(list(questions), k=2 * n + 8, method=method, rerank="off")
    except Exception as e:  # noqa: BLE001  (the reason is reported, the run goes on)
        if say is not None:
            say(f"no {method} negatives ({e})")
        return [[] for _ in questions]
    out = []
    for hits, rel in zip(lists, relevant, strict=True):
        ids = [h.chunk_id for h in hits if h.chunk_id not in rel and (keep is None or keep(h.chunk_id))]
        out.append(list(dict.fromkeys(ids))[:n])
    return out
