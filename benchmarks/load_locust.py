"""Load on a real ``zhiku serve`` with Locust (issue 28): a locustfile, and the driver that runs it.

    .venv/bin/python benchmarks/load_locust.py [--seconds 300] [--runs search,mixed,stream]
        [--home HOME] [--kb laws] [--corpus ../shared/data/cn-laws-lawrefbook] [--users 32]
        [--out benchmarks/results/load_locust.json]

The KB: ``HOME/KB`` (default ``$TMPDIR/zhiku-load/laws``), made the first time from ``--corpus``
(``zhiku ingest CORPUS --kb laws --methods bm25``: BM25 only, about a minute). Each invocation
serves a fresh copy of it, so the uploads of one run never change the next.

Runs (each on the same server, one after the other, headless, ``--users`` users, no think time):
- ``search``: POST /kbs/{kb}/search only (the ratio's denominator);
- ``mixed``: 70% search, 20% ask (extractive answers), 5% upload (answered 202, ingested by the
  server's write stream, as the web page uploads) + 5% delete of the user's own uploads once their
  job is done (one GET of the job, then the DELETE by the id its result gives);
- ``stream``: POST /v1/chat/completions with ``stream: true``, the whole stream read.

Reports per route: requests, failures, req/s, p50/p95/p99 (ms); the server's CPU (cores used, from
/proc: the server and its writer process) and RSS; the 1-minute load of the machine before and
after each run. Locust is a benchmark tool, never imported by zhiku or its tests.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, constant, task

KB = os.environ.get("ZHIKU_LOAD_KB", "laws")
QUERIES = [
    "劳动合同 解除 经济补偿",
    "合同 违约责任",
    "未成年人 保护 监护",
    "环境 污染 罚款",
    "个人信息 处理 同意",
    "道路交通 事故 赔偿",
    "食品安全 标准",
    "税收 征收 管理",
    "土地 承包 经营权",
    "消费者 权益 退货",
    "知识产权 侵权 赔偿",
    "公司 股东 出资",
    "行政 复议 期限",
    "著作权 保护期",
    "安全生产 责任",
    "婚姻 离婚 财产",
]
QUESTIONS = [
    "用人单位解除劳动合同需要支付经济补偿吗?",
    "消费者网购商品可以无理由退货吗?",
    "未成年人的监护人有哪些职责?",
    "交通事故的赔偿责任如何确定?",
    "个人信息处理需要取得同意吗?",
]


def _search(user: Any) -> None:
    user.client.post(f"/kbs/{KB}/search", json={"query": random.choice(QUERIES), "k": 10}, name="search")


class SearchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def search(self) -> None:
        _search(self)


class MixedUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.mine: list[tuple[str, str]] = []  # (file name, upload job id)

    @task(70)
    def search(self) -> None:
        _search(self)

    @task(20)
    def ask(self) -> None:
        self.client.post(f"/kbs/{KB}/ask", json={"question": random.choice(QUESTIONS), "k": 5}, name="ask")

    @task(5)
    def upload(self) -> None:
        mark = uuid.uuid4().hex[:12]
        text = f"# 负载测试 {mark}\n\n本文件用于负载测试,标记 {mark},随后删除。"
        files = {"files": (f"load-{mark}.md", text.encode(), "text/markdown")}
        # As the web page uploads: answered 202 at once, ingested by the server's write stream (with
        # wait=true a user would sit through the BM25 rebuild of the whole KB, seconds on laws).
        with self.client.post(f"/kbs/{KB}/documents", files=files, name="upload", catch_response=True) as r:
            if r.status_code == 202:
                self.mine.append((f"load-{mark}.md", r.json()["id"]))
                r.success()
            else:
                r.failure(f"{r.status_code}: {r.text[:200]}")

    @task(5)
    def delete(self) -> None:
        """Delete one of this user's uploads once its job is done (the job's result has its id)."""
        if not self.mine:
            return
        name, job_id = self.mine.pop()
        with self.client.get(f"/kbs/{KB}/jobs/{job_id}", name="delete (job)", catch_response=True) as job:
            if job.status_code == 404:  # forgotten (the server keeps its last 1,000 jobs): let it be
                job.success()
                return
        state = job.json().get("state") if job.status_code == 200 else None
        if state not in ("done", "failed"):  # not ingested yet: try again later
            self.mine.insert(0, (name, job_id))
            return
        doc_id = ((job.json().get("result") or {}).get("ids") or {}).get(name)
        if doc_id is None:
            return  # the upload failed: nothing to delete (its failure is the job's, not a request's)
        # 200 when done at once, 202 when queued behind a running ingest (the server's write stream)
        with self.client.delete(f"/kbs/{KB}/documents/{doc_id}", name="delete", catch_response=True) as r:
            if r.status_code not in (200, 202):
                r.failure(f"{r.status_code}: {r.text[:200]}")


class StreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def chat_stream(self) -> None:
        body = {
            "model": KB,
            "stream": True,
            "messages": [{"role": "user", "content": random.choice(QUESTIONS)}],
        }
        with self.client.post(
            "/v1/chat/completions", json=body, name="chat stream", catch_response=True
        ) as r:
            if r.status_code != 200 or b"[DONE]" not in (r.content or b""):
                r.failure(f"{r.status_code}: {(r.text or '')[:200]}")


# -- the driver ---------------------------------------------------------------------------------
def _cpu_seconds(pids: set[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def _rss_mb(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def _stats(csv_prefix: str) -> dict[str, Any]:
    import csv

    out: dict[str, Any] = {}
    with open(f"{csv_prefix}_stats.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "req_s": round(float(row["Requests/s"]), 1),
                "p50_ms": row["50%"],
                "p95_ms": row["95%"],
                "p99_ms": row["99%"],
                "max_ms": round(float(row["Max Response Time"]), 1),
            }
    failures: list[dict[str, Any]] = []
    with open(f"{csv_prefix}_failures.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            count = int(row["Occurrences"])
            failures.append({"route": row["Name"], "error": row["Error"][:200], "count": count})
    out["failures"] = failures
    return out


def main() -> None:
    import argparse
    import json
    import shutil
    import subprocess
    import sys
    import tempfile
    import threading
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root / "src"), str(root)]
    from tests.helpers.crashkit import descendants, free_port, start_server

    from zhiku.service import KnowledgeBase

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "zhiku-load")
    ap.add_argument("--kb", default="laws")
    ap.add_argument("--corpus", type=Path, default=root.parent / "shared" / "data" / "cn-laws-lawrefbook")
    ap.add_argument("--kb-note", default="", help="what the KB is (recorded in the results)")
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--runs", default="search,mixed,stream")
    ap.add_argument("--out", type=Path, default=root / "benchmarks" / "results" / "load_locust.json")
    args = ap.parse_args()
    classes = {"search": "SearchUser", "mixed": "MixedUser", "stream": "StreamUser"}
    source = args.home / args.kb
    if not (source / "catalog.sqlite").exists():
        print(f"building {source} from {args.corpus} (BM25 only)", flush=True)
        cmd = [
            sys.executable,
            "-m",
            "zhiku",
            "ingest",
            str(args.corpus),
            "--kb",
            args.kb,
            "--methods",
            "bm25",
        ]
        subprocess.run(cmd, env=dict(os.environ, ZHIKU_HOME=str(args.home)), check=True)
    work = Path(tempfile.mkdtemp(prefix="zhiku-load-"))
    shutil.copytree(source, work / args.kb, symlinks=True)
    with KnowledgeBase.open(args.kb, home=work, create=False) as kb:
        docs, chunks = len(kb.documents()), kb.chunk_count()
        methods = [s.name for s in kb.status() if s.built]
    port = free_port()
    server = start_server(work, port, log=work / "server.log")
    results: dict[str, Any] = {
        "kb": args.kb,
        "kb_documents": docs,
        "kb_chunks": chunks,
        "kb_methods_built": methods,
        "kb_note": args.kb_note,
        "users": args.users,
        "seconds_per_run": args.seconds,
        "machine_cores": os.cpu_count(),
        "runs": {},
    }
    try:
        for run in args.runs.split(","):
            pids = descendants(server.pid) | {server.pid}
            rss: list[float] = []
            stop = threading.Event()

            def sample(pids: set[int] = pids, rss: list[float] = rss, stop: threading.Event = stop) -> None:
                while not stop.wait(2):
                    rss.append(_rss_mb(descendants(server.pid) | {server.pid}))

            sampler = threading.Thread(target=sample, daemon=True)
            load_before = os.getloadavg()[0]
            cpu_before, wall_before = _cpu_seconds(pids), time.monotonic()
            sampler.start()
            with tempfile.TemporaryDirectory() as tmp:
                prefix = f"{tmp}/{run}"
                cmd = [sys.executable, "-m", "locust", "-f", __file__, classes[run], "--headless"]
                cmd += ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s"]
                cmd += [
                    "-H",
                    f"http://127.0.0.1:{port}",
                    "--csv",
                    prefix,
                    "--only-summary",
                    "--stop-timeout",
                    "30",
                ]
                env = dict(os.environ, ZHIKU_LOAD_KB=args.kb)
                proc = subprocess.run(
                    cmd, env=env, capture_output=True, text=True, timeout=args.seconds + 300
                )
                stats = _stats(prefix)
                failures = stats.pop("failures")
            stop.set()
            sampler.join()
            pids = descendants(server.pid) | {server.pid}
            wall = time.monotonic() - wall_before
            results["runs"][run] = {
                "routes": stats,
                "failures": failures,
                "locust_exit": proc.returncode,
                "server_cpu_cores": round((_cpu_seconds(pids) - cpu_before) / wall, 2),
                "server_rss_mb": {"peak": max(rss or [0]), "last": rss[-1] if rss else 0},
                "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
            print(run, json.dumps(results["runs"][run]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    search_only = results["runs"].get("search", {}).get("routes", {}).get("Aggregated", {}).get("req_s")
    mixed = results["runs"].get("mixed", {}).get("routes", {}).get("Aggregated", {}).get("req_s")
    if search_only and mixed:
        results["mixed_to_search_only_ratio"] = round(mixed / search_only, 3)
    results["command"] = " ".join(["benchmarks/load_locust.py", *sys.argv[1:]])
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
