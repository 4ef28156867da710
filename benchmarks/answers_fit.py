"""Fit the offline answerer's sentence scorer (``MODEL`` in generate/extractive.py) on training splits.

    ZHIKU_BENCH_DATA=../shared/data .venv/bin/python benchmarks/answers_fit.py [--work /tmp/zhiku-answers]

Chinese: CMRC 2018 trial; English: the SQuAD tuning slice (600 dev questions disjoint from the 3,000
reported; there is no SQuAD train file on the shelf). Never CMRC dev, the reported SQuAD questions or
the laws sets. Each sentence of a question's top 5 BM25 passages is one example, labelled by whether it
holds a gold answer; a logistic regression on ``Candidate.features`` gives the weights, printed with
the top-1 sentence accuracy (the share of questions whose best-scored sentence holds the answer) of
the current model and the fitted one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from answers import K, retrieve  # noqa: E402

from zhiku.eval.metrics import contains_answer  # noqa: E402
from zhiku.generate.answer import context_blocks  # noqa: E402
from zhiku.generate.extractive import ExtractiveGenerator  # noqa: E402

TRAIN = {"zh": "cmrc-trial", "en": "squad-tune"}
#: what the refusal model reads: every one should only ever raise the odds of answering (with all of
#: ``Plan.evidence`` the English fit gave the best sentence's own support a negative weight, and a
#: perfect answer in the second passage was refused)
REFUSAL_FEATURES = ("support", "max_copied", "max_chars")


def examples(name: str, work: Path) -> list[list[tuple[dict[str, float], int]]]:
    """Per question: its candidates' features and labels (questions whose gold no sentence holds are
    left out: they teach nothing about which sentence to pick)."""
    ds, _, hits, _ = retrieve(name, work)
    gen = ExtractiveGenerator()
    out = []
    for qid, question in ds.queries.items():
        blocks = context_blocks(hits[qid][:K])
        gen.plan(question, blocks)
        golds = ds.answer_parts.get(qid) or [ds.answers.get(qid) or []]
        rows = [(dict(c.features), int(contains_answer(c.text, golds))) for c in gen.last_candidates]
        if any(y for _, y in rows):
            out.append(rows)
        gen.last_candidates = []
    return out


def refusal_examples(name: str, work: Path) -> list[tuple[dict[str, float], int]]:
    """The refusal's evidence (``Plan.evidence``) for each question whose rank-1 passage is gold
    (label 1: answer) and for the same question with its gold passages removed (label 0: refuse)."""
    from zhiku.eval.answers import without_gold

    ds, judge, hits, _ = retrieve(name, work)
    gen = ExtractiveGenerator()
    out = []
    for qid, question in ds.queries.items():
        rest = without_gold(judge, qid, hits[qid])
        if len(rest) == len(hits[qid]):
            continue  # no gold passage retrieved
        if hits[qid] and hits[qid][0] not in rest:
            plan = gen.plan(question, context_blocks(hits[qid][:K]))
            if plan.evidence:
                out.append((plan.evidence, 1))
        plan = gen.plan(question, context_blocks(rest[:K]))
        if plan.evidence:
            out.append((plan.evidence, 0))
    return out


def fit_refusal(rows: list[tuple[dict[str, float], int]], false_refusals: float = 0.03) -> dict[str, Any]:
    """A logistic model of "the passages answer", and the threshold whose false refusals on the
    answerable questions are ``false_refusals``; with the correct refusals it gives there."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    names = list(REFUSAL_FEATURES)
    x = np.array([[f[k] for k in names] for f, _ in rows])
    y = np.array([lab for _, lab in rows])
    model = LogisticRegression(C=10.0, max_iter=5000).fit(x, y)
    z = model.decision_function(x)
    threshold = float(np.quantile(z[y == 1], false_refusals))
    support = x[:, names.index("support")]
    return {
        "model": {"bias": round(float(model.intercept_[0]), 3)}
        | {k: round(float(v), 3) for k, v in zip(names, model.coef_[0], strict=True)},
        "threshold": round(threshold, 3),
        "answerable": int((y == 1).sum()),
        "unanswerable": int((y == 0).sum()),
        "false_refusals": round(float((z[y == 1] < threshold).mean()), 4),
        "correct_refusals": round(float((z[y == 0] < threshold).mean()), 4),
        "support_0.40": {
            "false_refusals": round(float((support[y == 1] < 0.4).mean()), 4),
            "correct_refusals": round(float((support[y == 0] < 0.4).mean()), 4),
        },
    }


def top1(groups: list[list[tuple[dict[str, float], int]]], coef: dict[str, float]) -> float:
    def score(f: dict[str, float]) -> float:
        return sum(coef.get(k, 0.0) * v for k, v in f.items())

    return sum(max(g, key=lambda r: score(r[0]))[1] for g in groups) / max(len(groups), 1)


def fit(
    groups: list[list[tuple[dict[str, float], int]]], names: list[str], l2: float = 0.01
) -> dict[str, float]:
    """A conditional logit: per question, a softmax over its sentences; maximise the probability of
    the sentences holding the answer (a ranking objective: only differences within a question count,
    so there is no bias), with a little L2."""
    import numpy as np
    from scipy.optimize import minimize

    xs = [np.array([[f.get(k, 0.0) for k in names] for f, _ in g]) for g in groups]
    ys = [np.array([lab for _, lab in g], dtype=bool) for g in groups]

    def loss(w: Any) -> tuple[float, Any]:
        total, grad = l2 * float(w @ w), 2 * l2 * w
        for x, y in zip(xs, ys, strict=True):
            s = x @ w
            m = s.max()
            e = np.exp(s - m)
            p = e / e.sum()
            pos = p[y].sum()
            total -= np.log(pos + 1e-12)
            # d/dw -log(sum_pos p) = E_p[x] - E_{p | pos}[x]
            grad += p @ x - (p[y] @ x[y]) / (pos + 1e-12)
        return total / len(xs), grad / len(xs)

    w = minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B").x
    return {k: round(float(v), 3) for k, v in zip(names, w, strict=True)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/zhiku-answers"))
    args = p.parse_args(argv)
    from zhiku.generate.extractive import MODEL

    result: dict[str, Any] = {}
    for lang, name in TRAIN.items():
        groups = examples(name, args.work)
        names = sorted({k for g in groups for f, _ in g for k in f})
        coef = fit(groups, names)
        result[lang] = {
            "set": name,
            "questions": len(groups),
            "top1_current": round(top1(groups, MODEL[lang]), 4),
            "top1_fitted": round(top1(groups, coef), 4),
            "model": coef,
        }
        print(lang, json.dumps(result[lang]), flush=True)
        refusal = fit_refusal(refusal_examples(name, args.work))
        print(lang, "refusal", json.dumps(refusal), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
