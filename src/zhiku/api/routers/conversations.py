"""Conversations of a knowledge base: list, create, show with turns, rename, delete, export.

Asking within one is ``POST /kbs/{kb}/ask`` with ``conversation``: its turns are the history a
follow-up is rewritten with, and the new turn is stored (``store/conversations.py``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from zhiku.api.deps import KBDep, KBHandle, require_write
from zhiku.api.schemas import CreateConversation, RenameConversation
from zhiku.service import conversation_store

if TYPE_CHECKING:
    from zhiku.service import ConversationStore

router = APIRouter(tags=["conversations"])


def store_of(handle: KBHandle) -> ConversationStore:
    return conversation_store(handle.layout.root)


@router.get("/kbs/{kb}/conversations")
def list_conversations(handle: KBDep) -> list[dict[str, Any]]:
    return [c.to_json() for c in store_of(handle).conversations()]


@router.post("/kbs/{kb}/conversations", status_code=201, dependencies=[Depends(require_write)])
def create_conversation(body: CreateConversation, handle: KBDep) -> dict[str, Any]:
    return store_of(handle).create(body.title).to_json()


@router.get("/kbs/{kb}/conversations/{conversation_id}")
def show_conversation(conversation_id: str, handle: KBDep) -> dict[str, Any]:
    store = store_of(handle)
    return {
        **store.get(conversation_id).to_json(),
        "turns": [asdict(t) for t in store.turns(conversation_id)],
    }


@router.patch("/kbs/{kb}/conversations/{conversation_id}", dependencies=[Depends(require_write)])
def rename_conversation(conversation_id: str, body: RenameConversation, handle: KBDep) -> dict[str, Any]:
    return store_of(handle).rename(conversation_id, body.title).to_json()


@router.delete("/kbs/{kb}/conversations/{conversation_id}", dependencies=[Depends(require_write)])
def delete_conversation(conversation_id: str, handle: KBDep) -> dict[str, Any]:
    store_of(handle).delete(conversation_id)
    return {"deleted": conversation_id}


@router.get(
    "/kbs/{kb}/conversations/{conversation_id}/export",
    responses={200: {"content": {"text/markdown": {}}, "description": "the conversation as Markdown"}},
)
def export_conversation(conversation_id: str, handle: KBDep) -> Response:
    store = store_of(handle)
    c = store.get(conversation_id)
    text = store.markdown(conversation_id, handle.name)
    name = f"{c.title or 'conversation'}.md".replace("/", "_").replace("\\", "_")
    # RFC 6266: an ASCII fallback name and the real (perhaps Chinese) one percent-encoded.
    disposition = f"attachment; filename=\"conversation-{c.id}.md\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(
        text, media_type="text/markdown; charset=utf-8", headers={"Content-Disposition": disposition}
    )
