"""Peak memory of each build stage on big KBs, and old code against new on the same KB.

The commands behind BENCHMARKS.md's "Streamed builds" section (each step its own process, so its
max RSS is its own):

    python benchmarks/scale_memory.py make-kb 20000 /tmp/ab/k20      # speed.py's corpus, ingested
    python benchmarks/scale_memory.py copy /tmp/ab/k20/kb /tmp/ab/k1m/kb 51   # ×52 with new ids
    python benchmarks/scale_memory.py corpus-mem /tmp/ab/k20/kb
    python benchmarks/scale_memory.py build /tmp/ab/k1m/kb bm25       # then: vectors
    python benchmarks/scale_memory.py query /tmp/ab/k1m/kb bm25,vectors

Old code: ``git archive bd20b22 src | tar -x -C /tmp/ab/oldsrc`` and ``PYTHONPATH=/tmp/ab/oldsrc/src``
for the same commands. ``copy`` multiplies a catalog in SQLite (new document and chunk ids, the
same texts and tokens): a 1M-chunk KB without an hour of ingest; its vectors build reuses the
copied KB's cached vectors (every text hash is known), so it measures the build path, not the
embedder.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def make_kb(chunks: int, root: Path) -> dict[str, object]:
    from speed import write_corpus

    from zhiku.config import KBConfig, MethodConfig
    from zhiku.service import KnowledgeBase

    write_corpus(root / "docs", chunks)
    config = KBConfig(
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "vectors": MethodConfig(kind="dense", options={"embedder": "hashing", "dim": 384}),
        }
    )
    with KnowledgeBase.open(str(root / "kb"), config=config) as kb:
        t0 = time.perf_counter()
        report, _ = kb.ingest([root / "docs"], build=False)
        return {"chunks": report.chunks, "ingest_s": round(time.perf_counter() - t0, 1)}


def copy(src: Path, dst: Path, copies: int) -> dict[str, object]:
    shutil.copytree(src, dst)
    db = sqlite3.connect(dst / "catalog.sqlite")
    db.execute("PRAGMA foreign_keys=OFF")
    hexd = "'0123456789abcdef'"

    def rot(col: str, k: int) -> str:  # rotate the first two hex digits: a new id per copy
        a, b = k % 16, k // 16
        return (
            f"substr({hexd}, ((instr({hexd}, substr({col},1,1)) - 1 + {a}) % 16) + 1, 1) || "
            f"substr({hexd}, ((instr({hexd}, substr({col},2,1)) - 1 + {b}) % 16) + 1, 1) || substr({col}, 3)"
        )

    db.execute("CREATE TEMP TABLE od AS SELECT id FROM documents")
    for k in range(1, copies + 1):
        db.execute(
            f"INSERT INTO documents SELECT {rot('id', k)}, source || '#{k}', title, format, content_hash, "
            "text, chars, n_chunks, size, mtime, ingested_at FROM documents WHERE id IN (SELECT id FROM od)"
        )
        db.execute(
            f'INSERT INTO chunks SELECT {rot("id", k)}, {rot("doc_id", k)}, ord, start, "end", heading, '
            "text, text_hash, tokens FROM chunks WHERE doc_id IN (SELECT id FROM od)"
        )
        db.commit()
    n = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    db.execute("UPDATE meta SET value=? WHERE key='fingerprint'", (f"{n}:{copies}",))
    db.commit()
    return {"chunks": n}


def corpus_mem(kb_path: str) -> dict[str, object]:
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open(kb_path) as kb:
        kb.language()
        tracemalloc.start()
        c = kb.corpus()
        held = tracemalloc.get_traced_memory()[0]

        def size(xs: list[str]) -> int:
            return sys.getsizeof(xs) + sum(sys.getsizeof(x) for x in xs)

        toks = getattr(c.tokens, "_joined", None)
        parts = {
            "ids": size(c.ids),
            "texts": size(c.texts),
            "contexts": size(c.contexts),
            "hashes": size(c.text_hashes),
            "tokens": size(toks)
            if toks is not None
            else sys.getsizeof(c.tokens) + sum(size(t) for t in c.tokens),
        }
        return {
            "chunks": len(c),
            "held_mb": round(held / 2**20, 1),
            "bytes_per_chunk": {k: round(v / len(c)) for k, v in parts.items()},
        }


def build(kb_path: str, method: str) -> dict[str, object]:
    from zhiku.service import KnowledgeBase

    with KnowledgeBase.open(kb_path) as kb:
        before = rss_mb()
        t0 = time.perf_counter()
        kb.build(names=[method], force=True)
        return {
            "method": method,
            "build_s": round(time.perf_counter() - t0, 1),
            "rss_before_mb": before,
            "max_rss_mb": rss_mb(),
        }


def query(kb_path: str, names: str) -> dict[str, object]:
    from speed import make_queries, pct

    from zhiku.service import KnowledgeBase

    out: dict[str, object] = {}
    with KnowledgeBase.open(kb_path) as kb:
        qs = make_queries(200)
        for m in names.split(","):
            t0 = time.perf_counter()
            kb.search(qs[0], 10, m)
            first = time.perf_counter() - t0
            ts = []
            for q in qs:
                t0 = time.perf_counter()
                kb.search(q, 10, m)
                ts.append((time.perf_counter() - t0) * 1000)
            out[m] = {
                "load_and_first_s": round(first, 2),
                "p50": round(pct(ts, 50), 2),
                "p95": round(pct(ts, 95), 2),
            }
    out["max_rss_mb"] = rss_mb()  # a process holding the KB loaded, after warm-up and 200 queries
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make-kb")
    a.add_argument("chunks", type=int)
    a.add_argument("root", type=Path)
    a = sub.add_parser("copy")
    a.add_argument("src", type=Path)
    a.add_argument("dst", type=Path)
    a.add_argument("copies", type=int)
    sub.add_parser("corpus-mem").add_argument("kb")
    a = sub.add_parser("build")
    a.add_argument("kb")
    a.add_argument("method")
    a = sub.add_parser("query")
    a.add_argument("kb")
    a.add_argument("methods")
    args = p.parse_args()
    if args.cmd == "make-kb":
        r = make_kb(args.chunks, args.root)
    elif args.cmd == "copy":
        r = copy(args.src, args.dst, args.copies)
    elif args.cmd == "corpus-mem":
        r = corpus_mem(args.kb)
    elif args.cmd == "build":
        r = build(args.kb, args.method)
    else:
        r = query(args.kb, args.methods)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
