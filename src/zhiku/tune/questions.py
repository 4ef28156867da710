"""Synthetic questions from a KB's own chunks, as a zhiku QA JSONL that ``zhiku eval`` reads as is.

Each record: ``id``, ``question``, ``evidence`` (a span of the source chunk: the judge counts a hit
relevant when it contains it and comes from ``doc``), ``doc`` (the document's path), ``chunk`` (the
source chunk id), ``generator`` (``offline:ict``, ``offline:keywords``, ``offline:article`` or
``llm:<backend>:<model>``) and ``kind`` (the phrasing).

Offline pseudo-questions are labelled as such; what each is good for:

- **inverse cloze** (``ict``): a sentence of the chunk is the question, and the evidence is a
  *different* sentence of the same chunk, so a hit is judged on the passage and not on the question
  string itself. The question is still a sentence of the indexed chunk: this favours lexical
  methods (BM25 finds it verbatim), which is why the reports name the generator.
- **key terms** (``keywords``): the last heading plus the chunk's top TF-IDF terms, computed with
  the KB's own tokenizer (its jieba user dictionary and stop words) and the KB's own document
  frequencies, which rank a law's specific terms above jieba's general-corpus IDF would.
- **article titles** (``article``): "《title》第十二条" for chunks that start an article: the look-up
  users of legal texts really type.

The answerability filter drops questions whose source chunk BM25 does not find in its top
``depth`` (``not_found``) and those that many chunks match equally (``ambiguous``: at least
``max_ties`` hits score the same as the source chunk). Filtering by BM25 biases the kept set
towards what BM25 can find, so the default depth is deep (100): it removes unanswerable questions,
not hard ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhiku.errors import DatasetError

if TYPE_CHECKING:
    from zhiku.service import KnowledgeBase

_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?|[^\n]+")
_EN_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ARTICLE = re.compile(r"^\s*(第[一二三四五六七八九十百千零〇两0-9]+条)")
_NOISE = re.compile(r"[\W_]+", re.UNICODE)
#: evidence longer than this is cut: a shorter span survives re-chunking and still pins the chunk
EVIDENCE_CHARS = 40


@dataclass
class Question:
    id: str
    question: str
    evidence: list[str]
    doc: str
    chunk: str
    generator: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SourceChunk:
    id: str
    text: str
    heading: str
    doc_id: str
    doc: str  # the document's source path
    title: str
    tokens: tuple[str, ...]


@dataclass
class FilterStats:
    kept: int = 0
    not_found: int = 0
    ambiguous: int = 0
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)


# -- reading the KB ---------------------------------------------------------------------------------


def source_chunks(kb: KnowledgeBase) -> list[SourceChunk]:
    """Every chunk with its document and tokens, in the corpus order."""
    corpus = kb.corpus()
    tokens = dict(zip(corpus.ids, corpus.tokens, strict=True))
    out: list[SourceChunk] = []
    for doc in kb.documents():
        for c in kb.chunks_of(doc.id):
            out.append(
                SourceChunk(
                    c.id, c.text, c.heading, doc.id, doc.source, doc.title, tuple(tokens.get(c.id, ()))
                )
            )
    return out


def sample_chunks(chunks: list[SourceChunk], n: int | None, seed: int = 0) -> list[SourceChunk]:
    """``n`` chunks drawn with a fixed seed (the corpus order kept), or all of them."""
    if n is None or n >= len(chunks):
        return chunks
    keep = set(random.Random(seed).sample(range(len(chunks)), n))
    return [c for i, c in enumerate(chunks) if i in keep]


# -- text helpers -----------------------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    out: list[str] = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0).strip()
        if not s:
            continue
        out += [p.strip() for p in _EN_SENTENCE.split(s) if p.strip()]
    return out


def _long_enough(s: str) -> bool:
    cjk = sum(1 for ch in s if "\u4e00" <= ch <= "\u9fff")
    return cjk >= 8 or len(s.split()) >= 6


def _short(s: str, limit: int = EVIDENCE_CHARS) -> str:
    return s[:limit].strip()


def normalized(text: str) -> str:
    """Case-, width- and punctuation-free form, for duplicate detection."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", text).lower())


