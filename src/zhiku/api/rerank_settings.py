"""The reranker (``[rerank]`` in zhiku.toml) as the settings page and ``PUT /kbs/{kb}/settings`` see it.

The page shows one form for every kind, so the body is flat: ``kind`` ("none" or a registered
reranker), ``top_n``, ``threshold``, and the few options a user picks per kind (a cross-encoder's
local model folder; a rerank server's URL, wire format, model name and key variable; the LLM's
mode). Options the page does not show (timeout, batch_size, max_length…) are kept while the kind
stays the same. The result is validated by the same models as zhiku.toml (``RerankConfig``, then
the kind's own options), and the reranker is built once before the file is written, so a bad
URL, a missing model folder or an unset key variable fails the request with one line instead of
the next search. As for the generator, keys never travel through the API: ``api_key_env`` names
a variable of the server's environment, and the page only learns whether it is set.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zhiku.config import KBConfig
from zhiku.errors import ConfigError
from zhiku.service import reranker_fields, reranker_names

NONE = "none"
#: per kind, the options the page edits (a registered plugin kind gets top_n and threshold only)
EDITABLE: dict[str, tuple[str, ...]] = {
    "cross-encoder": ("model",),
    "remote": ("api", "base_url", "model", "api_key_env"),
    "llm": ("mode",),
}


class RerankSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="none, or a registered reranker: cross-encoder, remote, llm")
    top_n: int | None = Field(None, description="first-stage hits that are reranked (omitted: unchanged)")
    threshold: float | None = Field(None, description="drop reranked hits scoring below this; null: none")
    model: str | None = Field(
        None, max_length=1000, description="cross-encoder: a local model folder; remote: the model name"
    )
    base_url: str | None = Field(None, max_length=1000, description="remote: the rerank server")
    api: str | None = Field(None, max_length=20, description="remote: cohere or tei")
    api_key_env: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="remote: the server's environment variable holding the key",
    )
    mode: str | None = Field(None, max_length=20, description="llm: pointwise or listwise")


def rerank_kinds() -> list[str]:
    return [NONE, *reranker_names()]


def rerank_section(current: KBConfig, body: RerankSettings) -> dict[str, Any]:
    """The new ``[rerank]`` table (a dict, validated with the rest of the settings)."""
    old = current.rerank
    out: dict[str, Any] = {"top_n": old.top_n if body.top_n is None else body.top_n}
    # Only a threshold the body names changes it: null clears it, a missing field keeps it.
    threshold = body.threshold if "threshold" in body.model_fields_set else old.threshold
    if threshold is not None:
        out["threshold"] = threshold
    kind = body.kind.strip()
    if kind.lower() == NONE or not kind:
        out["options"] = dict(old.options)  # turning reranking off keeps the choice for later
        return out
    if kind not in reranker_names():
        raise ConfigError(
            f"settings.rerank.kind: unknown reranker {kind!r}", f"Choose one of: {', '.join(rerank_kinds())}"
        )
    if old.kind == kind:
        options = dict(old.options)
    elif old.kind is None:  # turned back on: what was kept while off, where this kind has it
        fields = reranker_fields(kind)
        options = {k: v for k, v in old.options.items() if k in fields}
    else:
        options = {}
    for key in EDITABLE.get(kind, ()):
        value = (getattr(body, key) or "").strip()
        if value:
            options[key] = value
        else:
            options.pop(key, None)
    out.update(kind=kind, options=options)
    return out


def public_rerank(config: KBConfig) -> dict[str, Any]:
    """``[rerank]`` for the page, flat as the form is; never a key, only whether it is set."""
    r = config.rerank
    o = r.options
    env = o.get("api_key_env") or ""
    return {
        "kind": r.kind or NONE,
        "top_n": r.top_n,
        "threshold": r.threshold,
        "model": o.get("model", ""),
        "base_url": o.get("base_url", ""),
        "api": o.get("api", "cohere"),
        "api_key_env": env,
        "mode": o.get("mode", "pointwise"),
        "options": {k: v for k, v in o.items() if k != "api_key"},
        "key": (f"${env} is set" if os.environ.get(env) else f"${env} is not set") if env else "none",
    }


def reranker_of(hits: Any) -> str | None:
    """What reranked ``hits`` (``Reranker.describe()``), or None when they were not reranked."""
    return next((h.extra.get("reranker") for h in hits if h.extra.get("reranked")), None)
