"""The official ``openai`` client against zhiku's OpenAI-compatible endpoints, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web API needs fastapi, uvicorn and python-multipart")
openai = pytest.importorskip("openai", reason="these tests drive the API with the official openai client")

from tests.helpers.corpus import fast_config  # noqa: E402
from tests.helpers.live_server import LiveServer, home_with_docs_kb, live_server  # noqa: E402

from zhiku.config import KBConfig, MethodConfig  # noqa: E402
from zhiku.embed.hashing import HashingEmbedder  # noqa: E402
from zhiku.service import KnowledgeBase  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = home_with_docs_kb(tmp_path_factory.mktemp("openai") / "home")
    lexical = KBConfig(methods={"bm25": MethodConfig(kind="bm25")})
    KnowledgeBase.open("lexical", home=home, config=lexical).close()
    with live_server(home, api_key="test-key") as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="test-key", max_retries=0, timeout=60)


def test_models_are_knowledge_bases(client: Any) -> None:
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["docs", "lexical"]
    assert client.models.retrieve("docs").owned_by == "zhiku"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_completion_cites_its_sources(client: Any) -> None:
    reply = client.chat.completions.create(
        model="docs",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "How much sunlight do tomatoes need?"},
        ],
    )
    text = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    assert "six hours of direct sunlight" in text and "[1]" in text
    assert "Sources:\n[1] Gardening guide > Tomatoes" in text
    citations = reply.model_extra["citations"]
    assert citations[0]["n"] == 1 and citations[0]["title"] == "Gardening guide"
    assert citations[0]["url"].startswith("/kbs/docs/documents/")

    # zhiku: prefix, Chinese question, content parts, zhiku's own options through extra_body.
    reply = client.chat.completions.create(
        model="zhiku:docs",
        messages=[{"role": "user", "content": [{"type": "text", "text": "保险金应当在几日内支付？"}]}],
        extra_body={"k": 3, "method": "bm25"},
    )
    text = reply.choices[0].message.content
    assert "十日内" in text and "来源：\n[1] 示例农业保险办法 > 第二章 农业保险合同" in text


def test_chat_completion_streams(client: Any) -> None:
    question = [{"role": "user", "content": "How much sunlight do tomatoes need?"}]
    whole = client.chat.completions.create(model="docs", messages=question)
    chunks = list(client.chat.completions.create(model="docs", messages=question, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] == whole.model_extra["citations"]


def test_chat_errors(client: Any, server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert "each knowledge base is a model" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="docs", messages=[{"role": "assistant", "content": "hello"}])
    assert "no user message" in str(e.value)
    unauthorised = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    # Reads are open on loopback, so the wrong key still gets an answer; the key guards writes.
    assert unauthorised.chat.completions.create(model="docs", messages=[{"role": "user", "content": "roses"}])


def test_embeddings_use_the_kb_dense_model(client: Any) -> None:
    texts = ["Tomatoes need sunlight.", "保险机构应当支付保险金。"]
    expected = HashingEmbedder(dim=128).embed(texts)
    default = client.embeddings.create(model="docs", input=texts)  # the client asks for base64
    floats = client.embeddings.create(model="docs", input=texts, encoding_format="float")
    for result in (default, floats):
        got = np.array([d.embedding for d in result.data], dtype=np.float32)
        assert got.shape == (2, 128) and [d.index for d in result.data] == [0, 1]
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert floats.usage.prompt_tokens > 0
    one = client.embeddings.create(model="docs", input="Tomatoes need sunlight.", encoding_format="float")
    np.testing.assert_allclose(one.data[0].embedding, expected[0], atol=1e-6)

    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="lexical", input="x")
    assert "has no dense method" in str(e.value)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="docs", input=["ok", ""])
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(model="docs", input=[[1, 2, 3]])  # token arrays


def test_auth_applies_to_the_openai_endpoints_beyond_loopback(tmp_path: Path) -> None:
    KnowledgeBase.open("docs", home=tmp_path / "home", config=fast_config()).close()
    with live_server(tmp_path / "home", api_key="k", auth_reads=True) as server:
        good = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
        bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0)
        assert [m.id for m in good.models.list()] == ["docs"]
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
