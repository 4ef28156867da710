"""A soak with faults (issue 28): concurrent clients work a real ``zhiku serve`` while it is killed.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--kills 12] [--clients 4] [--seed 28]
        [--out benchmarks/results/soak.json]

Clients (threads, one HTTP connection pool each) upload (good files, each with a marker word only it
holds, mixed with bad ones: empty, an unknown type, a binary disguised as .md, a zip bomb), search,
ask, chat (/v1/chat/completions), delete, and now and then run an evaluation, all on one KB, while
a killer thread sends SIGKILL to the server at random moments and starts it again on the same port.

A write is *acknowledged* when it got a 2xx: an upload with ``wait=true`` answered 200 with its
file in ``added``, a delete with ``wait=true`` answered 200. Requests cut off by a kill have no
answer: they count as unknown and are left out of both checks. At the end, on a restarted server:

- every acknowledged upload is listed and a search for its marker finds it;
- every acknowledged delete is gone: not listed, its marker found by no search, and ``zhiku
  check`` (catalog vs every index's chunk ids) clean, so no index holds its chunks;
- no lock is held once the server is stopped; no 5xx was answered at any time;
- the server's RSS (with its worker processes) is sampled every 2 s: the curve and its peak.

Runs in a temporary folder; writes JSON to --out. ``tests/reliability/test_soak_slow.py`` runs a
short one (about a minute, 3 kills).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.helpers.crashkit import descendants, free_port, init_kb, start_server  # noqa: E402

KB = "soak"
WORDS = "tea kettle river garden paper lamp window harbor copper meadow lantern violin".split()


def marker(rng: random.Random) -> str:
    # letters only: one BM25 token in English and Chinese tokenisation alike
    return "mk" + "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(12))


def good_file(rng: random.Random, mark: str) -> tuple[str, bytes]:
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
    if rng.random() < 0.3:
        body += " 知识库 检索 法律 条款"
    return f"{mark}.md", f"# Note {mark}\n\n{body} {mark}.\n".encode()


def bad_file(rng: random.Random, n: int) -> tuple[str, bytes]:
    kind = rng.choice(["empty", "exe", "binary-md", "zip"])
    if kind == "empty":
        return f"empty{n}.md", b""
    if kind == "exe":
        return f"tool{n}.exe", b"MZ\x00\x01" * 64
    if kind == "binary-md":
        return f"noise{n}.md", bytes(rng.randrange(256) for _ in range(512))
    import io
    import zipfile

    out = io.BytesIO()  # a .docx that is only a zip of zeros: refused as corrupt
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/media/zeros.bin", b"\0" * (4 << 20))
    return f"bomb{n}.docx", out.getvalue()


@dataclass
class Ledger:
    """What the clients were told, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, str] = field(default_factory=dict)  # marker -> file name, upload acknowledged
    deleted: dict[str, str] = field(default_factory=dict)  # marker -> doc id, delete acknowledged
    unknown: set[str] = field(default_factory=set)  # markers whose write got no answer
    statuses: Counter[str] = field(default_factory=Counter)  # "op status" -> count
    server_errors: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    bad_refused: int = 0
    bad_accepted: list[str] = field(default_factory=list)

    def count(self, op: str, status: int | str) -> None:
        with self.lock:
            self.statuses[f"{op} {status}"] += 1


class Server:
    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()
        self.kills = 0
        self.restart_seconds: list[float] = []

    def start(self) -> None:
        started = time.monotonic()
        self.proc = start_server(self.home, self.port, log=self.home.parent / "server.log")
        self.restart_seconds.append(round(time.monotonic() - started, 2))

    def kill(self) -> None:
        with self.lock:
            assert self.proc is not None
            tree = descendants(self.proc.pid) | {self.proc.pid}
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            for pid in tree:  # worker processes die with their parent (issue 14); make sure
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.kills += 1
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def rss_mb(self) -> float:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return 0.0
        total = 0
        for pid in descendants(proc.pid) | {proc.pid}:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return round(total / 1024, 1)


