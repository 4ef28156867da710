"""The offline answerer: quote the sentences of the top passages that answer the question.

No LLM. Each sentence of the retrieved passages gets features (``Candidate.features``):

- lexical coverage: how much of the question's (weighted, rare-first) words it holds, with numbers
  in one spelling (十年 = 10年, ``generate/numbers.py``), its Chinese characters and character pairs
  (for the words jieba cut differently in the question and the passage), and the longest stretch of
  the question it repeats verbatim;
- its neighbours' coverage (the answer often names its subject a sentence earlier);
- the question's type: 多少/几/多久/什么时候/哪一年 (how many/much/long, when) ask for an amount,
  a count, a duration or a date, and a sentence holding one gains;
- the passage's rank: retrieval's first passage is trusted more;

and its score is a small logistic model of them (``MODEL``, one per language, fitted on training
splits by ``benchmarks/answers_fit.py``). Opt-in (``dense = true``): the cosine of the question
(``query:``) and the sentence (``passage:``) through the KB's dense embedder re-scores the best few.

The best sentence brings the neighbour it needs (a 但书 "但是…", the items of a list introduced by
下列/如下/以下), and up to two more sentences close in score, from any passage, each with its
citation. When the refusal model (``REFUSAL``) says the passages do not answer, it says it found
nothing, and still lists the closest passages ("可能相关的内容：") with citations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from zhiku.generate.base import ContextBlock, Generator, generators
from zhiku.generate.numbers import has_amount, numbers_in
from zhiku.text.normalise import language_of
from zhiku.text.tokenize import make_tokenizer

if TYPE_CHECKING:
    from zhiku.text.tokenize import Tokenizer


class Embedder(Protocol):
    """What the answerer needs of an embedder (generate/ sits below embed/ in the layers, so it
    names the contract's two calls instead of importing it)."""

    def embed_queries(self, texts: Sequence[str]) -> Any: ...

    def embed(self, texts: Sequence[str]) -> Any: ...


_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
#: a sentence: up to an end mark (with closing quotes), a line break, or the end of the text
_SENTENCE = re.compile(
    r"[^。！？；!?\n]+?(?:[。！？；!?]+[”’\"')）】」』]*|(?<=[A-Za-z0-9)\"'])\.(?=\s)|(?=\n)|$)"
)

NOT_FOUND = {
    "zh": "知识库中没有找到能回答这个问题的内容。",
    "en": "I could not find an answer to that in the knowledge base.",
}
RELATED = {"zh": "可能相关的内容：", "en": "Possibly related:"}

#: words of asking rather than of the subject ("可以随便解除吗", "how much … need"): a sentence
#: containing them is no closer to an answer (the tokenizer's stopwords keep them, as search should)
ASKING_WORDS = frozenset(
    {
        "可以", "能", "能否", "能够", "可否", "是否", "会", "要", "需要", "应该", "有没有", "怎样",
        "怎么样", "一下", "多少", "几", "多久", "什么", "哪", "哪些", "哪个", "哪里", "为什么",
        "怎么", "如何", "吗", "呢", "谁", "何时", "是", "的", "了", "在",
        "can", "could", "should", "would", "need", "much", "many", "way", "possibl",
        "what", "which", "who", "when", "where", "how", "why", "the", "is", "was", "did", "does",
    }
)  # fmt: skip

#: a question that asks for an amount, a count, a duration or a date
_ASKS_AMOUNT = re.compile(
    r"多少|几|多久|多长|多大|多高|多远|多重|多少钱|什么时候|何时|哪一年|哪年|哪天|哪一天|哪个月|"
    r"年龄|期限|日期|时间|金额|比例|数量|"
    r"\bhow (?:many|much|long|old|far|big|large|tall|often)\b|\bwhen\b|\bwhat (?:year|date|time|age)\b|"
    r"\bwhich year\b|\bin what year\b|\bhow\b.*\b(?:percent|percentage)\b",
    re.I,
)
#: a question that asks when (a date, a year), and what answers it
_ASKS_WHEN = re.compile(
    r"什么时候|何时|哪一年|哪年|哪天|哪一天|哪个月|几月|几号|\bwhen\b|\bwhat (?:year|date)\b", re.I
)
_DATE = re.compile(
    r"\d{3,4}\s*年|[一二三四五六七八九〇零十]{2,4}年|\d+月|\d+日|世纪|年代|朝|\b(?:1\d{3}|20\d{2})\b|"
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december)\b",
    re.I,
)
_BUT = re.compile(r"^(?:但是|但|不过|除外|然而|however|but|except)", re.I)
_LIST_LEAD = re.compile(r"(?:下列|如下|以下|following)[^。；]*[：:]|[：:]$", re.I)
_ITEM = re.compile(r"^(?:[（(][一二三四五六七八九十\d]+[)）]|[一二三四五六七八九十\d]+[、.．]|[-•·])")


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    """The answerer's tokenizer (the default settings, whatever the KB's): made once, not per answer."""
    return make_tokenizer()


