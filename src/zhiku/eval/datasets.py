"""Evaluation datasets: one in-memory shape for SQuAD-style, BEIR, RGB and zhiku QA files.

Every format becomes a :class:`Dataset` of passages, queries and graded qrels, so one runner scores
them all. The zhiku QA format is the exception: it has no corpus of its own and is judged against an
existing knowledge base with :func:`judge_zhiku_qa`.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zhiku.errors import DatasetError, UsageError
from zhiku.ids import content_hash

FORMATS: tuple[str, ...] = ("squad", "beir", "rgb", "zhiku-qa")
_FORMAT_HINT = (
    "Use a SQuAD-style .json (CMRC 2018, DRCD), a BEIR folder (corpus.jsonl, queries.jsonl, "
    "qrels/<split>.tsv), RGB .json lines (query/positive/negative) or zhiku QA .jsonl (question/evidence/doc)"
)


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class Dataset:
    """Queries with their relevant passages.

    ``qrels`` maps query id -> passage id -> relevance (> 0). ``answers`` are alternative gold
    answers for EM/F1 (the best match counts). ``evidence`` and ``doc_gold`` are only used by
    zhiku QA sets, whose ``corpus`` is empty.
    """

    name: str
    corpus: dict[str, Passage]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    doc_gold: dict[str, list[str]] = field(default_factory=dict)
    format: str = ""
    # RGB answers are lists of parts that must ALL appear, each part a list of alternatives
    # (["东盟", "中国", ...] for "which countries are in RCEP"); see metrics.contains_answer.
    answer_parts: dict[str, list[list[str]]] = field(default_factory=dict)

    def sample(self, n: int, seed: int = 0) -> Dataset:
        """``n`` queries drawn with a fixed seed (query order kept); the corpus stays whole so that
        retrieval is just as hard as on the full set."""
        if n < 1:
            raise UsageError(f"sample size must be at least 1, got {n}", "Pass a positive number of queries")
        if n >= len(self.queries):
            return self
        # Sorting first makes the draw independent of the file's order of insertion.
        keep = set(random.Random(seed).sample(sorted(self.queries), n))

        def only(d: dict[str, Any]) -> dict[str, Any]:
            return {q: v for q, v in d.items() if q in keep}

        return replace(
            self,
            queries=only(self.queries),
            qrels=only(self.qrels),
            answers=only(self.answers),
            evidence=only(self.evidence),
            doc_gold=only(self.doc_gold),
            answer_parts=only(self.answer_parts),
        )


def load_dataset(path: Path, fmt: str = "auto", split: str = "test", name: str | None = None) -> Dataset:
    """Read a dataset file or folder; ``fmt="auto"`` detects the format from its content."""
    path = Path(path)
    if fmt != "auto" and fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}", f"Choose one of: auto, {', '.join(FORMATS)}")
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder", "Check the dataset path")
    if path.is_file() and path.name == "corpus.jsonl":
        path = path.parent  # a BEIR folder given by its corpus file
    if path.is_dir():
        if fmt not in ("auto", "beir"):
            raise DatasetError(f"{path} is a folder, not a {fmt} file", "Pass the dataset file itself")
        ds = _load_beir(path, split, name or path.name)
    else:
        ds = _load_file(path, fmt, name or path.stem)
    if not ds.queries:
        raise DatasetError(f"{path}: dataset has no usable queries", "Check that the file has questions")
    return ds


# --- reading ----------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: files saved by Windows editors start with a BOM, which json rejects.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text ({e.reason})", "Save the dataset as UTF-8") from e
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read ({e.strerror})", "Check the path and permissions") from e
    if not text.strip():
        raise DatasetError(f"{path}: file is empty", "Point at a dataset file that has content")
    return text


def _json_lines(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(
                f"{path}: line {n} is not valid JSON ({e.msg}, column {e.colno})",
                "Each line of a JSON Lines dataset must be one complete JSON object",
            ) from e
        if not isinstance(obj, dict):
            raise DatasetError(f"{path}: line {n} is not a JSON object", "Write one {...} object per line")
        yield n, obj


def _load_file(path: Path, fmt: str, name: str) -> Dataset:
    text = _read_text(path)
    records: list[tuple[int, dict[str, Any]]]
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as e:
        # JSON Lines fail as one document; they are read line by line so an error names its line.
        if not _looks_like_lines(text):
            raise DatasetError(
                f"{path}: invalid JSON at line {e.lineno}, column {e.colno} ({e.msg})",
                "Fix the JSON syntax or re-export the file",
            ) from e
        records = list(_json_lines(path, text))
    else:
        if isinstance(whole, dict) and "data" in whole:
            if fmt not in ("auto", "squad"):
                raise DatasetError(f"{path}: looks like SQuAD, not {fmt}", f"Use fmt='squad'. {_FORMAT_HINT}")
            return _load_squad(path, whole, name)
        if isinstance(whole, dict):
            records = [(1, whole)]
        elif isinstance(whole, list) and all(isinstance(r, dict) for r in whole):
            records = [(i, r) for i, r in enumerate(whole, start=1)]
        else:
            raise DatasetError(f"{path}: unrecognised JSON structure", _FORMAT_HINT)
    if not records:
        raise DatasetError(f"{path}: dataset has no records", "Point at a dataset file that has content")
    kind = fmt if fmt != "auto" else _detect(path, records[0][1])
    if kind == "rgb":
        return _load_rgb(path, records, name)
    if kind == "zhiku-qa":
        return _load_zhiku_qa(path, records, name)
    raise DatasetError(f"{path}: is not a {kind} file", _FORMAT_HINT)


def _looks_like_lines(text: str) -> bool:
    first = text.lstrip().splitlines()[0]
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _detect(path: Path, first: dict[str, Any]) -> str:
    if "query" in first and "positive" in first:
        return "rgb"
    if "question" in first:
        return "zhiku-qa"
    if "_id" in first:
        raise DatasetError(
            f"{path}: looks like a BEIR corpus or queries file", "Pass the BEIR folder instead"
        )
    raise DatasetError(
        f"{path}: unknown dataset format (first record keys: {sorted(first)[:6]})", _FORMAT_HINT
    )


def _unique(key: str, taken: dict[str, Any]) -> str:
    if key not in taken:
        return key
    n = 2
    while f"{key}#{n}" in taken:
        n += 1
    return f"{key}#{n}"


def _strings(value: Any) -> list[str]:
    """A string or (nested) list of strings as a flat, de-duplicated list of non-empty strings."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return list(dict.fromkeys(s for v in value for s in _strings(v)))
    return []


