"""Full fine-tune of a local sentence-transformers model on a KB's synthetic questions
(``zhiku tune encoder``), with MultipleNegativesRankingLoss, on CPU.

Pairs are (question, its source chunk's text); the other chunks of a batch are the negatives, so a
batch never holds two questions of the same chunk (that chunk would be a false negative). The loop
is written here rather than through ``SentenceTransformer.fit`` so that it needs no ``datasets``
package and runs offline. Unlike the adapter, the corpus must be embedded again with the new
model (a new dense method), so there is no per-epoch early stopping on validation: the decision
to use it is the paired test on validation afterwards.
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
    from zhiku.service import KnowledgeBase


@dataclass(frozen=True)
class EncoderSettings:
    epochs: int = 1
    batch_size: int = 16
    lr: float = 2e-5
    max_train: int = 2000
    max_seq_length: int = 256
    seed: int = 0


def finetune_encoder(
    kb: KnowledgeBase,
    model_path: Path,
    train: list[Question],
    out_dir: Path,
    settings: EncoderSettings,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train a copy of ``model_path`` into ``out_dir``; return what the manifest records."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.losses import MultipleNegativesRankingLoss
    except ImportError as e:
        raise DependencyMissingError(
            "sentence-transformers is not installed", "pip install 'zhiku[dense]'"
        ) from e
    from zhiku.tune.questions import source_chunks

    if not model_path.is_dir():
        raise NotFoundError(
            f"no model folder {model_path}", "Pass a local sentence-transformers model with --model"
        )
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    texts = {c.id: c.text for c in source_chunks(kb)}
    pairs = [(q.question, texts[q.chunk]) for q in train if q.chunk in texts]
    rng = random.Random(settings.seed)
    rng.shuffle(pairs)
    pairs = pairs[: settings.max_train]
    if len(pairs) < 2:
        raise UsageError(
            f"too few training pairs: {len(pairs)}", "Generate questions: zhiku tune questions --kb K"
        )
    torch.manual_seed(settings.seed)
    from zhiku.embed.e5_engine import cuda_available

    # A CUDA GPU when torch sees one (as e5's embedding does); the CPU otherwise. The result is the
    # same model either way, saved to the same folder.
    device = "cuda" if cuda_available() else "cpu"
    model = SentenceTransformer(str(model_path), device=device, local_files_only=True)
    model.max_seq_length = settings.max_seq_length
    loss_fn = MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    model.train()
    steps, last = 0, 0.0
    for epoch in range(1, settings.epochs + 1):
        rng.shuffle(pairs)
        pending = list(pairs)
        while pending:
            batch: list[tuple[str, str]] = []
            seen: set[str] = set()
            rest: list[tuple[str, str]] = []
            for q, p in pending:
                if len(batch) < settings.batch_size and p not in seen:
                    batch.append((q, p))
                    seen.add(p)
                else:
                    rest.append((q, p))
            pending = rest
            if len(batch) < 2:
                break
            features = [model.tokenize([q for q, _ in batch]), model.tokenize([p for _, p in batch])]
            loss = loss_fn(features, None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            last = loss.item()
        say(f"epoch {epoch}: {steps} steps, last loss {last:.4f}")
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    return {
        "base_model": str(model_path),
        "pairs": len(pairs),
        "steps": steps,
        "last_loss": round(last, 4),
        "settings": settings.__dict__,
        "training_seconds": round(time.perf_counter() - t0, 1),
    }
