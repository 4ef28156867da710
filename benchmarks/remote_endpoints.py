"""Remote embedding over one vs two OpenAI-compatible servers: the same texts, the same batches.

    .venv/bin/python benchmarks/remote_endpoints.py [--texts 2000] [--batch 32] [--server-ms 40]

Two loopback servers speak ``/v1/embeddings`` (the test suite's fake server: a hashing embedder
behind the real wire format). A real embedding server's time per batch is emulated by a fixed
delay per request (``--server-ms``, default 40 ms, roughly a GPU server embedding 32 passages), so
the figure is what the client's concurrency gives: with two servers each batch goes to whichever is
free, and the wall time should halve. Writes benchmarks/results/remote_endpoints.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import RESULTS, commit, machine  # noqa: E402
from tests.integration.fake_llm_server import FakeLLMServer, Step  # noqa: E402

from zhiku.embed.base import embedders  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--server-ms", type=float, default=40.0)
    args = ap.parse_args()
    texts = [f"第{i}条 用人单位应当按照劳动合同约定支付劳动者工资报酬，第{i}项。" for i in range(args.texts)]
    batches = -(-args.texts // args.batch)
    result: dict[str, object] = {}
    with FakeLLMServer() as a, FakeLLMServer() as b:
        for server in (a, b):  # every request waits as a busy server would
            server.script("embed", *[Step("slow", delay=args.server_ms / 1000)] * (2 * batches + 4))
        for name, urls in (("one_server", [a.openai_url]), ("two_servers", [a.openai_url, b.openai_url])):
            embedder = embedders.get("openai")(model="bge-m3", urls=urls, batch_size=args.batch, dim=64)
            t0 = time.perf_counter()
            embedder.embed(texts)
            wall = time.perf_counter() - t0
            result[name] = {"wall_s": round(wall, 2), "passages_per_s": round(args.texts / wall, 1)}
            print(name, result[name], flush=True)
    one, two = result["one_server"], result["two_servers"]
    result["speedup"] = round(one["wall_s"] / two["wall_s"], 2)  # type: ignore[index]
    result.update({"texts": args.texts, "batch": args.batch, "server_ms_per_batch": args.server_ms})
    result["machine"], result["commit"] = machine(), commit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "remote_endpoints.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
