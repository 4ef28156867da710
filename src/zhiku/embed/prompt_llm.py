"""Sentence vectors from a generative LLM under a prompt: the last token's hidden state.

The prompt asks the model to compress the sentence into the next word, so the hidden state of the
last prompt token summarises the sentence (PromptEOL, Jiang et al. 2023). "Simple Techniques for
Enhancing Sentence Embeddings in Generative Language Models" (Zhang, Chang & Li, arXiv 2404.03921)
adds two inference-time prompts, Pretended Chain of Thought and Knowledge Enhancement; PromptSTH and
PromptSUM are the prompts used there for fine-tuning. The templates below are the paper's, word for
word (spaces before the punctuation included); the Chinese variants are our translations.

With a ``local`` model folder the pooling is done here. With an Ollama or OpenAI-compatible server
the prompted text is sent to its embedding endpoint, and the server pools its own way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.base import Embedder, embedders, l2_normalize
from zhiku.errors import ConfigError

SLOT = "[X]"

#: name -> language -> template; SLOT is replaced by the (quote-sanitised) sentence
TEMPLATES: dict[str, dict[str, str]] = {
    "eol": {  # PromptEOL
        "en": 'This sentence : "[X]" means in one word:"',
        "zh": "这句话：“[X]”用一个词来概括就是：“",
    },
    "sth": {  # PromptSTH
        "en": 'This sentence : "[X]" means something',
        "zh": "这句话：“[X]”的意思是",
    },
    "sum": {  # PromptSUM
        "en": 'This sentence : "[X]" can be summarized as',
        "zh": "这句话：“[X]”可以概括为",
    },
    "cot": {  # Pretended Chain of Thought
        "en": 'After thinking step by step , this sentence : "[X]" means in one word:"',
        "zh": "经过一步一步的思考，这句话：“[X]”用一个词来概括就是：“",
    },
    "ke": {  # Knowledge Enhancement
        "en": (
            "The essence of a sentence is often captured by its main subjects and actions, while descriptive "
            'terms provide additional but less central details. With this in mind , this sentence : "[X]" '
            'means in one word:"'
        ),
        "zh": (
            "一个句子的要义通常由它的主要主语和动作体现，而描述性的词语提供的是补充性的、不那么核心的细节。"
            "考虑到这一点，这句话：“[X]”用一个词来概括就是：“"
        ),
    },
    "none": {"en": SLOT, "zh": SLOT},  # the text as it is (an embedding model, not a chat model)
}
ALIASES = {
    "prompteol": "eol",
    "promptsth": "sth",
    "promptsum": "sum",
    "pretended-cot": "cot",
    "knowledge-enhancement": "ke",
}


def template_text(template: str, language: str) -> str:
    """A template by name (or alias), or a custom template string that contains ``[X]``."""
    if SLOT in template:
        return template
    name = ALIASES.get(template.lower(), template.lower())
    if name not in TEMPLATES:
        raise ConfigError(
            f"unknown prompt template {template!r}",
            f"Choose one of: {', '.join(TEMPLATES)} (or a custom template containing {SLOT})",
        )
    return TEMPLATES[name]["zh" if language == "zh" else "en"]


def apply_template(text: str, template: str, language: str = "en") -> str:
    """The prompt for one sentence, prepared as in the PromptEOL code: the sentence is closed with a
    full stop and its quotes are changed so it cannot close the template's quote early."""
    tpl = template_text(template, language)
    if tpl == SLOT:
        return text
    text = " ".join(text.split())
    if language == "zh":
        text = text.replace("“", "「").replace("”", "」").replace('"', "'")
        if text and text[-1] not in "。！？.!?」'":
            text += "。"
    else:
        text = text.replace('"', "'")
        if text and text[-1] not in ".?!'":
            text += "."
    return tpl.replace(SLOT, text)


class PromptLLMEmbedder(Embedder):
    """Last-token hidden state of a local causal LM under a prompt template."""

    name = "prompt-llm"

    def __init__(
        self,
        model: str = "",
        template: str = "eol",
        template_language: str = "en",
        batch_size: int = 8,
        max_seq_length: int | None = 256,
        device: str = "cpu",
        languages: Sequence[str] | None = None,
        **_: Any,
    ) -> None:
        from zhiku.generate.local import resolve_model_dir

        if not model:
            raise ConfigError(
                "the prompt-llm embedder needs a model folder",
                "Set options.model = '/path/to/a/causal/LM' (e.g. Qwen2.5-0.5B)",
            )
        self.path = resolve_model_dir(model)
        template_text(template, template_language)  # fail now on an unknown name
        self.template, self.template_language = template, template_language
        self.model_id = f"prompt-llm:{self.path.name}"
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.device = device
        if languages:
            self.languages = frozenset(languages)
        self.dim = _hidden_size(self.path)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "template": self.template,
            "template_language": self.template_language,
            "pooling": "last-token",
            "max_seq_length": self.max_seq_length,
        }

    def _truncate(self, tokenizer: Any, texts: Sequence[str]) -> list[str]:
        """Cut the sentence (not the prompt: its last token is the vector) to max_seq_length tokens."""
        if not self.max_seq_length:
            return list(texts)
        out = []
        for text, ids in zip(
            texts, tokenizer(list(texts), add_special_tokens=False)["input_ids"], strict=True
        ):
            out.append(
                text
                if len(ids) <= self.max_seq_length
                else tokenizer.decode(ids[: self.max_seq_length], skip_special_tokens=True)
            )
        return out

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        from zhiku.generate.local import load_causal_lm

        tokenizer, model = load_causal_lm(str(self.path), self.device)
        prompts = [
            apply_template(t, self.template, self.template_language) for t in self._truncate(tokenizer, texts)
        ]
        rows = tokenizer(prompts)["input_ids"]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        width = max(len(r) for r in rows)
        # Left padding puts every prompt's last token in the last column; explicit position ids keep
        # the padded prompts' positions the same as unpadded ones.
        ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in rows], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions)
        hidden = out.last_hidden_state[:, -1, :].float().cpu().numpy()
        return l2_normalize(hidden)


class TemplatedEmbedder(Embedder):
    """A remote embedder fed prompted text: the paper's templates, the server's own pooling."""

    name = "prompt-llm-remote"

    def __init__(
        self, inner: str, inner_options: dict[str, Any], template: str, template_language: str, **_: Any
    ) -> None:
        template_text(template, template_language)
        self.inner = embedders.get(inner)(**inner_options)
        inner_emb = self.inner
        self.template, self.template_language = template, template_language
        self.model_id = inner_emb.model_id
        self.batch_size = inner_emb.batch_size
        self.languages = inner_emb.languages

    @property
    def dim(self) -> int:
        return self.inner.dim

    @dim.setter
    def dim(self, value: int) -> None:
        self.inner.dim = value

    def describe(self) -> dict[str, Any]:
        return {
            **self.inner.describe(),
            "template": self.template,
            "template_language": self.template_language,
        }

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_batch(
            [apply_template(t, self.template, self.template_language) for t in texts]
        )


def _hidden_size(path: Path) -> int:
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    for key in ("hidden_size", "n_embd", "d_model"):
        if isinstance(cfg.get(key), int):
            return int(cfg[key])
    text = cfg.get("text_config") or {}
    return int(text.get("hidden_size", 0)) if isinstance(text, dict) else 0


embedders.add("prompt-llm", PromptLLMEmbedder)
embedders.add("prompt-llm-remote", TemplatedEmbedder)
