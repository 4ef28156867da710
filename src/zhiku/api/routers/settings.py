"""A knowledge base's settings (``zhiku.toml``) from the page, and building a method as a job.

What a user may change here: the generator (extractive, Ollama, an OpenAI-compatible server: its
model and base URL), which methods are enabled and the default one, the reranker
(``api/rerank_settings.py``), and chunking. API keys are
never read or written through the API: the server takes them from its own environment
(``api_key_env`` names the variable), and a key written in zhiku.toml is shown only as "set".
The server rereads zhiku.toml when its modification time changes (``deps.KBHandle.read``), so an
edit by hand is picked up too.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zhiku.api.deps import KBDep, KBHandle, require_write, state
from zhiku.api.jobs import Job, PhaseProgress, job_location, job_responses
from zhiku.api.rerank_settings import (
    RerankSettings,
    public_rerank,
    rerank_kinds,
    rerank_section,
)
from zhiku.config import ChunkingConfig, KBConfig
from zhiku.errors import ConfigError, UsageError
from zhiku.service import check_generator, check_reranker

router = APIRouter(tags=["settings"])

GENERATOR_KINDS = ("extractive", "ollama", "openai")
#: generator options the page may set (the rest of [generator.options] is kept as it is)
EDITABLE = ("model", "base_url", "api_key_env")
SECRET = ("api_key",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneratorSettings(_Strict):
    kind: Literal["extractive", "ollama", "openai"]
    model: str | None = Field(None, max_length=300)
    base_url: str | None = Field(None, max_length=1000, description="empty: the backend's default")
    api_key_env: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the server's environment variable holding the key",
    )


class MethodSwitch(_Strict):
    enabled: bool | Literal["auto"]


class SettingsUpdate(_Strict):
    generator: GeneratorSettings | None = None
    default_method: str | None = Field(
        None, description="empty string: automatic (hybrid if built, else bm25)"
    )
    methods: dict[str, MethodSwitch] | None = None
    chunking: ChunkingConfig | None = None
    rerank: RerankSettings | None = None


def public_generator(config: KBConfig) -> dict[str, Any]:
    """The generator's settings without any secret: whether a key is available, never the key."""
    g = config.generator
    options = {k: v for k, v in g.options.items() if k not in SECRET}
    env = g.options.get("api_key_env") or ("OPENAI_API_KEY" if g.kind == "openai" else None)
    return {
        "kind": g.kind,
        "model": g.options.get("model", ""),
        "base_url": g.options.get("base_url") or "",
        "api_key_env": g.options.get("api_key_env") or "",
        "options": options,
        "key": "in zhiku.toml"
        if g.options.get("api_key")
        else f"${env} is set"
        if env and os.environ.get(env)
        else f"${env} is not set"
        if env
        else "not needed",
    }


def public_settings(config: KBConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude_none=True)
    data["generator"] = public_generator(config)
    return data


def settings_json(handle: KBHandle) -> dict[str, Any]:
    with handle.read() as kb:
        config = kb.config
        status = {s.name: s for s in kb.status()}
        default = kb.default_method()
        stale = kb.chunking_stale()
    return {
        "kb": handle.name,
        "settings": public_settings(config),
        "default_method": default,
        "default_method_setting": config.default_method or "",
        "methods": [
            {
                "name": n,
                "kind": c.kind,
                "enabled": c.enabled,
                "built": status[n].built if n in status else False,
                "fresh": status[n].fresh if n in status else False,
                "reason": status[n].reason if n in status else "",
            }
            for n, c in config.methods.items()
        ],
        "generator_kinds": list(GENERATOR_KINDS),
        "rerank": public_rerank(config),  # flat, as the page's form and PUT's body
        "rerank_kinds": rerank_kinds(),
        "chunking_stale": stale,
    }


@router.get("/kbs/{kb}/settings")
def show_settings(handle: KBDep) -> dict[str, Any]:
    return settings_json(handle)


