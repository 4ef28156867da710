"""`import zhiku` and `zhiku --help` must stay fast: no heavy library may load."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "torch",
    "gensim",
    "faiss",
    "sentence_transformers",
    "transformers",
    "fastapi",
    "matplotlib",
    "jieba",
    "bm25s",
    "pymilvus",
    "pydantic",
    "openai",
    "httpx2",
    "qdrant_client",
    "langchain_core",
    "llama_index",
]


def test_import_and_help_load_nothing_heavy() -> None:
    code = (
        "import sys, io, contextlib, zhiku, zhiku.cli.app\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try: zhiku.cli.app.main(['--help'])\n"
        "    except SystemExit: pass\n"
        "assert 'ingest' in buf.getvalue()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"heavy modules imported: {out}"
