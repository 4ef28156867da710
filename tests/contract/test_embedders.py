"""One conformance suite for every registered embedder, each running its real code here.

Servers are a loopback server speaking the Ollama and OpenAI wire formats; the PromptEOL embedder
loads a tiny randomly initialised causal LM saved to a temp folder; the corpus-trained embedders
are fitted on a small corpus first. A guard fails when a registered embedder is not in the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.helpers.word_corpus import topic_documents
from tests.integration.fake_llm_server import FakeLLMServer

from zhiku.embed.base import Embedder, embedders
from zhiku.text.tokenize import make_tokenizer
from zhiku.types import Corpus

TEXTS = [
    "Tomatoes need six hours of sunlight.",
    "Prune roses in late winter.",
    "番茄每天需要六小时日照。",
    "",
]
QUERY = "how many hours of sun do tomatoes need"


def _tiny_causal_lm(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted({w for t in [*TEXTS, QUERY] for w in t.replace(".", " ").split()})
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def _fitted(name: str, **options: Any) -> Embedder:
    tokenizer = make_tokenizer()
    docs = [text for _, _, text in topic_documents(per_topic=3, sentences=12)] + TEXTS[:3] * 5
    tokens = [tokenizer(t) for t in docs]
    ids = [f"c{i}" for i in range(len(docs))]
    corpus = Corpus(ids, docs, [""] * len(docs), ids, tokens, "test", "mixed")
    emb = embedders.get(name)(tokenizer=tokenizer, dim=16, min_count=1, epochs=5, workers=1, **options)
    emb.fit(corpus)
    return emb


#: name -> factory(server, tmp folder); ``SEMANTIC``: embedders whose vectors mean something here
FACTORIES: dict[str, Callable[[FakeLLMServer, Path], Embedder]] = {
    "hashing": lambda s, d: embedders.get("hashing")(),
    "sbert": lambda s, d: embedders.get("sbert")(),
    "e5": lambda s, d: embedders.get("e5")(),
    "ollama": lambda s, d: embedders.get("ollama")(model="bge-m3", base_url=s.url),
    "openai": lambda s, d: embedders.get("openai")(model="text-embedding-3-small", base_url=s.url + "/v1"),
    "prompt-llm": lambda s, d: embedders.get("prompt-llm")(model=str(_tiny_causal_lm(d)), template="eol"),
    "prompt-llm-remote": lambda s, d: embedders.get("prompt-llm-remote")(
        inner="ollama",
        inner_options={"model": "bge-m3", "base_url": s.url},
        template="eol",
        template_language="en",
    ),
    "word2vec": lambda s, d: _fitted("word2vec"),
    "doc2vec": lambda s, d: _fitted("doc2vec"),
}
#: random or tiny models: their vectors are real but carry no meaning to test
NOT_SEMANTIC = {"prompt-llm", "word2vec", "doc2vec"}


def test_every_registered_embedder_is_in_the_suite() -> None:
    assert set(embedders.names()) == set(FACTORIES), "add the new embedder's factory to FACTORIES"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(dim=64) as s:
        yield s


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def embedder(
    request: pytest.FixtureRequest, server: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Embedder:
    return FACTORIES[request.param](server, tmp_path_factory.mktemp(request.param))


def test_shape_dtype_and_norm(embedder: Embedder) -> None:
    v = embedder.embed(TEXTS)
    assert v.shape == (len(TEXTS), embedder.dim) and v.dtype == np.float32
    if embedder.normalized:
        norms = np.linalg.norm(v[:3], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_deterministic_and_batch_independent(embedder: Embedder) -> None:
    a = embedder.embed(TEXTS)
    b = np.vstack([embedder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_queries_have_the_documents_shape(embedder: Embedder) -> None:
    q = embedder.embed_queries([QUERY, "番茄 日照"])
    assert q.shape == (2, embedder.dim) and q.dtype == np.float32


def test_related_texts_are_closer(embedder: Embedder) -> None:
    if embedder.name in NOT_SEMANTIC:
        pytest.skip(f"{embedder.name} runs a random or tiny model here: its vectors carry no meaning")
    q = embedder.embed_queries([QUERY])[0]
    d = embedder.embed(TEXTS[:2])
    assert d[0] @ q > d[1] @ q


def test_describe_names_the_model(embedder: Embedder) -> None:
    desc = embedder.describe()
    assert desc["dim"] == embedder.dim and desc["model"]