# --- formats ----------------------------------------------------------------------------------------


def _load_squad(path: Path, obj: dict[str, Any], name: str) -> Dataset:
    corpus: dict[str, Passage] = {}
    by_text: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, list[str]] = {}
    articles = obj["data"]
    if not isinstance(articles, list):
        raise DatasetError(f"{path}: 'data' must be a list of articles", "Use SQuAD v1.1 layout")
    for a, article in enumerate(articles):
        title = str(article.get("title") or "") if isinstance(article, dict) else ""
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DatasetError(f"{path}: article {a} has no 'paragraphs' list", "Use SQuAD v1.1 layout")
        for p, para in enumerate(paragraphs):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str):
                raise DatasetError(
                    f"{path}: article {a} paragraph {p} has no 'context' text", "Use SQuAD v1.1 layout"
                )
            # The same paragraph twice is one passage: two ids for one text would make one of them
            # a "wrong" answer that is word for word the right one.
            pid = by_text.get(context)
            if pid is None:
                # CMRC/DRCD paragraphs carry their own id; SQuAD's do not, so title#index is used.
                pid = _unique(str(para.get("id") or f"{title or 'article' + str(a)}#{p}"), corpus)
                corpus[pid] = Passage(pid, context, title)
                by_text[context] = pid
            for q, qa in enumerate(para.get("qas") or []):
                question = str(qa.get("question") or "").strip() if isinstance(qa, dict) else ""
                if not question:
                    continue  # CMRC trial has empty questions: nothing to retrieve with
                qid = _unique(str(qa.get("id") or f"{pid}-q{q}"), queries)
                queries[qid] = question
                qrels[qid] = {pid: 1}
                golds = [x.get("text") for x in qa.get("answers") or [] if isinstance(x, dict)]
                answers[qid] = _strings(golds)
    return Dataset(name, corpus, queries, qrels, answers, format="squad")


def _load_beir(folder: Path, split: str, name: str) -> Dataset:
    files = {"corpus": folder / "corpus.jsonl", "queries": folder / "queries.jsonl"}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for f in (*files.values(), qrels_path):
        if not f.is_file():
            raise DatasetError(
                f"{folder}: BEIR file {f.relative_to(folder)} is missing",
                "A BEIR folder needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv; check split=",
            )
    corpus: dict[str, Passage] = {}
    for n, row in _json_lines(files["corpus"], _read_text(files["corpus"])):
        if "_id" not in row:
            raise DatasetError(f"{files['corpus']}: line {n} has no '_id'", "Every BEIR record needs an _id")
        pid = str(row["_id"])
        corpus[pid] = Passage(pid, str(row.get("text") or ""), str(row.get("title") or ""))
    all_queries: dict[str, str] = {}
    for n, row in _json_lines(files["queries"], _read_text(files["queries"])):
        if "_id" not in row:
            raise DatasetError(f"{files['queries']}: line {n} has no '_id'", "Every BEIR record needs an _id")
        all_queries[str(row["_id"])] = str(row.get("text") or "")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(_read_text(qrels_path).splitlines(), start=1):
        cols = line.split("\t") if "\t" in line else line.split()
        if not line.strip() or (n == 1 and cols[0].strip() == "query-id"):
            continue
        try:
            qid, pid, score = cols[0].strip(), cols[1].strip(), int(cols[2])
        except (IndexError, ValueError) as e:
            raise DatasetError(
                f"{qrels_path}: line {n} is not 'query-id<TAB>corpus-id<TAB>score'", "Fix or remove the line"
            ) from e
        # Relevance 0 means "judged not relevant"; ids missing from the corpus are kept, as
        # pytrec_eval does, so recall is not flattered by a corpus that lost documents.
        if score > 0:
            qrels.setdefault(qid, {})[pid] = score
    # Only queries with judgements take part: BEIR evaluates a split, not every query in the file.
    queries = {q: t for q, t in all_queries.items() if q in qrels and t.strip()}
    qrels = {q: qrels[q] for q in queries}
    return Dataset(name, corpus, queries, qrels, format="beir")


