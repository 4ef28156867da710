"""zhiku next to what users would otherwise pick, on the same queries, scored by the same code.

    .venv/bin/python benchmarks/peers.py [--datasets cmrc2018,squad,scifact,rgb-zh]
        [--ensemble-datasets cmrc2018,scifact] [--squad-limit 2000]
        [--peers-python /tmp/peersvenv/bin/python]

Peers (benchmark-only dependencies, see benchmarks/requirements.txt; they run in the interpreter
given by --peers-python, so zhiku's own environment stays as pinned):
- ``rank_bm25+jieba``: rank_bm25's BM25Okapi over ``jieba.lcut_for_search`` tokens, which is what
  LangChain-Chatchat's ensemble retriever builds (through LangChain's BM25Retriever) - and it builds
  it again on every query; that rebuild is timed separately on a few queries.
- ``llamaindex-bm25``: llama-index-retrievers-bm25 with its defaults (English stemmer and stop words).
- ``langchain-ensemble``: LangChain's EnsembleRetriever (0.5/0.5) of BM25Retriever with its default
  tokenizer (``str.split``) and FAISS over HuggingFaceEmbeddings with the same MiniLM model zhiku
  uses; ``chatchat-ensemble`` is the same with jieba for BM25, as LangChain-Chatchat configures it.
Peers index each passage whole (title + text); zhiku ingests the same passages into a KB and
chunks them as it would any document. zhiku runs in this process, the peers in a child process,
one dataset after the other, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import DATASETS  # noqa: E402
from sections import DATA, RESULTS, commit, machine, md_table, replace_section  # noqa: E402

from zhiku.eval import evaluate, load_dataset  # noqa: E402
from zhiku.eval.datasets import Dataset  # noqa: E402
from zhiku.eval.report import MethodResult  # noqa: E402
from zhiku.types import Hit  # noqa: E402

K = 10
PAIRS = [
    ("zhiku bm25", "rank_bm25+jieba"),
    ("zhiku bm25", "llamaindex-bm25"),
    ("zhiku hybrid", "langchain-ensemble"),
    ("zhiku hybrid", "chatchat-ensemble"),
]


def passage_text(dataset: Dataset, pid: str) -> str:
    p = dataset.corpus[pid]
    return f"{p.title}\n{p.text}" if p.title else p.text


def summary(m: MethodResult, build_s: float, note: str = "") -> dict[str, Any]:
    return {
        "name": m.method,
        "metrics": m.metrics,
        "p50_ms": m.latency_ms_p50,
        "p95_ms": m.latency_ms_p95,
        "build_s": round(build_s, 2),
        "qps": m.queries_per_second,
        "note": note,
    }


# --- peers (run in the child process) -------------------------------------------------------------


class RankBM25Jieba:
    def __init__(self, dataset: Dataset) -> None:
        import jieba
        from rank_bm25 import BM25Okapi

        self.cut, self.ids = jieba.lcut_for_search, list(dataset.corpus)
        self.texts = [passage_text(dataset, pid) for pid in self.ids]
        self.bm25 = BM25Okapi([self.cut(t) for t in self.texts])
        self._okapi = BM25Okapi

    def search(self, query: str, k: int) -> list[Hit]:
        import numpy as np

        scores = self.bm25.get_scores(self.cut(query))
        top = np.argsort(-scores)[:k]
        return [Hit(self.ids[i], float(scores[i]), "rank_bm25") for i in top]

    def rebuild_and_search(self, query: str, k: int) -> list[Hit]:
        """What LangChain-Chatchat does per request: tokenise the corpus, build BM25, then search."""
        self.bm25 = self._okapi([self.cut(t) for t in self.texts])
        return self.search(query, k)


class LlamaIndexBM25:
    def __init__(self, dataset: Dataset) -> None:
        from llama_index.core.schema import TextNode
        from llama_index.retrievers.bm25 import BM25Retriever

        nodes = [TextNode(text=passage_text(dataset, pid), id_=pid) for pid in dataset.corpus]
        self.retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=K)

    def search(self, query: str, k: int) -> list[Hit]:
        found = self.retriever.retrieve(query)
        return [Hit(n.node.node_id, float(n.score or 0), "llamaindex") for n in found][:k]


class LangChainEnsemble:
    def __init__(self, dataset: Dataset, vectors: Any, jieba_bm25: bool) -> None:
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.retrievers import BM25Retriever

        docs = vectors.docs
        if jieba_bm25:
            import jieba

            bm25 = BM25Retriever.from_documents(docs, preprocess_func=jieba.lcut_for_search, k=K)
        else:
            bm25 = BM25Retriever.from_documents(docs, k=K)
        dense = vectors.store.as_retriever(search_kwargs={"k": K})
        self.retriever = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])

    def search(self, query: str, k: int) -> list[Hit]:
        docs = self.retriever.invoke(query)[:k]
        return [Hit(d.metadata["id"], 1.0 / (i + 1), "ensemble") for i, d in enumerate(docs)]


class FaissStore:
    def __init__(self, dataset: Dataset) -> None:
        from langchain_community.embeddings import HuggingFaceEmbeddings
        from langchain_community.vectorstores import FAISS
        from langchain_core.documents import Document

        from zhiku.embed.sbert import resolve_model_path

        self.docs = [
            Document(page_content=passage_text(dataset, pid), metadata={"id": pid}) for pid in dataset.corpus
        ]
        emb = HuggingFaceEmbeddings(
            model_name=str(resolve_model_path("all-MiniLM-L6-v2")), model_kwargs={"device": "cpu"}
        )
        self.store = FAISS.from_documents(self.docs, emb)


def run_peers(
    key: str, limit: int | None, seed: int, ensemble: bool, rebuild_sample: int
) -> list[dict[str, Any]]:
    import warnings

    warnings.filterwarnings("ignore")
    dataset = load_dataset(DATA / DATASETS[key][0])
    if limit:
        dataset = dataset.sample(limit, seed)
    out = []

    def timed(make: Any) -> tuple[Any, float]:
        t0 = time.perf_counter()
        obj = make()
        return obj, time.perf_counter() - t0

    peer, secs = timed(lambda: RankBM25Jieba(dataset))
    result = evaluate(peer, dataset, k=K, depth=K, name="rank_bm25+jieba").methods[0]
    rebuild = []
    for q in list(dataset.queries.values())[:rebuild_sample]:
        t0 = time.perf_counter()
        peer.rebuild_and_search(q, K)
        rebuild.append((time.perf_counter() - t0) * 1000)
    per_query = statistics.median(rebuild)
    note = f"rebuilt per query as in LangChain-Chatchat: {per_query:.0f} ms/query (median of {len(rebuild)})"
    out.append(summary(result, secs, note))
    peer, secs = timed(lambda: LlamaIndexBM25(dataset))
    out.append(summary(evaluate(peer, dataset, k=K, depth=K, name="llamaindex-bm25").methods[0], secs))
    if ensemble:
        vectors, vsecs = timed(lambda: FaissStore(dataset))
        for name, jieba_bm25 in (("langchain-ensemble", False), ("chatchat-ensemble", True)):
            peer, secs = timed(lambda j=jieba_bm25: LangChainEnsemble(dataset, vectors, j))
            result = evaluate(peer, dataset, k=K, depth=K, name=name).methods[0]
            out.append(summary(result, vsecs + secs, f"FAISS embedding {vsecs:.0f} s included"))
    return out


# --- zhiku and the orchestration (this process) --------------------------------------------------


def run_zhiku(key: str, dataset: Dataset, ensemble: bool) -> list[dict[str, Any]]:
    from zhiku.eval import run_eval

    methods = ["bm25", "hybrid"] if ensemble else ["bm25"]
    report = run_eval(dataset, methods, k=K)
    ingest = float(report.settings["ingest_seconds"])
    # Index time = ingest (chunking, jieba, catalog) + the method's index builds, as for the peers,
    # whose time covers tokenising and indexing.
    chunks = f"{report.settings['chunks']} chunks"
    return [
        summary(m, ingest + m.build_seconds, chunks) | {"name": f"zhiku {m.method}"} for m in report.methods
    ]


def ratios(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    out = []
    for ours, peer in PAIRS:
        if ours not in rows or peer not in rows:
            continue
        a, b = rows[ours], rows[peer]

        def q(metric: str, a: dict[str, Any] = a, b: dict[str, Any] = b) -> str:
            mine, theirs = a["metrics"][metric], b["metrics"][metric]
            return f"{mine / theirs:.2f}" if theirs else "∞"

        out.append(
            [
                f"{ours} / {peer}",
                q("hit@1"),
                q("mrr@10"),
                q("ndcg@10"),
                f"{a['p50_ms'] / b['p50_ms']:.2f}" if b["p50_ms"] else "-",
                f"{a['build_s'] / b['build_s']:.2f}" if b["build_s"] else "-",
            ]
        )
    return out


def render(results: dict[str, dict[str, Any]], command: str) -> str:
    out = [
        "## zhiku and its peers (`benchmarks/peers.py`)",
        "",
        f"Measured on {machine()}, commit `{commit()}`. Command:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    metrics = ("hit@1", "hit@10", "mrr@10", "ndcg@10", "recall@10")
    headers = [
        "method",
        "hit@1",
        "hit@10",
        "MRR@10",
        "nDCG@10",
        "recall@10",
        "p50 ms",
        "p95 ms",
        "index s",
        "note",
    ]
    for key, res in results.items():
        out += [f"### {DATASETS[key][1]}", "", f"{res['queries']} queries.", ""]
        rows = [
            [
                r["name"],
                *[f"{r['metrics'][c]:.3f}" for c in metrics],
                f"{r['p50_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                f"{r['build_s']:.1f}",
                r["note"],
            ]
            for r in res["rows"]
        ]
        out += [md_table(headers, rows), ""]
        table = ratios({r["name"]: r for r in res["rows"]})
        if table:
            out += [
                "zhiku / peer (quality: above 1 = zhiku better; latency and index time: below 1 = "
                "zhiku faster):",
                "",
                md_table(["pair", "hit@1", "MRR@10", "nDCG@10", "p50 latency", "index time"], table),
                "",
            ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument(
        "--ensemble-datasets",
        default="cmrc2018,scifact",
        help="where the MiniLM ensembles run (embedding dominates the run time)",
    )
    p.add_argument("--squad-limit", type=int, default=2000)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rebuild-sample", type=int, default=10)
    p.add_argument("--peers-python", default="/tmp/peersvenv/bin/python")
    p.add_argument("--peer-run", default=None, help=argparse.SUPPRESS)  # child: run the peers of one dataset
    p.add_argument("--ensemble", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-markdown", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    args = p.parse_args(argv)
    if args.peer_run:
        print(json.dumps(run_peers(args.peer_run, args.limit, args.seed, args.ensemble, args.rebuild_sample)))
        return 0
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join([".venv/bin/python", "benchmarks/peers.py", *given])
    ensemble_sets = set(args.ensemble_datasets.split(",")) if args.ensemble_datasets else set()
    results: dict[str, dict[str, Any]] = {}
    for key in args.datasets.split(","):
        limit = args.squad_limit if key == "squad" else args.limit
        dataset = load_dataset(DATA / DATASETS[key][0])
        if limit:
            dataset = dataset.sample(limit, args.seed)
        ensemble = key in ensemble_sets
        print(f"== {key}: {len(dataset.queries)} queries", file=sys.stderr)
        rows = run_zhiku(key, dataset, ensemble)
        child = [
            args.peers_python,
            __file__,
            "--peer-run",
            key,
            "--seed",
            str(args.seed),
            "--rebuild-sample",
            str(args.rebuild_sample),
            *(["--limit", str(limit)] if limit else []),
            *(["--ensemble"] if ensemble else []),
        ]
        proc = subprocess.run(child, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
        results[key] = {"queries": len(dataset.queries), "rows": rows}
        for r in rows:
            m = r["metrics"]
            print(
                f"   {r['name']:<20} MRR@10 {m['mrr@10']:.3f} nDCG@10 {m['ndcg@10']:.3f} "
                f"p50 {r['p50_ms']:.2f} ms index {r['build_s']:.1f} s {r['note']}",
                file=sys.stderr,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    if not args.no_markdown:
        replace_section("peers", render(results, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
