"""The few value types that flow between layers.

``Hit`` is the one result type: lexical, dense, fusion, rerank and evaluation all produce and
consume it, so fusion never sees a backend's own types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class Corpus:
    """The indexable view of a KB's chunks, in a stable order, as methods and embedders read it."""

    ids: list[str]
    texts: list[str]  # the chunk text a person reads
    contexts: list[str]  # document title + heading path, indexed with the text
    text_hashes: list[str]
    tokens: Sequence[list[str]]  # zhiku.text.token_rows.JoinedTokens: split when read
    fingerprint: str
    language: str

    def index_texts(self) -> list[str]:
        return [self.index_text(i) for i in range(len(self.ids))]

    def index_text(self, i: int) -> str:
        """What is embedded for chunk ``i``: its title + heading line, then its text."""
        return f"{self.contexts[i]}\n{self.texts[i]}"

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document, the unit that is indexed and cited.

    ``start``/``end`` are character offsets into the document's stored text, so a citation can
    point at the exact place; ``heading`` is the heading path ("第一章 总则 > 第二节 …"); ``page``
    is the 1-based page (PDF, scanned image), slide (pptx), sheet (xlsx) or record (json/jsonl) the
    chunk lies on, 0 for formats without pages. ``text`` is ``document[start:end]``, preceded by
    the table's header row when the chunk continues a table.
    """

    id: str
    doc_id: str
    ord: int
    text: str
    start: int
    end: int
    heading: str = ""
    page: int = 0


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. ``score``: higher is better, whatever the method.

    ``distance`` is kept for methods whose natural measure is a distance (L2), so output can show
    it the way users expect (smaller is closer). ``chunk`` is filled in by the knowledge base when
    a hit leaves the retrieval layer; retrievers only set ids and scores.
    """

    chunk_id: str
    score: float
    method: str
    distance: float | None = None
    chunk: Chunk | None = None
    doc: DocumentInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Hit:
        return replace(self, **changes)

    def to_json(self, rank: int) -> dict[str, Any]:
        """The JSON shape of a hit attached to the catalog (CLI --json and the web API)."""
        c, d = self.chunk, self.doc
        if c is None or d is None:
            raise ValueError("only hits attached to the catalog have a JSON form")
        out: dict[str, Any] = {
            "rank": rank,
            "score": round(self.score, 6),
            "method": self.method,
            "chunk_id": self.chunk_id,
            "doc_id": d.id,
            "path": d.source,
            "title": d.title,
            "heading": c.heading,
            "page": c.page,
            "location": page_label(d.format, c.page),
            "start": c.start,
            "end": c.end,
            "text": c.text,
        }
        if self.distance is not None:
            out["distance"] = round(self.distance, 6)
        if "reranked" in self.extra:
            # What the reranker changed: its verdict and the first stage's place and score.
            out["reranked"] = self.extra["reranked"]
            out["first_rank"] = self.extra.get("first_rank")
            if "first_score" in self.extra:
                out["first_score"] = round(self.extra["first_score"], 6)
        return out


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    id: str
    source: str
    title: str
    format: str
    content_hash: str
    chars: int
    n_chunks: int
    ingested_at: float


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source of an answer: ``[n]`` in the text maps to this."""

    n: int
    chunk_id: str
    doc_id: str
    source: str
    title: str
    heading: str
    start: int
    end: int
    quote: str
    page: int = 0
    location: str = ""  # "p. 3", "slide 2", "sheet 1", "record 7"; "" without pages
    #: the quoted sentences' (start, end) in document offsets (the extractive answerer's), so the
    #: page can open the passage with them highlighted; () when the answer quotes none
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    found: bool
    generator: str
    timings: dict[str, float] = field(default_factory=dict)
    #: ``[n]`` the generator wrote that point at no context block (removed from ``text``)
    invalid_citations: tuple[int, ...] = ()
    #: the text as the generator wrote it, before invalid citations were removed
    raw_text: str = ""
    method: str = ""
    #: how the offline answerer scored sentences: "dense+lexical", or "lexical" when the KB has no
    #: built dense method; "" for an LLM
    scoring: str = ""


@dataclass(frozen=True, slots=True)
class Where:
    """A filter on the documents a search may return (by their path)."""

    path_prefix: str | None = None
    path_contains: str | None = None

    def __bool__(self) -> bool:
        return bool(self.path_prefix or self.path_contains)


# What a page number counts, by document format; formats not listed have no pages.
_PAGE_WORDS = {
    "pdf": "p.",
    "image": "p.",
    "pptx": "slide",
    "xlsx": "sheet",
    "json": "record",
    "jsonl": "record",
}


def page_label(fmt: str, page: int) -> str:
    """How a citation names a chunk's page: "p. 3", "slide 2", "sheet 1"; "" when there is none."""
    return f"{_PAGE_WORDS.get(fmt, 'p.')} {page}" if page > 0 else ""
