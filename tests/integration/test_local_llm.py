"""The `local` backend and `prompt-llm` embeddings, on tiny causal LMs the test builds and saves.

Nothing is downloaded. Two Llama-architecture models of one layer are written with
``save_pretrained`` and loaded back through zhiku's real loading code:

- a *bigram* model for answers: attention and MLP outputs are zeroed, so the last hidden state is
  the current token's (one-hot) embedding, and ``lm_head`` maps each token to a chosen next token.
  Greedy decoding after the chat template's ``Assistant:`` is then exactly
  "According to the context [1]." — a real ``generate()`` with a deterministic answer;
- a randomly initialised model for sentence embeddings (last-token hidden state under a prompt).

Also: ``zhiku eval --methods fusion,prompt-llm`` end to end (fusion through the loopback server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.corpus import EN_GUIDE
from tests.integration.fake_llm_server import FakeLLMServer
from tests.integration.test_llm_backends import make_kb, run

from zhiku.config import MethodConfig
from zhiku.embed.prompt_llm import TEMPLATES, PromptLLMEmbedder, apply_template, template_text
from zhiku.errors import ConfigError
from zhiku.generate.llm import make_backend
from zhiku.generate.local import render_chat
from zhiku.service import KnowledgeBase

ANSWER = ["According", "to", "the", "context", "[1]", "."]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
EN_Q = "When should roses be pruned?"


def _tokenizer(words: list[str], split_punctuation: bool) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def _config(vocab: int, hidden: int, layers: int = 1) -> object:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
        tie_word_embeddings=False,
    )


@pytest.fixture(scope="module")
def bigram_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    tok = _tokenizer(["Assistant:", *ANSWER], split_punctuation=False)
    tok.chat_template = CHAT_TEMPLATE  # type: ignore[attr-defined]
    vocab = tok.get_vocab()  # type: ignore[attr-defined]
    size = len(vocab)
    torch.manual_seed(0)
    hidden = size + size % 2  # one column per token (heads need an even size)
    model = LlamaForCausalLM(_config(size, hidden=hidden))  # type: ignore[arg-type]
    chain = dict(zip(["Assistant:", *ANSWER], [*ANSWER, "</s>"], strict=True))
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(size, hidden))
        head = torch.zeros(size, hidden)
        for current, following in chain.items():
            head[vocab[following], vocab[current]] = 10.0
        model.lm_head.weight.copy_(head)
    folder = tmp_path_factory.mktemp("bigram-llm")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    words = sorted(set(EN_GUIDE.replace("#", " ").replace(".", " ").replace(",", " ").split()))
    tok = _tokenizer(
        words + list(TEMPLATES["ke"]["en"].replace('"', " ").split()) + ['"', ":", ".", ",", "'"],
        split_punctuation=True,
    )
    torch.manual_seed(1)
    model = LlamaForCausalLM(_config(len(tok.get_vocab()), hidden=32, layers=2))  # type: ignore[attr-defined,arg-type]
    folder = tmp_path_factory.mktemp("random-llm")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


# -- local answers ---------------------------------------------------------------------------------
def test_ask_with_a_local_model_streams_a_cited_answer(
    bigram_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_kb(tmp_path / "kb")
    code, out, err = run(
        capsys, "ask", EN_Q, "--kb", str(root), "-m", "bm25", "--llm", f"local:{bigram_model}"
    )
    assert code == 0, err
    assert out.startswith("According to the context [1].\n")
    assert "Sources:\n  [1] Gardening guide › Gardening guide > Roses" in out
    code, out, err = run(
        capsys, "ask", EN_Q, "--kb", str(root), "-m", "bm25", "--llm", f"local:{bigram_model}", "--json"
    )
    data = json.loads(out)
    assert data["generator"] == f"local:{bigram_model.name}" and data["citations"][0]["n"] == 1


def test_local_backend_streams_pieces_and_counts_real_tokens(bigram_model: Path) -> None:
    backend = make_backend("local", {"model": str(bigram_model), "temperature": 0})
    pieces = list(
        backend.chat(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}],
            max_tokens=20,
            temperature=0,
        )
    )
    assert len([p for p in pieces if p.strip()]) >= 3 and "".join(pieces) == "According to the context [1]."
    assert backend.count_tokens("According to the context") == 4  # the model's tokenizer, not the estimate
    assert backend.context_window() == 1024  # from config.json
    assert make_backend("local", {"model": str(bigram_model), "context_window": 512}).context_window() == 512


def test_chat_template_or_plain_layout(bigram_model: Path) -> None:
    from zhiku.generate.local import load_causal_lm

    tokenizer, _ = load_causal_lm(str(bigram_model))
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert render_chat(tokenizer, messages) == ("system: S user: U Assistant:", True)

    class Plain:
        chat_template = None

    assert render_chat(Plain(), messages) == ("System: S\n\nUser: U\n\nAssistant:", False)


def test_local_failures_are_explained(
    bigram_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_kb(tmp_path / "kb")
    code, _, err = run(capsys, "ask", EN_Q, "--kb", str(root), "--llm", f"local:{tmp_path / 'nowhere'}")
    assert code == 3 and "does not exist" in err and "huggingface-cli download" in err
    backend = make_backend("local", {"model": str(bigram_model)})
    long_prompt = [{"role": "user", "content": "word " * 1100}]
    from zhiku.errors import BackendError

    with pytest.raises(BackendError, match="the prompt has 1102 tokens, the model's window is 1024"):
        list(backend.chat(long_prompt, max_tokens=5, temperature=0))


# -- prompt-based sentence embeddings ------------------------------------------------------------------
def test_templates_are_the_papers() -> None:
    assert apply_template("A man is playing a guitar", "eol") == (
        'This sentence : "A man is playing a guitar." means in one word:"'
    )
    assert apply_template('He said "hi".', "cot") == (
        'After thinking step by step , this sentence : "He said \'hi\'." means in one word:"'
    )
    assert apply_template("x.", "sth") == 'This sentence : "x." means something'
    assert apply_template("x.", "PromptSUM") == 'This sentence : "x." can be summarized as'
    assert template_text("ke", "en").startswith(
        "The essence of a sentence is often captured by its main subjects"
    )
    assert (
        apply_template("保险金十日内支付", "eol", "zh") == "这句话：“保险金十日内支付。”用一个词来概括就是：“"
    )
    assert apply_template("raw text", "none") == "raw text"
    assert apply_template("x", "Query: [X] ->") == "Query: x. ->"
    with pytest.raises(ConfigError, match="unknown prompt template 'eos'"):
        template_text("eos", "en")


def test_prompt_llm_vectors_are_last_token_states_padding_free(random_model: Path) -> None:
    emb = PromptLLMEmbedder(model=str(random_model), template="eol", batch_size=4)
    assert emb.dim == 32 and emb.describe()["template"] == "eol"
    texts = [
        "Tomatoes need at least six hours of direct sunlight every day.",
        "Prune roses in late winter.",
        "Water them deeply twice a week.",
    ]
    batch = emb.embed(texts)
    assert batch.shape == (3, 32) and np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([emb.embed([t]) for t in texts])
    assert np.allclose(batch, alone, atol=1e-4)  # left padding + position ids: batching changes nothing
    assert not np.allclose(batch[0], batch[1])
    ke = PromptLLMEmbedder(model=str(random_model), template="ke").embed(texts[:1])
    assert not np.allclose(ke[0], batch[0])
    short = PromptLLMEmbedder(model=str(random_model), template="eol", max_seq_length=3).embed(texts[:1])
    assert short.shape == (1, 32) and not np.allclose(short[0], batch[0])


def test_prompt_llm_method_in_a_kb(
    random_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_kb(
        tmp_path / "kb",
        eol=MethodConfig(kind="prompt-llm", options={"model": str(random_model), "template": "cot"}),
    )
    code, out, err = run(capsys, "search", "roses winter", "--kb", str(root), "-m", "eol", "--json")
    assert code == 0, err
    hits = json.loads(out)
    with KnowledgeBase.open(str(root)) as kb:
        assert len(hits) == kb.catalog.chunk_count() and {h["method"] for h in hits} == {"eol"}
        details = kb.manifest("eol")["details"]  # type: ignore[index]
        # "auto": the KB's language picks the template's (Chinese only for a mostly Chinese KB)
        assert details["template"] == "cot"
        assert details["template_language"] == ("zh" if kb.language() == "zh" else "en")
        assert details["pooling"] == "last-token" and details["dim"] == 32


def test_prompt_llm_with_a_remote_embedding_endpoint(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        root = make_kb(
            tmp_path / "kb",
            eol=MethodConfig(
                kind="prompt-llm",
                options={
                    "embedder": "ollama",
                    "model": "bge-m3",
                    "base_url": server.url,
                    "template": "eol",
                    "template_language": "en",
                },
            ),
        )
        with KnowledgeBase.open(str(root)) as kb:
            assert kb.search("prune roses", k=2, method="eol")
        sent = [t for r in server.requests if r.path == "/api/embed" for t in r.body["input"]]
    assert all(t.startswith('This sentence : "') and t.endswith('" means in one word:"') for t in sent[1:])


# -- zhiku eval ------------------------------------------------------------------------------------------
@pytest.fixture
def fusion_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        s.reply = lambda messages: "prune roses winter\ntomatoes sunlight hours"
        yield s


def test_eval_fusion_and_prompt_llm_end_to_end(
    random_model: Path, fusion_server: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paragraphs = [
        (
            "Roses",
            "Prune roses in late winter, before new growth starts.",
            "When are roses pruned?",
            "late winter",
        ),
        (
            "Tomatoes",
            "Tomatoes need at least six hours of direct sunlight every day.",
            "How much sun do tomatoes need?",
            "six hours",
        ),
        ("Water", "Water them deeply twice a week.", "How often to water?", "twice a week"),
    ]
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": t,
                "paragraphs": [
                    {
                        "context": c,
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": q,
                                "answers": [{"text": a, "answer_start": c.find(a)}],
                            }
                        ],
                    }
                ],
            }
            for i, (t, c, q, a) in enumerate(paragraphs)
        ],
    }
    dataset = tmp_path / "garden.json"
    dataset.write_text(json.dumps(squad), encoding="utf-8")
    config = tmp_path / "zhiku.toml"
    config.write_text(
        '[methods.fusion]\nkind = "fusion"\n'
        f'options = {{ llm = "ollama:qwen2.5:7b", base_url = "{fusion_server.url}", queries = 2, '
        'of = ["bm25"] }\n'
        '[methods.prompt-llm]\nkind = "prompt-llm"\n'
        f'options = {{ model = "{random_model}", template = "ke" }}\n',
        encoding="utf-8",
    )
    out_dir = tmp_path / "report"
    code, out, err = run(
        capsys,
        "eval",
        str(dataset),
        "--methods",
        "fusion,prompt-llm",
        "--config",
        str(config),
        "--out",
        str(out_dir),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["methods"]) == {"fusion", "prompt-llm"}
    for scores in summary["methods"].values():
        assert 0.0 <= scores["mrr@10"] <= 1.0
    assert summary["methods"]["fusion"]["hit@1"] == 1.0  # bm25 on the original question already finds them
    assert len(fusion_server.chat_requests()) == 3  # one per question, cached for the latency pass
    assert (out_dir / "results.json").exists()
