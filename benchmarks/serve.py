"""Load test of ``zhiku serve``: concurrent clients against search and ask on the laws KB.

    .venv/bin/python benchmarks/serve.py [--clients 8] [--seconds 20] [--workdir DIR] [--no-markdown]

The laws corpus (../shared/data/cn-laws-lawrefbook, 1,100 Chinese regulations) is ingested into a
BM25-only knowledge base under ``--workdir`` (kept, so a second run skips the ingest), then
``zhiku serve`` runs in its own process on a free loopback port, exactly as a user starts it.
Each phase runs ``--clients`` threads for ``--seconds``, every client a keep-alive HTTP connection
sending its next request as soon as the last one is answered (a closed loop: throughput is what
the server sustains at that concurrency, latency includes queueing). Phases: ``POST /kbs/laws/search``
(bm25, k=10) and ``POST /kbs/laws/ask`` (bm25, k=5, the extractive answerer). Memory is the server
process's resident set, sampled every 0.2 s, and its peak (VmHWM).
Results: benchmarks/results/serve.json, and the "serve" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, RESULTS, ROOT, commit, machine, md_table, replace_section  # noqa: E402

LAWS = DATA / "cn-laws-lawrefbook"

QUERIES = [
    "农业保险合同的赔偿期限是多久",
    "保险机构应当在多少日内支付保险金",
    "个人所得税的免征项目有哪些",
    "企业所得税的税率是多少",
    "食品生产经营许可证如何申请",
    "外国人入境需要什么证件",
    "医疗事故的处理程序",
    "道路交通事故的责任认定",
    "解除劳动合同的经济补偿",
    "消费者权益受到侵害如何投诉",
    "出口货物退税的条件",
    "增值税一般纳税人的认定",
    "土地使用权出让的最高年限",
    "城市房地产抵押登记",
    "商标注册的申请程序",
    "专利权的保护期限",
    "公司设立的条件",
    "合伙人对合伙企业债务的责任",
    "证券发行需要什么条件",
    "银行业监督管理机构的职责",
    "建设项目环境影响评价的审批",
    "生产安全事故报告的时限",
    "林木采伐许可证的办理",
    "渔业捕捞许可证",
    "北京市物业管理的规定",
    "广东省电动自行车的管理",
    "会计档案的保管期限",
    "政府采购的方式有哪些",
    "招标投标的程序",
    "统计调查对象的义务",
    "农民专业合作社的设立",
    "粮食收购的资格",
    "药品广告的审查",
    "特种设备的安全监督",
    "住房公积金的提取条件",
]


# -- setting up ----------------------------------------------------------------------------------------


def build_kb(home: Path) -> dict[str, Any]:
    from zhiku.config import KBConfig, MethodConfig
    from zhiku.service import KnowledgeBase

    config = KBConfig(language="zh", methods={"bm25": MethodConfig(kind="bm25")})
    t0 = time.perf_counter()
    with KnowledgeBase.open("laws", home=home, config=config) as kb:
        report, _ = kb.ingest([LAWS])
        info: dict[str, Any] = {"documents": len(kb.documents()), "chunks": kb.catalog.chunk_count()}
    info["ingest_seconds"] = round(time.perf_counter() - t0, 1)
    info["changed"] = report.changed
    return info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "zhiku",
        "serve",
        "--home",
        str(home),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"zhiku serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            status, _ = request(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "GET", "/readyz")
            if status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("zhiku serve did not become ready in 60 s")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = conn.getresponse()
    return r.status, r.read()


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


# -- load ----------------------------------------------------------------------------------------------


def run_phase(port: int, path: str, body_for: Any, clients: int, seconds: float, pid: int) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    deadline = 0.0

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        n = i
        start.wait()
        while time.perf_counter() < deadline:
            body = body_for(QUERIES[n % len(QUERIES)])
            n += clients
            t = time.perf_counter()
            try:
                status, data = request(conn, "POST", path, body)
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            if status != 200:
                errors.append(f"{status}: {data[:200].decode(errors='replace')}")
                continue
            latencies[i].append((time.perf_counter() - t) * 1000)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    rss: list[float] = []
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    while any(t.is_alive() for t in threads):
        rss.append(memory_mb(pid)[0])
        time.sleep(0.2)
    elapsed = time.perf_counter() - t0
    lat = np.array([x for per in latencies for x in per])
    return {
        "requests": int(lat.size),
        "errors": len(errors),
        "first_errors": errors[:3],
        "throughput_rps": round(lat.size / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
        "mean_ms": round(float(lat.mean()), 1) if lat.size else None,
        "rss_mb_max": round(max(rss), 1) if rss else None,
    }


def render(result: dict[str, Any]) -> str:
    kb = result["kb"]
    rows = [
        [
            name,
            str(p["requests"]),
            str(p["errors"]),
            f"{p['throughput_rps']:.1f}",
            f"{p['p50_ms']:.1f}",
            f"{p['p95_ms']:.1f}",
            f"{p['p99_ms']:.1f}",
            f"{p['rss_mb_max']:.0f}",
        ]
        for name, p in result["phases"].items()
    ]
    mem = result["memory_mb"]
    return "\n".join(
        [
            "## Serving under load (`benchmarks/serve.py`)",
            "",
            f"`zhiku serve` on the laws KB ({kb['documents']} documents, {kb['chunks']} chunks, BM25 only), "
            f"{result['clients']} concurrent keep-alive clients for {result['seconds']:g} s per phase, each "
            "sending its next request when the last is answered. Measured on "
            + result["machine"]
            + f", commit {result['commit']}.",
            "",
            md_table(
                ["endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "server RSS MB"],
                rows,
            ),
            "",
            f"Server memory: {mem['started']:.0f} MB after start, {mem['warm']:.0f} MB with the index loaded, "  # noqa: E501
            f"peak {mem['peak']:.0f} MB.",
            "",
            f"Command: `{result['command']}`",
        ]
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0, help="per phase")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "zhiku-bench-serve",
        help="where the laws KB is kept between runs",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--no-markdown", action="store_true", help="do not update BENCHMARKS.md")
    args = p.parse_args()
    command = "python benchmarks/serve.py " + shlex.join(sys.argv[1:])

    home = args.workdir / "home"
    kb = build_kb(home)
    done = f", ingested in {kb['ingest_seconds']} s" if kb["changed"] else " (already ingested)"
    print(f"laws KB: {kb['documents']} documents, {kb['chunks']} chunks{done}", file=sys.stderr)
    port = free_port()
    proc = start_server(home, port)
    try:
        started = memory_mb(proc.pid)[0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t = time.perf_counter()
        status, data = request(conn, "POST", "/kbs/laws/search", {"query": QUERIES[0], "method": "bm25"})
        assert status == 200, data
        first_ms = (time.perf_counter() - t) * 1000  # loads the index
        request(conn, "POST", "/kbs/laws/ask", {"question": QUERIES[0], "method": "bm25"})
        warm = memory_mb(proc.pid)[0]
        phases = {}
        for name, path, body in [
            ("search", "/kbs/laws/search", lambda q: {"query": q, "method": "bm25", "k": 10}),
            ("ask", "/kbs/laws/ask", lambda q: {"question": q, "method": "bm25", "k": 5}),
        ]:
            print(f"{name}: {args.clients} clients for {args.seconds:g} s …", file=sys.stderr)
            phases[name] = run_phase(port, path, body, args.clients, args.seconds, proc.pid)
            print(f"  {phases[name]}", file=sys.stderr)
        peak = memory_mb(proc.pid)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    result = {
        "command": command,
        "machine": machine(),
        "commit": commit(),
        "kb": kb,
        "clients": args.clients,
        "seconds": args.seconds,
        "first_search_ms": round(first_ms, 1),
        "phases": phases,
        "memory_mb": {"started": round(started, 1), "warm": round(warm, 1), "peak": round(peak, 1)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    (args.out / "serve.json").write_text(text, encoding="utf-8")
    print(render(result))
    if not args.no_markdown:
        replace_section("serve", render(result))
        print(f"updated {(ROOT / 'BENCHMARKS.md').relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(p["errors"] == 0 for p in phases.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