def _load_rgb(path: Path, records: list[tuple[int, dict[str, Any]]], name: str) -> Dataset:
    corpus: dict[str, Passage] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, list[str]] = {}
    parts_of: dict[str, list[list[str]]] = {}

    def add(text: str) -> str:
        # Passages are identified by content: the same snippet shows up under several queries, and
        # 23 of them are positive for one query and negative for another.
        pid = content_hash(text)
        corpus.setdefault(pid, Passage(pid, text))
        return pid

    for n, row in records:
        query = str(row.get("query") or "").strip()
        if not query or "positive" not in row:
            raise DatasetError(f"{path}: line {n} has no 'query' or 'positive'", "RGB lines need both")
        qid = _unique(str(row.get("id", n)), queries)
        positives = [add(t) for t in _strings(row.get("positive"))]
        for t in _strings(row.get("negative")):
            add(t)
        queries[qid] = query
        qrels[qid] = dict.fromkeys(positives, 1)
        value = row.get("answer")
        items = value if isinstance(value, list) else [value]
        parts = [p for p in (_strings(item) for item in items) if p]
        parts_of[qid] = parts
        # One part: its alternatives are the gold answers. Several parts: all are needed, so the
        # single gold answer for EM/F1 lists the first alternative of each.
        if len(parts) > 1:
            answers[qid] = [" ".join(p[0] for p in parts)]
        else:
            answers[qid] = parts[0] if parts else []
    return Dataset(name, corpus, queries, qrels, answers, format="rgb", answer_parts=parts_of)


def _load_zhiku_qa(path: Path, records: list[tuple[int, dict[str, Any]]], name: str) -> Dataset:
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    evidence: dict[str, list[str]] = {}
    docs: dict[str, list[str]] = {}
    for n, row in records:
        question = str(row.get("question") or "").strip()
        if not question:
            raise DatasetError(f"{path}: line {n} has no 'question'", "Every line needs a non-empty question")
        ans, ev, doc = _strings(row.get("answer")), _strings(row.get("evidence")), _strings(row.get("doc"))
        if not (ans or ev or doc):
            raise DatasetError(
                f"{path}: line {n} has no 'answer', 'evidence' or 'doc'",
                "Add the text a correct passage contains (evidence) or its document name (doc)",
            )
        qid = _unique(str(row.get("id") or f"q{n}"), queries)
        queries[qid] = question
        answers[qid], evidence[qid], docs[qid] = ans, ev, doc
    return Dataset(name, {}, queries, {}, answers, evidence, docs, format="zhiku-qa")


# --- judging a knowledge-base hit against a zhiku QA item --------------------------------------------

_SPACE = re.compile(r"\s+")


def normalize_evidence(text: str) -> str:
    """NFKC without any whitespace: chunking and PDF extraction move line breaks and spaces around,
    so evidence is compared on the characters alone."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text))


def source_matches(source: str, doc: str) -> bool:
    """Whether a KB document ``source`` (a path) is the document a QA item names as ``doc``."""

    def norm(s: str) -> str:
        return unicodedata.normalize("NFKC", s).replace("\\", "/").strip().strip("/").lower()

    src, want = norm(source), norm(doc)
    if not want:
        return False
    stem = src.rsplit(".", 1)[0] if "." in src.rsplit("/", 1)[-1] else src
    # A suffix on a path-component boundary, with or without the extension: "保险法.md",
    # "民法商法/保险法" and "保险法" all name ".../民法商法/保险法.md", but "法.md" does not.
    return any(s == want or s.endswith("/" + want) for s in (src, stem))


def judge_zhiku_qa(hit_text: str, hit_source: str, evidence: list[str], docs: list[str]) -> bool:
    """Whether a retrieved passage counts as relevant to a zhiku QA item.

    With evidence, the passage must contain one of the evidence strings; with docs, it must come
    from one of the documents; with both, both must hold (short evidence such as "第一条" occurs in
    every law, the document narrows it down). With neither, nothing is relevant.
    """
    ev = [e for e in (normalize_evidence(x) for x in evidence) if e]
    ok_doc = any(source_matches(hit_source, d) for d in docs) if docs else None
    if ev:
        text = normalize_evidence(hit_text)
        ok_ev = any(e in text for e in ev)
        return ok_ev and (ok_doc is None or ok_doc)
    return bool(ok_doc)
