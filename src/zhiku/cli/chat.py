"""``zhiku chat``: a conversation with a knowledge base, and the answer streaming ``ask`` shares.

Each line read from standard input is a question. After the first, a question is rewritten by the
LLM into one that stands on its own ("它支持中文吗？" → "zhiku 支持中文文档吗？") before retrieval,
so a follow-up finds what it refers to. ``/reset`` forgets the conversation, ``/exit`` (or end of
input) ends it. With the extractive answerer there is no LLM to rewrite with: questions are searched
as typed.

When generation fails, the retrieved passages are still shown, with one error line.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from zhiku.cli.common import open_kb, print_json

if TYPE_CHECKING:
    from zhiku.errors import ZhikuError
    from zhiku.service import Chat, ContextBlock, Generator, Retrieved
    from zhiku.types import Answer

LLM_HELP = (
    "answer with BACKEND:MODEL: ollama:qwen2.5:7b, openai:deepseek-chat, local:/path/to/model, "
    "or extractive (default: the KB's [generator], normally extractive)"
)


def add_llm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", metavar="BACKEND:MODEL", default=None, help=LLM_HELP)
    p.add_argument(
        "--base-url",
        default=None,
        help="the LLM server's URL (default: http://127.0.0.1:11434 for ollama; $OPENAI_BASE_URL)",
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "chat",
        parents=[common],
        help="a conversation: follow-up questions keep their context",
        description="Reads one question per line from standard input; /reset forgets, /exit ends.",
    )
    add_llm_arguments(p)
    p.add_argument("--method", "-m", default=None, help="retrieval method (default as for search)")
    p.add_argument("-k", type=int, default=5, help="how many chunks each answer may draw on (default 5)")
    p.add_argument(
        "--conversation",
        metavar="ID",
        default=None,
        help="continue a stored conversation (as listed on the web page) and store the new turns there",
    )
    p.set_defaults(run=run_chat)


# -- one answer, streamed ---------------------------------------------------------------------------
@dataclass
class Turn:
    question: str
    answer: Answer | None = None
    error: ZhikuError | None = None
    raw: str = ""  # the text as streamed, before invalid citations were removed
    invalid: list[int] = field(default_factory=list)
    contexts: list[ContextBlock] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def answer_turn(
    chat: Chat,
    question: str,
    k: int,
    method: str | None,
    stream: TextIO | None,
    rerank: str | None = None,
    on_retrieved: Callable[[Retrieved], None] | None = None,
) -> Turn:
    """One turn of ``chat``, writing pieces to ``stream`` as they arrive. Errors after retrieval come
    back in the turn (with the passages); an error in retrieval itself is raised (nothing to show)."""
    from zhiku.errors import ZhikuError

    t0 = time.perf_counter()
    first: list[float] = []
    retrieved: list[Retrieved] = []

    def on_token(piece: str) -> None:
        if not first:
            first.append(time.perf_counter() - t0)
        turn.raw += piece
        if stream is not None:
            stream.write(piece)
            stream.flush()

    def seen(r: Retrieved) -> None:
        retrieved.append(r)
        if on_retrieved is not None:
            on_retrieved(r)

    turn = Turn(question)
    try:
        _, turn.answer = chat.turn(question, k, method, rerank=rerank, on_token=on_token, on_retrieved=seen)
    except ZhikuError as e:
        if not retrieved:
            raise
        turn.error = e
    if retrieved:
        for note in retrieved[0].notes:
            print(f"note: {note}", file=sys.stderr)
        turn.contexts = retrieved[0].contexts()
    if turn.answer is not None:
        turn.invalid = list(turn.answer.invalid_citations)
        turn.timings = {**turn.answer.timings}
    if first:
        turn.timings["first_token_s"] = round(first[0], 4)
    turn.timings["total_s"] = round(time.perf_counter() - t0, 4)
    return turn


def block_json(b: ContextBlock) -> dict[str, Any]:
    return {
        "n": b.n,
        "score": round(b.score, 6),
        "chunk_id": b.chunk_id,
        "doc_id": b.doc_id,
        "path": b.source,
        "title": b.title,
        "heading": b.heading,
        "page": b.page,
        "location": b.location,
        "start": b.start,
        "end": b.end,
        "text": b.text,
    }


def turn_json(turn: Turn, generator: Generator) -> dict[str, Any]:
    out: dict[str, Any] = {
        "question": turn.question,
        "generator": generator.describe(),
        "timings": turn.timings,
    }
    if turn.answer is not None:
        a = turn.answer
        out.update(
            answer=a.text,
            found=a.found,
            citations=[asdict(c) for c in a.citations],
            invalid_citations=turn.invalid,
        )
        if a.scoring:  # the offline answerer: "dense+lexical", or "lexical" without a built dense method
            out["scoring"] = a.scoring
        if generator.last_packed is not None:
            out["context_blocks"] = generator.last_packed
    elif turn.error is not None:
        e = turn.error
        out.update(
            answer=None,
            partial_answer=turn.raw or None,
            error={"code": e.code, "message": e.message, "hint": e.hint},
            hits=[block_json(b) for b in turn.contexts],
        )
    return out


def print_turn(turn: Turn, out: TextIO, err: TextIO) -> None:
    """After the streamed text: the sources, or on failure the passages retrieval found."""
    if turn.raw and not turn.raw.endswith("\n"):
        out.write("\n")
    if turn.answer is not None:
        if turn.invalid:
            nums = "".join(f"[{n}]" for n in turn.invalid)
            print(f"note: removed citation {nums}: it points at no source", file=err)
        if turn.answer.citations:
            print("\nSources:", file=out)
            for c in turn.answer.citations:
                where = f" › {c.heading}" if c.heading else ""
                page = f" {c.location}" if c.location else ""
                print(f"  [{c.n}] {c.title}{where} — {c.source}:{c.start}-{c.end}{page}", file=out)
        return
    if turn.contexts:
        print("\nThe answer could not be generated; these are the passages retrieval found:", file=out)
        for b in turn.contexts:
            where = f" › {b.heading}" if b.heading else ""
            text = " ".join(b.text.split())
            page = f" {b.location}" if b.location else ""
            print(f"  [{b.n}] {b.title}{where} — {b.source}:{b.start}-{b.end}{page}", file=out)
            print(f"      {text[:160]}{'…' if len(text) > 160 else ''}", file=out)
    else:
        print("\nRetrieval found no passages.", file=out)
    out.flush()


def run_answer(args: argparse.Namespace) -> int:
    """``zhiku ask``: stream the answer, then its sources (or JSON with citations and timings)."""
    with open_kb(args) as kb:
        chat = kb.chat(kb.generator(args.llm, args.base_url))
        turn = answer_turn(
            chat,
            args.question,
            args.k,
            args.method,
            None if args.json else sys.stdout,
            rerank=getattr(args, "rerank", None),
        )
        if args.json:
            print_json(turn_json(turn, chat.generator))
        else:
            print_turn(turn, sys.stdout, sys.stderr)
    if turn.error is not None:
        raise turn.error  # one error line and the error's exit code, from cli/app.py
    return 0


# -- the conversation -------------------------------------------------------------------------------
COMMANDS_EXIT = {"/exit", "/quit", "/q", "exit", "quit", "退出"}


def run_chat(args: argparse.Namespace) -> int:
    from zhiku.errors import ZhikuError

    stdin, out, err = sys.stdin, sys.stdout, sys.stderr
    interactive = stdin.isatty()
    status = 0

    def searching(r: Retrieved) -> None:
        if r.warning:
            print(f"warning: {r.warning}", file=err)
        if r.rewritten:
            print(f"(searching for: {r.query})", file=err)

    with open_kb(args) as kb:
        chat = kb.chat(kb.generator(args.llm, args.base_url), conversation=args.conversation)
        if interactive:
            print(
                f"zhiku chat — knowledge base {kb.name!r}, answers by {chat.generator.describe()}. "
                "/reset forgets the conversation, /exit ends it.",
                file=err,
            )
        while True:
            if interactive:
                err.write("\n» ")
                err.flush()
            line = stdin.readline()
            if not line:
                break
            question = line.strip()
            if not question:
                continue
            if question in COMMANDS_EXIT:
                break
            if question == "/reset":
                chat.reset()
                print("(conversation forgotten)", file=err)
                continue
            try:
                turn = answer_turn(chat, question, args.k, args.method, out, on_retrieved=searching)
            except ZhikuError as e:
                print(f"error: {e.one_line()}", file=err)
                status = e.exit_code
                continue
            print_turn(turn, out, err)
            if turn.error is not None:
                print(f"error: {turn.error.one_line()}", file=err)
                status = turn.error.exit_code
                continue
            status = 0
    return status
