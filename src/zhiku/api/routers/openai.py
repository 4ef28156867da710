"""The OpenAI API over zhiku: a knowledge base is a model.

``/v1/chat/completions`` answers the last user message from the KB named by ``model`` (``laws`` or
``zhiku:laws``); the answer cites its sources as ``[n]`` and ends with a numbered source list, so a
chat front end that knows nothing of zhiku still shows them, and the structured citations come in
an extra ``citations`` field (on the response, or on the last chunk of a stream).
``/v1/embeddings`` embeds with the KB's dense model.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from zhiku.api import answering, sse
from zhiku.api.deps import KBHandle, state
from zhiku.api.errors import BUG, error_body, zhiku_error_body
from zhiku.api.schemas import ChatMessage, ChatRequest, EmbeddingsRequest
from zhiku.errors import NotFoundError, UsageError, ZhikuError
from zhiku.service import history_from_messages, language_of
from zhiku.types import Answer

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
log = logging.getLogger("zhiku.api")

PREFIX = "zhiku:"


def _handle(request: Request, model: str) -> KBHandle:
    name = model[len(PREFIX) :] if model.startswith(PREFIX) else model
    try:
        return state(request).kbs.get(name)
    except (NotFoundError, UsageError) as e:
        raise NotFoundError(
            f"no model {model!r}: each knowledge base is a model", "See GET /v1/models"
        ) from e


def _model(name: str, created: float) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": int(created), "owned_by": "zhiku"}


@router.get("/models")
def list_models(request: Request) -> dict[str, Any]:
    registry = state(request).kbs
    return {
        "object": "list",
        "data": [_model(n, registry.home.layout(n).catalog.stat().st_mtime) for n in registry.names()],
    }


@router.get("/models/{model}")
def show_model(model: str, request: Request) -> dict[str, Any]:
    handle = _handle(request, model)
    return _model(model, handle.layout.catalog.stat().st_mtime)


def text_of(m: ChatMessage) -> str:
    """A message's text (content parts of other types, such as images, are skipped)."""
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    return "\n".join(str(p.get("text", "")) for p in m.content if p.get("type") == "text")


def question_of(messages: list[ChatMessage]) -> str:
    """The last user message as text."""
    for m in reversed(messages):
        if m.role == "user" and text_of(m).strip():
            return text_of(m).strip()
    raise UsageError(
        "the conversation has no user message with text", 'End messages with {"role": "user", "content": …}'
    )


def sources_text(answer: Answer) -> str:
    """The numbered source list appended to the answer for clients that ignore ``citations``."""
    if not answer.citations:
        return ""
    zh = language_of(answer.question) != "en"
    lines = ["", "", "来源：" if zh else "Sources:"]
    for c in answer.citations:
        # The heading path usually starts with the title ("Guide > Tomatoes"): say it once.
        where = (
            c.title
            if not c.heading
            else c.heading
            if c.heading.startswith(c.title)
            else f"{c.title} › {c.heading}"
        )
        lines.append(f"[{c.n}] {where}")
    return "\n".join(lines)


def reply_text(a: Answer) -> str:
    """The assistant's message: the answer and its sources, or, when the LLM failed, the reason and
    the retrieved passages themselves (a chat client then still has something to read)."""
    reason = answering.llm_error_of(a)
    if not reason:
        return a.text + sources_text(a)
    lines = [reason, ""]
    for c in a.citations:
        quote = c.quote if len(c.quote) <= 400 else c.quote[:400] + "…"
        lines.append(f"[{c.n}] {c.title}: {quote}")
    return "\n".join(lines)


def usage(messages: list[ChatMessage], a: Answer, content: str) -> dict[str, Any]:
    """OpenAI's ``usage``, counted in characters: the backends do not report their tokenizer's
    counts, and a guess in "tokens" would look exact. ``unit`` says so; the prompt is the messages
    plus the passages given to the generator."""
    sent = sum(
        len(m.content)
        if isinstance(m.content, str)
        else sum(len(str(p.get("text", ""))) for p in (m.content or []))
        for m in messages
    )
    prompt = sent + sum(len(h.chunk.text) for h in a.hits if h.chunk is not None)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(content),
        "total_tokens": prompt + len(content),
        "unit": "characters",
    }


@router.post("/chat/completions")
def chat_completions(body: ChatRequest, request: Request) -> Any:
    handle = _handle(request, body.model)
    question_of(body.messages)  # a conversation without a user question is a 400
    # The messages are the conversation: earlier turns are the history a follow-up is rewritten
    # with (by an LLM generator, as `zhiku chat` does), so "and roses?" finds what it refers to.
    history, asked = history_from_messages([(m.role, text_of(m)) for m in body.messages])
    chat = answering.open_chat(handle, history=history)
    turn = answering.retrieve(handle, chat, asked, body.k, body.method, None)
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def citations(a: Answer) -> list[dict[str, Any]]:
        return [answering.citation_json(handle.name, c) for c in a.citations]

    if not body.stream:
        a = answering.answer(chat, turn)
        content = reply_text(a)
        return {
            "id": reply_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "citations": citations(a),
            "llm_error": answering.llm_error_of(a),
            "usage": usage(body.messages, a, content),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse.event(
            {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }
        )

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            for item in answering.stream(chat, turn):
                if isinstance(item, str):
                    yield chunk({"content": item})
                else:
                    reason = answering.llm_error_of(item)
                    tail = reply_text(item) if reason else sources_text(item)
                    if tail:
                        yield chunk({"content": tail})
                    yield chunk(
                        {},
                        "stop",
                        citations=citations(item),
                        llm_error=reason,
                        usage=usage(body.messages, item, reply_text(item)),
                    )
        except ZhikuError as e:
            yield sse.event(zhiku_error_body(e))
        except Exception:
            log.exception("streaming a chat completion failed")
            yield sse.event(error_body("internal", BUG))
        yield sse.event("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers=sse.STREAM_HEADERS)


@router.post("/embeddings")
def embeddings(body: EmbeddingsRequest, request: Request) -> dict[str, Any]:
    handle = _handle(request, body.model)
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or any(not t.strip() for t in texts):
        raise UsageError(
            "input must be a non-empty text or a list of non-empty texts", "Remove the empty ones"
        )
    if len(texts) > 2048:
        raise UsageError(f"{len(texts)} inputs in one request; the limit is 2048", "Send them in batches")
    with handle.read() as kb:
        embedder = kb.text_embedder()
        tokens = sum(len(kb.tokenizer(t)) for t in texts)
    dimensions = getattr(body, "dimensions", None)
    if dimensions is not None and dimensions != embedder.dim:
        raise UsageError(
            f"this model's vectors have {embedder.dim} dimensions, not {dimensions}", "Leave out dimensions"
        )
    # Outside the reader lock: embedding a batch can take a while and searches need not wait.
    vectors = np.asarray(embedder.embed(texts), dtype="<f4")
    if body.encoding_format == "base64":
        data: list[Any] = [base64.b64encode(v.tobytes()).decode("ascii") for v in vectors]
    else:
        data = [v.tolist() for v in vectors]
    return {
        "object": "list",
        "model": body.model,
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
