"""The README's and docs/methods.md's zhiku.toml examples load and make their methods (nothing is
contacted)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from zhiku.config import KBConfig
from zhiku.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
#: the user docs whose method examples are checked (the README's moved to docs/methods.md, issue 29)
DOCS = [ROOT / "README.md", ROOT / "docs" / "methods.md"]


def test_readme_method_examples_are_valid(tmp_path: Path) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
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