class Client(threading.Thread):
    def __init__(self, n: int, server: Server, ledger: Ledger, seed: int, until: float, qa: bytes) -> None:
        super().__init__(daemon=True)
        self.rng = random.Random(seed * 1000 + n)
        self.n, self.server, self.ledger, self.until, self.qa = n, server, ledger, until, qa
        self.error: BaseException | None = None

    def run(self) -> None:
        import httpx2

        try:
            with httpx2.Client(base_url=self.server.url, timeout=120) as http:
                while time.monotonic() < self.until:
                    op = self.rng.choices(
                        ["upload", "search", "ask", "chat", "delete", "eval"], [30, 30, 12, 10, 15, 3]
                    )[0]
                    try:
                        getattr(self, op)(http)
                    except httpx2.HTTPError:  # the server was killed under the request
                        self.ledger.count(op, "no answer")
                        time.sleep(0.3)
        except BaseException as e:  # a bug in the soak itself: reported, not hidden
            self.error = e

    def _answer(self, op: str, r: Any) -> None:
        self.ledger.count(op, r.status_code)
        if r.status_code >= 500 or r.status_code == 409:
            with self.ledger.lock:
                where = self.ledger.server_errors if r.status_code >= 500 else self.ledger.conflicts
                where.append(f"{op} {r.status_code}: {r.text[:200]}")

    def upload(self, http: Any) -> None:
        mark = marker(self.rng)
        name, data = good_file(self.rng, mark)
        files = [("files", (name, data, "text/markdown"))]
        bad = self.rng.random() < 0.35
        if bad:
            bname, bdata = bad_file(self.rng, self.rng.randrange(10**6))
            files.append(("files", (bname, bdata, "application/octet-stream")))
        with self.ledger.lock:
            self.ledger.unknown.add(mark)  # until the answer says otherwise
        r = http.post(f"/kbs/{KB}/documents", params={"wait": "true"}, files=files)
        self._answer("upload", r)
        if r.status_code == 200:
            result = r.json().get("result") or {}
            with self.ledger.lock:
                if name in result.get("added", []):
                    self.ledger.acked[mark] = name
                    self.ledger.unknown.discard(mark)
                if bad:
                    refused = [x["file"] for x in result.get("refused", [])]
                    refused += [str(x.get("file", x)) for x in result.get("failed", [])]
                    if any(bname in x for x in refused):
                        self.ledger.bad_refused += 1
                    elif bname in result.get("added", []):
                        self.ledger.bad_accepted.append(bname)
        elif r.status_code < 500:
            with self.ledger.lock:
                self.ledger.unknown.discard(mark)  # refused: not stored, and not promised

    def search(self, http: Any) -> None:
        with self.ledger.lock:
            known = list(self.ledger.acked)
        query = self.rng.choice(known) if known and self.rng.random() < 0.7 else self.rng.choice(WORDS)
        self._answer("search", http.post(f"/kbs/{KB}/search", json={"query": query, "k": 5}))

    def ask(self, http: Any) -> None:
        q = f"what does the note say about the {self.rng.choice(WORDS)}?"
        self._answer("ask", http.post(f"/kbs/{KB}/ask", json={"question": q}))

    def chat(self, http: Any) -> None:
        body = {
            "model": KB,
            "messages": [{"role": "user", "content": f"tell me about {self.rng.choice(WORDS)}"}],
        }
        self._answer("chat", http.post("/v1/chat/completions", json=body))

    def delete(self, http: Any) -> None:
        with self.ledger.lock:
            if len(self.ledger.acked) < 5:
                return
            mark = self.rng.choice(sorted(self.ledger.acked))
            name = self.ledger.acked.pop(mark)
            self.ledger.unknown.add(mark)
        docs = http.get(f"/kbs/{KB}/documents")
        self._answer("list", docs)
        ids = [d["id"] for d in docs.json() if d["name"] == name] if docs.status_code == 200 else []
        if not ids:
            with self.ledger.lock:  # listing failed: the document stays acknowledged, untouched
                self.ledger.unknown.discard(mark)
                self.ledger.acked[mark] = name
            return
        # wait=true: 200 once done, even when queued behind an ingest (without it, 202 and a job)
        r = http.delete(f"/kbs/{KB}/documents/{ids[0]}", params={"wait": "true"})
        self._answer("delete", r)
        if r.status_code == 200:
            with self.ledger.lock:
                self.ledger.deleted[mark] = ids[0]
                self.ledger.unknown.discard(mark)
        elif r.status_code < 500 and r.status_code != 404:
            with self.ledger.lock:  # refused (e.g. 423: the KB's settings being changed): still there
                self.ledger.unknown.discard(mark)
                self.ledger.acked[mark] = name

    def eval(self, http: Any) -> None:
        files = {"file": ("qa.jsonl", self.qa, "application/jsonl")}
        r = http.post(f"/kbs/{KB}/eval", params={"wait": "true"}, files=files, data={"methods": "bm25"})
        self._answer("eval", r)


def qa_set() -> bytes:
    rows = [{"question": f"which note mentions the {w}?", "answer": w} for w in WORDS[:6]]
    return "\n".join(json.dumps(r) for r in rows).encode()


