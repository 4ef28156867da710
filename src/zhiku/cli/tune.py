"""``zhiku tune``: synthetic questions, a query adapter, and the KB's default chosen on evidence.

zhiku tune questions --kb laws                       # offline pseudo-questions, train/validation split
zhiku tune questions --kb laws --llm ollama:qwen2.5:7b --sample 500 --per-chunk 3
zhiku tune adapter --kb laws --base dense            # a method `dense-tuned`, default only if it wins
zhiku tune reranker --kb laws --model ~/models/bge-reranker-base   # [rerank] only if it wins
zhiku tune route --kb laws                           # default method / hybrid weights from validation
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.cli.common import open_kb, print_json, show_progress

if TYPE_CHECKING:
    pass


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "tune",
        help="teach retrieval from the corpus: synthetic questions, adapters, routing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tsub = p.add_subparsers(dest="tune_command", metavar="STEP")

    q = tsub.add_parser(
        "questions", parents=[common], help="synthetic questions (offline or by an LLM), split by document"
    )
    q.add_argument(
        "--llm",
        default=None,
        metavar="SPEC",
        help="ollama:MODEL, openai:MODEL or local:PATH (default: offline pseudo-questions); "
        "'kb' uses the KB's own generator",
    )
    q.add_argument("--base-url", default=None, help="the LLM server's URL")
    q.add_argument("--sample", type=int, default=None, metavar="N", help="use N sampled chunks (default all)")
    q.add_argument(
        "--per-chunk", type=int, default=3, metavar="N", help="LLM questions per chunk (default 3)"
    )
    q.add_argument(
        "--kinds", default="ict,keywords,article", help="offline kinds: ict, keywords, article (default all)"
    )
    q.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="questions file (default <kb>/tune/questions.jsonl); train and validation go next to it",
    )
    q.add_argument("--validation", type=float, default=0.2, help="share of documents held out (default 0.2)")
    q.add_argument("--filter", default="bm25", help="method of the answerability filter, or 'none'")
    q.add_argument("--depth", type=int, default=100, help="the source chunk must be in the filter's top N")
    q.add_argument("--max-ties", type=int, default=5, help="drop a question when N hits tie with its source")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(run=run_questions)

    a = tsub.add_parser("adapter", parents=[common], help="a query adapter on a built vector method")
    a.add_argument("--base", required=True, help="the vector method to adapt (e.g. dense, e5, w2v-sg)")
    a.add_argument("--kind", choices=["linear", "residual"], default="linear")
    a.add_argument("--name", default=None, help="the new method's name (default <base>-tuned)")
    a.add_argument(
        "--questions",
        default=None,
        metavar="FILE",
        help="questions file of `zhiku tune questions` (default <kb>/tune/questions.jsonl)",
    )
    a.add_argument("--eval", default=None, metavar="FILE", help="also compare on a real zhiku QA file")
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--max-train", type=int, default=3000, help="train questions used at most")
    a.add_argument("--max-validation", type=int, default=500, help="validation questions used at most")
    a.add_argument("--out", default=None, metavar="DIR", help="report folder (default <kb>/tune/<name>)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=run_adapter)

    e = tsub.add_parser("encoder", parents=[common], help="fine-tune a local sentence-transformers model")
    e.add_argument(
        "--model", required=True, metavar="PATH", help="a local sentence-transformers model folder"
    )
    e.add_argument("--name", default=None, help="the new method's name (default <model folder>-tuned)")
    e.add_argument("--base", default=None, help="an existing method using the same model, to compare with")
    e.add_argument("--questions", default=None, metavar="FILE", help="default <kb>/tune/questions.jsonl")
    e.add_argument("--eval", default=None, metavar="FILE", help="also compare on a real zhiku QA file")
    e.add_argument("--epochs", type=int, default=1)
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--max-train", type=int, default=2000, help="training pairs used at most")
    e.add_argument("--out", default=None, metavar="DIR", help="report folder (default <kb>/tune/<name>)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(run=run_encoder)

    rr = tsub.add_parser("reranker", parents=[common], help="fine-tune a local cross-encoder reranker")
    rr.add_argument(
        "--model", required=True, metavar="PATH", help="a local sentence-transformers CrossEncoder folder"
    )
    rr.add_argument("--name", default=None, help="the tuned reranker's name (default <model folder>-tuned)")
    rr.add_argument("--questions", default=None, metavar="FILE", help="default <kb>/tune/questions.jsonl")
    rr.add_argument("--eval", default=None, metavar="FILE", help="also compare on a real zhiku QA file")
    rr.add_argument("--epochs", type=int, default=2, help="at most (default 2)")
    rr.add_argument("--patience", type=int, default=1, help="stop after N epochs without a better validation")
    rr.add_argument("--batch-size", type=int, default=16, help="(question, passage) pairs per step")
    rr.add_argument("--lr", type=float, default=2e-5)
    rr.add_argument(
        "--hard-negatives", type=int, default=3, help="per question, from bm25 and the default each"
    )
    rr.add_argument("--max-train", type=int, default=1000, help="train questions used at most")
    rr.add_argument("--max-validation", type=int, default=200, help="validation questions used at most")
    rr.add_argument("--max-length", type=int, default=256, help="tokens per (question, passage) pair")
    rr.add_argument("--out", default=None, metavar="DIR", help="report folder (default <kb>/tune/<name>)")
    rr.add_argument("--seed", type=int, default=0)
    rr.add_argument("--json", action="store_true")
    rr.set_defaults(run=run_reranker)

    r = tsub.add_parser(
        "route", parents=[common], help="choose the default method or hybrid weights on validation"
    )
    r.add_argument("--methods", default=None, help="candidates (default: every built method)")
    r.add_argument("--questions", default=None, metavar="FILE", help="default <kb>/tune/questions.jsonl")
    r.add_argument("--out", default=None, metavar="DIR", help="report folder (default <kb>/tune/route)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(run=run_route)
    p.set_defaults(run=lambda _args: p.print_help() or 0)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def run_questions(args: argparse.Namespace) -> int:
    from zhiku import tune
    from zhiku.errors import UsageError

    if args.per_chunk < 1:
        raise UsageError(f"--per-chunk must be at least 1, got {args.per_chunk}", "Use --per-chunk 3")
    with open_kb(args) as kb:
        out = tune.questions_path(kb, args.out)
        outcome = tune.run_questions(
            kb,
            out=out,
            sample=args.sample,
            kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
            filter_method=None if args.filter == "none" else args.filter,
            depth=args.depth,
            max_ties=args.max_ties,
            validation=args.validation,
            seed=args.seed,
            raw=tune.llm_question_maker(kb, args.llm, args.base_url, out, args.per_chunk, _bar)
            if args.llm
            else None,
        )
    info = outcome.info
    train_path, val_path = Path(info["files"]["train"]), Path(info["files"]["validation"])
    by_kind = info["by_generator"]
    if args.json:
        print_json(info)
        return 0
    print(
        f"{info['generated']} questions generated from {info['chunks']} chunks in {info['seconds']} s "
        f"({info['generator']})"
    )
    print(
        f"  dropped: {info['duplicates']} duplicates, {info['not_found']} not found by {args.filter} in its "
        f"top {args.depth}, {info['ambiguous']} ambiguous ({args.max_ties}+ chunks tie with the source)"
    )
    print(
        f"  kept {info['all']}: train {info['train']} ({info['train_docs']} documents), validation "
        f"{info['validation']} ({info['validation_docs']} documents, none of them in train)"
    )
    print("  by generator: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    for note in info["notes"]:
        print(f"note: {note}")
    print(f"wrote {out}, {train_path.name}, {val_path.name}")
    return 0


def _bar(total: int, unit: str = "questions") -> Any:
    if not show_progress():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc=unit, file=sys.stderr, dynamic_ncols=True)


def run_adapter(args: argparse.Namespace) -> int:
    from zhiku import tune

    with open_kb(args) as kb:
        incumbent = kb.default_method()
        outcome = tune.run_adapter(
            kb,
            args.base,
            kind=args.kind,
            name=args.name,
            questions=args.questions,
            eval_file=args.eval,
            epochs=args.epochs,
            max_train=args.max_train,
            max_validation=args.max_validation,
            out=Path(args.out) if args.out else None,
            seed=args.seed,
            say=None if args.json else _say,
            command=" ".join(sys.argv),
        )
    info = outcome.info
    if args.json:
        print_json({k: info[k] for k in ("method", "manifest", "out", "validation", "eval")})
        return 0
    _print_outcome(args, outcome.report, outcome.extra, outcome.verdict, info["method"], incumbent)
    print(
        f"method {info['method']!r} added to zhiku.toml; adapter in {info['folder']}; "
        f"reports in {info['out']}"
    )
    return 0


def _print_outcome(
    args: argparse.Namespace, report: Any, extra: Any, verdict: Any, name: str, incumbent: str
) -> None:
    from zhiku.eval import format_table

    print(f"validation ({report.settings.get('queries')} questions from held-out documents):")
    print(format_table(report))
    if extra is not None:
        print(f"{args.eval}:")
        print(format_table(extra))
    outcome = ("default is now " + name) if verdict.significant else ("default stays " + incumbent)
    print(f"{outcome}: {verdict.why}")


def run_encoder(args: argparse.Namespace) -> int:
    from zhiku import tune

    settings = tune.EncoderSettings(
        epochs=args.epochs, batch_size=args.batch_size, max_train=args.max_train, seed=args.seed
    )
    with open_kb(args) as kb:
        outcome = tune.run_encoder(
            kb,
            Path(args.model).expanduser().resolve(),
            settings=settings,
            name=args.name,
            base=args.base,
            questions=args.questions,
            eval_file=args.eval,
            out=Path(args.out) if args.out else None,
            say=None if args.json else _say,
            command=" ".join(sys.argv),
        )
    info = outcome.info
    if args.json:
        print_json({k: info[k] for k in ("method", "manifest", "out", "validation", "eval")})
        return 0
    _print_outcome(args, outcome.report, outcome.extra, outcome.verdict, info["method"], info["incumbent"])
    print(
        f"method {info['method']!r} added to zhiku.toml; model in {info['folder']}; reports in {info['out']}"
    )
    return 0


def run_route(args: argparse.Namespace) -> int:
    from zhiku import tune

    with open_kb(args) as kb:
        candidates = [m.strip() for m in args.methods.split(",")] if args.methods else None
        outcome = tune.run_route(
            kb,
            methods=candidates,
            questions=args.questions,
            out=Path(args.out) if args.out else None,
            say=None if args.json else _say,
        )
    decision = {k: v for k, v in outcome.info.items() if k not in ("table", "default_method")}
    if args.json:
        print_json(decision)
        return 0
    print(decision["summary"])
    return 0


def run_reranker(args: argparse.Namespace) -> int:
    from zhiku import tune

    settings = tune.RerankerSettings(
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        lr=args.lr,
        hard_negatives=args.hard_negatives,
        max_train=args.max_train,
        max_validation=args.max_validation,
        max_length=args.max_length,
        seed=args.seed,
    )
    with open_kb(args) as kb:
        outcome = tune.run_reranker(
            kb,
            Path(args.model),
            name=args.name,
            questions=args.questions,
            eval_file=args.eval,
            settings=settings,
            out=Path(args.out) if args.out else None,
            say=None if args.json else _say,
            command=" ".join(sys.argv),
        )
    info = outcome.info
    if args.json:
        print_json(
            {k: info[k] for k in ("reranker", "model", "manifest", "out", "validation", "eval", "enabled")}
        )
        return 0
    from zhiku.eval import format_table

    assert outcome.report is not None  # run_reranker always evaluates
    print(f"validation ({outcome.report.settings.get('questions')} questions from held-out documents):")
    print(format_table(outcome.report))
    if outcome.extra is not None:
        print(f"{args.eval}:")
        print(format_table(outcome.extra))
    print(outcome.notes[-1])
    print(
        f"model in {info['model']} (use it with --rerank cross-encoder:{info['model']}); "
        f"reports in {info['out']}"
    )
    return 0
