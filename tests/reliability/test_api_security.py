"""Issue 14 (4): the server's security, over EVERY route of the app (a new route is covered the
moment it is added): Host and Origin checks, 401 with a wrong key, no write outside the KB folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx2 = pytest.importorskip("httpx2")

from tests.helpers.live_server import LiveServer, live_server  # noqa: E402
from zhiku.api.origin import allowed_hosts  # noqa: E402

KEY = "right-key"
#: routes anyone may read without a key: liveness, readiness (no KB count), the page and its docs,
#: its icon and the file types the loaders read (the upload filter; issue 29)
PUBLIC = {
    "/healthz",
    "/readyz",
    "/",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/favicon.ico",
    "/formats",
}
SAFE = {"GET", "HEAD", "OPTIONS"}


def endpoints() -> list[tuple[str, str, str]]:
    """(method, path, body kind) for every route of a fresh app; body kind: none, json or files."""
    from zhiku.api.app import create_app

    app = create_app(Path("/nonexistent-zhiku-home"))
    out: list[tuple[str, str, str]] = []

    def body_kind(route: Any) -> str:
        dependant = getattr(route, "dependant", None)
        params = [p.name for p in getattr(dependant, "body_params", []) or []]
        return "files" if "files" in params else "json" if params else "none"

    def visit(routes: Any) -> None:
        for r in routes:
            if hasattr(r, "effective_route_contexts"):  # FastAPI >= 0.165: an included router
                for ctx in r.effective_route_contexts():
                    for m in sorted(ctx.methods or ()):
                        out.append((m, ctx.path, body_kind(ctx)))
            elif getattr(r, "methods", None):
                for m in sorted(r.methods):
                    out.append((m, r.path, body_kind(r)))
            elif hasattr(r, "routes") and not hasattr(r, "app"):
                visit(r.routes)
            elif getattr(r, "path", "").startswith("/static"):
                out.append(("GET", r.path + "/app.js", "none"))

    visit(app.routes)
    return sorted(set((m, p, b) for m, p, b in out if m != "HEAD"))


ENDPOINTS = endpoints()
IDS = [f"{m} {p}" for m, p, _ in ENDPOINTS]


def fill(path: str, kb: str = "k") -> str:
    return (
        path.replace("{kb}", kb)
        .replace("{doc_id}", "0123456789abcdef")
        .replace("{job_id}", "nojob")
        .replace("{path}", "x")
    )


def send(client: Any, method: str, path: str, body: str, **kw: Any) -> Any:
    if body == "files":
        kw["files"] = [("files", ("note.md", b"# note\n\nhello world\n", "text/markdown"))]
    elif body == "json":
        kw["json"] = {}
    return client.request(method, fill(path, kw.pop("kb", "k")), **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("sec") / "home"
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open("k", home=home) as kb:
        kb.add_texts([("note", "Note", "The kettle boils water for tea.")])
    with live_server(home, api_key=KEY, auth_reads=True, allowed_hosts=allowed_hosts("127.0.0.1")) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[Any]:
    with httpx2.Client(base_url=server.url, timeout=60) as c:
        yield c


def test_every_route_is_enumerated() -> None:
    paths = {p for _, p, _ in ENDPOINTS}
    assert {"/kbs", "/kbs/{kb}/documents", "/kbs/{kb}/search", "/v1/chat/completions", "/readyz"} <= paths
    assert len(ENDPOINTS) > 15


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_wrong_key_is_401(client: Any, method: str, path: str, body: str) -> None:
    if path in PUBLIC or path.startswith("/static"):
        pytest.skip("public by design")
    r = send(client, method, path, body, headers={"Authorization": "Bearer wrong-key"})
    assert r.status_code == 401, r.text


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_foreign_host_is_refused(client: Any, method: str, path: str, body: str) -> None:
    r = send(
        client, method, path, body, headers={"Host": "evil.example:8000", "Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_host", r.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [e for e in ENDPOINTS if e[0] not in SAFE],
    ids=[i for e, i in zip(ENDPOINTS, IDS, strict=True) if e[0] not in SAFE],
)
def test_cross_site_change_is_refused(
    client: Any, server: LiveServer, method: str, path: str, body: str
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    for origin in ("http://evil.example", "null", server.url.replace("127.0.0.1", "localhost")):
        r = send(client, method, path, body, headers={**auth, "Origin": origin})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin", (origin, r.text)
    # "nokb": the request gets past the check without deleting the module's KB
    same = send(client, method, path, body, headers={**auth, "Origin": server.url}, kb="nokb")
    assert same.status_code != 403, same.text


HOSTILE_KBS = ["..", "../k", "..%2F..%2Fescape", "k%0A", "%2Fetc", "a" * 300, "k%00"]
HOSTILE_FILES = [
    "../../escape.md",
    "/tmp/escape.md",
    "..\\..\\escape.md",
    "a\nb.md",
    ".bashrc.md",
    "%2e%2e/escape.md",
    "x" * 400 + ".md",
    "k/../../escape.md",
]


def _snapshot(root: Path) -> set[Path]:
    return {Path(d, f) for d, _, fs in os.walk(root) for f in fs} | {Path(d) for d, _, _ in os.walk(root)}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [e for e in ENDPOINTS if "{kb}" in e[1]],
    ids=[i for e, i in zip(ENDPOINTS, IDS, strict=True) if "{kb}" in e[1]],
)
def test_hostile_names_write_nothing_outside_the_kb(
    client: Any, server: LiveServer, method: str, path: str, body: str
) -> None:
    home = server.state.settings.home
    outside = home.parent
    before = {p for p in _snapshot(outside) if home / "k" not in p.parents and p != home / "k"}
    auth = {"Authorization": f"Bearer {KEY}"}
    for name in HOSTILE_KBS:
        r = send(client, method, path, body, headers=auth, kb=name)
        assert r.status_code < 500, (name, r.text)
        # ".." segments are collapsed by the client itself: "/kbs/.." is the page "/", harmless
        assert r.status_code >= 400 or r.headers["content-type"].startswith("text/html"), (name, r.text)
    if body == "files":
        for fname in HOSTILE_FILES:
            r = client.request(
                method,
                fill(path),
                headers=auth,
                params={"wait": "true"},
                files=[("files", (fname, b"# x\n\nhostile name text\n", "text/markdown"))],
                # The KB's default methods include an English dense one: the first upload's writer
                # process loads its model (over a minute on a busy machine); the next ones reuse it.
                timeout=300,
            )
            assert r.status_code < 500, (fname, r.text)
    after = {p for p in _snapshot(outside) if home / "k" not in p.parents and p != home / "k"}
    assert after - before == set()
    for f in (home / "k" / "uploads").glob("*") if (home / "k" / "uploads").exists() else []:
        assert f.resolve().parent == (home / "k" / "uploads").resolve()


def test_readyz_without_key_hides_the_kb_count(client: Any) -> None:
    anon = client.get("/readyz").json()
    assert anon["status"] == "ready" and "kbs" not in anon
    assert client.get("/readyz", headers={"Authorization": f"Bearer {KEY}"}).json()["kbs"] == 1


def test_same_origin_page_and_scripts_still_work(client: Any, server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    r = client.post("/kbs/k/search", json={"query": "kettle"}, headers={**auth, "Origin": server.url})
    assert r.status_code == 200 and r.json()["hits"]
    r = client.post("/kbs/k/search", json={"query": "kettle"}, headers=auth)  # no Origin: a script
    assert r.status_code == 200
    r = client.get("/", headers={"Host": f"localhost:{server.url.rsplit(':', 1)[1]}"})
    assert r.status_code == 200


def test_issue_reproduction_cross_site_upload_without_key(tmp_path: Path) -> None:
    """The issue's curl: no key on 127.0.0.1, Origin and Host of another site, multipart POST."""
    home = tmp_path / "home"
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open("laws", home=home) as kb:
        kb.add_texts([("a", "A", "some text")])
    with (
        live_server(home, allowed_hosts=allowed_hosts("127.0.0.1")) as s,
        httpx2.Client(base_url=s.url, timeout=60) as c,
    ):
        port = s.url.rsplit(":", 1)[1]
        files = [("files", ("x.txt", b"planted text", "text/plain"))]
        for headers in (
            {"Origin": "http://evil.example", "Host": f"evil.example:{port}"},
            {"Origin": "http://evil.example"},
        ):
            r = c.post("/kbs/laws/documents", params={"wait": "true"}, files=files, headers=headers)
            assert r.status_code in (400, 403), r.text
        with KnowledgeBase.open("laws", home=home) as kb:
            assert [d.source for d in kb.documents()] == ["a"]
