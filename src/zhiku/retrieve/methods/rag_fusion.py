"""RAG-Fusion: the LLM rewrites the question several ways; every version is retrieved; RRF merges.

A question worded unlike the documents ("怎么退钱" against a text about 退款流程) misses with any
single query; a few reformulations written by an LLM (synonyms, the formal term, the parts of a
compound question) find what the original wording does not, and reciprocal rank fusion rewards the
chunks that several versions agree on (Raudaschl, 2023). It is a composite method, like ``hybrid``::

    [methods.fusion]
    kind = "fusion"
    options = { llm = "ollama:qwen2.5:7b", queries = 4, of = ["bm25", "dense"] }

Reformulations are cached per question for the life of the method, so an evaluation that searches
the same question twice (ranking pass, then latency) asks the LLM once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Literal

from pydantic import Field

from zhiku.errors import ConfigError, IndexError_, NotFoundError
from zhiku.retrieve.base import Method, MethodOptions, methods
from zhiku.retrieve.fusion import reciprocal_rank_fusion
from zhiku.types import Hit

#: methods tried, in order, when ``of`` is not set: the first one that is built is used
DEFAULT_PARTS = ("hybrid", "bm25")
_CACHE_SIZE = 1024
_BULLET = re.compile(r"^\s*(?:\(?\d{1,2}[.)、:：)]|[-*•·]|[（(]?[一二三四五六七八九十][)）、.])\s*")


class FusionOptions(MethodOptions):
    llm: str | None = Field(None, description="the LLM that writes the queries, e.g. ollama:qwen2.5:7b")
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float = Field(60.0, gt=0)
    temperature: float = Field(0.0, ge=0, description="0 keeps the queries (and evaluations) repeatable")
    queries: int = Field(4, ge=1, le=10, description="how many reformulations the LLM writes")
    include_original: bool = True
    of: list[str] | None = Field(
        None, description="methods each query is retrieved with; default hybrid or bm25"
    )
    depth: int = Field(50, ge=1, description="hits per (query, method) list that are fused")
    k_rrf: int = Field(60, ge=1)
    language: Literal["auto", "zh", "en"] = "auto"
    prompt_file: str | None = None
    prompts: dict[str, dict[str, str]] = Field(default_factory=dict)


def parse_queries(reply: str, n: int, original: str) -> list[str]:
    """The LLM's lines as queries: bullets and numbering stripped, headers and repeats dropped."""
    seen = {original.strip().casefold()}
    out: list[str] = []
    for line in reply.splitlines():
        q = _BULLET.sub("", line).strip().strip("\"'“”「」`").strip()
        if not q or q.endswith((":", "：")) or q.casefold() in seen:
            continue
        seen.add(q.casefold())
        out.append(q)
        if len(out) == n:
            break
    return out


@methods.register("fusion")
class RagFusionMethod(Method):
    kind = "fusion"
    needs_llm = True
    Options = FusionOptions
    options: FusionOptions
    indexed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._backend: Any = None
        self._templates: Any = None
        self._cache: OrderedDict[str, list[str]] = OrderedDict()

    def parts(self) -> list[str]:
        return list(self.options.of or DEFAULT_PARTS[-1:])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.options.model_dump(mode="json", exclude={"prompts"})}

    def _llm(self) -> Any:
        if self._backend is None:
            from zhiku.generate.llm import make_backend, parse_llm_spec
            from zhiku.generate.prompts import load_templates

            o = self.options
            if not o.llm:
                raise ConfigError(
                    f"method {self.name!r} (fusion) needs an LLM to write the queries",
                    f"Set [methods.{self.name}.options] llm = 'ollama:qwen2.5:7b' "
                    "(or openai:MODEL, local:DIR)",
                )
            kind, model = parse_llm_spec(o.llm)
            self._backend = make_backend(
                kind,
                {
                    "model": model,
                    "base_url": o.base_url,
                    "api_key_env": o.api_key_env,
                    "timeout": o.timeout,
                    "temperature": o.temperature,
                    "language": o.language,
                },
            )
            self._templates = load_templates(o.prompt_file, o.prompts)
        return self._backend

    def reformulate(self, query: str) -> list[str]:
        """The LLM's reformulations of ``query`` (not including it)."""
        if query in self._cache:
            self._cache.move_to_end(query)
            return self._cache[query]
        from zhiku.generate.llm import complete
        from zhiku.generate.prompts import fill, question_language

        backend = self._llm()
        tpl = self._templates[question_language(query, self.options.language)]
        reply = complete(
            backend,
            [
                {"role": "system", "content": tpl.fusion_system},
                {"role": "user", "content": fill(tpl.fusion_user, n=self.options.queries, question=query)},
            ],
            max_tokens=64 * self.options.queries,
            temperature=self.options.temperature,
        )
        found = parse_queries(reply, self.options.queries, query)
        self._cache[query] = found
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return found

    def _methods(self) -> list[Method]:
        if self.options.of:
            return [self.ctx.resolve(name) for name in self.options.of]
        # As `zhiku search` does by default: hybrid when its parts are built, else bm25.
        error: Exception | None = None
        for name in DEFAULT_PARTS:
            try:
                method = self.ctx.resolve(name)
                for part in method.parts():
                    self.ctx.resolve(part)
                return [method]
            except (IndexError_, NotFoundError) as e:
                error = e
        assert error is not None
        raise error

    def search(self, query: str, k: int) -> list[Hit]:
        queries = ([query] if self.options.include_original else []) + self.reformulate(query)
        if not queries:
            queries = [query]  # the LLM wrote nothing usable: the original is better than nothing
        depth = max(k, self.options.depth)
        parts = self._methods()
        lists = [m.search(q, depth) for q in queries for m in parts]
        fused = reciprocal_rank_fusion(lists, k, self.name, k_rrf=self.options.k_rrf)
        return [h.with_(extra={**h.extra, "queries": queries}) for h in fused]
