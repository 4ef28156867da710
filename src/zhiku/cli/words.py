"""`zhiku words …`: explore what the KB's own Word2Vec learned (similar, analogy, vector, compare, plot)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from zhiku.cli.common import open_kb, print_json


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    words = sub.add_parser("words", help="explore the word vectors trained on a knowledge base (Word2Vec)")
    wsub = words.add_subparsers(dest="words_command", metavar="SUBCOMMAND")
    shared = argparse.ArgumentParser(add_help=False, parents=[common])
    shared.add_argument(
        "--method",
        "-m",
        default=None,
        help="the word2vec method (default: the first built w2v-sg / w2v-cbow method)",
    )
    shared.add_argument("--json", action="store_true", help="print JSON")

    p = wsub.add_parser("similar", parents=[shared], help="the nearest words of WORD")
    p.add_argument("word", metavar="WORD")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    p.set_defaults(run=run_similar)

    p = wsub.add_parser(
        "analogy", parents=[shared], help="A - B + C, e.g. 国王 男人 女人 (king - man + woman)"
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("c", metavar="C")
    p.add_argument("-n", type=int, default=5, help="how many answers (default 5)")
    p.set_defaults(run=run_analogy)

    p = wsub.add_parser("vector", parents=[shared], help="the vector of WORD")
    p.add_argument("word", metavar="WORD")
    p.set_defaults(run=run_vector)

    p = wsub.add_parser("compare", parents=[shared], help="the cosine similarity of two words")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.set_defaults(run=run_compare)

    p = wsub.add_parser("plot", parents=[shared], help="draw words and their neighbours on a 2-D map (PNG)")
    p.add_argument("words", nargs="+", metavar="WORD")
    p.add_argument("--out", default="words.png", help="the PNG to write (default words.png)")
    p.add_argument("-n", type=int, default=5, help="neighbours drawn per word (default 5)")
    p.add_argument(
        "--font", default=None, help="a font file with Chinese glyphs (default: found among installed fonts)"
    )
    p.set_defaults(run=run_plot)

    words.set_defaults(run=lambda args: words.print_help() or 0)


def _model(kb: Any, name: str | None) -> tuple[str, Any, Any]:
    """(method name, WordVectors, tokenizer) of the chosen or first built word2vec method."""
    from zhiku.errors import IndexError_, UsageError

    if name is None:
        built = kb.word_vector_methods()
        if not built:
            raise IndexError_(
                f"knowledge base {kb.name!r} has no trained Word2Vec",
                f"Train one with `zhiku build --kb {kb.name} --method w2v-sg`",
            )
        name = built[0]
    if not kb.method(name).has_word_vectors:
        raise UsageError(
            f"method {name!r} has no word vectors", "Choose a w2v-sg or w2v-cbow method with --method"
        )
    return name, kb.word_vectors(name), kb.tokenizer


def _words(args: argparse.Namespace, kb: Any, *asked: str) -> tuple[str, Any, list[str]]:
    from zhiku.cli.word_explorer import resolve_word

    name, wv, tok = _model(kb, args.method)
    return name, wv, [resolve_word(wv, w, tok, name) for w in asked]


def run_similar(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        name, wv, (word,) = _words(args, kb, args.word)
        pairs = wv.most_similar([word], n=args.n)
        if args.json:
            print_json(
                {
                    "method": name,
                    "word": word,
                    "similar": [{"word": w, "similarity": round(s, 4)} for w, s in pairs],
                }
            )
            return 0
        print(f"nearest to {word!r} in {name}:")
        for w, s in pairs:
            print(f"  {s:6.3f}  {w}")
    return 0


def run_analogy(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        name, wv, (a, b, c) = _words(args, kb, args.a, args.b, args.c)
        pairs = wv.most_similar([a, c], negative=[b], n=args.n)
        if args.json:
            print_json(
                {
                    "method": name,
                    "a": a,
                    "b": b,
                    "c": c,
                    "answers": [{"word": w, "similarity": round(s, 4)} for w, s in pairs],
                }
            )
            return 0
        print(f"{a} - {b} + {c} in {name}:")
        for w, s in pairs:
            print(f"  {s:6.3f}  {w}")
    return 0


def run_vector(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        name, wv, (word,) = _words(args, kb, args.word)
        v = wv.vector(word)
        count = int(wv.counts[wv.index[word]])
        if args.json:
            print_json(
                {
                    "method": name,
                    "word": word,
                    "count": count,
                    "dim": len(v),
                    "vector": [round(float(x), 6) for x in v],
                }
            )
            return 0
        print(
            f"{word!r} in {name}: {len(v)} dimensions, seen {count} times, "
            f"norm {float((v**2).sum()) ** 0.5:.3f}"
        )
        print(" ".join(f"{x:+.4f}" for x in v))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        name, wv, (a, b) = _words(args, kb, args.a, args.b)
        sim = wv.similarity(a, b)
        if args.json:
            print_json({"method": name, "a": a, "b": b, "similarity": round(sim, 4)})
            return 0
        print(f"cosine({a}, {b}) = {sim:.3f} in {name}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from zhiku.cli.word_explorer import plot_words

    with open_kb(args) as kb:
        name, wv, words = _words(args, kb, *args.words)
        result = plot_words(
            wv, words, Path(args.out), neighbours=args.n, font=args.font, title=f"{kb.name} · {name} · PCA"
        )
        if args.json:
            print_json(
                {
                    "method": name,
                    "path": str(result.path),
                    "words": result.words,
                    "font": result.font,
                    "missing_glyphs": result.missing_glyphs,
                }
            )
            return 0
        print(f"wrote {result.path} ({len(result.words)} words)")
        if result.missing_glyphs:
            print(
                "warning: no installed font has Chinese glyphs, so Chinese labels show as boxes; install one "
                "(e.g. `apt-get install fonts-noto-cjk`) or pass --font FILE",
                file=sys.stderr,
            )
    return 0
