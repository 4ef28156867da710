"""Traditional vs Simplified Chinese: does folding scripts for matching help BM25? (issue 12)

    .venv/bin/python benchmarks/traditional.py [--limit N]

CMRC 2018 dev (../shared/data, Simplified) is converted to Traditional with OpenCC (``s2t``:
characters only; ``s2twp``: Taiwan characters *and* phrases, e.g. 软件 → 軟體, the harder case),
written to a temporary folder (never into the project), and scored with ``zhiku eval --methods
bm25`` twice per variant: ``--set tokenizer.fold_traditional=false`` (before) and ``=true`` (after,
the default). Writes benchmarks/results/traditional/summary.json and the "traditional" section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine, md_table, replace_section  # noqa: E402

# (name, OpenCC config for passages, for questions); None keeps the original Simplified text.
VARIANTS: list[tuple[str, str | None, str | None]] = [
    ("Simplified (original)", None, None),
    ("Traditional s2t, both sides", "s2t", "s2t"),
    ("Traditional s2twp, both sides", "s2twp", "s2twp"),
    ("s2twp passages, Simplified questions", "s2twp", None),
    ("Simplified passages, s2twp questions", None, "s2twp"),
]


def convert(data: dict, passages: str | None, questions: str | None) -> dict:
    import opencc

    p = opencc.OpenCC(passages) if passages else None
    q = opencc.OpenCC(questions) if questions else None
    for article in data["data"]:
        if p:
            article["title"] = p.convert(article["title"])
        for para in article["paragraphs"]:
            if p:
                para["context"] = p.convert(para["context"])
            for qa in para["qas"]:
                if q:
                    qa["question"] = q.convert(qa["question"])
                # Answers are only used for EM/F1 (not run here); keep them in the passage's script.
                if p:
                    for a in qa["answers"]:
                        a["text"] = p.convert(a["text"])
    return data


def zhiku_eval(path: Path, fold: bool, limit: int | None) -> tuple[list[str], dict]:
    cmd = [
        sys.executable,
        "-m",
        "zhiku",
        "eval",
        str(path),
        "--methods",
        "bm25",
        "--json",
        "--set",
        f"tokenizer.fold_traditional={'true' if fold else 'false'}",
        "--out",
        str(path.parent / f"out-{path.stem}-{int(fold)}"),
    ]
    if limit:
        cmd += ["--limit", str(limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return cmd, json.loads(out.stdout)["methods"]["bm25"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    args = ap.parse_args()
    original = json.loads((args.data / "cmrc2018" / "cmrc2018_dev.json").read_text(encoding="utf-8"))
    rows, results = [], []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, passages, questions) in enumerate(VARIANTS):
            data = convert(json.loads(json.dumps(original)), passages, questions)
            path = Path(tmp) / f"cmrc2018_dev_v{i}.json"
            path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            scores = {}
            for fold in (False, True):
                _, m = zhiku_eval(path, fold, args.limit)
                scores[fold] = m
                results.append(
                    {
                        "variant": name,
                        "passages": passages,
                        "questions": questions,
                        "fold_traditional": fold,
                        "hit@1": m["hit@1"],
                        "mrr@10": m["mrr@10"],
                    }
                )
                print(name, fold, round(m["hit@1"], 4), round(m["mrr@10"], 4), flush=True)
            rows.append(
                [
                    name,
                    f"{scores[False]['hit@1']:.3f}",
                    f"{scores[True]['hit@1']:.3f}",
                    f"{scores[False]['mrr@10']:.3f}",
                    f"{scores[True]['mrr@10']:.3f}",
                ]
            )
    out = RESULTS / "traditional"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    n = f"{args.limit} sampled" if args.limit else "all 3,219"
    body = f"""## Traditional and Simplified Chinese (issue 12)

CMRC 2018 dev ({n} questions, 848 passages) converted with OpenCC, bm25 only, before
(`--set tokenizer.fold_traditional=false`) and after (the default: text for matching is folded to
Simplified with OpenCC `t2s`; stored text and citations keep their script). `s2t` converts
characters only; `s2twp` also Taiwan phrasing (软件 → 軟體, 内存 → 記憶體), which `t2s` does not undo.
Command: `.venv/bin/python benchmarks/traditional.py` (each cell is `zhiku eval <converted>.json
--methods bm25 --set tokenizer.fold_traditional=false|true`); commit {commit()}; {machine()};
{time.time() - t0:.0f} s.

{md_table(["variant", "hit@1 before", "hit@1 after", "MRR@10 before", "MRR@10 after"], rows)}
"""
    replace_section("traditional", body)
    print(body)


if __name__ == "__main__":
    main()
