"""Issue 29's figures: a KB that is honest while it grows, small writes after a kill, duplicates.

On a sub-corpus of the laws (``--data``, see its README), in separate processes as a user has them:

1. ``zhiku ingest`` of the first ``--first`` files, in the background: while its e5 build runs
   (its first: no dense index yet), another process searches ``--searches`` times with each
   method (bm25, hybrid, the default; dense, which has no index yet, must say why).
2. ``zhiku ingest`` of ``--docs`` more files, in the background: while dense is rebuilt (its last
   complete index now older than the catalog), another process searches with every method,
   dense included; then the ingest is killed (``kill -9``) in the middle of embedding.
3. After the kill: ``zhiku delete`` of one document and ``zhiku ingest`` of one new file, timed.
4. The first ``--copies`` files copied to another folder and ingested again: documents added.

Writes ``benchmarks/results/first_hour.json``. Run: ``nice -n 5 .venv/bin/python
benchmarks/first_hour.py --data ../shared/data/cn-laws-lawrefbook``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

QUERIES = [
    "农业保险合同可以随便解除吗",
    "种庄稼的保险能退吗",
    "公司拖欠工资怎么办",
    "税务登记需要哪些材料",
    "建设工程质量保修期限",
    "出口退税的条件",
    "食品安全事故的报告",
    "个人所得税的起征点",
    "土地承包经营权流转",
    "消防安全责任",
    "政府采购的方式有哪些",
    "外商投资企业的登记",
]

SEARCHER = r"""
import json, sys, time
from zhiku.service import KnowledgeBase
root, n, methods, queries = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), json.loads(sys.argv[4])
out = {}
kb = KnowledgeBase.open(root, create=False)  # one reader for the whole run, as a server has
for method in methods:
    rows = []
    for i in range(n):
        q = queries[i % len(queries)]
        t = time.perf_counter()
        try:
            hits = kb.search(q, 5, None if method == "default" else method)
            rows.append({"ok": True, "hits": len(hits), "parts_used": list(kb.parts_used),
                         "notes": list(kb.notes), "ms": round((time.perf_counter() - t) * 1000, 2)})
        except Exception as e:  # counted: the figure is how many searches failed, and why
            rows.append({"ok": False, "error": f"{type(e).__name__}: {e}",
                         "ms": round((time.perf_counter() - t) * 1000, 2)})
    out[method] = rows
kb.close()
print(json.dumps(out, ensure_ascii=False))
"""


CPU: dict[str, float] = {}  # CPU-seconds of the last zhiku() command (the machine is shared)


def zhiku(*args: str, timeout: float = 600) -> tuple[int, str, str, float]:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "zhiku", *args], capture_output=True, text=True, timeout=timeout
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t


def wait_for_build(
    kb: Path, method: str, proc: subprocess.Popen[bytes], timeout: float = 1800
) -> dict[str, Any]:
    """Until ``method``'s build has started in ``proc`` (its progress file shows embedded chunks)."""
    path = kb / ".progress" / f"{method}.json"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the ingest ended before {method} was being built (exit {proc.returncode})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("total"):
                return {"waited_s": round(time.time() - t0, 1), **data}
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{method} never started building")


