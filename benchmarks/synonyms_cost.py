"""What a KB's synonyms file costs (issue 12, item 5): segmenter load, memory, query time.

    .venv/bin/python benchmarks/synonyms_cost.py [--groups 1000] [--chunks 3000] [--queries 300]

Makes its own data from jieba's dictionary (no corpus needed): ``--groups`` groups of 3 new
compounds (two dictionary words joined, so jieba must learn each), and a KB of ``--chunks``
chunks that each use one compound. Reports the load time of the shared jieba segmenter and of the
KB's own one (with the synonym words), the peak-RSS growth of the latter, and the median time of a
bm25/tfidf query holding one group word, with the expansion and without it (same KB, same index,
the query's tokens scored without their alternatives). Runs in a temporary folder; never part of
the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--chunks", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()

    import jieba

    from zhiku.config import KBConfig, MethodConfig, TokenizerConfig
    from zhiku.service import KnowledgeBase
    from zhiku.text import tokenize
    from zhiku.text.synonyms import QueryTerms

    rng = random.Random(0)
    dictionary = Path(jieba.__file__).parent / "dict.txt"
    words = [line.split()[0] for line in dictionary.read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if len(w) == 2][:20000]
    rng.shuffle(words)
    compounds = [words[2 * i] + words[2 * i + 1] for i in range(3 * args.groups)]
    groups = [compounds[3 * i : 3 * i + 3] for i in range(args.groups)]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "kb"
        root.mkdir()
        (root / "synonyms.txt").write_text("\n".join(" ".join(g) for g in groups) + "\n", encoding="utf-8")
        t = time.perf_counter()
        tokenize.warm(tokenize.make_tokenizer())
        out["shared_segmenter_s"] = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        tokenize.warm(tokenize.make_tokenizer(synonyms=str(root / "synonyms.txt")))
        out["kb_segmenter_s"] = time.perf_counter() - t
        out["kb_segmenter_rss_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
        docs = [
            (f"d{i}.md", f"d{i}", "".join(rng.choice(words) for _ in range(60)) + rng.choice(compounds))
            for i in range(args.chunks)
        ]
        methods = {"bm25": MethodConfig(kind="bm25"), "tfidf": MethodConfig(kind="tfidf", enabled=True)}
        config = KBConfig(methods=methods, tokenizer=TokenizerConfig(synonyms="synonyms.txt"))
        with KnowledgeBase.open(str(root), config=config) as kb:
            kb.add_texts(docs)
            queries = [
                rng.choice(compounds) + rng.choice(words) + rng.choice(words) for _ in range(args.queries)
            ]
            tok = kb.tokenizer
            for name in methods:
                method = kb.ready_method(name, build=True)
                for expanded in (True, False):
                    if expanded:
                        tok.__dict__.pop("query_terms", None)
                    else:  # the same tokens, their alternatives dropped
                        tok.query_terms = lambda q: QueryTerms(tok(q), [])  # type: ignore[method-assign, assignment]
                    method.search(queries[0], 10)
                    times = []
                    for q in queries:
                        t = time.perf_counter()
                        method.search(q, 10)
                        times.append(time.perf_counter() - t)
                    out[f"{name}_{'expanded' if expanded else 'plain'}_ms"] = statistics.median(times) * 1000
                tok.__dict__.pop("query_terms", None)
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 3) for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
