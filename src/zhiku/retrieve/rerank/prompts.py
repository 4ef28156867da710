"""Prompts of the ``llm`` reranker, as data, in Chinese and English (chosen by the query's language).

Placeholders are ``{name}`` and filled with ``generate.prompts.fill``, so a literal brace in a
user's template is left alone. A user overrides any field per language in ``[rerank.options]``::

    [rerank.options.prompts.zh]
    pointwise_system = "你是法律检索助手。判断条文能否回答问题，只输出 0 到 10 的整数。"
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from zhiku.errors import ConfigError
from zhiku.generate.prompts import LANGS, Lang


class RerankPrompts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: pointwise: instructions (no placeholders), then {query} {passage}
    pointwise_system: str
    pointwise_user: str
    #: listwise: instructions, then {query} {n} (how many passages) {passages}
    listwise_system: str
    listwise_user: str
    #: one numbered passage inside {passages}: {n} {text}
    listwise_passage: str


EN = RerankPrompts(
    pointwise_system=(
        "You judge search results. Rate how well the passage answers the question on a scale from 0 "
        "(unrelated) to 10 (answers it fully). Reply with the number only."
    ),
    pointwise_user="Question: {query}\n\nPassage:\n{passage}\n\nRelevance (0-10):",
    listwise_system=(
        "You rank search results. Order the numbered passages by how well they answer the question, "
        "most relevant first. Reply with the passage numbers only, like [2] > [1] > [3], with no "
        "explanation."
    ),
    listwise_user="Question: {query}\n\n{passages}\n\nRank all {n} passages, most relevant first:",
    listwise_passage="[{n}] {text}",
)

ZH = RerankPrompts(
    pointwise_system=(
        "你负责评判检索结果。请判断这段资料能在多大程度上回答问题，用 0（无关）到 10（完整回答）"
        "之间的整数打分。只输出分数。"
    ),
    pointwise_user="问题：{query}\n\n资料：\n{passage}\n\n相关度（0-10）：",
    listwise_system=(
        "你负责给检索结果排序。请按照能否回答问题对带编号的资料排序，最相关的在前。"
        "只输出编号，例如 [2] > [1] > [3]，不要解释。"
    ),
    listwise_user="问题：{query}\n\n{passages}\n\n请对全部 {n} 段资料排序，最相关的在前：",
    listwise_passage="[{n}] {text}",
)

DEFAULTS: dict[Lang, RerankPrompts] = {"zh": ZH, "en": EN}


def load_rerank_prompts(
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[Lang, RerankPrompts]:
    out = dict(DEFAULTS)
    for lang, fields in (overrides or {}).items():
        if lang not in LANGS:
            raise ConfigError(
                f"[rerank.options.prompts]: unknown language table {lang!r}", "Use tables named zh and en"
            )
        try:
            out[lang] = RerankPrompts.model_validate({**out[lang].model_dump(), **dict(fields)})
        except (ValidationError, TypeError) as e:
            why = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
            raise ConfigError(
                f"[rerank.options.prompts.{lang}] is invalid: {why}",
                f"Fields are: {', '.join(RerankPrompts.model_fields)}",
            ) from e
    return out