def _bigrams(text: str) -> set[str]:
    t = normalized(text)
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / max(1, len(x | y)) >= threshold


def question_id(chunk_id: str, generator: str, text: str) -> str:
    return "t" + hashlib.sha1(f"{chunk_id}\0{generator}\0{text}".encode()).hexdigest()[:12]


def _evidence_other_than(chunk: SourceChunk, avoid: str) -> str | None:
    """The longest sentence of the chunk that is not (and does not contain) ``avoid``."""
    na = normalized(avoid)
    others = [
        s
        for s in sentences(chunk.text)
        if normalized(s) and na not in normalized(s) and normalized(s) not in na and _long_enough(s)
    ]
    if not others:
        return None
    return _short(max(others, key=len))


# -- offline pseudo-questions -----------------------------------------------------------------------


def document_frequencies(chunks: Iterable[SourceChunk]) -> tuple[Counter[str], int]:
    df: Counter[str] = Counter()
    n = 0
    for c in chunks:
        df.update(set(c.tokens))
        n += 1
    return df, n


def key_terms(chunk: SourceChunk, df: Counter[str], n_docs: int, top: int = 3) -> list[str]:
    """The chunk's ``top`` terms by TF-IDF over the KB's own tokens (no digits, no single letters)."""
    tf = Counter(t for t in chunk.tokens if len(t) > 1 and not t.isdigit())
    scored = sorted(tf, key=lambda t: (-tf[t] * math.log((1 + n_docs) / (1 + df[t])), t))
    return scored[:top]


def offline_questions(
    chunks: list[SourceChunk],
    kinds: tuple[str, ...] = ("ict", "keywords", "article"),
    seed: int = 0,
    all_chunks: list[SourceChunk] | None = None,
) -> Iterator[Question]:
    """Pseudo-questions for ``chunks`` (document frequencies from ``all_chunks``, default the same)."""
    rng = random.Random(seed)
    df, n = document_frequencies(all_chunks or chunks)
    for c in chunks:
        if "ict" in kinds:
            cands = [s for s in sentences(c.text) if _long_enough(s) and len(s) <= 120]
            rng.shuffle(cands)
            for s in cands:
                q = _ARTICLE.sub("", s).strip(" 　：:")  # the article number would make it a look-up
                ev = _evidence_other_than(c, s)
                if ev and _long_enough(q):
                    yield Question(
                        question_id(c.id, "offline:ict", q), q, [ev], c.doc, c.id, "offline:ict", "ict"
                    )
                    break
        if "keywords" in kinds:
            terms = key_terms(c, df, n)
            heading = c.heading.split(">")[-1].strip() if c.heading else ""
            heading = _ARTICLE.sub("", heading).strip()
            first = next((s for s in sentences(c.text) if _long_enough(s)), None)
            if len(terms) >= 2 and first:
                q = " ".join([heading, *terms]).strip() if heading else " ".join(terms)
                yield Question(
                    question_id(c.id, "offline:keywords", q),
                    q,
                    [_short(first)],
                    c.doc,
                    c.id,
                    "offline:keywords",
                    "keywords",
                )
        if "article" in kinds:
            m = _ARTICLE.match(c.text)
            if m and c.title:
                q = f"《{c.title}》{m.group(1)}"
                ev = _short(c.text[m.start(1) :], 24)
                yield Question(
                    question_id(c.id, "offline:article", q),
                    q,
                    [ev],
                    c.doc,
                    c.id,
                    "offline:article",
                    "article",
                )


# -- filtering --------------------------------------------------------------------------------------


def dedupe(questions: list[Question], stats: FilterStats, threshold: float = 0.8) -> list[Question]:
    """Drop exact duplicates (normalised) anywhere, and near-duplicates (character-bigram Jaccard ≥
    ``threshold``) among the questions of one chunk."""
    seen: set[str] = set()
    by_chunk: dict[str, list[str]] = {}
    out: list[Question] = []
    for q in questions:
        key = normalized(q.question)
        mine = by_chunk.setdefault(q.chunk, [])
        if not key or key in seen or any(near_duplicate(q.question, o, threshold) for o in mine):
            stats.duplicates += 1
            continue
        seen.add(key)
        mine.append(q.question)
        out.append(q)
    return out