def verify(server: Server, ledger: Ledger) -> dict[str, Any]:
    import httpx2

    out: dict[str, Any] = {}
    with httpx2.Client(base_url=server.url, timeout=300) as http:
        listed = {d["name"] for d in http.get(f"/kbs/{KB}/documents").json()}
        found, missing = 0, []
        for mark, name in sorted(ledger.acked.items()):
            hits = http.post(f"/kbs/{KB}/search", json={"query": mark, "k": 3}).json()["hits"]
            if name in listed and any(h["path"].endswith("/" + name) for h in hits):
                found += 1
            else:
                missing.append(name)
        gone, still = 0, []
        for mark, _doc in sorted(ledger.deleted.items()):
            hits = http.post(f"/kbs/{KB}/search", json={"query": mark, "k": 3}).json()["hits"]
            if f"{mark}.md" not in listed and not any(mark in h["text"] for h in hits):
                gone += 1
            else:
                still.append(mark)
        check = http.get(f"/kbs/{KB}/check").json()
    out.update(
        uploads_acknowledged=len(ledger.acked),
        uploads_found=found,
        uploads_missing=missing[:20],
        deletes_acknowledged=len(ledger.deleted),
        deletes_gone=gone,
        deletes_still_found=still[:20],
        check_after_searches=check,
    )
    return out


def _tracebacks(log: str) -> list[str]:
    """Each distinct traceback of the server's log, its last lines (where the exception is)."""
    found: list[str] = []
    for part in log.split("Traceback (most recent call last):")[1:]:
        lines = [ln for ln in part.splitlines() if ln.strip()]
        ending = "\n".join(lines[-12:])
        if ending not in found:
            found.append(ending)
    return found[:5]


def lock_free(home: Path) -> bool:
    import fcntl

    path = home / KB / ".lock"
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def soak(minutes: float, kills: int, clients: int, seed: int, work: Path, log: bool = True) -> dict[str, Any]:
    home = work / "home"
    init_kb(home, KB, methods=("bm25", "tfidf"))
    server = Server(home, free_port())
    server.start()
    ledger = Ledger()
    rng = random.Random(seed)
    started = time.monotonic()
    until = started + minutes * 60
    # kill moments: spread over the run (each in its own slot, at a random point of it)
    slot = minutes * 60 / kills
    moments = sorted(started + slot * i + rng.uniform(0.2, 0.9) * slot for i in range(kills))
    rss: list[tuple[float, float]] = []
    workers = [Client(i, server, ledger, seed, until, qa_set()) for i in range(clients)]
    for w in workers:
        w.start()
    try:
        next_sample = started
        while time.monotonic() < until:
            now = time.monotonic()
            if moments and now >= moments[0]:
                moments.pop(0)
                server.kill()
                if log:
                    print(f"{now - started:6.0f}s kill {server.kills}: acked {len(ledger.acked)}", flush=True)
            if now >= next_sample:
                rss.append((round(now - started, 1), server.rss_mb()))
                next_sample += 2
            time.sleep(0.1)
        for w in workers:
            w.join(timeout=300)
        errors = [repr(w.error) for w in workers if w.error is not None]
        # One more kill at the very end, then the checks on a fresh server: nothing may depend on
        # the server having shut down cleanly.
        server.kill()
        result = verify(server, ledger)
        rss.append((round(time.monotonic() - started, 1), server.rss_mb()))
    finally:
        server.stop()
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open(home / KB, create=False) as kb:
        final_check = kb.check().to_json()
    peak = max(r for _, r in rss)
    log = (home.parent / "server.log").read_text(errors="replace")
    result.update(
        minutes=minutes,
        clients=clients,
        seed=seed,
        kills=server.kills,
        restart_seconds=server.restart_seconds,
        requests={k: v for k, v in sorted(ledger.statuses.items())},
        server_errors=ledger.server_errors[:20],
        conflicts=ledger.conflicts[:10],
        server_log_tracebacks=log.count("Traceback"),
        server_log_tracebacks_text=_tracebacks(log),
        unknown_writes=len(ledger.unknown),
        bad_files_refused=ledger.bad_refused,
        bad_files_accepted=ledger.bad_accepted,
        client_errors=errors,
        check=final_check,
        lock_free_after_stop=lock_free(home),
        rss_mb={"peak": peak, "first": rss[0][1] if rss else 0, "last": rss[-1][1], "curve": rss},
    )
    result["passed"] = bool(
        result["uploads_found"] == result["uploads_acknowledged"]
        and result["deletes_gone"] == result["deletes_acknowledged"]
        and final_check["ok"]
        and result["lock_free_after_stop"]
        and not ledger.server_errors
        and not errors
        and not ledger.bad_accepted
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=28)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak.json"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="zhiku-soak-") as tmp:
        result = soak(args.minutes, args.kills, args.clients, args.seed, Path(tmp))
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["command"] = " ".join(["benchmarks/soak.py", *sys.argv[1:]])
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = {k: result[k] for k in ("passed", "kills", "uploads_acknowledged", "uploads_found")}
    summary |= {k: result[k] for k in ("deletes_acknowledged", "deletes_gone", "unknown_writes")}
    print(json.dumps(summary | {"check_ok": result["check"]["ok"], "peak_rss_mb": result["rss_mb"]["peak"]}))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
