"""Prompt templates as data, in Chinese and English, chosen by the question's language.

Every text the LLM reads comes from here: the answer instructions, the numbered context blocks, the
question, the follow-up rewrite (``zhiku chat``) and the RAG-Fusion reformulations. A user overrides
any of them from a TOML or JSON file (``prompt_file``) or inline (``prompts``) in the generator
options, per language::

    [generator.options.prompts.zh]
    system = "你是公司内部知识库助手。只根据资料回答，并用 [n] 标注来源。"

Placeholders are ``{name}``; only the names a template documents are replaced, so a literal brace
in a user's template (a JSON example) is left alone instead of breaking ``str.format``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from zhiku.errors import ConfigError, NotFoundError
from zhiku.text.normalise import language_of

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


class PromptSet(BaseModel):
    """The templates of one language. Placeholders are listed per field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the answer instructions (no placeholders)
    system: str
    #: one context block: {n} {title} {heading} {where} (title › heading) {source} {text}
    context_block: str
    #: what goes between two blocks
    block_separator: str = "\n\n"
    #: the user turn: {context} (the joined blocks) {question}
    user: str
    #: said without calling the model when retrieval found nothing
    not_found: str
    #: chat follow-ups: instructions, then {history} {question}
    rewrite_system: str
    rewrite_user: str
    #: one earlier turn inside {history}: {question} {answer}
    history_turn: str
    #: RAG-Fusion: instructions, then {n} (how many queries) {question}
    fusion_system: str
    fusion_user: str


EN = PromptSet(
    system=(
        "You are a careful assistant that answers questions from a knowledge base.\n"
        "Rules:\n"
        "1. Use only the numbered context passages given with the question; do not add outside knowledge.\n"
        "2. If the passages do not contain the answer, say so plainly "
        '("The documents provided do not answer this.") instead of guessing.\n'
        "3. Cite the passage that supports each statement with its number in square brackets, like [1] "
        "or [2][3]. Cite only numbers that appear in the context.\n"
        "4. Answer in the language of the question, briefly and directly."
    ),
    context_block="[{n}] {where}\n{text}",
    user="Context passages:\n\n{context}\n\nQuestion: {question}\n\nAnswer (cite passages as [n]):",
    not_found="I could not find an answer to that in the knowledge base.",
    rewrite_system=(
        "You rewrite a follow-up question from a conversation into one standalone search query that can be "
        "understood without the conversation. Resolve pronouns and references (it, that, the second one) to "
        "what they mean. Keep the language of the question. Reply with the query only, on one line, without "
        "quotes or explanations."
    ),
    rewrite_user="Conversation so far:\n{history}\n\nFollow-up question: {question}\n\nStandalone query:",
    history_turn="User: {question}\nAssistant: {answer}",
    fusion_system=(
        "You help a search engine. Write different search queries that look for the information the user's "
        "question needs: rephrase it, use synonyms and related terms, split a compound question into its "
        "parts. Keep the language of the question. Reply with the queries only, one per line, no numbering "
        "and no explanations."
    ),
    fusion_user="Write {n} search queries for this question:\n{question}",
)

ZH = PromptSet(
    system=(
        "你是一个严谨的知识库问答助手。\n"
        "规则：\n"
        "1. 只使用随问题给出的带编号的资料回答，不要加入资料以外的知识。\n"
        "2. 如果资料中没有答案，请直接说明“提供的资料中没有这个问题的答案”，不要猜测。\n"
        "3. 每个论断后用方括号标注支持它的资料编号，例如 [1] 或 [2][3]；只引用资料中出现的编号。\n"
        "4. 用提问的语言简洁、直接地回答。"
    ),
    context_block="[{n}] {where}\n{text}",
    user="资料：\n\n{context}\n\n问题：{question}\n\n回答（用 [n] 标注来源）：",
    not_found="知识库中没有找到能回答这个问题的内容。",
    rewrite_system=(
        "你的任务是把对话中的追问改写成一个独立的检索查询，使它脱离对话也能被理解。"
        "把代词和指代（它、这个、第二种等）替换成它们所指的内容，保持提问的语言。"
        "只输出改写后的查询，占一行，不要引号，不要解释。"
    ),
    rewrite_user="之前的对话：\n{history}\n\n追问：{question}\n\n独立查询：",
    history_turn="用户：{question}\n助手：{answer}",
    fusion_system=(
        "你在帮助搜索引擎检索。请写出若干个不同的检索查询，用来查找回答用户问题所需的信息："
        "换一种说法、使用同义词和相关术语、把复合问题拆成几个部分。保持提问的语言。"
        "只输出查询，每行一个，不要编号，不要解释。"
    ),
    fusion_user="请为这个问题写出 {n} 个检索查询：\n{question}",
)

DEFAULTS: dict[Lang, PromptSet] = {"zh": ZH, "en": EN}

_FIELD = re.compile(r"\{([a-z_]+)\}")


def fill(template: str, **values: object) -> str:
    """Replace the ``{name}`` placeholders that are given; leave every other brace as written."""
    return _FIELD.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def question_language(question: str, forced: str = "auto") -> Lang:
    """ "zh" for Chinese and mixed questions (the model should answer in Chinese), else "en"."""
    if forced in LANGS:
        return forced
    return "en" if language_of(question) == "en" else "zh"


def load_templates(
    prompt_file: str | Path | None = None, overrides: Mapping[str, Mapping[str, str]] | None = None
) -> dict[Lang, PromptSet]:
    """The built-in templates, updated from ``prompt_file`` and then from ``overrides``.

    Both have one table per language (``zh``, ``en``) holding any of :class:`PromptSet`'s fields; a
    missing field keeps its default.
    """
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if prompt_file:
        layers.append((str(prompt_file), _read_file(Path(prompt_file).expanduser())))
    if overrides:
        layers.append(("[generator.options.prompts]", overrides))
    out = dict(DEFAULTS)
    for where, data in layers:
        unknown = set(data) - set(LANGS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown language table {sorted(unknown)[0]!r}", "Use tables named zh and en"
            )
        for lang, fields in data.items():
            try:
                out[lang] = PromptSet.model_validate({**out[lang].model_dump(), **dict(fields)})  # type: ignore[index]
            except (ValidationError, TypeError) as e:
                raise ConfigError(
                    f"{where}: templates for {lang!r} are invalid: {e}",
                    f"Fields are: {', '.join(PromptSet.model_fields)}",
                ) from e
    return out


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"prompt file not found: {path}", "Fix prompt_file in [generator.options]"
        ) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"prompt file {path} cannot be read: {e}", "It must be TOML (or .json)") from e
    if not isinstance(data, dict):
        raise ConfigError(f"prompt file {path} must hold tables zh and en", "See zhiku/generate/prompts.py")
    return data


def where_of(title: str, heading: str) -> str:
    return f"{title} › {heading}" if heading else title


def format_history(turns: Sequence[tuple[str, str]], templates: PromptSet) -> str:
    return "\n".join(fill(templates.history_turn, question=q, answer=a) for q, a in turns)
