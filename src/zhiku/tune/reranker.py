"""Fine-tune a local cross-encoder (bge-reranker, an MS MARCO MiniLM…) on a KB's synthetic questions
(``zhiku tune reranker``), on CPU, and evaluate the rerank stage before and after.

Training data: for each train question, (question, its source chunk) labelled 1 and (question, a
hard negative) labelled 0, the negatives mined from BM25 and from the KB's default method, the
first stage whose candidates the reranker will really reorder (``negatives.py``, shared with
``tune adapter``; a chunk holding the evidence is never a negative). The loss is
sentence-transformers' ``BinaryCrossEntropyLoss`` with the positives weighted by the number of
negatives per positive, so a model cannot win by calling everything irrelevant. The loop calls the
loss module directly (its ``forward(columns, labels)``) rather than ``CrossEncoderTrainer``, which
needs the ``datasets`` package; the optimiser is AdamW, as the trainer's default.

Every epoch is scored on the validation split: the default method's first ``candidates`` hits of
each validation question reranked by the model, MRR@10 against the same relevant sets as the
adapter. Epoch 0 is the untouched model; the best epoch is what is saved, so a tuned reranker is
never worse on validation than the one it started from. Training stops after ``patience`` epochs
without improvement.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import DependencyMissingError, NotFoundError, UsageError
from zhiku.tune.questions import Question

if TYPE_CHECKING:
    from zhiku.eval.report import Report
    from zhiku.progress import Progress
    from zhiku.service import KnowledgeBase


@dataclass(frozen=True)
class RerankerSettings:
    epochs: int = 2
    patience: int = 1
    batch_size: int = 16  # (question, passage) pairs per step
    lr: float = 2e-5
    hard_negatives: int = 3  # per question, from BM25 and the default method each
    max_train: int = 1000
    max_validation: int = 200
    candidates: int | None = None  # first-stage hits reranked when validating (None: [rerank] top_n)
    max_length: int = 256
    seed: int = 0


def _mrr_at_10(ranked: list[list[str]], relevant: list[set[str]]) -> float:
    rr = []
    for ids, rel in zip(ranked, relevant, strict=True):
        rank = next((i + 1 for i, c in enumerate(ids[:10]) if c in rel), None)
        rr.append(1.0 / rank if rank else 0.0)
    return sum(rr) / len(rr) if rr else 0.0


def _load(model_path: Path, max_length: int) -> Any:
    if not (model_path / "config.json").is_file():
        raise NotFoundError(
            f"no cross-encoder model folder {model_path} (it needs a config.json)",
            "Pass a local sentence-transformers CrossEncoder folder with --model "
            "(e.g. one downloaded with huggingface-cli download BAAI/bge-reranker-base --local-dir DIR)",
        )
    from zhiku.huggingface import offline_and_quiet

    offline_and_quiet("tune reranker")  # before the import: the offline switches are read then
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as e:
        raise DependencyMissingError(
            "sentence-transformers is not installed", "pip install sentence-transformers"
        ) from e
    return CrossEncoder(str(model_path), device="cpu", local_files_only=True, max_length=max_length)


def finetune_reranker(
    kb: KnowledgeBase,
    model_path: Path,
    train: list[Question],
    val: list[Question],
    out_dir: Path,
    settings: RerankerSettings,
    progress: Callable[[str], None] | None = None,
    steps: Progress | None = None,
) -> dict[str, Any]:
    """Train a copy of ``model_path``; the best epoch on validation is saved to ``out_dir``.
    Returns what the manifest records."""
    import torch
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from zhiku.progress import NoProgress
    from zhiku.tune.adapter import relevant_sets
    from zhiku.tune.negatives import searched_negatives
    from zhiku.tune.questions import source_chunks

    say = progress or (lambda _m: None)
    steps = steps or NoProgress()
    t0 = time.perf_counter()
    rng = random.Random(settings.seed)
    chunks = source_chunks(kb)
    texts = {c.id: c.text for c in chunks}
    train = [q for q in train if q.chunk in texts]
    val = [q for q in val if q.chunk in texts]
    rng.shuffle(train)
    train = train[: settings.max_train]
    val = sorted(rng.sample(val, min(len(val), settings.max_validation)), key=lambda q: q.id)
    if len(train) < 4 or not val:
        raise UsageError(
            f"too few questions to train on: {len(train)} train, {len(val)} validation",
            f"Generate more with `zhiku tune questions --kb {kb.name}` (or a larger --sample)",
        )
    method = kb.default_method()
    rel_train, rel_val = relevant_sets(train, chunks), relevant_sets(val, chunks)

    say(f"mining hard negatives from bm25 and {method}")
    n = settings.hard_negatives
    questions = [q.question for q in train]
    mined = [
        searched_negatives(kb, questions, rel_train, m, n, say=say) for m in dict.fromkeys(["bm25", method])
    ]
    pairs: list[tuple[str, str, float]] = []
    negatives = 0
    for i, q in enumerate(train):
        pairs.append((q.question, texts[q.chunk], 1.0))
        for cid in dict.fromkeys(c for lists in mined for c in lists[i]):
            pairs.append((q.question, texts[cid], 0.0))
            negatives += 1
    if not negatives:
        raise UsageError(
            "no hard negatives were found: neither bm25 nor the default method returned other chunks",
            f"Build the KB's methods first: zhiku build --kb {kb.name}",
        )

    # Validation candidates: the first stage's hits, fetched once and reranked after every epoch.
    depth = settings.candidates or kb.config.rerank.top_n
    say(f"fetching {depth} candidates of {method} for {len(val)} validation questions")
    candidates = [
        [h.chunk_id for h in hits if h.chunk_id in texts]
        for hits in kb.search_many([q.question for q in val], k=depth, method=method, rerank="off")
    ]
    first_stage = _mrr_at_10(candidates, rel_val)

    torch.manual_seed(settings.seed)
    model = _load(model_path, settings.max_length)

    def validate() -> float:
        model.eval()
        ranked: list[list[str]] = []
        for q, ids in zip(val, candidates, strict=True):
            if not ids:
                ranked.append([])
                continue
            scores = model.predict(
                [(q.question, texts[c]) for c in ids],
                batch_size=32,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            flat = scores.reshape(len(ids), -1)[:, -1]
            ranked.append([ids[j] for j in sorted(range(len(ids)), key=lambda j: -float(flat[j]))])
        return _mrr_at_10(ranked, rel_val)

    ratio = negatives / len(train)
    loss_fn = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(ratio))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    before = best = validate()
    history = [round(before, 4)]
    say(f"epoch 0 (the model as given): validation MRR@10 {before:.4f} (first stage alone {first_stage:.4f})")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))  # epoch 0 stands until an epoch beats it
    best_epoch, epochs_run, step_count, last = 0, 0, 0, 0.0
    epoch_loss: list[float] = []  # mean training loss per epoch: whether it learns at all
    steps.start("train", settings.epochs)
    for epoch in range(1, settings.epochs + 1):
        epochs_run = epoch
        rng.shuffle(pairs)
        model.train()
        total, batches = 0.0, 0
        for start in range(0, len(pairs), settings.batch_size):
            batch = pairs[start : start + settings.batch_size]
            labels = torch.tensor([label for _, _, label in batch])
            loss = loss_fn([[q for q, _, _ in batch], [p for _, p, _ in batch]], labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step_count += 1
            last = float(loss.item())
            total, batches = total + last, batches + 1
        epoch_loss.append(round(total / max(1, batches), 4))
        score = validate()
        history.append(round(score, 4))
        steps.advance(1)
        say(
            f"epoch {epoch}: {step_count} steps, mean loss {epoch_loss[-1]:.4f}, "
            f"validation MRR@10 {score:.4f}"
        )
        if score > best + 1e-6:
            best, best_epoch = score, epoch
            model.save(str(out_dir))
        elif epoch - best_epoch >= settings.patience:
            break
    steps.close()
    return {
        "base_model": str(model_path),
        "method": method,
        "train_questions": len(train),
        "validation_questions": len(val),
        "pairs": len(pairs),
        "negatives": negatives,
        "steps": step_count,
        "last_loss": round(last, 4),
        "epoch_loss": epoch_loss,
        "validation_mrr@10": {
            "first_stage": round(first_stage, 4),
            "before": round(before, 4),
            "after": round(best, 4),
        },
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "history": history,
        "settings": settings.__dict__,
        "training_seconds": round(time.perf_counter() - t0, 1),
    }


def evaluate_rerankers(
    kb: KnowledgeBase,
    dataset_path: Path,
    method: str,
    rows: dict[str, str | None],
    command: str = "",
    progress: Progress | None = None,
) -> Report:
    """One report of ``method`` followed by each rerank setting of ``rows`` (label → a ``--rerank``
    spec; "off" is the method alone, None the KB's own ``[rerank]``), on the same questions."""
    from zhiku.eval.datasets import load_dataset
    from zhiku.eval.judges import EvidenceJudge
    from zhiku.eval.report import Report
    from zhiku.eval.runner import KBRetriever, RerankedRetriever, fetch_hits, kb_chunks, score_hits

    dataset = load_dataset(dataset_path, fmt="zhiku-qa")
    judge = EvidenceJudge(dataset, kb_chunks(kb))
    queries = list(dataset.queries.values())
    k = 10
    results = []
    for label, spec in rows.items():
        retriever = KBRetriever(kb, method) if spec == "off" else RerankedRetriever(kb, method, spec)
        fetched = fetch_hits(
            retriever,
            queries,
            k,
            batched=retriever.batched,
            latency_sample=50,
            progress=progress,
            label=label,
        )
        result = score_hits(label, dataset, judge, fetched, k=k)
        if isinstance(retriever, RerankedRetriever):
            result.stages = retriever.stages()
            result.notes.append(retriever.note())
        results.append(result)
    settings = {
        "questions": len(queries),
        "validation file": str(dataset_path),
        "first stage": method,
        "reranked per query": kb.config.rerank.top_n,
        "chunks": kb.chunk_count(),
    }
    return Report(dataset.name, results, k=k, command=command, settings=settings)
