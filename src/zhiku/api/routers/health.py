"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can serve KBs)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from zhiku import __version__
from zhiku.api.deps import _check_key, state
from zhiku.api.errors import error_body, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/formats")
def formats() -> dict[str, Any]:
    """The file extensions ingest reads (the loaders' own list): the page's upload filter."""
    from zhiku.service import supported_extensions

    return {"extensions": sorted(supported_extensions())}


@router.get("/readyz", responses=error_responses(503))
def readyz(request: Request) -> JSONResponse:
    home = state(request).settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        writable = os.access(home, os.W_OK)
        names = state(request).kbs.names()
    except OSError as e:
        why = f"cannot use the home folder {home}: {e.strerror or e}"
        return JSONResponse(error_body("unavailable", why), status_code=503)
    if not writable:
        why = f"the home folder {home} is not writable"
        return JSONResponse(error_body("unavailable", why), status_code=503)
    body: dict[str, Any] = {"status": "ready", "version": __version__}
    if _may_read(request):  # how many KBs there are is the server's business, not an anonymous probe's
        body["kbs"] = len(names)
    return JSONResponse(body)


def _may_read(request: Request) -> bool:
    if state(request).settings.api_key is None:
        return True
    try:
        _check_key(request)
    except HTTPException:
        return False
    return True
