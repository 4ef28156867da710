"""kill -9 at random moments, then check that nothing needs a manual cleanup (issue 14).

    .venv/bin/python benchmarks/crash.py [--kills 50] [--seed 14] [--files 24] [--kb-per-file 90]
        [--out benchmarks/results/crash.json]

Scenarios, in turn: ingest of a new folder (large enough for worker processes), re-ingest after
edits, delete, build --force of bm25, tfidf and w2v-sg, and a server upload. Each is first run once
unkilled to learn how long it takes; then every kill lands at a random moment of that span (seeded,
so a run is repeatable up to the machine's timing). A kill counts only if the command was still
running. After each kill:

- *next command ok*: no process of the killed tree is left, and the same command run again (for the
  upload: a restarted server taking a new upload) succeeds at once, with no manual cleanup;
- *consistent*: ``PRAGMA integrity_check`` is ok, every document has all its chunks, no chunk
  lacks its document, uploads/ matches the catalog, and a search for a marker that only one
  document contains finds it with BM25 and with the method just built.

Prints "N/N consistent, N/N next command ok". Runs in a temporary folder; never part of the tests
(a slow-marked test runs a few kills through ``crash_run``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.helpers.crashkit import (  # noqa: E402
    catalog_problems,
    descendants,
    free_port,
    init_kb,
    make_corpus,
    run,
    start,
    start_server,
    upload_parts,
    uploads_problems,
    wait_gone,
)

SCENARIOS = ("ingest", "reingest", "delete", "build-bm25", "build-tfidf", "build-w2v-sg", "upload")


@dataclass
class Kill:
    n: int
    scenario: str
    delay: float
    consistent: bool
    next_ok: bool
    problems: list[str] = field(default_factory=list)
    next_seconds: float = 0.0


@dataclass
class CrashReport:
    kills: list[Kill] = field(default_factory=list)
    missed: int = 0  # commands that finished before their kill: not counted
    calibration: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        n = len(self.kills)
        ok = sum(k.consistent for k in self.kills)
        nxt = sum(k.next_ok for k in self.kills)
        return f"{ok}/{n} consistent, {nxt}/{n} next command ok"


class Bench:
    def __init__(self, work: Path, seed: int, files: int, kb_per_file: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.home = work / "home"
        self.corpus = work / "corpus"
        self.uploads_src = work / "to-upload"
        self.paths = make_corpus(self.corpus, files, kb_per_file, seed, marker="MARK")
        self.up = make_corpus(self.uploads_src, 12, kb_per_file, seed + 1, marker="UPMARK")
        self.kb = init_kb(self.home, workers=2, methods=("bm25",))
        self.port = free_port()
        self.edits = 0

    # -- the commands ---------------------------------------------------------------------------
    def prepare(self, scenario: str) -> list[str]:
        if scenario == "ingest":
            # A fresh KB each time: the whole corpus is new, so workers start.
            shutil.rmtree(self.kb, ignore_errors=True)
            init_kb(self.home, workers=2, methods=("bm25",) + self.built_methods())
            return ["ingest", str(self.corpus), "--kb", "k"]
        if scenario == "reingest":
            for p in self.rng.sample(self.paths, max(1, len(self.paths) // 3)):
                self.edits += 1
                with p.open("a", encoding="utf-8") as f:
                    f.write(f"\n第{self.edits}次修改 改动内容 edit{self.edits}\n")
            return ["ingest", str(self.corpus), "--kb", "k"]
        if scenario == "delete":
            return ["delete", str(self.rng.choice(self.paths)), "--kb", "k"]
        if scenario.startswith("build-"):
            return ["build", "--method", scenario[len("build-") :], "--force", "--kb", "k"]
        raise ValueError(scenario)

    def built_methods(self) -> tuple[str, ...]:
        idx = self.kb / "indexes"
        return tuple(m for m in ("tfidf", "w2v-sg") if (idx / m).exists())

    def next_command(self, scenario: str) -> list[str]:
        if scenario.startswith("build-"):
            return ["build", "--method", scenario[len("build-") :], "--kb", "k"]
        return ["ingest", str(self.corpus), "--kb", "k"]

    # -- one kill -------------------------------------------------------------------------------
    def once(self, scenario: str, delay: float | None) -> tuple[bool, set[int], float]:
        """Run ``scenario``; kill it after ``delay`` s (None: let it finish). (killed, tree, seconds)."""
        if scenario == "upload":
            return self._upload(delay)
        proc = start(self.home, *self.prepare(scenario))
        t0 = time.monotonic()
        tree: set[int] = set()
        while proc.poll() is None and (delay is None or time.monotonic() - t0 < delay):
            tree |= descendants(proc.pid)
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True, tree, time.monotonic() - t0
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{scenario} failed unkilled: {err[-2000:]}")
        return False, tree, time.monotonic() - t0

    def _upload(self, delay: float | None) -> tuple[bool, set[int], float]:
        import httpx2

        server = start_server(self.home, self.port)
        t0 = time.monotonic()
        url = f"http://127.0.0.1:{self.port}/kbs/k/documents"
        for p in self.up:  # new bytes each time, so the upload is never "unchanged"
            self.edits += 1
            with p.open("a", encoding="utf-8") as f:
                f.write(f"\nupload edit{self.edits}\n")
        r = httpx2.post(url, files=upload_parts(self.up), timeout=120)
        job = r.json()
        tree: set[int] = set()
        while delay is None or time.monotonic() - t0 < delay:
            tree |= descendants(server.pid)
            job = httpx2.get(f"http://127.0.0.1:{self.port}/kbs/k/jobs/{job['id']}", timeout=30).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.02)
        killed = job["state"] not in ("done", "failed")
        if not killed and job["state"] != "done":
            raise RuntimeError(f"upload failed unkilled: {job}")
        os.kill(server.pid, signal.SIGKILL if killed else signal.SIGTERM)
        server.wait()
        return killed, tree, time.monotonic() - t0

    def check_next(self, scenario: str) -> tuple[bool, list[str], float]:
        t0 = time.monotonic()
        if scenario == "upload":
            import httpx2

            server = start_server(self.home, self.port)  # the restart recovers
            try:
                problems = uploads_problems(self.kb)
                r = httpx2.post(
                    f"http://127.0.0.1:{self.port}/kbs/k/documents",
                    params={"wait": "true"},
                    files=upload_parts(self.up[:1]),
                    timeout=600,
                )
                ok = r.status_code == 200 and r.json()["state"] == "done"
                if not ok:
                    problems.append(f"upload after restart: {r.text[:300]}")
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
            return ok, problems, time.monotonic() - t0
        r = run(self.home, *self.next_command(scenario), timeout=900)
        ok = r.returncode == 0
        return (
            ok,
            ([] if ok else [f"next command: rc {r.returncode}: {r.stderr.strip()[-300:]}"]),
            time.monotonic() - t0,
        )

    def consistency(self, scenario: str) -> list[str]:
        from zhiku.service import KnowledgeBase

        problems = catalog_problems(self.kb / "catalog.sqlite") + uploads_problems(self.kb)
        i = self.rng.randrange(len(self.paths))
        with KnowledgeBase.open("k", home=self.home, create=False) as kb:
            methods = ["bm25"] + ([scenario[len("build-") :]] if scenario.startswith("build-") else [])
            for m in methods:
                hits = kb.search(f"MARK{i}", k=5, method=m)
                if m in ("bm25", "tfidf") and not any(h.doc.source == str(self.paths[i]) for h in hits):
                    problems.append(f"{m} search for MARK{i} missed {self.paths[i].name}")
        return problems


def crash_run(
    kills: int, seed: int, work: Path, files: int = 24, kb_per_file: int = 90, log: bool = True
) -> CrashReport:
    bench = Bench(work, seed, files, kb_per_file)
    report = CrashReport()
    for scenario in SCENARIOS:  # calibrate (and leave every method built once)
        _, _, secs = bench.once(scenario, None)
        report.calibration[scenario] = round(secs, 2)
        if log:
            print(f"calibrate {scenario}: {secs:.1f}s", flush=True)
    attempts = 0
    while len(report.kills) < kills and attempts < kills * 4:
        scenario = SCENARIOS[attempts % len(SCENARIOS)]
        attempts += 1
        span = report.calibration[scenario]
        delay = bench.rng.uniform(0.05, max(0.2, span * 0.95))
        killed, tree, _ = bench.once(scenario, delay)
        if not killed:
            report.missed += 1
            continue
        left = wait_gone(tree, timeout=10)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        next_ok, problems, secs = bench.check_next(scenario)
        if left:
            next_ok = False
            problems.insert(0, f"{len(left)} processes of the killed command still running")
        problems += bench.consistency(scenario)
        consistent = not [
            p
            for p in problems
            if not p.startswith(("next command", "upload after")) and "still running" not in p
        ]
        k = Kill(
            len(report.kills) + 1, scenario, round(delay, 2), consistent, next_ok, problems, round(secs, 2)
        )
        report.kills.append(k)
        if log:
            status = "ok" if consistent and next_ok else "PROBLEM " + "; ".join(problems)
            print(f"kill {k.n:>2} {scenario:<13} at {delay:5.2f}s: next {secs:5.1f}s {status}", flush=True)
    return report


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--kb-per-file", type=int, default=90)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "crash.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhiku-crash-"))
    t0 = time.monotonic()
    try:
        report = crash_run(args.kills, args.seed, work, args.files, args.kb_per_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report.line())
    print(
        f"{report.missed} commands finished before their kill (not counted); "
        f"{time.monotonic() - t0:.0f}s in all; load {os.getloadavg()[0]:.1f}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "line": report.line(),
                "missed": report.missed,
                "calibration": report.calibration,
                "kills": [asdict(k) for k in report.kills],
            },
            indent=1,
        )
    )
    n = len(report.kills)
    return 0 if all(k.consistent and k.next_ok for k in report.kills) and n >= args.kills else 1


if __name__ == "__main__":
    raise SystemExit(main())
