"""From hits to an ``Answer``: number the context blocks, run a generator, map ``[n]`` back.

Every backend goes through here, so citation handling is written once: a ``[n]`` that points at no
context block is removed from the text and reported, never shown as a source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from zhiku.config import GeneratorConfig
from zhiku.generate.base import ContextBlock, Generator, generators
from zhiku.generate.citations import filtered
from zhiku.text.normalise import language_of
from zhiku.types import Answer, Citation, Hit, page_label

_CITE = re.compile(r"\[(\d{1,3})\]")


def make_generator(config: GeneratorConfig, llm: str | None = None, base_url: str | None = None) -> Generator:
    """The KB's generator, or the one ``llm`` names (``ollama:qwen2.5:7b``, ``openai:MODEL``,
    ``local:/path``, ``extractive``), with ``base_url`` overriding the server's address."""
    from zhiku.generate.llm import generator_config

    config = generator_config(llm, base_url, config)
    return generators.get(config.kind)(**config.options)


def context_blocks(hits: Sequence[Hit]) -> list[ContextBlock]:
    blocks = []
    for n, h in enumerate(hits, start=1):
        if h.chunk is None or h.doc is None:
            raise ValueError("hits must be attached to the catalog")  # a bug, not user input
        blocks.append(
            ContextBlock(
                n,
                h.chunk_id,
                h.doc.id,
                h.chunk.text,
                h.doc.source,
                h.doc.title,
                h.chunk.heading,
                h.chunk.start,
                h.chunk.end,
                h.score,
                h.chunk.page,
                page_label(h.doc.format, h.chunk.page),
            )
        )
    return blocks


def answer_question(
    question: str,
    hits: Sequence[Hit],
    generator: Generator,
    on_token: Callable[[str], None] | None = None,
    method: str = "",
) -> Answer:
    blocks = context_blocks(hits)
    select = getattr(generator, "select_contexts", None)
    if callable(select):
        # A generator that quotes only some passages (extractive) gets just those, renumbered
        # from 1, so an answer from the second passage cites [1], not [2] alone.
        from dataclasses import replace

        blocks = [replace(b, n=i) for i, b in enumerate(select(question, blocks), start=1)]
    pieces = []
    # The stream is cleaned as it goes, the same way as the final text: a reader of any face (CLI,
    # SSE, the OpenAI-compatible stream, the page) never sees a [9] that the answer drops.
    send, finish = filtered(on_token, {b.n for b in blocks}) if on_token else (None, None)
    for piece in generator.generate(question, blocks):
        pieces.append(piece)
        if send:
            send(piece)
    if finish:
        finish()
    raw = "".join(pieces)
    text, citations, invalid = resolve_citations(raw, blocks, getattr(generator, "last_spans", None))
    # A refusal that lists the closest passages cites them, yet found nothing.
    refused = bool(getattr(generator, "last_refused", False))
    if not raw.strip():
        text = NO_TEXT["en" if language_of(question) == "en" else "zh"]
    return Answer(
        question,
        text,
        tuple(citations),
        tuple(hits),
        bool(citations) and not refused,
        generator.describe(),
        {},
        invalid_citations=tuple(invalid),
        raw_text=raw,
        method=method,
        scoring=str(getattr(generator, "scoring", "")),
    )


#: what an answer says when the generator (an LLM) returned no text at all
NO_TEXT = {
    "zh": "语言模型没有返回任何内容；请查看下面的来源，或换一个模型再问。",
    "en": "The language model returned no text; see the sources below, or ask again with another model.",
}


def resolve_citations(
    text: str, blocks: Sequence[ContextBlock], spans: dict[int, list[tuple[int, int]]] | None = None
) -> tuple[str, list[Citation], list[int]]:
    """The text without invalid ``[n]``, the citations it makes, and the invalid numbers.

    ``spans``: per block number, the quoted sentences' offsets in the block's text (the extractive
    answerer's); a citation carries them in document offsets, so the page can highlight them."""
    by_n = {b.n: b for b in blocks}
    used: list[int] = []
    invalid: list[int] = []

    def keep(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in by_n:
            invalid.append(n)
            return ""
        if n not in used:
            used.append(n)
        return m.group(0)

    text = _CITE.sub(keep, text)
    citations = [
        Citation(
            n,
            b.chunk_id,
            b.doc_id,
            b.source,
            b.title,
            b.heading,
            b.start,
            b.end,
            b.text,
            b.page,
            b.location,
            tuple((b.start + s, b.start + e) for s, e in (spans or {}).get(n, ())),
        )
        for n in sorted(used)
        for b in [by_n[n]]
    ]
    return text, citations, invalid
