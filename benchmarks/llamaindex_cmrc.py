"""What a LlamaIndex user gets on Chinese: LlamaIndex's default BM25 vs zhiku through its adapter.

    PYTHONPATH=/tmp/li-bm25 .venv/bin/python benchmarks/llamaindex_cmrc.py [--limit N] [--methods bm25,hybrid]

Both retrievers are scored by LlamaIndex's own ``RetrieverEvaluator`` (hit_rate and mrr over the
top 10; hit@1 is read from the same retrieved ids), on the same CMRC 2018 dev questions, in one
process, one after the other.

- ``llamaindex-bm25``: ``BM25Retriever.from_defaults`` (llama-index-retrievers-bm25, its defaults:
  English stemmer and stop words) over one ``TextNode`` per passage (title + text), as a LlamaIndex
  user would start.
- ``zhiku <method> (adapter)``: ``zhiku.integrations.llama_index.ZhikuRetriever`` over a KB that
  holds the same passages (one document per passage, chunked as zhiku chunks any document). Its
  nodes are chunks; the evaluator is given the passage each came from (``metadata["path"]``, which
  is the passage id here), first occurrence kept, since CMRC's relevance labels are passages.

llama-index-retrievers-bm25 is a benchmark-only package: its metadata asks for PyStemmer < 3 where
zhiku pins 3.1, so install it apart, without its dependencies (it runs with PyStemmer 3.1, and
llama-index-core and bm25s are in zhiku's lock already):

    .venv/bin/pip install --no-deps --target /tmp/li-bm25 llama-index-retrievers-bm25==0.8.0
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sections import DATA, commit, machine, md_table, replace_section  # noqa: E402

from zhiku.eval import load_dataset  # noqa: E402
from zhiku.eval.datasets import Dataset  # noqa: E402

K = 10


def by_passage(inner: Any) -> Any:
    """A retriever whose nodes are labelled with their passage id (one node per passage)."""
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    class ByPassage(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            seen: set[str] = set()
            out = []
            for n in inner.retrieve(query_bundle):
                pid = n.node.metadata["path"]
                if pid not in seen:
                    seen.add(pid)
                    node = TextNode(id_=pid, text=n.node.get_content())
                    out.append(NodeWithScore(node=node, score=n.score))
            return out

    return ByPassage()


def evaluate(name: str, retriever: Any, dataset: Dataset, build_s: float) -> dict[str, Any]:
    from llama_index.core.evaluation import RetrieverEvaluator

    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
    hit1, hit_rate, mrr, latency = [], [], [], []
    empty = 0
    for qid, query in dataset.queries.items():
        expected = [pid for pid, rel in dataset.qrels.get(qid, {}).items() if rel > 0]
        t0 = time.perf_counter()
        try:
            result = evaluator.evaluate(query=query, expected_ids=expected)
        except ValueError:
            # LlamaIndex's metrics refuse an empty retrieval; zhiku's BM25 returns nothing when no
            # query word is in the corpus (LlamaIndex's BM25 always returns k nodes): a miss.
            latency.append((time.perf_counter() - t0) * 1000)
            empty += 1
            for values in (hit1, hit_rate, mrr):
                values.append(0.0)
            continue
        latency.append((time.perf_counter() - t0) * 1000)
        hit1.append(float(bool(result.retrieved_ids) and result.retrieved_ids[0] in expected))
        hit_rate.append(result.metric_vals_dict["hit_rate"])
        mrr.append(result.metric_vals_dict["mrr"])
    row = {
        "name": name,
        "hit@1": statistics.fmean(hit1),
        "hit_rate@10": statistics.fmean(hit_rate),
        "mrr@10": statistics.fmean(mrr),
        "p50_ms": statistics.median(latency),
        "build_s": build_s,
        "empty": empty,
    }
    print(
        f"   {name:<28} hit@1 {row['hit@1']:.3f} hit_rate@10 {row['hit_rate@10']:.3f} "
        f"mrr@10 {row['mrr@10']:.3f} p50 {row['p50_ms']:.2f} ms",
        file=sys.stderr,
    )
    return row


def llamaindex_bm25(dataset: Dataset) -> tuple[Any, float]:
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    t0 = time.perf_counter()
    texts = {pid: f"{p.title}\n{p.text}" if p.title else p.text for pid, p in dataset.corpus.items()}
    nodes = [TextNode(text=text, id_=pid) for pid, text in texts.items()]
    retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=K)
    return retriever, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=Path, default=DATA / "cmrc2018" / "cmrc2018_dev.json")
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of the questions (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="bm25,hybrid", help="zhiku methods to run through the adapter")
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    script = ["PYTHONPATH=/tmp/li-bm25", ".venv/bin/python", "benchmarks/llamaindex_cmrc.py"]
    command = shlex.join([*script, *given])

    from zhiku.config import KBConfig
    from zhiku.eval.corpus_kb import build_for, ingest_corpus
    from zhiku.integrations.llama_index import ZhikuRetriever

    dataset = load_dataset(args.dataset)
    if args.limit:
        dataset = dataset.sample(args.limit, args.seed)
    print(f"== {len(dataset.queries)} questions, {len(dataset.corpus)} passages", file=sys.stderr)
    rows = []
    retriever, secs = llamaindex_bm25(dataset)
    rows.append(evaluate("llamaindex-bm25 (defaults)", retriever, dataset, secs))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        kb, aliases, _ = ingest_corpus(dataset, Path(tmp) / "kb", KBConfig())
        if aliases:  # one text under two passage ids would need the aliases mapped back; CMRC has none
            raise SystemExit(f"passages with identical text: {aliases}")
        ingest_s = time.perf_counter() - t0
        try:
            for method in args.methods.split(","):
                t0 = time.perf_counter()
                build_for(kb, [method])
                secs = ingest_s + time.perf_counter() - t0
                adapter = ZhikuRetriever(kb, method=method, k=K)
                rows.append(evaluate(f"zhiku {method} (adapter)", by_passage(adapter), dataset, secs))
        finally:
            kb.close()
    if not args.no_markdown:
        replace_section("llamaindex", render(rows, len(dataset.queries), command))
    return 0


def render(rows: list[dict[str, Any]], queries: int, command: str) -> str:
    out = [
        "## A LlamaIndex user on Chinese (`benchmarks/llamaindex_cmrc.py`)",
        "",
        f"CMRC 2018 dev, {queries:,} questions, 848 passages; both retrievers scored by LlamaIndex's "
        f"`RetrieverEvaluator` (hit_rate, mrr over the top {K}) in one run. Measured on {machine()}, "
        f"commit `{commit()}`. Command:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    headers = ["retriever", "hit@1", f"hit_rate@{K}", f"MRR@{K}", "p50 ms/query", "index s", "empty results"]
    table = [
        [
            r["name"],
            f"{r['hit@1']:.3f}",
            f"{r['hit_rate@10']:.3f}",
            f"{r['mrr@10']:.3f}",
            f"{r['p50_ms']:.2f}",
            f"{r['build_s']:.1f}",
            str(r["empty"]),
        ]
        for r in rows
    ]
    return "\n".join([*out, md_table(headers, table)])


if __name__ == "__main__":
    raise SystemExit(main())
