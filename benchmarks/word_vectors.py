"""Issue 4 figures: corpus-trained TF-IDF / Word2Vec / Doc2Vec on the Chinese laws corpus, and on CMRC/SQuAD.

    .venv/bin/python benchmarks/word_vectors.py [--home DIR] [--corpora cmrc,squad] [--squad-limit 3000]
                                               [--out benchmarks/results/word_vectors.json]

1. ingests ../shared/data/cn-laws-lawrefbook into a KB ``laws`` (bm25 only, timed), unless --home has it;
2. trains and indexes tfidf, w2v-sg, w2v-cbow, d2v-dbow, d2v-dm (workers = 2, timed; the model manifest
   gives training time and vocabulary), and an L2 variant of w2v-sg for the design's demo query;
3. captures `zhiku words similar 保险`, an analogy that works on this corpus, and `zhiku search 农业保险`
   with L2 distances;
4. runs `zhiku eval benchmarks/data/laws_qa.jsonl --kb laws` over every method, the query expansion and
   RRF hybrids with bm25, and splits the scores into the direct and the paraphrased half of the QA set;
5. with --corpora, runs `zhiku eval` on CMRC 2018 dev and SQuAD 1.1 dev (temporary KBs) with the same methods.

Everything goes through the `zhiku` command a user would type. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LAWS = DATA / "cn-laws-lawrefbook"
QA = ROOT / "benchmarks" / "data" / "laws_qa.jsonl"
TRAINED = ["tfidf", "w2v-sg", "w2v-cbow", "d2v-dbow", "d2v-dm"]
#: extra methods of the laws KB: an L2 twin of w2v-sg (the design's demo shows L2 distances), the expansion
EXTRA_CONFIG = """
[methods.w2v-sg-l2]
kind = "w2v-sg"
options = { metric = "l2" }