@router.put("/kbs/{kb}/settings", dependencies=[Depends(require_write)])
def update_settings(body: SettingsUpdate, handle: KBDep) -> dict[str, Any]:
    with handle.write(wait=False) as kb:
        config = kb.config
        data = config.model_dump(mode="json", exclude_none=True)
        if body.generator is not None:
            g = body.generator
            if g.kind == "extractive":
                data["generator"] = {"kind": "extractive", "options": {}}
            else:
                if not (g.model or "").strip():
                    raise UsageError(
                        f"the {g.kind} generator needs a model name",
                        "Type the model as the server knows it, e.g. qwen2.5:7b",
                    )
                # Options the page does not show (timeout, context_window…) are kept for the same kind.
                options = dict(config.generator.options) if config.generator.kind == g.kind else {}
                for key in EDITABLE:
                    value = (getattr(g, key) or "").strip()
                    if value:
                        options[key] = value
                    else:
                        options.pop(key, None)
                data["generator"] = {"kind": g.kind, "options": options}
        if body.default_method is not None:
            if body.default_method and body.default_method not in config.methods:
                raise UsageError(
                    f"no method {body.default_method!r} in this knowledge base",
                    f"Choose one of: {', '.join(config.methods)}",
                )
            data["default_method"] = body.default_method or None
        for name, switch in (body.methods or {}).items():
            if name not in data["methods"]:
                raise UsageError(
                    f"no method {name!r} in this knowledge base",
                    f"Choose one of: {', '.join(config.methods)}",
                )
            data["methods"][name]["enabled"] = switch.enabled
        if body.chunking is not None:
            data["chunking"] = body.chunking.model_dump()
        if body.rerank is not None:
            data["rerank"] = rerank_section(config, body.rerank)
        try:
            new = KBConfig.model_validate({k: v for k, v in data.items() if v is not None})
        except ValidationError as e:
            first = e.errors()[0]
            raise ConfigError(
                f"settings.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", "Correct that value"
            ) from e
        check_generator(new)  # a bad option fails now
        if body.rerank is not None or (body.generator is not None and new.rerank.kind == "llm"):
            # Only what this request changes: a reranker broken by hand does not block other settings.
            check_reranker(new)
        new.save(kb.layout.config)
    return settings_json(handle)


@router.post(
    "/kbs/{kb}/methods/{method}/build",
    status_code=202,
    dependencies=[Depends(require_write)],
    responses=job_responses("the build job"),
)
def build_method(
    method: str,
    request: Request,
    handle: KBDep,
    force: Annotated[bool, Query(description="rebuild even if the index is fresh")] = False,
    wait: Annotated[bool, Query(description="answer when the build is done")] = False,
) -> JSONResponse:
    with handle.read() as kb:
        if method not in kb.config.methods:
            raise UsageError(
                f"no method {method!r} in knowledge base {handle.name!r}",
                f"Choose one of: {', '.join(kb.config.methods)}",
            )
    st = state(request)

    def work(job: Job) -> dict[str, Any]:
        with handle.write() as kb:
            m = kb.method(method)
            # A composite (hybrid) has no index of its own: building it builds its parts.
            names = [method] if m.indexed else list(getattr(m, "parts", lambda: [])())
            report = kb.build(names, force=force, progress=PhaseProgress(st.jobs, job))
        return {"method": method, "built": dict(report.built), "fresh": report.fresh}

    job = st.jobs.submit(handle.name, "build", work)
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    return JSONResponse(
        job.to_json(), status_code=202, headers={"Location": job_location(handle.name, job.id)}
    )


@router.post(
    "/kbs/{kb}/rechunk",
    status_code=202,
    dependencies=[Depends(require_write)],
    responses=job_responses("the re-chunk job"),
)
def rechunk(
    request: Request,
    handle: KBDep,
    wait: Annotated[bool, Query(description="answer when it is done")] = False,
) -> JSONResponse:
    """Chunk every stored document again with the current settings (no files are read), then
    rebuild the indexes: after a change of chunking or tokenizer settings."""
    from zhiku.api.jobs import FileProgress

    st = state(request)

    def work(job: Job) -> dict[str, Any]:
        with handle.write() as kb:
            report, built = kb.rechunk(FileProgress(st.jobs, job), PhaseProgress(st.jobs, job))
        return {"rechunked": len(report.updated), "chunks": report.chunks, "built": dict(built.built)}

    job = st.jobs.submit(handle.name, "rechunk", work)
    if wait:
        st.jobs.join(job)
        return JSONResponse(job.to_json(), status_code=200)
    return JSONResponse(
        job.to_json(), status_code=202, headers={"Location": job_location(handle.name, job.id)}
    )