def search_during(kb: Path, n: int, methods: list[str]) -> dict[str, Any]:
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", SEARCHER, str(kb), str(n), ",".join(methods), json.dumps(QUERIES)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if p.returncode:
        raise SystemExit(p.stderr)
    runs = json.loads(p.stdout)
    summary: dict[str, Any] = {"seconds": round(time.perf_counter() - t, 1)}
    for method, rows in runs.items():
        ok = [r for r in rows if r["ok"]]
        parts: dict[str, int] = {}
        for r in ok:
            key = "+".join(r["parts_used"])
            parts[key] = parts.get(key, 0) + 1
        ms = sorted(r["ms"] for r in rows)
        summary[method] = {
            "searches": len(rows),
            "errors": len(rows) - len(ok),
            "first_error": next((r["error"] for r in rows if not r["ok"]), None),
            "with_parts_used": sum(1 for r in ok if r["parts_used"]),
            "parts_used": parts,
            "example_note": next((r["notes"][0] for r in ok if r["notes"]), None),
            "p50_ms": ms[len(ms) // 2] if ms else None,
        }
    return summary


def status_lines(kb: Path) -> list[str]:
    _, out, _, _ = zhiku("status", "--kb", str(kb))
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def load() -> str:
    return Path("/proc/loadavg").read_text().strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/cn-laws-lawrefbook")
    ap.add_argument("--work", default="/tmp/zhiku-first-hour")
    ap.add_argument("--first", type=int, default=12, help="files of the first ingest")
    ap.add_argument("--docs", type=int, default=280, help="files of the second ingest")
    ap.add_argument("--copies", type=int, default=23, help="files ingested again from another path")
    ap.add_argument("--searches", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/results/first_hour.json")
    args = ap.parse_args()

    files = sorted(f for f in Path(args.data).rglob("*.md") if f.name != "README.md")
    step = max(1, len(files) // (args.first + args.docs + 1))
    chosen = files[::step]
    first, second, extra = chosen[: args.first], chosen[args.first : args.first + args.docs], chosen[-1]
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    kb = work / "kb"
    result: dict[str, Any] = {"load_at_start": load(), "files": {"first": len(first), "second": len(second)}}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    # 1. the first ingest: searches while its first dense build runs
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhiku", "ingest", *map(str, first), "--kb", str(kb)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    started = wait_for_build(kb, "dense", proc)
    result["first_build"] = {
        "dense_started_after_s": round(time.perf_counter() - t0, 1),
        "status_during": status_lines(kb),
        "searches": search_during(kb, args.searches, ["bm25", "hybrid", "default", "dense"]),
        "progress_at_start": {k: started.get(k) for k in ("done", "total")},
        "build_running_after_searches": proc.poll() is None,
    }
    proc.wait()
    result["first_build"]["ingest_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result["first_build"], ensure_ascii=False, indent=1), flush=True)

    # 2. a second ingest: searches while dense is rebuilt, then kill -9 in the middle of embedding
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhiku", "ingest", *map(str, second), "--kb", str(kb)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    started = wait_for_build(kb, "dense", proc, timeout=3600)
    rebuild: dict[str, Any] = {"dense_started_after_s": round(time.perf_counter() - t0, 1)}
    rebuild["status_during"] = status_lines(kb)
    rebuild["searches"] = search_during(kb, args.searches, ["bm25", "dense", "hybrid", "default"])
    rebuild["build_running_after_searches"] = proc.poll() is None
    progress = json.loads((kb / ".progress" / "dense.json").read_text(encoding="utf-8"))
    rebuild["killed_at"] = {k: progress.get(k) for k in ("done", "total")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result["rebuild"] = rebuild
    print(json.dumps(rebuild, ensure_ascii=False, indent=1), flush=True)

    # 3. small writes after the kill
    result["status_right_after_kill"] = status_lines(kb)
    victim = str(second[len(second) // 2])
    code, out, err, secs = zhiku("delete", victim, "--kb", str(kb))
    result["delete_after_kill"] = {
        "exit": code,
        "seconds": round(secs, 2),
        "cpu_seconds": CPU["last"],
        "load": load(),
        "output": (out + err).strip(),
    }
    code, out, err, secs = zhiku("ingest", str(extra), "--kb", str(kb))
    result["ingest_one_after_kill"] = {
        "exit": code,
        "seconds": round(secs, 2),
        "cpu_seconds": CPU["last"],
        "load": load(),
        "output": (out + err).strip(),
    }
    result["status_after_kill"] = status_lines(kb)

    # 4. the same files from another path
    copy = work / "elsewhere"
    copy.mkdir()
    for f in first[: args.copies]:
        shutil.copy2(f, copy / f.name)
    code, out, err, secs = zhiku("ingest", str(copy), "--kb", str(kb), "--json")
    report = json.loads(out) if code == 0 else {}
    result["same_files_other_path"] = {
        "exit": code,
        "files": len(list(copy.iterdir())),
        "added": len(report.get("added", [])),
        "duplicates": len(report.get("duplicates", [])),
        "seconds": round(secs, 2),
        "error": err.strip() or None,
    }
    result["load_at_end"] = load()
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {k: result[k] for k in ("delete_after_kill", "ingest_one_after_kill", "same_files_other_path")},
            ensure_ascii=False,
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
