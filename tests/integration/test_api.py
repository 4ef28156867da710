"""The web API over real HTTP: the app under Uvicorn on loopback, driven by an HTTP client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
pytest.importorskip("uvicorn", reason="the web API needs uvicorn")
httpx = pytest.importorskip("httpx2", reason="the API tests use the httpx2 client (installed with openai)")

from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config, make_pdf  # noqa: E402
from tests.helpers.live_server import LiveServer, live_server, wait_job  # noqa: E402

SETTINGS = fast_config().model_dump(mode="json", exclude_none=True)
HIT_KEYS = {
    "rank",
    "score",
    "method",
    "chunk_id",
    "doc_id",
    "path",
    "title",
    "heading",
    "start",
    "end",
    "text",
}
PRINTER = make_pdf(
    ["Printer manual.", "Replace the toner cartridge when the red light blinks."], "Printer manual"
)
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "home") as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> Iterator[Any]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def create_kb(client: Any, name: str = "docs", settings: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post("/kbs", json={"name": name, "settings": SETTINGS if settings is None else settings})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def upload(client: Any, kb: str, files: list[tuple[str, bytes]], wait: bool = True, **kw: Any) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post(f"/kbs/{kb}/documents", params={"wait": "true"} if wait else {}, files=parts, **kw)


def error_of(r: Any) -> dict[str, str]:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture
def kb(client: Any) -> str:
    create_kb(client)
    r = upload(
        client, "docs", [("garden.md", EN_GUIDE.encode()), ("农业保险办法.md", ZH_REGULATION.encode())]
    )
    assert r.status_code == 200 and r.json()["state"] == "done", r.text
    return "docs"


# -- health, knowledge bases ------------------------------------------------------------------------


def test_health_and_readiness(client: Any) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert client.get("/docs").status_code == 200  # OpenAPI docs
    assert "/kbs/{kb}/search" in client.get("/openapi.json").json()["paths"]


def test_kb_lifecycle(client: Any) -> None:
    info = create_kb(client, "notes", {**SETTINGS, "language": "en", "chunking": {"size": 300}})
    assert info["name"] == "notes" and info["documents"] == 0
    assert info["settings"]["chunking"]["size"] == 300 and info["language"] == "en"
    assert {m["name"] for m in info["methods"]} == {"bm25", "dense", "minilm", "hybrid"}
    assert [k["name"] for k in client.get("/kbs").json()] == ["notes"]
    assert client.get("/kbs/notes").json()["settings"]["language"] == "en"

    r = client.post("/kbs", json={"name": "notes"})
    assert r.status_code == 409 and error_of(r)["code"] == "conflict"
    r = client.post("/kbs", json={"name": "../etc"})
    assert r.status_code == 400 and "invalid knowledge base name" in error_of(r)["message"]
    r = client.post("/kbs", json={"name": "x", "settings": {"chunking": {"size": 1}}})
    assert r.status_code == 400 and "settings.chunking.size" in error_of(r)["message"]
    r = client.post("/kbs", json={"name": "y", "settings": {"methods": {"m": {"kind": "no-such-kind"}}}})
    assert r.status_code == 400 and "no-such-kind" in error_of(r)["message"]
    assert [k["name"] for k in client.get("/kbs").json()] == ["notes"]  # the failed ones left nothing

    assert client.delete("/kbs/notes").json() == {"deleted": "notes"}
    r = client.get("/kbs/notes")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert client.get("/kbs").json() == []


# -- documents ------------------------------------------------------------------------------------


def test_upload_list_show_delete(client: Any, server: LiveServer) -> None:
    create_kb(client)
    r = upload(client, "docs", [("garden.md", EN_GUIDE.encode())], wait=False)
    assert r.status_code == 202 and r.headers["location"].startswith("/kbs/docs/jobs/")
    job = wait_job(client, "docs", r.json())
    assert job["state"] == "done" and job["result"]["added"] == ["garden.md"], job
    assert set(job["result"]["built"]) == {"bm25", "dense", "minilm"}  # English: MiniLM too

    # Several files in one request; the same file again is "unchanged".
    job = upload(
        client,
        "docs",
        [("manual.pdf", PRINTER), ("法规.md", ZH_REGULATION.encode()), ("garden.md", EN_GUIDE.encode())],
    ).json()
    assert job["state"] == "done"
    assert sorted(job["result"]["added"]) == ["manual.pdf", "法规.md"]
    assert job["result"]["unchanged"] == ["garden.md"]

    docs = client.get("/kbs/docs/documents").json()
    assert sorted(d["name"] for d in docs) == ["garden.md", "manual.pdf", "法规.md"]
    doc = next(d for d in docs if d["name"] == "法规.md")
    shown = client.get(f"/kbs/docs/documents/{doc['id']}").json()
    assert shown["title"] == "示例农业保险办法" and len(shown["chunks"]) == doc["chunks"] >= 2
    c = shown["chunks"][1]
    assert shown["text"][c["start"] : c["end"]] == c["text"]
    marked = client.get(
        f"/kbs/docs/documents/{doc['id']}",
        params={"highlight": f"{c['start']}-{c['end']}", "chunks": "false"},
    ).json()
    assert marked["highlight"]["text"] == c["text"] and marked["chunks"] == []
    r = client.get(f"/kbs/docs/documents/{doc['id']}", params={"highlight": "5-999999"})
    assert r.status_code == 400 and "outside the document" in error_of(r)["message"]
    assert client.get("/kbs/docs/documents/ffffffffffffffff").status_code == 404

    uploads = server.state.kbs.get("docs").uploads
    assert (uploads / "法规.md").read_text(encoding="utf-8") == ZH_REGULATION
    assert client.delete(f"/kbs/docs/documents/{doc['id']}").json()["deleted"]["name"] == "法规.md"
    assert not (uploads / "法规.md").exists()
    assert "法规.md" not in [d["name"] for d in client.get("/kbs/docs/documents").json()]
    assert client.delete(f"/kbs/docs/documents/{doc['id']}").status_code == 404


def test_job_progress_as_server_sent_events(client: Any) -> None:
    create_kb(client)
    job = upload(client, "docs", [("garden.md", EN_GUIDE.encode())], wait=False).json()
    events = []
    with client.stream("GET", f"/kbs/docs/jobs/{job['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "done" and events[-1][1]["state"] == "done"
    assert all(n == "progress" for n, _ in events[:-1])
    assert [j["id"] for j in client.get("/kbs/docs/jobs").json()] == [job["id"]]
    assert client.get("/kbs/docs/jobs/000000000000").status_code == 404


# -- search and ask -------------------------------------------------------------------------------


def test_search_methods_and_filters(client: Any, kb: str) -> None:
    r = client.post(f"/kbs/{kb}/search", json={"query": "tomatoes sunlight", "k": 3, "method": "bm25"})
    body = r.json()
    assert r.status_code == 200 and body["method"] == "bm25" and body["query"] == "tomatoes sunlight"
    top = body["hits"][0]
    assert set(top) >= HIT_KEYS and top["rank"] == 1 and "six hours" in top["text"]
    assert top["path"].endswith("/uploads/garden.md")
    for method in ("dense", "hybrid"):
        body = {"query": "tomatoes sunlight", "method": method}
        hits = client.post(f"/kbs/{kb}/search", json=body).json()["hits"]
        assert hits and hits[0]["method"] == method

    # Filters by document path: prefix (under uploads/ or absolute) and substring.
    q = {"query": "保险 tomatoes", "k": 10, "method": "bm25"}
    both = {h["title"] for h in client.post(f"/kbs/{kb}/search", json=q).json()["hits"]}
    assert both == {"Gardening guide", "示例农业保险办法"}
    only = client.post(f"/kbs/{kb}/search", json={**q, "filter": {"path_prefix": "农业"}}).json()["hits"]
    assert only and {h["title"] for h in only} == {"示例农业保险办法"}
    only = client.post(f"/kbs/{kb}/search", json={**q, "filter": {"path_contains": "garden"}}).json()["hits"]
    assert only and {h["title"] for h in only} == {"Gardening guide"}
    nowhere = {**q, "filter": {"path_prefix": "/nowhere"}}
    assert client.post(f"/kbs/{kb}/search", json=nowhere).json()["hits"] == []

    r = client.post(f"/kbs/{kb}/search", json={"query": "x", "method": "nope"})
    assert r.status_code == 404 and "unknown method 'nope'" in error_of(r)["message"]
    r = client.post(f"/kbs/{kb}/search", json={"query": ""})
    assert r.status_code == 422 and error_of(r)["code"] == "invalid_request"
    r = client.post(f"/kbs/{kb}/search", json={"query": "x", "methd": "bm25"})
    assert r.status_code == 422 and "methd" in error_of(r)["message"]


def test_ask_whole_and_streamed(client: Any, kb: str) -> None:
    question = {"question": "保险机构应当在多少日内支付保险金？", "k": 3, "method": "bm25"}
    whole = client.post(f"/kbs/{kb}/ask", json=question).json()
    assert whole["found"] and "十日内" in whole["answer"] and "[1]" in whole["answer"]
    cite = whole["citations"][0]
    assert cite["title"] == "示例农业保险办法" and "十日内" in cite["quote"]
    shown = client.get(cite["url"]).json()  # the citation's link opens the passage, highlighted
    assert shown["highlight"]["text"] == cite["quote"]

    events: list[tuple[str, Any]] = []
    with client.stream("POST", f"/kbs/{kb}/ask", json={**question, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    tokens = [d["text"] for n, d in events if n == "token"]
    assert tokens and events[-1][0] == "done"
    done = events[-1][1]
    assert "".join(tokens) == done["answer"] == whole["answer"]
    assert done["citations"] == whole["citations"]

    # Errors before streaming starts are plain JSON with their status, streaming or not.
    r = client.post(f"/kbs/{kb}/ask", json={**question, "stream": True, "method": "nope"})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = client.post("/kbs/missing/ask", json={"question": "x"})
    assert r.status_code == 404 and "no knowledge base 'missing'" in error_of(r)["message"]


# -- bad input --------------------------------------------------------------------------------------


def test_bad_json_unknown_routes_and_methods(client: Any, kb: str) -> None:
    r = client.post(f"/kbs/{kb}/search", content=b'{"query": "x",', headers=JSON)
    assert r.status_code == 400 and error_of(r)["code"] == "bad_json"
    r = client.post(f"/kbs/{kb}/search", content=b"[1, 2]", headers=JSON)
    assert r.status_code == 422
    r = client.get("/no/such/route")
    assert r.status_code == 404 and "no such endpoint" in error_of(r)["message"]
    r = client.put(f"/kbs/{kb}/search", json={})
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"
    r = client.post("/kbs/nope/search", json={"query": "x"})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


def _listing(server: LiveServer) -> list[str]:
    root = server.state.kbs.get("docs").layout.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "uploads" in p.parts)


def test_upload_names_are_sanitised(client: Any, server: LiveServer, tmp_path: Path) -> None:
    create_kb(client)
    names = ["../../evil.md", "/etc/absolute.md", "..\\..\\windows.md", "sub/dir/nested.md", ".hidden.md"]
    files = [(n, f"# Doc {i}\n\nSome words about document number {i}.".encode()) for i, n in enumerate(names)]
    job = upload(client, "docs", files).json()
    assert job["state"] == "done", job
    stored = sorted(d["name"] for d in client.get("/kbs/docs/documents").json())
    assert stored == ["absolute.md", "evil.md", "hidden.md", "nested.md", "windows.md"]
    assert _listing(server) == ["uploads", *(f"uploads/{n}" for n in stored)]
    assert not (tmp_path / "evil.md").exists() and not (tmp_path / "home" / "evil.md").exists()

    # A NUL byte and control characters in the name (sent raw: clients would escape them).
    boundary = "zhikuboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a\x00b\x07.md"\r\n'
        "Content-Type: text/markdown\r\n\r\n# NUL\n\nA name with a NUL byte.\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    r = client.post(
        "/kbs/docs/documents",
        params={"wait": "true"},
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 200 and r.json()["result"]["added"] == ["ab.md"], r.text

    r = upload(client, "docs", [("../../etc/passwd", b"root:x:0:0")])
    assert r.status_code == 415 and "passwd: unsupported file type" in error_of(r)["message"]
    r = upload(client, "docs", [("..", b"x")])
    assert r.status_code == 400 and "empty once unsafe characters are removed" in error_of(r)["message"]


def test_safe_filename() -> None:
    from zhiku.api.uploads import MAX_NAME_BYTES, safe_filename
    from zhiku.errors import UsageError

    cases = {
        "../../etc/passwd": "passwd",
        "C:\\Users\\x\\报告.docx": "报告.docx",
        "/abs/a.md": "a.md",
        "a\x00b\x1f.txt": "ab.txt",
        "..hidden.md": "hidden.md",
        ' <a>:"b"|?*.md ': "ab.md",
        "ｆｕｌｌ.md": "ｆｕｌｌ.md",
        "e\u0301.md": "\u00e9.md",
    }
    for raw, safe in cases.items():
        assert safe_filename(raw) == safe, raw
    long = safe_filename("长" * 300 + ".pdf")
    assert long.endswith("长.pdf") and len(long.encode()) <= MAX_NAME_BYTES
    assert len(safe_filename("x" * 400).encode()) == MAX_NAME_BYTES
    for bad in ("", "..", "../..", "/", "\x00", "   "):
        with pytest.raises(UsageError):
            safe_filename(bad)


def test_wrong_type_and_oversized_uploads_store_nothing(tmp_path: Path) -> None:
    with (
        live_server(tmp_path / "home", max_upload_mb=0.05) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        create_kb(client)
        before = _listing(server)
        # Only bad files: the request is refused, nothing stored (a mix is tested in test_api_product).
        r = upload(client, "docs", [("tool.exe", b"MZ\x90\x00")])
        assert r.status_code == 415 and error_of(r)["code"] == "unsupported_format"
        assert "tool.exe" in error_of(r)["message"] and ".docx" in error_of(r)["message"]
        big = b"# big\n\n" + b"word " * 20_000  # 100 KB, over the 0.05 MB limit
        r = upload(client, "docs", [("big.md", big)])
        assert r.status_code == 413 and error_of(r)["code"] == "too_large"
        assert "--max-upload-mb" in error_of(r)["message"]

        # Without a Content-Length (chunked), the body is counted as it arrives.
        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.md"\r\n\r\n'
            for _ in range(20):
                yield b"word " * 1000
            yield b"\r\n--b--\r\n"

        r = client.post(
            "/kbs/docs/documents",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413 and error_of(r)["code"] == "too_large"
        assert _listing(server) == before
        assert client.get("/kbs/docs/documents").json() == []


def test_failed_ingest_leaves_nothing_half_done(client: Any, server: LiveServer) -> None:
    create_kb(client)
    files = [("good.md", EN_GUIDE.encode()), ("broken.pdf", b"%PDF-1.4 not really a pdf")]
    job = upload(client, "docs", files).json()
    assert job["state"] == "done" and job["result"]["added"] == ["good.md"]
    failed = job["result"]["failed"]
    assert [f["file"] for f in failed] == ["broken.pdf"] and "broken.pdf" in failed[0]["error"]
    assert "/uploads/" not in failed[0]["error"]  # the server's folders are not the client's business
    assert [d["name"] for d in client.get("/kbs/docs/documents").json()] == ["good.md"]
    assert _listing(server) == ["uploads", "uploads/good.md"]

    # A broken new version of a stored file: the old version stays, in the catalog and on disk.
    assert upload(client, "docs", [("manual.pdf", PRINTER)]).json()["result"]["added"] == ["manual.pdf"]
    job = upload(client, "docs", [("manual.pdf", b"%PDF-1.4 broken new version")]).json()
    assert job["state"] == "failed" and job["result"]["failed"][0]["file"] == "manual.pdf"
    assert (server.state.kbs.get("docs").uploads / "manual.pdf").read_bytes() == PRINTER
    assert sorted(d["name"] for d in client.get("/kbs/docs/documents").json()) == ["good.md", "manual.pdf"]
    hits = client.post("/kbs/docs/search", json={"query": "toner cartridge", "method": "bm25"}).json()["hits"]
    assert hits and hits[0]["title"] == "Printer manual"
    r = upload(client, "docs", [("good.md", b"")])
    assert r.status_code == 400 and "is empty" in error_of(r)["message"]

    # Everything failed: the job fails, with the reason.
    job = upload(client, "docs", [("only.pdf", b"%PDF-1.4 garbage")]).json()
    assert job["state"] == "failed" and job["error"]["code"] == "ingest_failed"
    assert "only.pdf" in job["error"]["message"]
    assert _listing(server) == ["uploads", "uploads/good.md", "uploads/manual.pdf"]


# -- auth -------------------------------------------------------------------------------------------


def test_api_key_guards_writes_and_optionally_reads(tmp_path: Path) -> None:
    with (
        live_server(tmp_path / "home", api_key="s3cret") as server,
        # the first upload starts the server's writer process: more than httpx's default 5 s when busy
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        r = client.post("/kbs", json={"name": "docs", "settings": SETTINGS})
        assert r.status_code == 401 and error_of(r)["code"] == "unauthorized"
        assert "Authorization: Bearer" in error_of(r)["message"] and r.headers["www-authenticate"] == "Bearer"
        r = client.post("/kbs", json={"name": "docs"}, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        key = {"Authorization": "Bearer s3cret"}
        r = client.post("/kbs", json={"name": "docs", "settings": SETTINGS}, headers=key)
        assert r.status_code == 201
        assert upload(client, "docs", [("a.md", b"# A\n\nalpha")]).status_code == 401
        assert upload(client, "docs", [("a.md", b"# A\n\nalpha")], headers=key).json()["state"] == "done"
        # Reads stay open on loopback.
        assert client.get("/kbs").status_code == 200
        assert client.post("/kbs/docs/search", json={"query": "alpha"}).status_code == 200
        assert client.delete("/kbs/docs").status_code == 401

    with (
        live_server(tmp_path / "home", api_key="s3cret", auth_reads=True) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.get("/kbs").status_code == 401
        assert client.post("/kbs/docs/search", json={"query": "alpha"}).status_code == 401
        assert client.get("/v1/models").status_code == 401
        assert client.get("/kbs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.get("/").status_code == 200  # the page itself; it asks for the key


def test_serve_refuses_open_non_loopback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhiku.cli.app import main
    from zhiku.cli.serve import is_loopback

    monkeypatch.delenv("ZHIKU_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to listen on 0.0.0.0 without an API key") and "--no-auth" in err
    assert len(err.splitlines()) == 1
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


# -- one writer, many readers -------------------------------------------------------------------------


def test_searches_keep_working_during_an_ingest(client: Any, kb: str, server: LiveServer) -> None:
    """Readers see the old state or the new one while a writer changes the KB, never an error.

    The writer is the server's writer process (another process, as in production): it commits the
    40 documents one by one, then rebuilds the indexes, while three readers search."""
    old = client.post(f"/kbs/{kb}/search", json={"query": "tomatoes", "method": "hybrid"}).json()["hits"]
    batch = [
        (
            f"report-{i:02d}.md",
            (
                f"# Report {i}\n\n"
                + "".join(
                    f"Paragraph {j} of report {i} about tomatoes, roses and insurance number {i * 100 + j}.\n\n"  # noqa: E501
                    for j in range(40)
                )
            ).encode(),
        )
        for i in range(40)
    ]
    job = upload(client, kb, batch, wait=False).json()
    results: list[tuple[int, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader(method: str) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while not stop.is_set():
                r = c.post(f"/kbs/{kb}/search", json={"query": "tomatoes roses", "method": method, "k": 5})
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                hits = r.json()["hits"]
                if not hits or not all(h["text"] and h["path"] for h in hits):
                    errors.append(f"a broken result: {r.text}")
                results.append((r.status_code, len(hits)))

    threads = [threading.Thread(target=reader, args=(m,)) for m in ("bm25", "dense", "hybrid")]
    for t in threads:
        t.start()
    during = 0
    while True:
        job = client.get(f"/kbs/{kb}/jobs/{job['id']}").json()
        if job["state"] in ("done", "failed"):
            break
        during = len(results)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert job["state"] == "done" and len(job["result"]["added"]) == 40, job
    assert errors == []
    assert during > 0, "no search ran while the ingest did"
    body = {"query": "tomatoes", "method": "hybrid", "k": 20}
    new = client.post(f"/kbs/{kb}/search", json=body).json()["hits"]
    assert any(h["title"].startswith("Report") for h in new) and old


def test_one_writer_at_a_time(client: Any, kb: str, server: LiveServer) -> None:
    handle = server.state.kbs.get(kb)
    doc = client.get(f"/kbs/{kb}/documents").json()[0]
    with handle.write_lock:  # as if an ingest were running
        # A delete is queued behind it (202 with its job), not refused with 423.
        r = client.delete(f"/kbs/{kb}/documents/{doc['id']}")
        assert r.status_code == 202 and r.json()["deleted"]["id"] == doc["id"], r.text
        deleting = r.json()
        job = upload(client, kb, [("queued.md", b"# Queued\n\nwaits for the writer")], wait=False).json()
        # Wait for the delete to start (not a fixed sleep): it must then sit in "running", waiting for
        # the lock, and the upload behind it in "queued" (the stream applies them in order).
        deadline = time.monotonic() + 20
        while (
            client.get(f"/kbs/{kb}/jobs/{deleting['id']}").json()["state"] == "queued"
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert client.get(f"/kbs/{kb}/jobs/{deleting['id']}").json()["state"] == "running"
        assert client.get(f"/kbs/{kb}/jobs/{job['id']}").json()["state"] == "queued"
        # Readers go on meanwhile.
        assert client.post(f"/kbs/{kb}/search", json={"query": "tomatoes"}).status_code == 200
    assert wait_job(client, kb, deleting)["state"] == "done"
    assert wait_job(client, kb, job)["result"]["added"] == ["queued.md"]
    assert doc["id"] not in [d["id"] for d in client.get(f"/kbs/{kb}/documents").json()]
    # Another process holding the KB's file lock (a `zhiku ingest` next to the server): 423, files restored.
    with handle.layout.writer_lock():
        job = upload(client, kb, [("blocked.md", b"# Blocked\n\nnot now")]).json()
        assert job["state"] == "failed" and job["error"]["code"] == "locked"
    assert "blocked.md" not in [d["name"] for d in client.get(f"/kbs/{kb}/documents").json()]
    assert not (handle.uploads / "blocked.md").exists()


# -- evaluation -------------------------------------------------------------------------------------


def test_eval_on_an_uploaded_qa_file(client: Any, kb: str) -> None:
    qa = "\n".join(
        json.dumps(row, ensure_ascii=False)
        for row in [
            {"question": "保险金应当在几日内支付？", "evidence": "十日内，将应赔偿的保险金支付给被保险人"},
            {
                "question": "How often should tomatoes be watered?",
                "evidence": "Water them deeply twice a week.",
            },
            {"question": "When should roses be pruned?", "evidence": "Prune roses in late winter"},
        ]
    )
    r = client.post(
        f"/kbs/{kb}/eval",
        params={"wait": "true"},
        files={"file": ("qa.jsonl", qa.encode())},
        data={"methods": "bm25,dense", "k": "5"},
    )
    job = r.json()
    assert r.status_code == 200 and job["state"] == "done", job
    result = job["result"]
    assert [m["method"] for m in result["methods"]] == ["bm25", "dense"]
    assert result["methods"][0]["metrics"]["hit@5"] == 1.0
    report = client.get(result["report"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/markdown")
    assert "# zhiku evaluation: qa" in report.text
    assert result["chart"], "matplotlib is installed (the eval extra): a chart must be produced"
    chart = client.get(result["chart"])
    assert chart.headers["content-type"] == "image/png" and chart.content[:4] == b"\x89PNG"
    assert client.get(result["results"]).json()["dataset"] == "qa"
    assert [e["id"] for e in client.get(f"/kbs/{kb}/evals").json()] == [result["id"]]

    r = client.post(f"/kbs/{kb}/eval", files={"file": ("qa.csv", b"a,b")})
    assert r.status_code == 415
    bad = {"file": ("bad.jsonl", b'{"nope": 1}')}
    job = client.post(f"/kbs/{kb}/eval", params={"wait": "true"}, files=bad).json()
    assert job["state"] == "failed" and job["error"]["code"] == "bad_dataset"
    assert client.get(f"/kbs/{kb}/evals/{job['id']}/report").status_code == 404


def test_hits_and_citations_name_the_page(client: Any, kb: str) -> None:
    from tests.helpers.documents import pptx_bytes

    assert upload(client, kb, [("deck.pptx", pptx_bytes())]).status_code in (200, 201)
    query = {"query": "扫描件识别", "k": 1, "method": "bm25"}
    hits = client.post(f"/kbs/{kb}/search", json=query).json()["hits"]
    assert hits[0]["path"].endswith("deck.pptx")
    assert hits[0]["page"] == 2 and hits[0]["location"] == "slide 2"
    question = {"question": "扫描件识别什么时候上线？", "method": "bm25"}
    answer = client.post(f"/kbs/{kb}/ask", json=question).json()
    assert answer["citations"] and answer["citations"][0]["location"] == "slide 2"
    assert answer["citations"][0]["page"] == 2
