"""``create_app``: the FastAPI application behind ``zhiku serve``.

Routes are thin (parse, call the ``KnowledgeBase`` facade through ``deps``, format); errors are
mapped to HTTP in ``errors.py`` only. The web page is static files served from ``static/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from zhiku import __version__
from zhiku.api.deps import AppState, KBRegistry, ServerSettings, require_read
from zhiku.api.errors import ANY_ROUTE, KB_ROUTE, error_responses, install_error_handlers
from zhiku.api.limits import BodyLimit
from zhiku.api.origin import SameOrigin

STATIC = Path(__file__).parent / "static"

DESCRIPTION = """知库 zhiku: ask questions of your own documents, in Chinese and English.

Errors are `{"error": {"code": …, "message": …}}` with a matching status. When the server has an
API key, write endpoints (and every endpoint, on a server listening beyond 127.0.0.1) need
`Authorization: Bearer <key>`. `/v1/…` speaks the OpenAI API: a knowledge base is a model.
"""


def create_app(
    home: Path | None = None,
    api_key: str | None = None,
    max_upload_mb: float = 50,
    auth_reads: bool = False,
    allowed_hosts: frozenset[str] | None = None,
    writer_process: bool = True,
    start_writer: bool = False,
    writer_nice: int = 0,
) -> FastAPI:
    """The application for the knowledge bases under ``home`` (default: ZHIKU_HOME / user data dir).

    ``api_key``: required (as a bearer token) on write endpoints, and on all of them when
    ``auth_reads``; ``None`` leaves the API open, which ``zhiku serve`` allows on loopback only.
    ``allowed_hosts``: the Host names answered (``origin.allowed_hosts``); ``None`` answers any.
    Changes requested by another site's page (Origin) are refused either way.
    ``writer_process``: uploads and deletes are applied by a child process (``writer.py``), so
    index builds never hold the GIL the searches need; False applies them in a thread.
    ``start_writer``: start that process with the server (``zhiku serve``), not at the first upload;
    ``writer_nice``: how much lower its CPU priority is (``zhiku serve``: ``writer_process.NICE``).
    """
    from zhiku.api.routers import ask, conversations, documents, health, jobs, kbs, openai, search, settings
    from zhiku.api.routers import eval as evaluation
    from zhiku.api.routers import tune as tuning
    from zhiku.config import default_home

    home = (home or default_home()).expanduser().resolve()
    server = ServerSettings(
        home=home,
        api_key=api_key or None,
        auth_reads=auth_reads,
        max_upload_bytes=int(max_upload_mb * 2**20),
        writer_process=writer_process,
        writer_nice=writer_nice,
    )
    zhiku_state = AppState(settings=server, kbs=KBRegistry(home))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from zhiku.home import recover_home

        recover_home(home)  # a server killed mid-upload left staging folders, stray files, runs
        if start_writer:
            import threading

            threading.Thread(target=zhiku_state.writer.start, name="zhiku-writer-start", daemon=True).start()
        yield
        zhiku_state.close()

    app = FastAPI(
        title="zhiku",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        responses=error_responses(*ANY_ROUTE),
    )
    app.state.zhiku = zhiku_state
    install_error_handlers(app)

    def limit_for(scope: Scope) -> int:
        path = scope.get("path", "")
        if scope.get("method") == "POST" and path.endswith(("/documents", "/eval")):
            return server.max_upload_bytes
        return server.max_json_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(SameOrigin, hosts=allowed_hosts)  # added last: runs first

    app.include_router(health.router)
    reads = [Depends(require_read)]
    for module in (kbs, settings, documents, jobs, search, ask, conversations, evaluation, tuning, openai):
        app.include_router(module.router, dependencies=reads, responses=error_responses(*KB_ROUTE))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_docs(app)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:  # what browsers ask for when a page names no icon
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files zhiku serves itself (the swagger-ui-bundle-v2 package: Swagger
    UI 5, which reads OpenAPI 3.1), so the page works offline; FastAPI's default loads them from a
    CDN and shows a blank page without one. Without the package, /docs says how to get it."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse

    assets: str | None
    try:
        from importlib import import_module

        assets = str(import_module("swagger_ui_bundle").swagger_ui_path)
    except ImportError:
        assets = None

    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if assets is None:
            return HTMLResponse(
                "<p>The API documentation needs the swagger-ui-bundle-v2 package: "
                "<code>pip install 'zhiku[serve]'</code>. The schema itself is at "
                "<a href='/openapi.json'>/openapi.json</a>.</p>",
                status_code=200,
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="zhiku API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
