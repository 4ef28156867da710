"""What crash tests share: a seeded corpus generator, zhiku as a real child process, process trees
read from /proc, and the consistency checks run after every kill (used by tests and
benchmarks/crash.py)."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_ZH = (
    "农业 保险 合同 条例 解除 责任 保险人 投保人 赔偿 损失 灾害 政府 补贴 规定 国家 农民 种植 养殖 "
    "风险 管理 机构 监督 申请 审核 理赔 期限 费用 标准 地方 财政 组织 实施 办法"
).split()
_EN = "garden soil water tomato seed harvest compost light prune root leaf season".split()


def paragraph(rng: random.Random, words: int) -> str:
    out = []
    for i in range(words):
        out.append(rng.choice(_ZH) if rng.random() < 0.8 else f" {rng.choice(_EN)} ")
        if i % 17 == 16:
            out.append("。\n")
    return "".join(out)


def make_corpus(folder: Path, files: int, kb_per_file: int, seed: int, marker: str = "") -> list[Path]:
    """``files`` Markdown files of about ``kb_per_file`` KB each; file i contains ``marker{i}``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        body = [f"# 文档 {i}\n", f"{marker}{i} 独有标记\n"] if marker else [f"# 文档 {i}\n"]
        size = 0
        while size < kb_per_file * 1024:
            para = paragraph(rng, 120)
            body.append(para + "\n")
            size += len(para.encode())
        p = folder / f"doc{i:03d}.md"
        p.write_text("\n".join(body), encoding="utf-8")
        paths.append(p)
    return paths


def zhiku_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ZHIKU_HOME"] = str(home)
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    env.pop("ZHIKU_PROGRESS", None)
    return env


def zhiku_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "zhiku", *args]


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    """zhiku as a child in its own session (as a shell would start it), output captured."""
    return subprocess.Popen(
        zhiku_cmd(*args),
        env=zhiku_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        zhiku_cmd(*args), env=zhiku_env(home), capture_output=True, text=True, timeout=timeout
    )


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc, so it works without psutil)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents[int(entry)] = ppid
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    from zhiku.store.liveness import pid_alive

    return {p for p in pids if pid_alive(p)}


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def catalog_problems(catalog: Path) -> list[str]:
    """What is wrong with a catalog: integrity, documents without all their chunks, orphan chunks."""
    if not catalog.exists():
        return []
    db = sqlite3.connect(catalog)
    try:
        problems = []
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            problems.append(f"integrity_check: {check}")
        partial = db.execute(
            "SELECT COUNT(*) FROM documents d WHERE n_chunks != "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id)"
        ).fetchone()[0]
        if partial:
            problems.append(f"{partial} documents without all their chunks")
        orphans = db.execute(
            "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)"
        ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} orphan chunks")
        return problems
    finally:
        db.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int, *extra: str, log: Path | None = None) -> subprocess.Popen[str]:
    """``zhiku serve`` as a child process; returns once /healthz answers. ``log``: append its stderr
    there (a long run must: a pipe nobody reads fills up, and the server then blocks on a log line)."""
    import httpx2

    err: Any = open(log, "a") if log is not None else subprocess.PIPE  # noqa: SIM115 (the child holds it)
    proc = subprocess.Popen(
        zhiku_cmd("serve", "--port", str(port), "--home", str(home), "--log-level", "warning", *extra),
        env=zhiku_env(home),
        stdout=subprocess.DEVNULL,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    if log is not None:
        err.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"zhiku serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("zhiku serve did not start")


def upload_parts(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def uploads_problems(kb_root: Path) -> list[str]:
    """uploads/ must match the catalog: no staging left, no file the catalog does not hold."""
    uploads = kb_root.resolve() / "uploads"
    problems = []
    if (uploads / ".staging").exists() and any((uploads / ".staging").iterdir()):
        problems.append(f"staging left: {sorted(p.name for p in (uploads / '.staging').iterdir())}")
    if uploads.is_dir() and (kb_root / "catalog.sqlite").exists():
        db = sqlite3.connect(kb_root / "catalog.sqlite")
        held = {r[0] for r in db.execute("SELECT source FROM documents")}
        running = db.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone()[0]
        db.close()
        stray = [
            f.name
            for f in uploads.iterdir()
            if f.is_file() and not f.name.startswith(".") and str(f) not in held
        ]
        if stray:
            problems.append(f"{len(stray)} files in uploads/ that the catalog does not hold")
        if running:
            problems.append(f"{running} runs still 'running'")
    return problems


def init_kb(home: Path, name: str = "k", workers: int = 0, methods: tuple[str, ...] = ("bm25",)) -> Path:
    """A KB folder with only cheap methods (the dense method imports sentence-transformers, 20 s
    or more on a loaded machine, even with the hashing embedder), written before any ingest."""
    from zhiku.config import IngestConfig, KBConfig, MethodConfig
    from zhiku.service import KnowledgeBase

    cfg = KBConfig(
        ingest=IngestConfig(workers=workers), methods={m: MethodConfig(kind=m, enabled=True) for m in methods}
    )
    # Created with its catalog: a KB folder without one gets the default settings at first use.
    KnowledgeBase.open(name, home=home, config=cfg).close()
    return home / name