def answerable(
    kb: KnowledgeBase,
    questions: list[Question],
    stats: FilterStats,
    method: str = "bm25",
    depth: int = 100,
    max_ties: int = 5,
) -> list[Question]:
    """Keep questions whose source chunk ``method`` ranks in its top ``depth``, unless at least
    ``max_ties`` hits score the same as it (many chunks answer equally: a useless training pair and
    a coin toss in validation)."""
    from zhiku.errors import ZhikuError

    if not questions:
        return []
    try:
        results = kb.search_many([q.question for q in questions], k=depth, method=method)
    except ZhikuError as e:
        stats.notes.append(f"answerability filter skipped: {method} is not usable ({e.one_line()})")
        stats.kept = len(questions)
        return questions
    out: list[Question] = []
    for q, hits in zip(questions, results, strict=True):
        score = next((h.score for h in hits if h.chunk_id == q.chunk), None)
        if score is None:
            stats.not_found += 1
            continue
        ties = sum(1 for h in hits if abs(h.score - score) <= 1e-6 * max(1.0, abs(score)))
        if ties >= max_ties:
            stats.ambiguous += 1
            continue
        out.append(q)
    stats.kept = len(out)
    return out


# -- splitting and files ----------------------------------------------------------------------------


def split_by_document(
    questions: list[Question], validation: float = 0.2, seed: int = 0
) -> tuple[list[Question], list[Question]]:
    """(train, validation): each document goes wholly to one side, chosen by a seeded hash of its
    path, so no validation document is ever trained on."""
    docs = sorted({q.doc for q in questions})

    def draw(doc: str) -> float:
        return int(hashlib.sha1(f"{seed}\0{doc}".encode()).hexdigest()[:8], 16) / 2**32

    val_docs = {d for d in docs if draw(d) < validation}
    if len(docs) >= 2 and not val_docs:
        val_docs = {min(docs, key=draw)}
    if len(docs) >= 2 and val_docs == set(docs):
        val_docs.discard(max(docs, key=draw))
    train = [q for q in questions if q.doc not in val_docs]
    val = [q for q in questions if q.doc in val_docs]
    return train, val


def write_jsonl(path: Path, questions: Iterable[Question]) -> int:
    from zhiku.store.files import atomic_write_text

    lines = [json.dumps(q.to_json(), ensure_ascii=False) for q in questions]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: Path) -> list[Question]:
    """Questions written by this module (``zhiku tune questions``)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file", "Generate questions first: `zhiku tune questions --kb K`")
    out: list[Question] = []
    names = set(Question.__dataclass_fields__)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(Question(**{k: v for k, v in row.items() if k in names}))
        except (json.JSONDecodeError, TypeError) as e:
            raise DatasetError(
                f"{path}: line {n} is not a zhiku tune question ({e})",
                "Regenerate it with `zhiku tune questions`",
            ) from e
    return out


def split_paths(out: Path) -> tuple[Path, Path]:
    """Where the train and validation files of ``out`` (``questions.jsonl``) go."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.train.jsonl"), out.with_name(f"{stem}.validation.jsonl")


def finish(
    kb: KnowledgeBase,
    raw: list[Question],
    out: Path,
    *,
    filter_method: str | None = "bm25",
    depth: int = 100,
    max_ties: int = 5,
    validation: float = 0.2,
    seed: int = 0,
) -> tuple[FilterStats, dict[str, int]]:
    """De-duplicate, filter, split and write ``out`` plus its train and validation files."""
    stats = FilterStats()
    kept = dedupe(raw, stats)
    if filter_method:
        kept = answerable(kb, kept, stats, filter_method, depth, max_ties)
    else:
        stats.kept = len(kept)
    train, val = split_by_document(kept, validation, seed)
    train_path, val_path = split_paths(out)
    counts = {
        "all": write_jsonl(out, kept),
        "train": write_jsonl(train_path, train),
        "validation": write_jsonl(val_path, val),
        "train_docs": len({q.doc for q in train}),
        "validation_docs": len({q.doc for q in val}),
    }
    return stats, counts


Progress = Callable[[int], None]
