"""Check a hand-written QA file (JSON lines) against the corpus it quotes.

Usage:
    python benchmarks/check_qa.py benchmarks/data/laws_dev.jsonl /path/to/laws-sub-files \
        --disjoint-from benchmarks/data/laws_qa.jsonl

Checks: valid UTF-8 JSON lines written with ensure_ascii=False, the six fields, unique ids,
kind in {direct, paraphrase}, every evidence string verbatim in its document (one line,
10-60 characters), at most 4 questions per document, and, with --disjoint-from, no document
shared with the other file (a development split must not touch the test split's documents).
The 10-60 character and 4-per-document limits are the conventions of laws_dev.jsonl; the
older laws_qa.jsonl predates them and breaks both in a few rows.
Prints counts and every problem; exits 1 if any.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

FIELDS = {"id", "kind", "question", "answer", "evidence", "doc"}


def _docs(row: dict) -> list[str]:
    doc = row["doc"]
    return doc if isinstance(doc, list) else [doc]


def check(path: Path, corpus: Path, disjoint_from: Path | None) -> list[str]:
    problems: list[str] = []
    lines = path.read_bytes().decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    banned: set[str] = set()
    if disjoint_from is not None:
        for line in disjoint_from.read_text(encoding="utf-8").splitlines():
            banned.update(_docs(json.loads(line)))
    for line, row in zip(lines, rows, strict=True):
        rid = row.get("id", "?")
        if set(row) != FIELDS:
            problems.append(f"{rid}: fields {sorted(row)}")
            continue
        if "\\u" in line:
            problems.append(f"{rid}: written with ensure_ascii=True")
        if row["kind"] not in ("direct", "paraphrase"):
            problems.append(f"{rid}: kind {row['kind']!r}")
        evidence = row["evidence"]
        if not 10 <= len(evidence) <= 60 or "\n" in evidence:
            problems.append(f"{rid}: evidence must be one line of 10-60 characters")
        for doc in _docs(row):
            if doc in banned:
                problems.append(f"{rid}: {doc} is also cited by {disjoint_from}")
            file = corpus / doc
            if not file.is_file():
                problems.append(f"{rid}: no document {doc}")
            elif evidence not in file.read_text(encoding="utf-8"):
                problems.append(f"{rid}: evidence not verbatim in {doc}")
    ids = [row.get("id") for row in rows]
    dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
    if dupes:
        problems.append(f"duplicate ids: {dupes}")
    per_doc = collections.Counter(d for row in rows for d in _docs(row))
    crowded = [d for d, n in per_doc.items() if n > 4]
    if crowded:
        problems.append(f"more than 4 questions on: {crowded}")
    kinds = collections.Counter(row.get("kind") for row in rows)
    print(f"{path.name}: {len(rows)} questions {dict(kinds)}, {len(per_doc)} documents")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa", type=Path)
    parser.add_argument("corpus", type=Path, help="folder holding the cited documents")
    parser.add_argument("--disjoint-from", type=Path, default=None)
    args = parser.parse_args()
    problems = check(args.qa, args.corpus, args.disjoint_from)
    for problem in problems:
        print("PROBLEM", problem)
    print("problems:", len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
