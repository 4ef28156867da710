"""`zhiku ask` and the LLM clients against a real HTTP server on loopback that speaks the Ollama and
OpenAI wire formats (tests/integration/fake_llm_server.py): streaming, citations, every failure
mode and its message, retries, embeddings, and the API key never showing anywhere."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.corpus import EN_GUIDE, ZH_REGULATION, fast_config
from tests.integration.fake_llm_server import FakeLLMServer, Step

from zhiku.cli.app import main
from zhiku.config import GeneratorConfig, MethodConfig
from zhiku.errors import BackendError, ConfigError
from zhiku.generate.llm import make_backend
from zhiku.service import KnowledgeBase

KEY = "sk-test-NEVER-PRINT-4f9a1c"
ZH_Q = "保险金什么时候支付？"
EN_Q = "When should roses be pruned?"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ZHIKU_OPENAI_API_KEY",
        "ZHIKU_OPENAI_BASE_URL",
        "OLLAMA_HOST",
        "ZHIKU_OLLAMA_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)


def make_kb(root: Path, generator: GeneratorConfig | None = None, **methods: MethodConfig) -> Path:
    docs = root.parent / f"{root.name}-docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    (docs / "garden.md").write_text(EN_GUIDE, encoding="utf-8")
    cfg = fast_config()
    cfg = cfg.updated(
        methods={**cfg.methods, **methods}, generator=(generator or GeneratorConfig()).model_dump()
    )
    with KnowledgeBase.open(str(root), config=cfg) as kb:
        kb.ingest([docs])
    return root


#: short timeouts keep the failure tests fast; `--llm` keeps the KB's options for the same backend
FAST = {"timeout": 1, "retries": 1}


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    return make_kb(tmp_path / "kb", GeneratorConfig(kind="ollama", options=FAST))


def kb_for(flavour: str, tmp_path: Path) -> Path:
    return make_kb(tmp_path / f"kb-{flavour}", GeneratorConfig(kind=flavour, options=FAST))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def llm_args(flavour: str, server: FakeLLMServer) -> list[str]:
    if flavour == "ollama":
        return ["--llm", "ollama:qwen2.5:7b", "--base-url", server.url]
    return ["--llm", "openai:deepseek-chat", "--base-url", server.openai_url]


def cite_first_passage(messages: list[dict[str, str]]) -> str:
    user = messages[-1]["content"]
    assert re.search(r"^\[1\] ", user, re.M), "the context blocks are numbered"
    return "保险机构应当在达成赔偿协议后十日内支付保险金[1]。另见[9]。"


# -- answers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_ask_streams_an_answer_with_valid_citations(
    flavour: str,
    server: FakeLLMServer,
    kb_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.reply = cite_first_passage
    code, out, err = run(capsys, "ask", ZH_Q, "--kb", str(kb_dir), "-m", "bm25", *llm_args(flavour, server))
    assert code == 0, err
    # The LLM wrote [9] with one source: the stream never shows it; the note says it was removed.
    assert out.startswith("保险机构应当在达成赔偿协议后十日内支付保险金[1]。另见。\n")
    assert "[9]" not in out
    assert "note: removed citation [9]: it points at no source" in err
    assert re.search(r"Sources:\n  \[1\] 示例农业保险办法 › .*农业保险办法\.md:\d+-\d+", out)
    request = server.chat_requests()[-1]
    body = request.body
    assert body["stream"] is True and body["messages"][0]["role"] == "system"
    assert "只使用随问题给出的带编号的资料回答" in body["messages"][0]["content"]
    assert "第四条 保险机构应当在与被保险人达成赔偿协议后十日内" in body["messages"][1]["content"]
    if flavour == "ollama":
        assert body["model"] == "qwen2.5:7b" and body["options"]["num_ctx"] == 4096
        assert "Authorization" not in request.headers
    else:
        assert body["model"] == "deepseek-chat" and body["max_tokens"] == 512
        assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in out + err


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_ask_json_has_text_citations_invalid_and_timings(
    flavour: str,
    server: FakeLLMServer,
    kb_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.reply = cite_first_passage
    code, out, err = run(
        capsys, "ask", ZH_Q, "--kb", str(kb_dir), "-m", "bm25", "--json", *llm_args(flavour, server)
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["answer"] == "保险机构应当在达成赔偿协议后十日内支付保险金[1]。另见。"
    assert data["invalid_citations"] == [9] and data["found"] is True
    [c] = data["citations"]
    assert c["n"] == 1 and c["source"].endswith("农业保险办法.md") and c["end"] > c["start"]
    assert "十日内" in c["quote"]
    assert data["generator"] == ("ollama:qwen2.5:7b" if flavour == "ollama" else "openai:deepseek-chat")
    assert {"retrieve_s", "generate_s", "first_token_s", "total_s"} <= set(data["timings"])
    assert data["context_blocks"][0] == 1


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_pieces_arrive_before_the_answer_is_finished(
    flavour: str, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.gate = threading.Event()  # the server holds the rest of the answer until this is set
    model = "qwen2.5:7b" if flavour == "ollama" else "deepseek-chat"
    url = server.url if flavour == "ollama" else server.openai_url
    backend = make_backend(flavour, {"model": model, "base_url": url, "timeout": 10})
    stream = backend.chat([{"role": "user", "content": "hi"}], max_tokens=10, temperature=0)
    first = next(stream)
    assert first == "The" and not server.gate.is_set()
    server.gate.set()
    assert first + "".join(stream) == "The answer is in the first passage [1]."


def test_openai_server_that_ignores_stream_still_answers(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.script("chat", Step("ignore-stream"))
    backend = make_backend("openai", {"model": "deepseek-chat", "base_url": server.openai_url})
    reply = "".join(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
    assert reply == "The answer is in the first passage [1]."
    assert server.chat_requests()[-1].body["stream"] is True  # asked for a stream, got one JSON body


def test_extractive_stays_the_default_and_can_be_chosen(
    kb_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plain = make_kb(tmp_path / "plain")
    code, out, err = run(capsys, "ask", ZH_Q, "--kb", str(plain), "-m", "bm25", "--json")
    assert code == 0, err and json.loads(out)["generator"] == "extractive"
    code, out, err = run(capsys, "ask", ZH_Q, "--kb", str(kb_dir), "-m", "bm25", "--llm", "extractive")
    assert code == 0, err
    assert "十日内" in out and "[1]" in out


# -- failures --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAILURES = [
    # (step, ollama message, openai message, hint fragment for ollama, hint fragment for openai)
    (
        Step("status", status=500, body={"error": "boom"}),
        r"server error \(HTTP 500: boom\)",
        r"server error \(HTTP 500: boom\)",
        "ollama/logs",
        "see its log",
    ),
    (
        Step("context"),
        r"does not fit the model's context window",
        r"does not fit the model's context window",
        "smaller -k",
        "smaller -k",
    ),
    (
        Step("malformed"),
        r"malformed stream: line 2 is not JSON",
        r"malformed stream: an event is not JSON",
        "is an Ollama server",
        "speaks the OpenAI API",
    ),
    (
        Step("truncated"),
        "ended before the answer was complete",
        "ended before the answer was complete",
        "ollama/logs",
        "see its log",
    ),
    (
        Step("slow", delay=1.5),
        r"no response within 1s",
        r"no response within 1s",
        "loading the model",
        "overloaded",
    ),
    (
        Step("stall", delay=1.5),
        r"stopped sending for 1s in the middle of the answer",
        r"stopped sending for 1s",
        "loading the model",
        "overloaded",
    ),
    (
        Step("stream-error"),
        "the server reported an error",
        "the server reported an error: upstream model crashed",
        "ollama/logs",
        "see its log",
    ),
    (
        Step("not-json"),
        r"malformed stream: line 1 is not JSON",
        "not an event stream",
        "is an Ollama server",
        "speaks the OpenAI API",
    ),
    (
        Step("status", status=400, body={"error": {"message": "temperature must be <= 2"}}),
        r"rejected \(HTTP 400",
        r"rejected \(HTTP 400: temperature must be <= 2\)",
        "is an Ollama server",
        "request options",
    ),
]


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
@pytest.mark.parametrize("case", FAILURES, ids=[c[0].kind + str(c[0].status) for c in FAILURES])
def test_every_failure_has_its_message_and_the_hits_are_still_shown(
    flavour: str,
    case: tuple[Step, str, str, str, str],
    server: FakeLLMServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    step, ollama_msg, openai_msg, ollama_hint, openai_hint = case
    kb_dir = kb_for(flavour, tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    server.script("chat", step)
    code, out, err = run(capsys, "ask", ZH_Q, "--kb", str(kb_dir), "-m", "bm25", *llm_args(flavour, server))
    assert code == 7  # BackendError
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    name = (
        "ollama at http://127.0.0.1"
        if flavour == "ollama"
        else "openai-compatible server at http://127.0.0.1"
    )
    assert name in lines[0]
    assert re.search(ollama_msg if flavour == "ollama" else openai_msg, lines[0]), lines[0]
    assert (ollama_hint if flavour == "ollama" else openai_hint) in lines[0]
    assert "these are the passages retrieval found" in out and "农业保险办法.md" in out
    assert KEY not in out + err + caplog.text


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_server_down_wrong_model_and_json_failure(
    flavour: str,
    server: FakeLLMServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    kb_dir = kb_for(flavour, tmp_path)
    down = f"http://127.0.0.1:{free_port()}" + ("" if flavour == "ollama" else "/v1")
    model = "qwen2.5:7b" if flavour == "ollama" else "deepseek-chat"
    code, out, err = run(
        capsys,
        "ask",
        ZH_Q,
        "--kb",
        str(kb_dir),
        "-m",
        "bm25",
        "--llm",
        f"{flavour}:{model}",
        "--base-url",
        down,
    )
    assert code == 7 and "connection refused" in err
    assert ("`ollama serve`" if flavour == "ollama" else "OPENAI_BASE_URL") in err
    assert "these are the passages retrieval found" in out

    url = server.url if flavour == "ollama" else server.openai_url
    code, out, err = run(
        capsys,
        "ask",
        ZH_Q,
        "--kb",
        str(kb_dir),
        "-m",
        "bm25",
        "--llm",
        f"{flavour}:nope",
        "--base-url",
        url,
        "--json",
    )
    assert code == 7
    if flavour == "ollama":
        assert 'model "nope" not found' in err and "`ollama pull nope`" in err
    else:
        assert "The model `nope` does not exist" in err and "Check the model name 'nope'" in err
    data = json.loads(out)
    assert data["answer"] is None and data["error"]["code"] == "backend_error"
    assert data["hits"] and data["hits"][0]["path"].endswith("农业保险办法.md")


def test_wrong_api_key_is_refused_and_never_repeated(
    server: FakeLLMServer,
    kb_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "sk-wrong-ALSO-SECRET-77aa"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    caplog.set_level(logging.DEBUG)
    code, out, err = run(capsys, "ask", ZH_Q, "--kb", str(kb_dir), "-m", "bm25", *llm_args("openai", server))
    assert code == 7
    assert "the API key was refused (HTTP 401: Incorrect API key provided: ***" in err
    assert "Set OPENAI_API_KEY (or ZHIKU_OPENAI_API_KEY) to a valid key" in err
    assert server.requests[-1].headers["Authorization"] == f"Bearer {wrong}"  # it was sent…
    assert wrong not in out + err + caplog.text  # …and never shown


def test_api_key_absent_from_exceptions_reprs_and_logs(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = make_backend(
        "openai",
        {
            "model": "deepseek-chat",
            "base_url": server.openai_url,
            "api_key": "sk-bad-CONFIG-KEY-000",
            "retries": 0,
        },
    )
    with pytest.raises(BackendError) as info:
        list(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
    texts = [
        str(info.value),
        repr(info.value),
        info.value.hint or "",
        repr(backend),
        repr(backend.options),
        repr(backend.client.http),
        caplog.text,
    ]  # type: ignore[attr-defined]
    cause = info.value.__cause__
    while cause is not None:
        texts.append(repr(cause))
        cause = cause.__cause__
    assert all("sk-bad-CONFIG-KEY-000" not in t for t in texts)

    monkeypatch.setenv("MY_KEY", KEY)
    ok = make_backend(
        "openai", {"model": "deepseek-chat", "base_url": server.openai_url, "api_key_env": "MY_KEY"}
    )
    assert "".join(ok.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0)).endswith("[1].")
    with pytest.raises(ConfigError, match="NOT_SET_VAR"):
        make_backend("openai", {"model": "m", "api_key_env": "NOT_SET_VAR"})


def test_bad_llm_specs(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ask", ZH_Q, "--kb", str(kb_dir), "--llm", "gpt:4")
    assert code == 3 and "unknown generator 'gpt'" in err and "ollama, openai" in err
    code, _, err = run(capsys, "ask", ZH_Q, "--kb", str(kb_dir), "--llm", "openai")
    assert code == 2 and "no model given for the openai backend" in err
    code, _, err = run(
        capsys, "ask", ZH_Q, "--kb", str(kb_dir), "--llm", "ollama:m", "--base-url", "gopher://x"
    )
    assert code == 2 and "not an http(s) URL" in err


# -- retries ---------------------------------------------------------------------------------------
def chat_backend(flavour: str, server: FakeLLMServer, **options: Any) -> Any:
    model = "qwen2.5:7b" if flavour == "ollama" else "deepseek-chat"
    url = server.url if flavour == "ollama" else server.openai_url
    return make_backend(flavour, {"model": model, "base_url": url, "api_key": KEY, **options})


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_429_and_503_are_retried_honouring_retry_after(flavour: str, server: FakeLLMServer) -> None:
    server.script(
        "chat",
        Step("status", status=429, body={"error": "slow down"}, headers={"Retry-After": "0"}),
        Step("status", status=503, body={"error": "loading"}, headers={"Retry-After": "0"}),
    )
    backend = chat_backend(flavour, server, retries=2)
    assert "".join(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0)).endswith(
        "[1]."
    )
    assert len(server.chat_requests()) == 3


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_a_chat_is_not_resent_after_a_500_or_a_timeout_and_retries_run_out(
    flavour: str, server: FakeLLMServer
) -> None:
    server.script("chat", Step("status", status=500, body={"error": "boom"}))
    backend = chat_backend(flavour, server, retries=3)
    with pytest.raises(BackendError, match="HTTP 500"):
        list(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
    assert len(server.chat_requests()) == 1  # not safe to repeat: the server may have done the work
    server.script("chat", Step("slow", delay=1.5))
    backend = chat_backend(flavour, server, retries=3, timeout=1)
    with pytest.raises(BackendError, match="no response within 1s"):
        list(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
    assert len(server.chat_requests()) == 2  # the server may still be generating: not re-sent
    server.script(
        "chat", *[Step("status", status=429, body={"error": "limit"}, headers={"Retry-After": "0"})] * 2
    )
    backend = chat_backend(flavour, server, retries=1)
    with pytest.raises(BackendError, match="rate-limited"):
        list(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
    assert len(server.chat_requests()) == 4


def test_connection_refused_is_retried_then_explained() -> None:
    from zhiku.generate.server import Server

    client = Server("ollama", f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01)
    with pytest.raises(BackendError, match="connection refused"):
        client.get_json("/api/tags")


# -- model lists and embeddings -----------------------------------------------------------------------
def test_model_lists(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from zhiku.generate.ollama import OllamaClient, ollama_base_url
    from zhiku.generate.openai_compat import OpenAIClient

    assert "bge-m3" in OllamaClient("x", server.url).models()
    monkeypatch.setenv("ZHIKU_OPENAI_API_KEY", KEY)
    assert "deepseek-chat" in OpenAIClient("x", server.openai_url).models()
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11434")
    assert ollama_base_url() == "http://127.0.0.1:11434"
    monkeypatch.setenv("ZHIKU_OLLAMA_BASE_URL", "http://gpu-box:11434/")
    assert ollama_base_url() == "http://gpu-box:11434"


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_remote_embedders_batch_retry_and_serve_dense_retrieval(
    flavour: str, server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", KEY)
    url = server.url if flavour == "ollama" else server.openai_url
    model = "bge-m3" if flavour == "ollama" else "text-embedding-3-small"
    server.script(
        "embed",
        Step("status", status=503, body={"error": "loading model"}, headers={"Retry-After": "0"}),
        Step("status", status=502, body={"error": "bad gateway"}, headers={"Retry-After": "0"}),
    )
    options = {"embedder": flavour, "model": model, "base_url": url, "batch_size": 2}
    if flavour == "openai":
        options["api_key_env"] = "MY_KEY"
    root = make_kb(tmp_path / "kb", remote=MethodConfig(kind="remote", enabled=True, options=options))
    with KnowledgeBase.open(str(root)) as kb:
        hits = kb.search("保险金 支付", k=3, method="remote")
        assert hits and hits[0].doc is not None and hits[0].doc.source.endswith("农业保险办法.md")
        manifest = kb.manifest("remote")
        assert (
            manifest
            and manifest["details"]["model"] == f"{flavour}:{model}"
            and manifest["details"]["dim"] == 64
        )
    embeds = [r for r in server.requests if "embed" in r.path]
    assert max(len(r.body["input"]) for r in embeds) <= 2  # batched
    assert all(
        r.headers.get("Authorization") == (f"Bearer {KEY}" if flavour == "openai" else None) for r in embeds
    )


def test_dense_kind_with_ollama_embedder_from_the_environment(
    server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    root = make_kb(
        tmp_path / "kb",
        m3=MethodConfig(kind="dense", enabled=True, options={"embedder": "ollama", "model": "bge-m3"}),
    )
    with KnowledgeBase.open(str(root)) as kb:
        assert kb.search("roses prune winter", k=1, method="m3")[0].doc.source.endswith("garden.md")  # type: ignore[union-attr]


def test_embedding_errors_name_the_model(server: FakeLLMServer) -> None:
    from zhiku.embed.remote import OllamaEmbedder

    with pytest.raises(BackendError, match=r'model "nomic" not found.*`ollama pull nomic`'):
        OllamaEmbedder(model="nomic", base_url=server.url).embed(["x"])
    with pytest.raises(ConfigError, match="needs a model name"):
        OllamaEmbedder(model="")


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_http_proxy_is_used_for_remote_hosts_but_never_for_this_machine(
    flavour: str, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the fake server plays the proxy
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = "qwen2.5:7b" if flavour == "ollama" else "deepseek-chat"
    path = "/api/chat" if flavour == "ollama" else "/v1/chat/completions"
    base = "http://llm.example.test:11434" + ("" if flavour == "ollama" else "/v1")
    remote = make_backend(flavour, {"model": model, "base_url": base})
    assert "".join(remote.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0)).endswith(
        "[1]."
    )
    assert server.proxied == [f"http://llm.example.test:11434{path}"]
    local = make_backend(
        flavour, {"model": model, "base_url": server.url + base[len("http://llm.example.test:11434") :]}
    )
    list(local.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
    assert len(server.proxied) == 1  # straight to 127.0.0.1
    assert len(server.chat_requests()) == 2


# -- behaviour that moved into the openai and httpx2 clients -----------------------------------------
def test_a_keyless_openai_compatible_server_gets_no_authorization_header() -> None:
    with FakeLLMServer() as keyless:  # a local vLLM or llama.cpp that checks no key
        backend = make_backend("openai", {"model": "deepseek-chat", "base_url": keyless.openai_url})
        assert "".join(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
        assert backend.client.models() == keyless.models
        assert all("Authorization" not in r.headers for r in keyless.requests)
        assert len(keyless.requests) == 2


def test_a_key_echoed_in_an_error_body_or_stream_event_is_never_shown(
    server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = chat_backend("openai", server, retries=0)
    error = {"error": {"message": f"invalid parameter for key {KEY}: temperature", "code": "bad"}}
    server.script("chat", Step("status", status=400, body=error), Step("stream-error", body=error))
    for expected in (
        r"rejected \(HTTP 400: invalid parameter for key \*\*\*: temperature\)",
        r"the server reported an error: invalid parameter for key \*\*\*: temperature",
    ):
        with pytest.raises(BackendError, match=expected) as info:
            list(backend.chat([{"role": "user", "content": "x"}], max_tokens=5, temperature=0))
        texts = [str(info.value), repr(info.value), repr(backend), repr(backend.client), caplog.text]
        # The chain a traceback or logging.exception shows: the cause, else an unsuppressed context.
        cause: BaseException | None = info.value
        while cause is not None:
            texts.append(repr(cause) + str(cause))
            cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
        assert all(KEY not in t for t in texts)
        assert "".join(traceback.format_exception(info.value)).count(KEY) == 0


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
def test_model_lists_and_embeddings_that_are_not_json(flavour: str, server: FakeLLMServer) -> None:
    from zhiku.generate.ollama import OllamaClient
    from zhiku.generate.openai_compat import OpenAIClient

    client = (
        OllamaClient("bge-m3", server.url)
        if flavour == "ollama"
        else OpenAIClient("bge-m3", server.openai_url, api_key=KEY)
    )
    path = "/api/tags" if flavour == "ollama" else "/models"
    server.script("models", Step("not-json"))
    with pytest.raises(BackendError, match=rf"{path} did not return JSON \(starts with '<html>"):
        client.models()
    server.script("embed", Step("not-json"))
    with pytest.raises(BackendError, match="did not return JSON"):
        client.embed(["x"])
    assert len(client.embed(["a", "b", "c"])) == 3
