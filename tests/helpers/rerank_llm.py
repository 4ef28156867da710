"""A scripted LLM judge for the loopback LLM server: it answers the ``llm`` reranker's prompts.

It reads the prompt the reranker really sent (pointwise: one passage; listwise: numbered passages),
scores by how many of the question's characters/words each passage holds, and replies the way a
model does ("Score: 7/10", "[2] > [1] > [3]"), so the reranker's prompts and parsers are exercised.
"""

from __future__ import annotations

import re

from tests.integration.fake_rerank_server import overlap
from zhiku.retrieve.rerank.prompts import DEFAULTS

_POINT_Q = re.compile(r"^(?:Question|问题)[:：]\s*(.*)$", re.M)
_POINT_P = re.compile(r"(?:Passage|资料)[:：]\n(.*?)\n\n(?:Relevance|相关度)", re.S)
_BLOCK = re.compile(r"^\[(\d+)\] (.*)$", re.M)

POINTWISE = {p.pointwise_system for p in DEFAULTS.values()}
LISTWISE = {p.listwise_system for p in DEFAULTS.values()}


def judge_reply(messages: list[dict[str, str]]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    q = _POINT_Q.search(user)
    query = q.group(1) if q else ""
    if system in POINTWISE:
        p = _POINT_P.search(user)
        passage = p.group(1) if p else ""
        return f"Score: {round(10 * overlap(query, passage))}/10"
    if system in LISTWISE:
        blocks = [(int(n), text) for n, text in _BLOCK.findall(user)]
        ranked = sorted(blocks, key=lambda b: -overlap(query, b[1]))  # stable: ties keep their order
        return " > ".join(f"[{n}]" for n, _ in ranked)
    return "The answer is in the first passage [1]."
