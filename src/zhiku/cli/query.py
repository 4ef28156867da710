"""Commands that read a knowledge base: search and ask."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zhiku.cli import chat
from zhiku.cli.common import hit_json, open_kb, print_json
from zhiku.types import page_label

RERANK_HELP = (
    "rerank the best candidates: cross-encoder:/path/to/model, remote:http://HOST:PORT, llm[:listwise], "
    "or off (default: the KB's [rerank] table)"
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", parents=[common], help="find the chunks that match a query")
    p.add_argument("query", nargs="?", help="the query (omit with --batch)")
    p.add_argument(
        "--method", "-m", default=None, help="bm25, dense, hybrid, … (default: hybrid when built, else bm25)"
    )
    p.add_argument("-k", type=int, default=10, help="how many hits (default 10)")
    p.add_argument("--json", action="store_true", help="print hits as JSON")
    p.add_argument(
        "--batch", metavar="FILE", help="one query per line; writes JSON Lines, one hit list per query"
    )
    p.add_argument(
        "--expand",
        action="store_true",
        help="bm25 plus the query words' nearest neighbours in the KB's Word2Vec (method bm25-expand)",
    )
    p.add_argument("--rerank", metavar="KIND[:MODEL_OR_URL]", default=None, help=RERANK_HELP)
    # read-only: the process may end without Python's clean-up (see app.main's quick_exit)
    p.set_defaults(run=run_search, quick_exit=True)

    p = sub.add_parser("ask", parents=[common], help="answer a question with numbered citations")
    p.add_argument("question")
    p.add_argument("--method", "-m", default=None, help="retrieval method (default as for search)")
    p.add_argument("-k", type=int, default=5, help="how many chunks the answer may draw on (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer, citations and timings as JSON")
    chat.add_llm_arguments(p)
    p.add_argument("--rerank", metavar="KIND[:MODEL_OR_URL]", default=None, help=RERANK_HELP)
    p.set_defaults(run=run_ask)


def run_search(args: argparse.Namespace) -> int:
    from zhiku.errors import NotFoundError, UsageError

    if args.expand:
        if args.method not in (None, "bm25-expand"):
            raise UsageError("--expand expands bm25 queries only", "Drop --method, or drop --expand")
        args.method = "bm25-expand"
    if args.batch:
        if args.query:
            raise UsageError("give either a query or --batch FILE, not both", "Drop one of them")
        try:
            with open(args.batch, encoding="utf-8-sig") as f:
                queries = [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            raise NotFoundError(f"no such file: {args.batch}", "Check the path of --batch") from None
        except UnicodeDecodeError:
            raise UsageError(
                f"{args.batch} is not UTF-8 text", "Save it as UTF-8, one query per line"
            ) from None
        with open_kb(args) as kb:
            found = kb.search_many(queries, k=args.k, method=args.method, rerank=args.rerank)
            for q, hits in zip(queries, found, strict=True):
                rows = [hit_json(i, h) for i, h in enumerate(hits, start=1)]
                print(json.dumps({"query": q, "hits": rows}, ensure_ascii=False))
        return 0
    if args.query is None:
        raise UsageError("no query given", 'Try: zhiku search "你的问题"  (or --batch FILE)')
    with open_kb(args) as kb:
        hits = kb.search(args.query, k=args.k, method=args.method, rerank=args.rerank)
        for note in kb.notes:
            print(f"note: {note}", file=sys.stderr)
        if args.json:
            # Each hit says which parts answered (a fusion whose part is still building uses the rest).
            print_json([{**hit_json(i, h), "parts_used": kb.parts_used} for i, h in enumerate(hits, start=1)])
            return 0
        if not hits:
            print("no matches", file=sys.stderr)
            return 0
        for i, h in enumerate(hits, start=1):
            if h.chunk is None or h.doc is None:
                continue  # the facade only returns attached hits
            where = f"{h.doc.title}" + (f" › {h.chunk.heading}" if h.chunk.heading else "")
            measure = (
                f"L2 {h.distance:.3f}"
                if h.distance is not None and h.method and _is_l2(kb, h.method)
                else f"{h.score:.3f}"
            )
            print(f"{i:>2}. [{measure}] {where}")
            page = page_label(h.doc.format, h.chunk.page)
            print(f"    {h.doc.source}:{h.chunk.start}-{h.chunk.end}" + (f"  {page}" if page else ""))
            text = " ".join(h.chunk.text.split())
            print(f"    {text[:160]}{'…' if len(text) > 160 else ''}")
    return 0


def _is_l2(kb: Any, method: str) -> bool:
    """L2 methods show their distance (smaller is closer), as users of such methods expect."""
    return bool(kb.method_settings(method).get("metric") == "l2")


def run_ask(args: argparse.Namespace) -> int:
    # Streaming, JSON and showing the passages when generation fails are shared with `zhiku chat`.
    return chat.run_answer(args)
