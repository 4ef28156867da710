"""Questions written by an LLM (Ollama, OpenAI-compatible, local) for a KB's chunks.

Prompts are data (``zhiku/data/tune_prompts.toml``, one table per language, chosen by the chunk's
language). Replies are parsed the way models really answer: a JSON array (maybe inside a code
fence or after some chatter), JSON objects one per line, or numbered/bulleted lines. Evidence the
model quotes is kept only if the chunk really contains it; otherwise a span of the chunk is used.

Generation is resumable: each chunk's questions are appended to ``<out>.raw.jsonl`` and its id to
``<out>.done`` as soon as the chunk is finished, so a second run skips what the first completed.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import BackendError
from zhiku.eval.datasets import normalize_evidence
from zhiku.text.normalise import language_of
from zhiku.tune.questions import (
    Question,
    SourceChunk,
    _evidence_other_than,
    _long_enough,
    question_id,
    sentences,
)

if TYPE_CHECKING:
    from zhiku.generate.llm import ChatBackend

KINDS = ("keyword", "everyday", "number")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\(?\d+[.)、:：]|[QqＱ]\d*[:：.]|问题?\d*[:：])\s*")
_QUESTION_KEYS = ("question", "q", "query", "问题", "text")
#: consecutive failed chunks (server errors) after which generation stops: the server is down
MAX_FAILURES = 5


def load_prompts() -> dict[str, dict[str, str]]:
    text = resources.files("zhiku.data").joinpath("tune_prompts.toml").read_text(encoding="utf-8")
    return {k: dict(v) for k, v in tomllib.loads(text).items()}


def messages_for(chunk: SourceChunk, n: int, prompts: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    lang = "en" if language_of(chunk.text) == "en" else "zh"
    p = prompts[lang]
    kinds = ", ".join(KINDS[i % len(KINDS)] for i in range(n))
    where = " > ".join(x for x in (chunk.title, chunk.heading) if x)
    passage = f"[{where}]\n{chunk.text}" if where else chunk.text
    return [
        {"role": "system", "content": p["system"]},
        {"role": "user", "content": p["user"].format(n=n, kinds=kinds, passage=passage)},
    ]


def _items_from_json(text: str) -> list[Any] | None:
    for candidate in [*_FENCE.findall(text), text]:
        start, end = candidate.find("["), candidate.rfind("]")
        if start >= 0 and end > start:
            try:
                value = json.loads(candidate[start : end + 1])
            except json.JSONDecodeError:
                continue
            if isinstance(value, list):
                return value
        try:
            value = json.loads(candidate.strip())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            inner = next((v for v in value.values() if isinstance(v, list)), None)
            return inner if inner is not None else [value]
    return None


def _one(item: Any) -> tuple[str, str, str]:
    if isinstance(item, str):
        return item, "", ""
    if isinstance(item, dict):
        q = next((str(item[k]) for k in _QUESTION_KEYS if isinstance(item.get(k), str)), "")
        return q, str(item.get("kind") or item.get("type") or ""), str(item.get("evidence") or "")
    return "", "", ""


def parse_reply(reply: str) -> list[tuple[str, str, str]]:
    """(question, kind, evidence) triples from what a model returned; unusable lines are dropped."""
    items = _items_from_json(reply)
    triples: list[tuple[str, str, str]] = []
    if items is not None:
        triples = [_one(i) for i in items]
    else:
        for line in reply.splitlines():
            line = line.strip()
            if not line or line.startswith(("```", "[", "]")):
                continue
            if line.startswith("{"):
                try:
                    triples.append(_one(json.loads(line.rstrip(","))))
                    continue
                except json.JSONDecodeError:
                    pass
            text = _BULLET.sub("", line).strip().strip('"“”')
            if text.endswith(("?", "？")) or _BULLET.match(line):
                triples.append((text, "", ""))
    out = []
    for q, kind, ev in triples:
        q = " ".join(q.split()).strip('"“” ')
        if len(q) >= 4 and len(q) <= 300:
            out.append((q, kind if kind in KINDS else "", ev))
    return out


@dataclass
class LLMRun:
    generated: int = 0
    chunks: int = 0
    skipped: int = 0  # already done by an earlier run
    unparsed: int = 0  # replies with no usable question
    failed: int = 0  # server errors


def generate(
    backend: ChatBackend,
    chunks: Sequence[SourceChunk],
    raw_path: Path,
    per_chunk: int = 3,
    progress: Callable[[int], None] | None = None,
    max_tokens: int = 600,
) -> LLMRun:
    """Ask for ``per_chunk`` questions per chunk, appending to ``raw_path`` as it goes."""
    from zhiku.generate.llm import complete

    prompts = load_prompts()
    done_path = raw_path.with_suffix(".done")
    done = set(done_path.read_text(encoding="utf-8").split()) if done_path.is_file() else set()
    run = LLMRun()
    generator = f"llm:{backend.describe()}"
    failures = 0
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    with raw_path.open("a", encoding="utf-8") as raw, done_path.open("a", encoding="utf-8") as marks:
        for c in chunks:
            if c.id in done:
                run.skipped += 1
                if progress:
                    progress(1)
                continue
            try:
                reply = complete(
                    backend, messages_for(c, per_chunk, prompts), max_tokens=max_tokens, temperature=0.3
                )
            except BackendError:
                run.failed += 1
                failures += 1
                if failures >= MAX_FAILURES:
                    raise
                if progress:
                    progress(1)
                continue
            failures = 0
            found = parse_reply(reply)[:per_chunk]
            if not found:
                run.unparsed += 1
            text = normalize_evidence(c.text)
            for i, (q, kind, ev) in enumerate(found):
                if not (ev and normalize_evidence(ev) and normalize_evidence(ev) in text):
                    ev = (
                        _evidence_other_than(c, q)
                        or next((s for s in sentences(c.text) if _long_enough(s)), c.text)[:40]
                    )
                kind = kind or KINDS[i % len(KINDS)]
                rec = Question(
                    question_id(c.id, generator, q), q, [ev.strip()[:80]], c.doc, c.id, generator, kind
                )
                raw.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
                run.generated += 1
            raw.flush()
            marks.write(c.id + "\n")
            marks.flush()
            run.chunks += 1
            if progress:
                progress(1)
    return run
