"""A Hugging Face causal LM from a local folder, on the CPU: answers with no server and no network.

The folder is what ``save_pretrained`` (or ``huggingface-cli download … --local-dir``) writes:
``config.json``, weights, tokenizer files. Hugging Face offline mode is forced, so a wrong path is a
clear error here instead of a download attempt. The chat template of the tokenizer is used when it
has one (instruction-tuned models: Qwen2.5-Instruct, Llama-3-Instruct, ChatGLM…); a plain
"System/User/Assistant" layout otherwise. The model is loaded once per process and shared with the
``prompt-llm`` embedder.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from zhiku.errors import BackendError, NotFoundError
from zhiku.generate.llm import ChatBackend, LLMOptions, Message, register_backend
from zhiku.huggingface import offline_and_quiet

#: used when the model's config states no window
DEFAULT_WINDOW = 2048


def resolve_model_dir(model: str) -> Path:
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        what = "has no config.json" if path.is_dir() else "does not exist"
        raise NotFoundError(
            f"local model folder {model} {what}",
            "Download the model once (e.g. `huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct "
            "--local-dir DIR`) and use --llm local:DIR",
        )
    return path.resolve()


def model_window(path: Path) -> int:
    """The window from config.json, without importing torch."""
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_WINDOW
    for key in ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"):
        if isinstance(cfg.get(key), int) and cfg[key] > 0:
            return int(cfg[key])
    return DEFAULT_WINDOW


@lru_cache(maxsize=2)
def load_causal_lm(path: str, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, model) from a local folder, in eval mode; cached per process."""
    offline_and_quiet("the local LLM backend")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(
            f"local model {path} cannot be loaded: {str(e).splitlines()[0][:200]}",
            "Check that the folder holds a complete causal LM (config, weights, tokenizer files)",
        ) from e
    # transformers' stubs type `to` through a wrapper that mypy reads wrong
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return tokenizer, model


def render_chat(tokenizer: Any, messages: Sequence[Message]) -> tuple[str, bool]:
    """The prompt text, and whether it came from the model's chat template (special tokens included)."""
    if getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return str(text), True
        except Exception:  # noqa: BLE001  templates that reject a system role (Gemma): fold it in
            merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
            return str(
                tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
            ), True
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    parts = [f"{names.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant:", False


@register_backend
class LocalBackend(ChatBackend):
    kind = "local"
    default_window = DEFAULT_WINDOW

    def __init__(self, options: LLMOptions) -> None:
        super().__init__(options)
        self.path = resolve_model_dir(options.model)

    def describe(self) -> str:
        return f"local:{self.path.name}"

    def _load(self) -> tuple[Any, Any]:
        return load_causal_lm(str(self.path), self.options.device)

    def context_window(self) -> int:
        return self.options.context_window or model_window(self.path)

    def count_tokens(self, text: str) -> int:
        tokenizer, _ = self._load()
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def chat(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        tokenizer, model = self._load()
        prompt, templated = render_chat(tokenizer, messages)
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=not templated).to(model.device)
        length = int(enc["input_ids"].shape[1])
        window = model_window(self.path)
        if length >= window:
            raise BackendError(
                f"local model {self.path.name}: the prompt has {length} tokens, "
                f"the model's window is {window}",
                "Ask with a smaller -k, or set [generator.options] context_window lower so zhiku packs less",
            )
        streamer = TextIteratorStreamer(
            tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=self.options.timeout
        )
        kwargs: dict[str, Any] = {
            **enc,
            "streamer": streamer,
            "max_new_tokens": min(max_tokens, window - length),
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False)
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            kwargs["pad_token_id"] = tokenizer.eos_token_id
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    model.generate(**kwargs, **self.options.extra)
            except BaseException as e:  # noqa: BLE001  re-raised in the caller's thread below
                failure.append(e)
                streamer.end()

        # generate() blocks until done; the streamer hands its text over as it is decoded.
        worker = threading.Thread(target=run, name="zhiku-local-llm", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        except queue.Empty:
            raise BackendError(
                f"local model {self.path.name}: no new text for {self.options.timeout:g}s",
                "The model is too slow on this machine: use a smaller model or raise timeout",
            ) from None
        worker.join()
        if failure:
            raise BackendError(
                f"local model {self.path.name}: generation failed: {failure[0]}",
                "Check the model folder and the options in [generator.options] extra",
            ) from failure[0]
