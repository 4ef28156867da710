"""The hostile-input corpus (tests/helpers/hostile.py) through `zhiku ingest`, one child process per
kind, into a KB that already holds a document: the line the user reads, the exit code, the peak RSS
(os.wait4) and whether the stored document survived.

    .venv/bin/python benchmarks/hostile.py [--light] [--out benchmarks/results/hostile.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.helpers.crashkit import init_kb, run  # noqa: E402
from tests.helpers.hostile import KINDS, TEA, measure  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--light", action="store_true", help="skip the heavy kinds")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hostile.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhiku-hostile-"))
    rows = []
    try:
        home = work / "home"
        init_kb(home)
        tea = work / "tea.md"
        tea.write_text(TEA, encoding="utf-8")
        assert run(home, "ingest", str(tea), "--kb", "k").returncode == 0
        print("| kind | what the user reads | exit | peak MB | stored doc kept |")
        print("|---|---|---|---|---|")
        for kind in KINDS:
            if args.light and kind.heavy:
                continue
            if kind.name.startswith("unreadable") and os.geteuid() == 0:
                note = " (run as root: root reads a chmod 000 file, so it is ingested)"
            else:
                note = ""
            o = measure(kind, work / "w", home)
            rows.append({**asdict(o), "bound_mb": kind.peak_mb, "heavy": kind.heavy})
            line = o.line.replace(str(work), "…").replace("|", "\\|")
            flag = " TRACEBACK" if o.traceback else ""
            kept = "yes" if not o.lost else "NO"
            print(f"| {o.kind}{note} | {line}{flag} | {o.rc} | {o.peak_mb:.0f} | {kept} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tracebacks = sum(r["traceback"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    over = sum(r["peak_mb"] >= r["bound_mb"] for r in rows)
    print(
        f"{len(rows)} kinds: {tracebacks} tracebacks, {lost} losses, {over} over their memory bound; "
        f"max peak {max(r['peak_mb'] for r in rows):.0f} MB; load {os.getloadavg()[0]:.1f}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    return 0 if not (tracebacks or lost or over) else 1


if __name__ == "__main__":
    raise SystemExit(main())
