"""Conversations of one knowledge base, in SQLite next to its catalog (``conversations.sqlite``).

A conversation is a titled list of turns: the question as asked, the query retrieval used (a
follow-up rewritten to stand on its own), the answer and its citations. They live in the KB folder,
so they survive a server restart and go when the KB is deleted; the catalog knows nothing of them
(a conversation is not a document and never changes an index).

Each call opens its own connection: the server answers from several threads, and SQLite (WAL)
serialises the writes. Nothing here is derived data: unlike indexes, conversations are not rebuilt.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhiku.errors import NotFoundError, UsageError

FILE_NAME = "conversations.sqlite"
MAX_TITLE = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,  -- JSON list of {n, title, heading, source, start, end, quote, doc_id}
    llm_error TEXT,
    method TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_of ON turns(conversation, id);
"""


@dataclass(frozen=True)
class Turn:
    question: str
    query: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    llm_error: str | None = None
    method: str | None = None
    created: float = 0.0


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created: float
    updated: float
    turns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created": self.created,
            "updated": self.updated,
            "turns": self.turns,
        }


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    @classmethod
    def of_kb(cls, kb_root: Path) -> ConversationStore:
        return cls(kb_root / FILE_NAME)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                con.execute("PRAGMA journal_mode = WAL")
                con.executescript(_SCHEMA)
                self._ready = True
            with con:  # one transaction per call
                yield con
        finally:
            con.close()

    # -- conversations --------------------------------------------------------------------------
    def create(self, title: str = "") -> Conversation:
        now = time.time()
        c = Conversation(uuid.uuid4().hex[:12], _title(title) if title.strip() else "", now, now)
        with self._db() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?)", (c.id, c.title, c.created, c.updated))
        return c

    def conversations(self) -> list[Conversation]:
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(t.id) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation = c.id GROUP BY c.id ORDER BY c.updated DESC, c.id"
            ).fetchall()
        return [Conversation(*r) for r in rows]

    def get(self, conversation_id: str) -> Conversation:
        with self._db() as db:
            row = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(t.id) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation = c.id WHERE c.id = ? GROUP BY c.id",
                (conversation_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no conversation {conversation_id!r}",
                "See the list of conversations (GET /kbs/{kb}/conversations)",
            )
        return Conversation(*row)

    def rename(self, conversation_id: str, title: str) -> Conversation:
        if not title.strip():
            raise UsageError("the new title is empty", "Give the conversation a title")
        self.get(conversation_id)
        with self._db() as db:
            db.execute(
                "UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
                (_title(title), time.time(), conversation_id),
            )
        return self.get(conversation_id)

    def delete(self, conversation_id: str) -> None:
        self.get(conversation_id)
        with self._db() as db:
            db.execute("DELETE FROM turns WHERE conversation = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- turns ----------------------------------------------------------------------------------
    def add_turn(self, conversation_id: str, turn: Turn) -> Conversation:
        c = self.get(conversation_id)
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO turns (conversation, question, query, answer, citations, llm_error, method, "
                "created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    turn.question,
                    turn.query,
                    turn.answer,
                    json.dumps(turn.citations, ensure_ascii=False),
                    turn.llm_error,
                    turn.method,
                    now,
                ),
            )
            # A new conversation is named after its first question, as chat front ends do.
            title = c.title or _title(turn.question)
            db.execute(
                "UPDATE conversations SET updated = ?, title = ? WHERE id = ?", (now, title, conversation_id)
            )
        return self.get(conversation_id)

    def turns(self, conversation_id: str) -> list[Turn]:
        self.get(conversation_id)
        with self._db() as db:
            rows = db.execute(
                "SELECT question, query, answer, citations, llm_error, method, created FROM turns "
                "WHERE conversation = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [Turn(q, qu, a, json.loads(c), e, m, t) for q, qu, a, c, e, m, t in rows]

    def history(self, conversation_id: str) -> list[tuple[str, str]]:
        """(query, answer) pairs for rewriting the next follow-up: the queries, which stand alone."""
        return [(t.query, t.answer) for t in self.turns(conversation_id) if t.answer]

    # -- export ---------------------------------------------------------------------------------
    def markdown(self, conversation_id: str, kb: str) -> str:
        return conversation_markdown(self.get(conversation_id), self.turns(conversation_id), kb)


def conversation_markdown(c: Conversation, turns: Sequence[Turn], kb: str) -> str:
    """The conversation as Markdown: each question, its answer with [n], and its numbered sources."""
    out = [
        f"# {c.title or 'Conversation'}",
        "",
        f"Knowledge base: {kb} · {time.strftime('%Y-%m-%d %H:%M', time.localtime(c.created))}",
        "",
    ]
    for t in turns:
        out += [f"## {t.question}", ""]
        if t.query != t.question:
            out += [f"*Searched for: {t.query}*", ""]
        if t.llm_error:
            out += [f"> {t.llm_error}", ""]
        if t.answer:
            out += [t.answer, ""]
        if t.citations:
            out.append("Sources:" if not t.llm_error else "Passages:")
            out.append("")
            for cite in t.citations:
                where = cite.get("title", "")
                heading = cite.get("heading") or ""
                if heading and not heading.startswith(where):
                    where = f"{where} › {heading}"
                elif heading:
                    where = heading
                quote = " ".join(str(cite.get("quote", "")).split())
                if len(quote) > 300:
                    quote = quote[:300] + "…"
                out.append(
                    f"- [{cite.get('n')}] **{where}** ({cite.get('name') or cite.get('source', '')}, "
                    f"characters {cite.get('start')}–{cite.get('end')}): {quote}"
                )
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_TITLE else line[: MAX_TITLE - 1] + "…"
