"""A remote embedding method over several OpenAI-compatible servers: two real loopback servers
speaking ``/v1/embeddings``; batches shared between them, a failing server left out, its batches
re-sent to the other, and a clear error when every server fails."""

from __future__ import annotations

import numpy as np
import pytest
from tests.integration.fake_llm_server import FakeLLMServer, Step

from zhiku.embed.base import embedders
from zhiku.errors import ConfigError, ZhikuError

TEXTS = [f"第{i}条 用人单位应当支付劳动者第{i}个月的工资报酬。" for i in range(40)]


def embeds(server: FakeLLMServer) -> int:
    return sum(1 for r in server.requests if r.path == "/v1/embeddings")


def make(urls: list[str], **options: object) -> object:
    return embedders.get("openai")(model="bge-m3", urls=urls, batch_size=4, dim=64, retries=1, **options)


def test_batches_are_shared_between_two_servers_in_order() -> None:
    with FakeLLMServer() as a, FakeLLMServer() as b:
        one = make([a.openai_url]).embed(TEXTS)  # type: ignore[attr-defined]
        before = embeds(a)
        # Each of a's replies takes 0.2 s, so b's thread always gets batches however late the OS
        # schedules it (on a busy machine a fast loopback server could otherwise drain them all).
        a.script("embed", *[Step("slow", delay=0.2)] * 10)
        seen: list[int] = []
        two = make([a.openai_url, b.openai_url]).embed(TEXTS, progress=seen.append)  # type: ignore[attr-defined]
    np.testing.assert_allclose(two, one, atol=1e-6)  # same rows, same order
    assert embeds(a) - before > 0 and embeds(b) > 0 and embeds(a) - before + embeds(b) == 10
    assert sum(seen) == len(TEXTS)


def test_a_failing_server_is_left_out_and_its_batch_goes_to_the_other() -> None:
    with FakeLLMServer() as a, FakeLLMServer() as b:
        reference = make([a.openai_url]).embed(TEXTS)  # type: ignore[attr-defined]
        b.script("embed", *[Step("status", status=503, body={"error": "overloaded"})] * 10)
        got = make([a.openai_url, b.openai_url]).embed(TEXTS)  # type: ignore[attr-defined]
        assert embeds(b) <= 2  # its first batch, tried once and retried once, then it is left out
    np.testing.assert_allclose(got, reference, atol=1e-6)


def test_every_server_failing_is_one_clear_error() -> None:
    with FakeLLMServer() as a, FakeLLMServer() as b:
        for server in (a, b):
            server.script("embed", *[Step("status", status=503, body={"error": "overloaded"})] * 50)
        with pytest.raises(ZhikuError) as err:
            make([a.openai_url, b.openai_url]).embed(TEXTS)  # type: ignore[attr-defined]
    assert "\n" not in err.value.one_line()


def test_urls_must_be_a_list() -> None:
    with pytest.raises(ConfigError):
        make("http://one:8080/v1")  # type: ignore[arg-type]