@lru_cache(maxsize=4096)
def _passage_words(text: str) -> frozenset[str]:
    """The words of one passage sentence (with its document's title). jieba is most of what an
    extractive answer costs (~17 ms CPU of one on the laws KB, issue 28), and the same passages
    come back for many questions: kept for the 4,096 sentences seen last (a few MB)."""
    return frozenset(_tokenizer()(text))


def _weight(token: str) -> float:
    # Longer Chinese words and English words carry more meaning than single characters.
    if _CJK_CHAR.search(token):
        return float(min(len(token), 4))
    return 2.0 if len(token) > 2 else 1.0


def sentence_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, sentence)`` of each sentence of ``text``, offsets into ``text``, stripped.

    Chinese sentences end at 。！？； (a law's items and 但书 are then their own sentences, and a
    list's lead ends at its colon's line), English ones at ``. `` after a word; an article label
    (第四条) stays with its first sentence."""
    out = []
    for m in _SENTENCE.finditer(text):
        raw = m.group(0)
        lead = len(raw) - len(raw.lstrip())
        sent = raw.strip()
        if sent:
            out.append((m.start() + lead, m.start() + lead + len(sent), sent))
    return out


def split_sentences(text: str) -> list[str]:
    return [s for _, _, s in sentence_spans(text)]


def asks_amount(question: str) -> bool:
    """Whether the question asks for a number: an amount, a count, a duration, a date."""
    return bool(_ASKS_AMOUNT.search(question))


def _bigrams(text: str) -> set[str]:
    t = "".join(text.lower().split())
    return {t[i : i + 2] for i in range(len(t) - 1)}


def _cjk_pairs(text: str) -> set[str]:
    runs = re.findall(r"[\u4e00-\u9fff]+", text)
    return {r[i : i + 2] for r in runs for i in range(len(r) - 1)}


_ASKING_CHARS = set("多少什么哪些个为怎如何是否可以几年天久时候谁吗呢的了在？?")
#: question words and marks, taken out before looking for the stretch a sentence repeats verbatim
_ASKING_TEXT = re.compile(
    r"多少|什么|哪些|哪个|哪里|哪一年|为什么|怎么|如何|是否|可以|几|多久|什么时候|何时|是谁|谁|吗|呢|[？?。，,]|"
    r"\b(?:what|which|who|whom|whose|when|where|why|how|did|does|do|is|was|were|are|the)\b"
)
_QUESTION_PAIRS = _cjk_pairs("多少什么哪些哪个为什么怎么如何是否可以几年几天多久什么时候哪一年是谁")


def _similar(a: str, b: str) -> bool:
    """Near-duplicate sentences (the same fact in a guide and its FAQ) are quoted once."""
    x, y = _bigrams(a), _bigrams(b)
    return bool(x and y) and len(x & y) / min(len(x), len(y)) > 0.6


@dataclass
class Candidate:
    block: int  # the context block's n
    rank: int  # its position among the blocks, from 1
    pos: int  # the sentence's position in the block
    start: int
    end: int
    text: str
    tokens: set[str]
    lexical: float = 0.0
    support: float = 0.0
    dense: float = 0.0
    score: float = 0.0
    features: dict[str, float] = field(default_factory=dict)


@dataclass
class Plan:
    """What the answer quotes: ``(block n, start, end, sentence)`` in reading order; when
    ``refused``, ``related`` holds the closest passages' numbers instead."""

    quotes: list[tuple[int, int, int, str]] = field(default_factory=list)
    refused: bool = True
    related: list[int] = field(default_factory=list)
    best: float = 0.0
    coverage: float = 0.0
    evidence: dict[str, float] = field(default_factory=dict)  # what the refusal reads
    answerable: float = 0.0  # the refusal model's logit less its threshold: below 0 refuses


