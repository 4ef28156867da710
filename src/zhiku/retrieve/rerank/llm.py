"""``llm``: the KB's own LLM generator judges the candidates.

Two modes (``mode`` option):

- ``pointwise`` — one request per passage: "rate 0–10 how well this passage answers the question".
  The reply is parsed robustly ("7", "Score: 7/10", "相关度：8分", "八", a reasoning model's
  ``<think>`` block removed first); a reply with no usable number scores 0 and is logged. Scores
  are cached per (query, passage hash), so re-asking, paging or an evaluation's latency pass costs
  nothing the second time. ``workers`` requests run at once (a local Ollama queues them anyway);
- ``listwise`` — the numbered passages in one prompt: "order them, most relevant first" (RankGPT,
  Sun et al. 2023). More than ``window`` passages are ranked in overlapping windows from the back
  to the front, so the best ones bubble up. Numbers are read from the reply in order; repeats and
  numbers out of range are ignored and passages the model left out keep their first-stage order
  after the ranked ones, so a malformed reply degrades to the first-stage order, never to an error.
  The score of a passage is 1 / its rank (1, 0.5, 0.33…), the same whatever the number of
  candidates, so ``threshold = 0.2`` keeps the model's top 5; results are cached per (query, passages).

::

    [rerank]
    kind = "llm"
    top_n = 10
    options = { mode = "pointwise", workers = 4 }

The generator is the KB's ``[generator]`` (or ``--llm``); it must be an LLM (ollama, openai,
local), not the extractive answerer. Temperature is 0 so the same candidates rank the same way.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

from pydantic import Field

from zhiku.errors import ConfigError
from zhiku.generate.base import Generator
from zhiku.generate.numbers import CN_DIGITS  # 零…九 and 两, as answers read them
from zhiku.retrieve.rerank.base import Reranker, RerankOptions, rerankers

log = logging.getLogger("zhiku.rerank")

_CACHE_SIZE = 8192
#: a number written as a score: "7/10", "8 / 10", "8分", "score: 7", "相关度：8"
_SCORED = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:/\s*10\b|分)|(?:score|rating|relevance|分数|评分|相关度|得分)\D{0,6}?(\d+(?:\.\d+)?)",
    re.I,
)
_NUMBER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(?![\d.])")
_CN_NUMBER = re.compile(r"十|[零一二两三四五六七八九]")
_INDEX = re.compile(r"\d+")


class LLMRerankOptions(RerankOptions):
    mode: Literal["pointwise", "listwise"] = "pointwise"
    max_chars: int = Field(1200, ge=50, description="each passage is cut to this many characters")
    max_tokens: int = Field(
        64, ge=1, description="reply budget per request (raise it for reasoning models that think first)"
    )
    workers: int = Field(1, ge=1, le=32, description="pointwise: requests in flight at once")
    window: int = Field(20, ge=2, description="listwise: passages per prompt")
    step: int = Field(10, ge=1, description="listwise: how far the window moves towards the front")
    language: Literal["auto", "zh", "en"] = "auto"
    prompts: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="template overrides per language"
    )


class LLMReranker(Reranker):
    name = "llm"
    Options = LLMRerankOptions
    needs_generator: ClassVar[bool] = True
    spec_field: ClassVar[str | None] = "mode"

    def __init__(self, options: LLMRerankOptions, generator_factory: Callable[[], Generator]) -> None:
        from zhiku.retrieve.rerank.prompts import load_rerank_prompts

        self.options = options
        self.batch_size = options.window if options.mode == "listwise" else options.workers
        self.templates = load_rerank_prompts(options.prompts)
        self._factory = generator_factory
        self._backend: Any = None
        self._lock = threading.Lock()
        self._points: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lists: OrderedDict[tuple[str, tuple[str, ...]], list[float]] = OrderedDict()

    @property
    def model_id(self) -> str:  # type: ignore[override]
        return (
            f"{self.options.mode}@{self._backend.describe()}"
            if self._backend is not None
            else self.options.mode
        )

    def backend(self) -> Any:
        """The chat backend of the KB's generator, made on first use (no LLM is needed to open a KB)."""
        if self._backend is None:
            from zhiku.generate.llm import LLMGenerator

            generator = self._factory()
            if not isinstance(generator, LLMGenerator):
                raise ConfigError(
                    "the llm reranker needs an LLM generator; this KB's generator is "
                    f"{generator.describe()!r}",
                    "Set [generator] kind = 'ollama' (or openai, local) with a model, or pass "
                    "--llm ollama:MODEL",
                )
            self._backend = generator.backend
        return self._backend

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        cut = [p[: self.options.max_chars] for p in passages]
        if self.options.mode == "listwise":
            return self._listwise(query, cut)
        return self._pointwise(query, cut)

    # -- shared -----------------------------------------------------------------------------------
    def _ask(self, system: str, user: str) -> str:
        from zhiku.generate.llm import complete

        return complete(
            self.backend(),
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            max_tokens=self.options.max_tokens,
            temperature=0.0,
        )

    def _tpl(self, query: str) -> Any:
        from zhiku.generate.prompts import question_language

        return self.templates[question_language(query, self.options.language)]

    # -- pointwise ----------------------------------------------------------------------------------
    def _pointwise(self, query: str, passages: list[str]) -> list[float]:
        from zhiku.generate.prompts import fill

        tpl = self._tpl(query)
        keys = [(query, _digest(p)) for p in passages]
        with self._lock:
            todo = [i for i, key in enumerate(keys) if key not in self._points]

        def judge(i: int) -> float | None:
            reply = self._ask(
                tpl.pointwise_system, fill(tpl.pointwise_user, query=query, passage=passages[i])
            )
            value = parse_score(reply)
            if value is None:
                log.warning("llm reranker: no score in the reply %r; the passage scores 0", reply[:80])
            return value

        if self.options.workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(min(self.options.workers, len(todo))) as pool:
                found = list(pool.map(judge, todo))
        else:
            found = [judge(i) for i in todo]
        fresh = dict(zip(todo, found, strict=True))
        with self._lock:
            for i, value in fresh.items():
                if value is not None:  # an unreadable reply is not remembered: it may parse next time
                    _remember(self._points, keys[i], value)
            return [(fresh[i] or 0.0) if i in fresh else self._points[key] for i, key in enumerate(keys)]

    # -- listwise -----------------------------------------------------------------------------------
    def _listwise(self, query: str, passages: list[str]) -> list[float]:
        key = (query, tuple(_digest(p) for p in passages))
        with self._lock:
            if key in self._lists:
                self._lists.move_to_end(key)
                return list(self._lists[key])
        n = len(passages)
        order = list(range(n))
        window, step = self.options.window, min(self.options.step, self.options.window)
        end = n
        while True:
            start = max(0, end - window)
            part = order[start:end]
            ranked = self._rank_window(query, [passages[i] for i in part])
            order[start:end] = [part[j] for j in ranked]
            if start == 0:
                break
            end -= step
        scores = [0.0] * n
        for pos, i in enumerate(order):
            scores[i] = 1.0 / (pos + 1)
        with self._lock:
            _remember(self._lists, key, scores)
        return scores

    def _rank_window(self, query: str, passages: list[str]) -> list[int]:
        from zhiku.generate.prompts import fill

        if len(passages) == 1:
            return [0]
        tpl = self._tpl(query)
        blocks = "\n\n".join(
            fill(tpl.listwise_passage, n=i, text=" ".join(p.split())) for i, p in enumerate(passages, start=1)
        )
        reply = self._ask(
            tpl.listwise_system, fill(tpl.listwise_user, query=query, n=len(passages), passages=blocks)
        )
        ranked = parse_ranking(reply, len(passages))
        if len(ranked) < len(passages):
            log.warning(
                "llm reranker: the reply ranked %d of %d passages (%r); the rest keep their order",
                len(ranked),
                len(passages),
                reply[:80],
            )
        return ranked + [i for i in range(len(passages)) if i not in ranked]


def parse_score(reply: str) -> float | None:
    """A 0–10 relevance from an LLM's reply, or None when it holds no usable number."""
    text = reply.strip()
    m = _SCORED.search(text)
    raw = (m.group(1) or m.group(2)) if m else None
    if raw is None:
        for found in _NUMBER.finditer(text):
            if float(found.group(1)) <= 10:
                raw = found.group(1)
                break
    if raw is not None:
        value = float(raw)
        return value if 0 <= value <= 10 else None
    cn = _CN_NUMBER.findall(text[:20])
    if cn:
        if cn[0] == "十":
            return 10.0
        return float(CN_DIGITS[cn[0]])
    return None


def parse_ranking(reply: str, n: int) -> list[int]:
    """0-based passage indexes in the order the reply names them (1-based), repeats and strays dropped."""
    seen: list[int] = []
    for m in _INDEX.finditer(reply):
        i = int(m.group()) - 1
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


rerankers.add("llm", LLMReranker)
