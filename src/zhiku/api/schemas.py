"""Request bodies of the API (responses are plain dicts in the CLI's JSON shapes).

Unknown fields are refused on zhiku's own endpoints, so a typo ("method_name") is an error rather
than silently ignored; the OpenAI-compatible bodies accept and ignore the many fields of that API
zhiku has no use for (temperature, max_tokens, …).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateKB(_Strict):
    name: str = Field(min_length=1, max_length=64, examples=["laws"])
    settings: dict[str, Any] | None = Field(
        None,
        description='zhiku.toml settings as JSON, e.g. {"language": "zh", "chunking": {"size": 300}}',
    )


class PathFilter(_Strict):
    path_prefix: str | None = Field(
        None,
        description="keep hits whose document path starts with this "
        "(the full path, or the name under the KB's uploads folder)",
    )
    path_contains: str | None = Field(None, description="keep hits whose document path contains this")


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=4000)
    method: str | None = Field(None, description="bm25, dense, hybrid, … (default: the KB's default method)")
    k: int = Field(10, ge=1, le=200)
    filter: PathFilter | None = None


class HistoryTurn(_Strict):
    question: str
    answer: str = ""


class AskRequest(_Strict):
    question: str = Field(min_length=1, max_length=4000)
    method: str | None = None
    k: int = Field(5, ge=1, le=50)
    stream: bool = Field(False, description="server-sent events: token events, then one done event")
    filter: PathFilter | None = None
    conversation: str | None = Field(
        None,
        description="a stored conversation's id: its turns are the history, and this turn is added to it",
    )
    history: list[HistoryTurn] | None = Field(
        None,
        description="earlier turns, oldest first, for a client "
        "that keeps its own conversation (ignored with conversation)",
    )


class CreateConversation(_Strict):
    title: str = Field("", max_length=200)


class RenameConversation(_Strict):
    title: str = Field(min_length=1, max_length=200)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(description="a knowledge base name (or zhiku:<name>), as listed by GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    # zhiku's own options, sent by the openai client as extra_body={"k": 8, "method": "bm25"}
    k: int = Field(5, ge=1, le=50)
    method: str | None = None


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str] = Field(description="a text or a list of texts (token arrays are not supported)")
    encoding_format: Literal["float", "base64"] = "float"