[methods.bm25-expand]
kind = "bm25-expand"
"""
EVAL_METHODS = [
    "bm25",
    *TRAINED,
    "bm25-expand",
    "bm25+tfidf",
    "bm25+w2v-sg",
    "bm25+w2v-cbow",
    "bm25+d2v-dbow",
    "bm25+w2v-sg+d2v-dbow",
]
#: analogies tried on the laws corpus (A - B + C), with the model they are asked of
ANALOGIES = [
    ("w2v-sg", ("国王", "男人", "女人")),
    ("w2v-sg", ("男方", "男", "女")),
    ("w2v-sg", ("市长", "市", "省")),
    ("w2v-cbow", ("北京市", "北京", "广东")),
]
#: paraphrased questions of the QA set, searched with bm25 and with what helped them
DEMO_SEARCHES = [
    ("上班的时候在车间被机器弄伤了，算不算工伤？", ("bm25", "bm25-expand")),
    ("我上班三年了，一年能休几天带薪假？", ("bm25", "w2v-sg")),
]
CORPORA = {"cmrc": DATA / "cmrc2018" / "cmrc2018_dev.json", "squad": DATA / "squad-v1.1" / "dev-v1.1.json"}


def zhiku(*args: str, home: Path, check: bool = True) -> tuple[str, float]:
    env = {**os.environ, "ZHIKU_HOME": str(home)}
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "zhiku", *args], env=env, capture_output=True, text=True, cwd=ROOT
    )
    seconds = time.perf_counter() - t
    if check and done.returncode != 0:
        sys.exit(f"error: zhiku {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout + (done.stderr if done.returncode else ""), seconds


def split_scores(results: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """hit@1, hit@10 and MRR@10 of each method on the direct and the paraphrased questions."""
    kinds = {
        json.loads(line)["id"]: json.loads(line)["kind"]
        for line in QA.read_text(encoding="utf-8").splitlines()
    }
    out: dict[str, dict[str, dict[str, float]]] = {}
    for m in results["methods"]:
        out[m["method"]] = {}
        for kind in ("direct", "paraphrase"):
            ranks = [q["first_rank"] for q in m["per_query"] if kinds[q["query_id"]] == kind]
            n = len(ranks)
            out[m["method"]][kind] = {
                "hit@1": round(sum(1 for r in ranks if r and r <= 1) / n, 3),
                "hit@10": round(sum(1 for r in ranks if r and r <= 10) / n, 3),
                "mrr@10": round(sum(1 / r for r in ranks if r and r <= 10) / n, 3),
            }
    return out


def laws(home: Path, res: dict[str, Any], out_dir: Path) -> None:
    kb_dir = home / "laws"
    if not (kb_dir / "catalog.sqlite").exists():
        text, seconds = zhiku("ingest", str(LAWS), "--kb", "laws", home=home)
        res["ingest"] = {"seconds": round(seconds, 1), "output": text.strip().splitlines()}
    config = kb_dir / "zhiku.toml"
    if "[methods.w2v-sg-l2]" not in config.read_text(encoding="utf-8"):
        config.write_text(config.read_text(encoding="utf-8") + EXTRA_CONFIG, encoding="utf-8")
    builds: dict[str, Any] = {}
    for name in [*TRAINED, "w2v-sg-l2"]:
        text, seconds = zhiku("build", "--method", name, "--kb", "laws", home=home)
        row: dict[str, Any] = {"wall_seconds": round(seconds, 1), "output": text.strip()}
        manifest = kb_dir / "models" / name / "manifest.json"
        if manifest.exists():
            m = json.loads(manifest.read_text(encoding="utf-8"))
            row |= {
                "training_seconds": m["training_seconds"],
                "vocabulary": m["vocabulary"],
                "workers": m["workers"],
                "settings": m["settings"],
            }
        builds[name] = row
        print(
            f"built {name}: {row.get('training_seconds', '-')} s training, {seconds:.1f} s wall",
            file=sys.stderr,
        )
    res["builds"] = builds

    def lines(*args: str) -> list[str]:
        return zhiku(*args, "--kb", "laws", home=home, check=False)[0].strip().splitlines()

    for word in ("保险", "用人单位"):
        res[f"similar {word}"] = lines("words", "similar", word, "-m", "w2v-sg")
    for method, (a, b, c) in ANALOGIES:
        res[f"analogy {a} - {b} + {c} ({method})"] = lines(
            "words", "analogy", a, b, c, "-n", "3", "-m", method
        )
    res["search 农业保险 (w2v-sg, L2)"] = lines("search", "农业保险", "-m", "w2v-sg-l2", "-k", "5")
    for query, methods in DEMO_SEARCHES:
        for method in methods:
            res[f"search {query} ({method})"] = lines("search", query, "-m", method, "-k", "3")
    plot, _ = zhiku(
        "words",
        "plot",
        "-m",
        "w2v-sg",
        "保险",
        "用人单位",
        "农民",
        "--out",
        str(out_dir / "laws-words.png"),
        "--kb",
        "laws",
        home=home,
    )
    res["plot"] = plot.strip()
    eval_dir = home / "eval" / "laws"
    text, seconds = zhiku(
        "eval",
        str(QA),
        "--kb",
        "laws",
        "--methods",
        ",".join(EVAL_METHODS),
        "--out",
        str(eval_dir),
        home=home,
    )
    res["laws_eval"] = {"seconds": round(seconds, 1), "table": text.strip().splitlines()}
    res["laws_eval_split"] = split_scores(json.loads((eval_dir / "results.json").read_text(encoding="utf-8")))
    shutil.copyfile(eval_dir / "chart.png", out_dir / "laws-eval.png")


def corpora(home: Path, names: list[str], squad_limit: int, res: dict[str, Any], out_dir: Path) -> None:
    methods = [m for m in EVAL_METHODS if m != "bm25-expand"] + ["bm25-expand"]
    for name in names:
        eval_dir = home / "eval" / name
        args = [
            "eval",
            str(CORPORA[name]),
            "--methods",
            ",".join(methods),
            "--out",
            str(eval_dir),
        ]
        if name == "squad" and squad_limit:
            args += ["--limit", str(squad_limit)]
        text, seconds = zhiku(*args, home=home)
        res[f"{name}_eval"] = {
            "seconds": round(seconds, 1),
            "command": "zhiku " + " ".join(args),
            "table": text.strip().splitlines(),
        }
        shutil.copyfile(eval_dir / "chart.png", out_dir / f"{name}-eval.png")
        print(text, file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=None, help="ZHIKU_HOME to use (kept); default: a temporary folder")
    ap.add_argument("--corpora", default="", help="also evaluate on: cmrc,squad")
    ap.add_argument("--squad-limit", type=int, default=3000, help="SQuAD questions sampled (0 = all 10,570)")
    ap.add_argument("--skip-laws", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "word_vectors.json"))
    args = ap.parse_args()
    if not LAWS.is_dir():
        sys.exit(f"error: {LAWS} not found. The benchmark reads ../shared/data beside the repository")
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="zhiku-w2v-"))
    out = Path(args.out)
    out_dir = out.with_suffix("")
    out_dir.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"home": str(home), "cpus": os.cpu_count()}
    if out.exists():
        res = {**json.loads(out.read_text(encoding="utf-8")), **res}
    if not args.skip_laws:
        laws(home, res, out_dir)
    corpora(home, [c for c in args.corpora.split(",") if c], args.squad_limit, res, out_dir)
    out.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
