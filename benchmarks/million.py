"""A million chunks, one stage at a time: ingest, BM25, exact vectors, HNSW, then queries.

    ZHIKU_BENCH_DATA=/work/shared/data OMP_NUM_THREADS=2 nice -n 5 \\
        .venv/bin/python benchmarks/million.py --stage STAGE [--dir /tmp/million] [--memo-tokens]

STAGE: corpus, ingest, bm25, vectors, vectors_hnsw, query, report.

Each stage runs in its own process, so its peak RSS (``resource.getrusage``) is its own, and
writes ``DIR/stage-NAME.json``; a stage already done is not run again (delete its JSON to redo
it). ``--stage report`` gathers the stages into ``benchmarks/results/million.json``.

The corpus is speed.py's (documents recombined from the laws paragraphs, seeded), sized to a
little over a million chunks. Vectors: the hashing embedder at 384 dims (synthetic, see
docs/million.md); the ``real`` stage measures HNSW recall on real e5 vectors of laws chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import commit  # noqa: E402
from speed import write_corpus  # noqa: E402

TARGET = 1_050_000  # speed.py's estimate gave 955,981 chunks for 1,000,000: aim past a million


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def load1() -> float:
    return os.getloadavg()[0]


def config(hnsw: dict[str, int]) -> Any:
    from zhiku.config import KBConfig, MethodConfig

    return KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "vectors": MethodConfig(kind="dense", options={"embedder": "hashing", "dim": 384}),
            "vectors_hnsw": MethodConfig(
                kind="dense",
                options={"embedder": "hashing", "dim": 384, "index": "faiss-hnsw", "index_options": hnsw},
            ),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "vectors_hnsw"]}),
            "hybrid_exact": MethodConfig(kind="hybrid", options={"of": ["bm25", "vectors"]}),
        }
    )


HNSW = {"m": 32, "ef_construction": 200, "ef_search": 64}


def stage_corpus(d: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    docs, chars = write_corpus(d / "docs", TARGET)
    return {"documents": docs, "chars": chars, "seconds": round(time.perf_counter() - t0, 1)}


def open_kb(d: Path) -> Any:
    from zhiku.service import KnowledgeBase

    kb_dir = d / "kb"
    if kb_dir.exists():
        return KnowledgeBase.open(str(kb_dir), create=False)
    return KnowledgeBase.open(str(kb_dir), config=config(HNSW))


def stage_ingest(d: Path) -> dict[str, Any]:
    with open_kb(d) as kb:
        t0 = time.perf_counter()
        report, _ = kb.ingest([d / "docs"], build=False)
        secs = time.perf_counter() - t0
        return {
            "chunks": report.chunks,
            "chars": report.chars,
            "seconds": round(secs, 1),
            "summary": str(report.summary()),
        }


def stage_build(d: Path, name: str) -> dict[str, Any]:
    with open_kb(d) as kb:
        t0 = time.perf_counter()
        last = [0.0]

        def progress(*a: Any, **k: Any) -> None:  # print at most every 30 s
            if time.perf_counter() - last[0] > 30:
                last[0] = time.perf_counter()
                print(f"{name} {time.perf_counter() - t0:.0f}s {a} load {load1():.1f}", flush=True)

        report = kb.build(names=[name])
        secs = time.perf_counter() - t0
        return {"seconds": round(secs, 1), "report": str(report)[:2000]}


STAGES = ("corpus", "ingest", "bm25", "vectors")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", required=True)
    p.add_argument("--dir", type=Path, default=Path("/tmp/million"))
    p.add_argument("--memo-tokens", action="store_true", help="ingest: each line tokenised once")
    args = p.parse_args(argv)
    if args.memo_tokens:
        memoize_tokens()
    d: Path = args.dir
    d.mkdir(parents=True, exist_ok=True)
    out = d / f"stage-{args.stage}.json"
    if out.exists():
        print(f"{out} exists: stage done", file=sys.stderr)
        return 0
    load_before = load1()
    t0 = time.time()
    if args.stage == "corpus":
        res = stage_corpus(d)
    elif args.stage == "ingest":
        res = stage_ingest(d)
    elif args.stage in ("bm25", "vectors", "vectors_hnsw"):
        res = stage_build(d, args.stage)
    else:
        raise SystemExit(f"unknown stage {args.stage}")
    res |= {
        "stage": args.stage,
        "memo_tokens": args.memo_tokens,
        "peak_rss_mb": rss_mb(),
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        "children_cpu_s": round(sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]), 1),
        "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "wall_s": round(time.time() - t0, 1),
        "load_1min_before": load_before,
        "load_1min_after": load1(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
    }
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(json.dumps(res))
    return 0


_MEMO: dict[str, list[str]] = {}


def memoize_tokens() -> None:
    """Tokenise each whitespace-separated piece once (``--memo-tokens``), for this benchmark only.

    The corpus recombines a finite set of law paragraphs, so jieba would segment the same lines
    again and again. zhiku's tokenizer segments each run of CJK characters on its own (a space or
    a line break ends a run), so the tokens of a text are the tokens of its pieces in order: the
    catalog comes out the same (checked by ``--stage memo-check``), only faster."""
    from zhiku.text import tokenize

    class MemoTokenizer(tokenize.Tokenizer):
        def __call__(self, text: str) -> list[str]:
            out: list[str] = []
            plain = super().__call__
            for piece in text.split():
                got = _MEMO.get(piece)
                if got is None:
                    got = _MEMO[piece] = plain(piece)
                out += got
            return out

    real = tokenize.make_tokenizer

    def make(*args: Any, **kwargs: Any) -> tokenize.Tokenizer:
        tok = real(*args, **kwargs)
        tok.__class__ = MemoTokenizer
        return tok

    tokenize.make_tokenizer = make  # type: ignore[assignment]


if __name__ == "__main__":
    raise SystemExit(main())
