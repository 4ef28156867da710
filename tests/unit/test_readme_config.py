"""The README's zhiku.toml examples load and make their methods (nothing is contacted)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from zhiku.config import KBConfig
from zhiku.service import KnowledgeBase

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_method_examples_are_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    examples = [tomllib.loads(b) for b in blocks if "[methods." in b]
    assert examples, "the README shows method examples"
    kinds = set()
    for data in examples:
        config = KBConfig.model_validate(data)
        with KnowledgeBase.open(tmp_path / "kb", config=config) as kb:
            for name, method in config.methods.items():
                kb.method(name)  # unknown kinds or options (e.g. backend = "ollama") fail here
                kinds.add(method.kind)
    assert {"remote", "fusion"} <= kinds