@dataclass(frozen=True)
class Weights:
    """How word and character-pair coverage combine into a sentence's ``lexical`` score and its
    ``support`` (what the refusal reads); set by hand, not swept."""

    pairs: float = 0.35  # Chinese character-pair coverage, next to word coverage (1.0)


#: the sentence scorer: a logistic model over ``Candidate.features`` (the logit is the score), one
#: per question language, fitted on training splits only (``benchmarks/answers_fit.py``: a softmax
#: over each question's sentences, the gold-holding ones as targets). Share of questions whose best
#: sentence holds the answer, hand weights of the first pass -> fitted: CMRC 2018 trial (910
#: questions) 0.814 -> 0.817; SQuAD tuning slice (517) 0.780 -> 0.797.
MODEL: dict[str, dict[str, float]] = {
    "zh": {"amount": 1.103, "chars": 4.315, "context": 3.34, "copied": -0.357, "date": 3.069, "first": 0.603,
           "length": -0.108, "pairs": -0.329, "rank": 3.047, "words": 7.569},
    "en": {"amount": 1.523, "chars": 1.464, "context": 0.834, "copied": 3.488, "date": 0.963, "first": -0.003,
           "length": -0.254, "pairs": 1.464, "rank": 1.758, "words": 3.881},
}  # fmt: skip


#: the refusal: a logistic model of "these passages answer the question" over ``Plan.evidence``; it
#: refuses below ``threshold`` (a logit), set so that 3% of the answerable questions whose rank-1
#: passage is gold are refused on the training split. Fitted (benchmarks/answers_fit.py) on
#:   CMRC 2018 trial, 970 answerable at rank 1 / 950 unanswerable (own passage removed): false
#:     refusals 0.031, correct refusals 0.870 (the former rule, support < 0.40: 0.031 / 0.820);
#:   SQuAD tuning slice, 443 / 492: 0.029 / 0.246 (support < 0.40: 0.027 / 0.179): English passages
#:     of one article share their words, so words barely tell the answering passage from the rest.
#: Every feature only raises the odds of answering: fitted with the first passage's support too, the
#: English model weighed the best sentence's own support negatively and refused a perfect answer
#: that retrieval ranked second (tests/unit/test_extractive_answers.py).
REFUSAL: dict[str, dict[str, float]] = {
    "zh": {"bias": -8.319, "support": 10.625, "max_copied": 1.984, "max_chars": 4.241, "threshold": -1.058},
    "en": {"bias": -5.594, "support": 2.651, "max_copied": 2.808, "max_chars": 2.651, "threshold": -1.777},
}


def answerable(evidence: dict[str, float], lang: str) -> float:
    """The refusal model's logit for ``evidence`` (``Plan.evidence``), above its threshold: > 0 answers."""
    m = REFUSAL[lang]
    z = m["bias"] + sum(m.get(k, 0.0) * v for k, v in evidence.items())
    return z - m["threshold"]


def lang_of_question(question: str) -> str:
    """The question's language for wording and model: "en" for English, else "zh"."""
    return "en" if language_of(question) == "en" and re.search("[A-Za-z]", question) else "zh"


