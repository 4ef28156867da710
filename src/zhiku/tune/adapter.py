"""Train a query-side adapter on a KB's synthetic questions (``zhiku tune adapter``).

The chunk vectors are the base method's, read from its index folder (``embeddings.npy`` and
``embedding_ids.json``, written by ``VectorMethod.build``), and never change. Query vectors come
from the base method's own embedder. The adapter learns, on the train split, to move a question's
vector towards its source chunk with an InfoNCE loss over in-batch negatives plus hard negatives
mined from BM25 and from the base method itself (chunks that also contain the evidence are never
used as negatives). Every epoch is scored on the validation split (MRR@10 over the whole corpus);
training stops when that has not improved for ``patience`` epochs, and the best epoch is kept —
epoch 0, the identity, included, so an adapter never ends worse on validation than no adapter.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zhiku.errors import ConfigError, UsageError
from zhiku.eval.datasets import normalize_evidence, source_matches
from zhiku.retrieve.adapter_model import Adapter, AdapterKind
from zhiku.tune.negatives import searched_negatives
from zhiku.tune.questions import Question, SourceChunk

if TYPE_CHECKING:
    from zhiku.progress import Progress
    from zhiku.service import KnowledgeBase


@dataclass(frozen=True)
class AdapterSettings:
    kind: AdapterKind = "linear"
    epochs: int = 30
    patience: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.05
    hard_negatives: int = 4  # per question, from BM25 and the base method each
    hidden: int = 256
    max_train: int = 3000
    max_validation: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.seed < 0:  # numpy's generators take none (the API fuzzer sent -1: a failed job)
            raise UsageError(f"seed {self.seed} is negative", "Give a seed of 0 or more")


@dataclass
class TrainResult:
    adapter: Adapter
    validation_before: float  # MRR@10 of the base (identity adapter)
    validation_after: float
    best_epoch: int
    epochs_run: int
    seconds: float
    train_questions: int
    validation_questions: int
    history: list[float] = field(default_factory=list)
    embed_seconds: float = 0.0


def base_vectors(kb: KnowledgeBase, base: str) -> tuple[list[str], np.ndarray, Any]:
    """(chunk ids, chunk vectors, the loaded base method) of a built vector method."""
    method = kb.ready_method(base, build=True)  # rebuilt first if stale: vectors must match the catalog
    if not method.vectors:
        raise ConfigError(
            f"{base!r} is a {method.kind} method, not a vector method",
            "Use a dense, remote or w2v method as --base (see `zhiku status`)",
        )
    folder = kb.layout.index_dir(method.name)
    try:
        ids = json.loads((folder / "embedding_ids.json").read_text(encoding="utf-8"))
        matrix = np.load(folder / "embeddings.npy", allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"{folder} has no chunk vectors ({e})",
            f"Rebuild it: `zhiku build --kb {kb.name} --method {base} --force`",
        ) from e
    return ids, matrix, method


def relevant_sets(questions: list[Question], chunks: list[SourceChunk]) -> list[set[str]]:
    """For each question, every chunk the judge of ``zhiku eval`` would count as relevant."""
    by_doc: dict[str, list[tuple[str, str]]] = {}
    for c in chunks:
        by_doc.setdefault(c.doc, []).append((c.id, normalize_evidence(c.text)))
    out = []
    for q in questions:
        ev = [e for e in map(normalize_evidence, q.evidence) if e]
        cands = by_doc.get(q.doc) or [x for d, v in by_doc.items() if source_matches(d, q.doc) for x in v]
        rel = {cid for cid, text in cands if any(e in text for e in ev)} | {q.chunk}
        out.append(rel)
    return out


def data_hash(train: list[Question], val: list[Question]) -> str:
    h = hashlib.sha256()
    for q in [*train, *val]:
        h.update(f"{q.id}\0{q.question}\0{q.chunk}\n".encode())
    return h.hexdigest()[:16]


def _mrr(
    scores: np.ndarray, ids: list[str], relevant: list[set[str]], k: int = 10
) -> tuple[float, list[float]]:
    top = np.argsort(-scores, axis=1)[:, :k]
    rr = []
    for row, rel in zip(top, relevant, strict=True):
        rank = next((i + 1 for i, j in enumerate(row) if ids[j] in rel), None)
        rr.append(1.0 / rank if rank else 0.0)
    return float(np.mean(rr)) if rr else 0.0, rr


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def train_adapter(
    kb: KnowledgeBase,
    base: str,
    train: list[Question],
    val: list[Question],
    settings: AdapterSettings,
    progress: Callable[[str], None] | None = None,
    steps: Progress | None = None,
) -> TrainResult:
    """``progress`` gets one line per step; ``steps`` (a job's phases) one phase "train" of epochs."""
    import torch

    from zhiku.progress import NoProgress
    from zhiku.tune.questions import source_chunks

    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(settings.seed)
    ids, matrix, method = base_vectors(kb, base)
    position = {cid: i for i, cid in enumerate(ids)}
    train = [q for q in train if q.chunk in position]
    val = [q for q in val if q.chunk in position]
    if len(train) > settings.max_train:
        train = [train[i] for i in sorted(rng.choice(len(train), settings.max_train, replace=False))]
    if len(val) > settings.max_validation:
        val = [val[i] for i in sorted(rng.choice(len(val), settings.max_validation, replace=False))]
    if len(train) < 8 or not val:
        raise UsageError(
            f"too few questions to train on: {len(train)} train, {len(val)} validation",
            "Generate more with `zhiku tune questions --kb K` (or a larger --sample)",
        )
    chunks = source_chunks(kb)
    rel_train, rel_val = relevant_sets(train, chunks), relevant_sets(val, chunks)
    cosine = method.options.metric == "cosine"
    C = _normalize(matrix) if cosine else matrix
    say(f"embedding {len(train) + len(val)} questions with {base}")
    te = time.perf_counter()
    Qt = method.embedder.embed_queries([q.question for q in train]).astype(np.float32)
    Qv = method.embedder.embed_queries([q.question for q in val]).astype(np.float32)
    embed_seconds = time.perf_counter() - te

    # Hard negatives: the base method's and BM25's best non-relevant chunks for each question.
    say("mining hard negatives")
    base_scores = (_normalize(Qt) if cosine else Qt) @ C.T
    bm25 = searched_negatives(
        kb,
        [q.question for q in train],
        rel_train,
        "bm25",
        settings.hard_negatives,
        keep=position.__contains__,
        say=say,
    )
    hard: list[list[int]] = []
    for i, rel in enumerate(rel_train):
        order = np.argsort(-base_scores[i])[: 4 * settings.hard_negatives + 8]
        mine = [int(j) for j in order if ids[j] not in rel][: settings.hard_negatives]
        mine += [position[c] for c in bm25[i]]
        hard.append(list(dict.fromkeys(mine)))

    torch.manual_seed(settings.seed)
    dim = C.shape[1]
    init = Adapter.identity(settings.kind, dim, settings.hidden, settings.seed)
    params = {n: torch.nn.Parameter(torch.from_numpy(a.copy())) for n, a in init.weights.items()}

    def forward(q: torch.Tensor) -> torch.Tensor:
        if settings.kind == "linear":
            return q + q @ params["W"] + params["b"]
        return q + torch.relu(q @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]

    def snapshot() -> Adapter:
        return Adapter(settings.kind, dim, {n: p.detach().numpy().copy() for n, p in params.items()})

    def validate(adapter: Adapter) -> float:
        q = adapter.apply(Qv)
        return _mrr((_normalize(q) if cosine else q) @ C.T, ids, rel_val)[0]

    opt = torch.optim.AdamW(list(params.values()), lr=settings.lr, weight_decay=settings.weight_decay)
    Ct = torch.from_numpy(C)
    Qtt = torch.from_numpy(Qt)
    pos = np.array([position[q.chunk] for q in train])
    before = best = validate(init)
    best_adapter, best_epoch, history, epochs_run = init, 0, [before], 0
    say(f"epoch 0 (no adapter): validation MRR@10 {before:.4f}")
    steps = steps or NoProgress()
    steps.start("train", settings.epochs)
    for epoch in range(1, settings.epochs + 1):
        epochs_run = epoch
        order = rng.permutation(len(train))
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            cand = list(dict.fromkeys([*pos[batch].tolist(), *(j for b in batch for j in hard[b])]))
            col = {j: n for n, j in enumerate(cand)}
            q = forward(Qtt[batch])
            if cosine:
                q = torch.nn.functional.normalize(q, dim=1)
            logits = q @ Ct[cand].T / settings.temperature
            # Another question's positive that is also relevant to this one is not a negative.
            mask = torch.zeros_like(logits, dtype=torch.bool)
            for r, b in enumerate(batch):
                for j in cand:
                    if j != pos[b] and ids[j] in rel_train[b]:
                        mask[r, col[j]] = True
            logits = logits.masked_fill(mask, -1e4)
            target = torch.tensor([col[int(pos[b])] for b in batch])
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = validate(snapshot())
        history.append(score)
        steps.advance(1)
        say(f"epoch {epoch}: loss {loss.item():.4f}, validation MRR@10 {score:.4f}")
        if score > best + 1e-6:
            best, best_adapter, best_epoch = score, snapshot(), epoch
        elif epoch - best_epoch >= settings.patience:
            break
    steps.close()
    return TrainResult(
        best_adapter,
        before,
        best,
        best_epoch,
        epochs_run,
        time.perf_counter() - t0,
        len(train),
        len(val),
        history,
        embed_seconds,
    )


def save_adapter(folder: Path, result: TrainResult, manifest: dict[str, Any]) -> None:
    from zhiku.store.files import atomic_write_json

    result.adapter.save(folder)
    atomic_write_json(folder / "manifest.json", manifest)
