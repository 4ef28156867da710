"""Follow-up questions in a conversation: what to search for, given the turns before.

Shared by ``zhiku chat``, the API's ``/kbs/{kb}/ask`` (with a conversation or a history) and
``/v1/chat/completions`` (with the messages it is given). After the first question, an LLM
generator rewrites a follow-up ("它支持中文吗？") into a query that stands on its own; the
extractive answerer has no LLM to rewrite with, so its questions are searched as typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zhiku.errors import ZhikuError

#: (question, answer) pairs, oldest first
History = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class FollowUp:
    question: str  # as the user typed it
    query: str  # what is searched for (the question itself unless it was rewritten)
    warning: str | None = None  # the rewrite failed: why (the question is searched as typed)

    @property
    def rewritten(self) -> bool:
        return self.query != self.question


def can_rewrite(generator: Any) -> bool:
    return callable(getattr(generator, "standalone_question", None))


def follow_up_query(generator: Any, question: str, history: History) -> FollowUp:
    """The query for ``question`` after ``history``; never raises for a failed rewrite (the answer
    can still be found for the question as typed, so a broken LLM costs the rewrite only)."""
    if not history or not can_rewrite(generator):
        return FollowUp(question, question)
    try:
        query = generator.standalone_question(question, list(history))
    except ZhikuError as e:
        return FollowUp(
            question, question, f"could not rewrite the follow-up ({e.one_line()}); searching for it as typed"
        )
    return FollowUp(question, (query or "").strip() or question)


def history_from_messages(messages: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str]], str]:
    """OpenAI-style ``(role, text)`` messages → (history pairs, the last user question).

    A user message followed by an assistant message is one turn; system messages are skipped (zhiku
    has its own prompts); the final user message is the question.
    """
    users = [i for i, (role, text) in enumerate(messages) if role == "user" and text.strip()]
    if not users:
        return [], ""
    last = users[-1]
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in messages[:last]:
        if role == "user":
            if pending is not None:  # two user messages in a row: the earlier one had no answer
                pairs.append((pending, ""))
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    if pending is not None:
        pairs.append((pending, ""))
    return pairs, messages[last][1].strip()
