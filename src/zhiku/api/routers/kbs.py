"""Knowledge bases: list, create (with settings), show status, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from zhiku.api.deps import KBDep, KBHandle, require_write, state
from zhiku.api.routers.settings import public_settings
from zhiku.api.schemas import CreateKB
from zhiku.errors import ZhikuError

router = APIRouter(tags=["knowledge bases"])


def kb_info(handle: KBHandle) -> dict[str, Any]:
    """The KB as ``zhiku status --json`` shows it, plus its settings."""
    with handle.read() as kb:
        docs = kb.documents()
        return {
            "name": kb.name,
            "documents": len(docs),
            "chunks": kb.chunk_count(),
            "characters": sum(d.chars for d in docs),
            "language": kb.language(),
            "default_method": kb.default_method(),
            "methods": [s.__dict__ for s in kb.status()],
            "generator": kb.config.generator.kind,
            "settings": public_settings(kb.config),
        }


@router.get("/kbs")
def list_kbs(request: Request) -> list[dict[str, Any]]:
    out = []
    for name in state(request).kbs.names():
        try:
            handle = state(request).kbs.get(name)
            with handle.read() as kb:
                out.append({"name": name, "documents": len(kb.documents()), "chunks": kb.chunk_count()})
        except ZhikuError as e:  # one broken KB (a bad zhiku.toml) must not hide the others
            out.append({"name": name, "error": e.one_line()})
    return out


@router.post("/kbs", status_code=201, dependencies=[Depends(require_write)])
def create_kb(body: CreateKB, request: Request) -> dict[str, Any]:
    from zhiku.config import KBConfig, validated

    config = validated(
        KBConfig, body.settings or {}, "settings.", "See the zhiku.toml settings in the README"
    )
    handle = state(request).kbs.create(body.name, config)
    return kb_info(handle)


@router.get("/kbs/{kb}")
def show_kb(handle: KBDep) -> dict[str, Any]:
    return kb_info(handle)


@router.delete("/kbs/{kb}", dependencies=[Depends(require_write)])
def delete_kb(kb: str, request: Request) -> dict[str, Any]:
    state(request).kbs.delete(kb)
    return {"deleted": kb}


@router.get("/kbs/{kb}/check")
def check_kb(handle: KBDep) -> dict[str, Any]:
    """``zhiku check``: do the catalog, every built index and the uploads agree? Read-only; taken
    as a write of this server (its uploads queue behind it for the few milliseconds it takes), so
    a job's work in progress is never reported as a leftover."""
    with handle.write() as kb:
        return kb.check().to_json()