class ExtractiveGenerator(Generator):
    name = "extractive"

    def __init__(
        self,
        max_sentences: int = 3,
        max_chars: int = 200,
        margin: float = 4.0,
        refuse_offset: float = 0.0,
        extra_words: float = 0.75,
        related: int = 3,
        dense: bool = False,
        dense_top: int = 8,
        dense_floor: float = 1.0,
        dense_weight: float = 30.0,
        **_: Any,
    ) -> None:
        self.max_sentences = max_sentences
        self.max_chars = max_chars
        # Quote another sentence when its score (a logit) is within ``margin`` of the best one's:
        # e**-margin as likely to hold the answer.
        self.margin = margin
        # ... and when it holds this share of the best one's weighted question words: a sentence
        # on the topic that lacks the question's rare words (解除 in "合同可以随便解除吗") is not
        # quoted however close its score.
        self.extra_words = extra_words
        # Refusal: the model ``REFUSAL`` (its figures are in its comment); ``refuse_offset`` > 0
        # refuses less, < 0 more (a logit: +1 is e times the odds of answering).
        self.refuse_offset = refuse_offset
        self.n_related = related
        # Reading for meaning embeds sentences at answer time, so it is opt-in (generator option
        # ``dense = true``) and re-scores only the ``dense_top`` best sentences by words. Measured on
        # laws dev (hybrid retrieval, int8 e5, refusals off, load ~18): evidence contained 0.583
        # without it, 0.600 at dense_weight 30 and 100, for +220-240 ms p50 an answer (docs/answers.md).
        self.dense = dense
        self.dense_top = dense_top
        # With dense on, a sentence this close in meaning is not refused. 1.0 = never: on laws dev
        # (e5 cosines of 0.84-0.90) any floor that saved a refusal also kept 80-100% of the
        # unanswerable questions from being refused (docs/answers.md).
        self.dense_floor = dense_floor
        self.dense_weight = dense_weight  # logit per unit of cosine above the candidates' mean
        self.weights = Weights()
        self.model = MODEL
        self.embedder: Embedder | None = None
        self.scoring = "lexical"
        self._planned: tuple[str, Plan] | None = None
        self.last_candidates: list[Candidate] = []  # the last plan's, best first (benchmarks read them)
        self.last_refused = False
        self.last_spans: dict[int, list[tuple[int, int]]] = {}
        self._tokenize = _tokenizer()

    # -- the KB's dense model, when it has one --------------------------------------------------------
    @property
    def reads_meaning(self) -> bool:
        return self.dense

    def use_embedder(self, embedder: Embedder | None) -> None:
        """Score meaning with ``embedder`` (the KB's dense model); None: lexical scoring only.
        Without the ``dense`` option the embedder is not used (``scoring`` stays "lexical")."""
        self.embedder = embedder if self.dense else None
        self.scoring = "dense+lexical" if self.embedder is not None else "lexical"

    def describe(self) -> str:
        return self.name

    # -- scoring --------------------------------------------------------------------------------------
    def _candidates(self, contexts: Sequence[ContextBlock]) -> list[Candidate]:
        out = []
        for rank, block in enumerate(contexts, start=1):
            for pos, (start, end, sent) in enumerate(sentence_spans(block.text)):
                if sent.endswith(("?", "？")):
                    continue  # a question (an FAQ heading, a quoted query) is not an answer
                # The title and the section heading say what the sentence is about ("Water them
                # deeply twice a week." under "Tomatoes" answers how often to water tomatoes).
                toks = set(_passage_words(f"{block.title} {block.heading} {sent}")) | numbers_in(sent)
                out.append(Candidate(block.n, rank, pos, start, end, sent, toks))
        return out

    def plan(self, question: str, contexts: Sequence[ContextBlock]) -> Plan:
        """Score every sentence and choose what to quote (or to refuse)."""
        plan = Plan(related=[b.n for b in contexts[: self.n_related]])
        question = question.strip()[:2000]  # a pasted essay still gets an answer, in bounded time
        q = (set(self._tokenize(question)) - ASKING_WORDS) | numbers_in(question)
        candidates = self._candidates(contexts)
        if not q or not candidates:
            return plan
        n = len(candidates)
        df = {t: sum(t in c.tokens for c in candidates) for t in q}
        # Nothing is quoted when most of the question's words appear nowhere in the passages ("How
        # do I delete a document?" against a corpus that only mentions documents): issue 15's rule,
        # for questions without Chinese (whose words jieba may cut unlike the passage's; the
        # character pairs in the support stand for them there).
        qpairs = _cjk_pairs(question) - _QUESTION_PAIRS
        if not qpairs and sum(_weight(t) for t in q if df[t]) <= 0.5 * sum(_weight(t) for t in q):
            return plan
        # Terms missing from every passage weigh as if they were in one: they lower every
        # sentence's coverage alike instead of swamping it.
        weight = {t: _weight(t) * math.log((n + 1) / (max(df[t], 1) + 0.5)) for t in q}
        total = sum(weight.values()) or 1.0
        w = self.weights
        wants_amount = asks_amount(question)
        plain = {t: _weight(t) for t in q}
        plain_total = sum(plain.values()) or 1.0
        core = _ASKING_TEXT.sub(" ", question.lower()).strip()
        wants_when = bool(_ASKS_WHEN.search(question))
        qchars = {ch for ch in question if _CJK_CHAR.match(ch)} - _ASKING_CHARS
        cdf = {ch: sum(ch in c.text for c in candidates) for ch in qchars}
        cweight = {ch: math.log((n + 1) / (max(cdf[ch], 1) + 0.5)) for ch in qchars}
        ctotal = sum(cweight.values()) or 1.0
        by_block: dict[int, list[Candidate]] = {}
        for c in candidates:
            words = sum(weight[t] for t in q & c.tokens) / total
            held = sum(plain[t] for t in q & c.tokens) / plain_total
            pairs = len(qpairs & _cjk_pairs(c.text)) / len(qpairs) if qpairs else held
            # Ranking weighs the rare words (which sentence answers); support counts every word
            # (does this sentence speak of the question at all): the refusal reads support.
            c.lexical = (words + w.pairs * pairs) / (1 + w.pairs)
            c.support = (held + w.pairs * pairs) / (1 + w.pairs)
            text = c.text.lower()
            match = SequenceMatcher(None, core, text, autojunk=False).find_longest_match(
                0, len(core), 0, len(text)
            )
            chars = sum(cweight[ch] for ch in qchars if ch in text) / ctotal if qchars else held
            c.features = {
                "words": words,
                "pairs": pairs,
                "chars": chars,
                # the longest stretch of the question the sentence repeats verbatim (CMRC and SQuAD
                # questions copy a phrase of the answering sentence)
                "copied": min(match.size, 20) / max(min(len(core), 20), 1),
                "date": float(wants_when and bool(_DATE.search(c.text))),
                "rank": 1 / c.rank,
                "amount": float(wants_amount and has_amount(c.text)),
                "first": float(c.pos == 0),
                "length": min(len(c.text), 300) / 100,
            }
            by_block.setdefault(c.block, []).append(c)
        for sents in by_block.values():
            sents.sort(key=lambda c: c.pos)
            for i, c in enumerate(sents):
                # The sentences around it speak of the question too: the answer often names its
                # subject one sentence earlier (CMRC, SQuAD), so the context's coverage counts.
                near = [x.lexical for x in sents[max(i - 1, 0) : i + 2] if x is not c]
                c.features["context"] = max(near, default=0.0)
        lang = lang_of_question(question)
        coef = self.model[lang]
        for c in candidates:
            c.score = coef.get("bias", 0.0) + sum(coef.get(k, 0.0) * v for k, v in c.features.items())
        candidates.sort(key=lambda c: -c.score)
        if self.embedder is not None:
            self._add_dense(question, candidates[: self.dense_top])
            candidates.sort(key=lambda c: -c.score)
        self.last_candidates = candidates
        best = candidates[0]
        plan.best, plan.coverage = best.score, max(c.support for c in candidates)
        plan.evidence = {
            "support": plan.coverage,
            "max_copied": max(c.features["copied"] for c in candidates),
            "max_chars": max(c.features["chars"] for c in candidates),
        }
        best_dense = max((c.dense for c in candidates), default=0.0) if self.embedder is not None else 0.0
        plan.answerable = answerable(plan.evidence, lang) + self.refuse_offset
        if plan.answerable < 0 and best_dense < self.dense_floor:
            return plan
        plan.refused = False
        chosen: list[Candidate] = [best, *self._neighbours(best, by_block)]
        for c in candidates[1 : self.max_sentences * 4]:
            if len(chosen) >= self.max_sentences or c.score < best.score - self.margin:
                break
            if c.features["words"] < self.extra_words * best.features["words"]:
                continue  # on the topic, but without the question's telling words (issue 15)
            if any(c is x or _similar(c.text, x.text) for x in chosen):
                continue
            if sum(len(x.text) for x in chosen) + len(c.text) > self.max_chars:
                continue
            chosen.append(c)
        order = {b.n: i for i, b in enumerate(contexts)}
        chosen.sort(key=lambda c: (order[c.block], c.pos))
        plan.quotes = [(c.block, c.start, c.end, c.text) for c in chosen]
        return plan

    def _neighbours(self, best: Candidate, by_block: dict[int, list[Candidate]]) -> list[Candidate]:
        """The sentences the best one needs: the 但书 after it, the items of the list it opens, the
        rest of an article whose label it only is."""
        sents = by_block[best.block]
        i = next(j for j, c in enumerate(sents) if c is best)
        after = sents[i + 1 :]
        if not after:
            return []
        if _LIST_LEAD.search(best.text) or len(best.text) < 12:
            items: list[Candidate] = []
            for c in after[:4]:
                if items and not _ITEM.match(c.text):
                    break
                items.append(c)
                if sum(len(x.text) for x in items) > self.max_chars:
                    break
            return items
        if _BUT.match(after[0].text):
            return [after[0]]
        return []

    def _add_dense(self, question: str, candidates: list[Candidate]) -> None:
        import numpy as np

        assert self.embedder is not None
        q = np.asarray(self.embedder.embed_queries([question]), dtype=np.float32)[0]
        s = np.asarray(self.embedder.embed([c.text for c in candidates]), dtype=np.float32)
        cos = s @ q / ((np.linalg.norm(s, axis=1) * np.linalg.norm(q)) + 1e-9)
        mean = float(cos.mean())
        for c, v in zip(candidates, cos, strict=True):
            c.dense = float(v)
            c.score += self.dense_weight * (float(v) - mean)

    # -- the generator contract -----------------------------------------------------------------------
    def select_contexts(self, question: str, contexts: Sequence[ContextBlock]) -> list[ContextBlock]:
        """Only the passages the answer quotes (or, refusing, the closest ones), so they are
        numbered from [1] (``answer_question`` renumbers them); the plan is kept for ``generate``."""
        plan = self.plan(question, contexts)
        used = sorted({q[0] for q in plan.quotes}, key=[b.n for b in contexts].index)
        if plan.refused:
            used = plan.related
        renumber = {n: i for i, n in enumerate(used, start=1)}
        plan.quotes = [(renumber[n], s, e, t) for n, s, e, t in plan.quotes]
        plan.related = [renumber[n] for n in plan.related if n in renumber]
        self._planned = (question, plan)
        by_n = {b.n: b for b in contexts}
        return [by_n[n] for n in used]

    def generate(self, question: str, contexts: Sequence[ContextBlock]) -> Iterator[str]:
        lang = lang_of_question(question)
        planned, self._planned = self._planned, None
        plan = planned[1] if planned and planned[0] == question else self.plan(question, contexts)
        self.last_refused = plan.refused
        self.last_spans = {}
        if plan.refused:
            yield NOT_FOUND[lang]
            by_n = {b.n: b for b in contexts}
            shown = [by_n[n] for n in plan.related if n in by_n]
            if shown:
                yield "\n" + RELATED[lang]
                for b in shown:
                    yield f"\n- {_lead(b, lang)} [{b.n}]"
            return
        for i, (n, start, end, sent) in enumerate(plan.quotes):
            self.last_spans.setdefault(n, []).append((start, end))
            yield f"{sent}[{n}]" if lang == "zh" else ("" if i == 0 else " ") + f"{sent} [{n}]"


def _lead(block: ContextBlock, lang: str, size: int = 60) -> str:
    """How a related passage is named in a refusal: its title and where its text begins."""
    text = " ".join(block.text.split())
    text = text if len(text) <= size else text[:size].rstrip() + "…"
    where = " › ".join(p for p in (block.title, block.heading) if p)
    return f"{where}{'：' if lang == 'zh' else ': '}{text}" if where else text


generators.add("extractive", ExtractiveGenerator)
