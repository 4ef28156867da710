"""Metrics against values worked out by hand (the arithmetic is spelled out next to each)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zhiku.errors import UsageError
from zhiku.eval.metrics import (
    answer_tokens,
    contains_answer,
    dedup,
    exact_match,
    first_relevant_rank,
    hit_at_k,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    token_f1,
)

RANKED = ["d1", "d2", "d3", "d4", "d5"]
REL = {"d2", "d4"}


def test_hit_recall_precision_mrr_binary() -> None:
    assert hit_at_k(RANKED, REL, 1) == 0.0
    assert hit_at_k(RANKED, REL, 2) == 1.0
    assert recall_at_k(RANKED, REL, 3) == 0.5
    assert recall_at_k(RANKED, REL, 5) == 1.0
    assert precision_at_k(RANKED, REL, 5) == pytest.approx(2 / 5)
    assert precision_at_k(RANKED, REL, 3) == pytest.approx(1 / 3)
    # P@k divides by k even when fewer were retrieved (pytrec_eval's P_k).
    assert precision_at_k(["d2"], REL, 10) == pytest.approx(0.1)
    assert mrr_at_k(RANKED, REL, 1) == 0.0
    assert mrr_at_k(RANKED, REL, 5) == 0.5
    assert first_relevant_rank(RANKED, REL) == 2
    assert first_relevant_rank(RANKED, {"zz"}) is None


def test_ndcg_binary() -> None:
    # DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068; IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, REL, 5) == pytest.approx(expected)
    assert expected == pytest.approx(0.650921, abs=1e-6)
    assert ndcg_at_k(["d2", "d4"], REL, 10) == pytest.approx(1.0)


def test_ndcg_graded_linear_and_exponential() -> None:
    ranked = ["a", "b", "c"]
    rel = {"a": 1, "b": 0, "c": 2, "d": 3}  # b judged not relevant, d never retrieved
    # linear: DCG = 1/1 + 0 + 2/log2(4) = 2.0; IDCG@3 = 3/1 + 2/log2(3) + 1/log2(4)
    linear = 2.0 / (3 + 2 / math.log2(3) + 0.5)
    assert ndcg_at_k(ranked, rel, 3) == pytest.approx(linear)
    assert linear == pytest.approx(0.420004, abs=1e-6)
    # exponential gain 2^rel - 1: DCG = 1 + 0 + 3/2; IDCG = 7 + 3/log2(3) + 1/2
    expo = 2.5 / (7 + 3 / math.log2(3) + 0.5)
    assert ndcg_at_k(ranked, rel, 3, gain="exponential") == pytest.approx(expo)
    # relevance 0 does not count as relevant for the other metrics either
    assert hit_at_k(["b"], rel, 1) == 0.0
    assert recall_at_k(ranked, rel, 3) == pytest.approx(2 / 3)


def test_duplicates_keep_first_occurrence() -> None:
    # Three chunks of document "x" must not push "b" out of the top 3.
    ranked = ["x", "x", "x", "b"]
    assert dedup(ranked) == ["x", "b"]
    assert hit_at_k(ranked, {"b"}, 2) == 1.0
    assert mrr_at_k(ranked, {"b"}, 3) == 0.5
    # A relevant document retrieved twice is found once: recall and nDCG stay <= 1.
    assert recall_at_k(["a", "a"], {"a", "b"}, 2) == 0.5
    assert ndcg_at_k(["a", "a", "a"], {"a"}, 3) == pytest.approx(1.0)
    assert precision_at_k(["a", "a"], {"a"}, 2) == 0.5


def test_no_relevant_and_bad_k() -> None:
    assert recall_at_k(RANKED, set(), 5) == 0.0
    assert ndcg_at_k(RANKED, {}, 5) == 0.0
    assert hit_at_k([], REL, 5) == 0.0
    with pytest.raises(UsageError):
        hit_at_k(RANKED, REL, 0)


def test_ranking_metrics_and_mean() -> None:
    row = ranking_metrics(RANKED, REL, ks=(1, 3), k=5)
    assert set(row) == {"hit@1", "hit@3", "mrr@5", "ndcg@5", "recall@5", "precision@5"}
    assert row["hit@3"] == 1.0 and row["mrr@5"] == 0.5
    mean = mean_metrics([{"hit@1": 1.0, "mrr@10": 1.0}, {"hit@1": 0.0, "mrr@10": 0.5}])
    assert mean == {"hit@1": 0.5, "mrr@10": 0.75}
    assert mean_metrics([]) == {}


@pytest.mark.parametrize("p", [0, 5, 50, 95, 99, 100])
def test_percentile_matches_numpy(p: float) -> None:
    values = [12.0, 3.0, 7.5, 1.0, 40.0, 8.0, 9.0]
    assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_percentile_by_hand() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5  # halfway between 2 and 3
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)  # pos 2.85: 3 + 0.85 * 1
    assert percentile([5.0], 95) == 5.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_normalize_answer() -> None:
    assert normalize_answer("The  Cat!") == "cat"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("《三体》，刘慈欣。") == "三体刘慈欣"
    assert normalize_answer("「臺灣」、“上海”") == "臺灣上海"
    assert normalize_answer("ＡＢＣ１２３") == "abc123"  # NFKC folds full-width
    assert normalize_answer("$1,000") == "1000"


def test_tokens_mixed_text() -> None:
    assert answer_tokens("iPhone 14发布") == ["iphone", "14", "发", "布"]
    assert answer_tokens("北京 大学") == ["北", "京", "大", "学"]


def test_exact_match() -> None:
    assert exact_match("the Eiffel Tower.", ["x", "Eiffel tower"]) == 1.0
    assert exact_match("12人。", "12人") == 1.0
    assert exact_match("Paris", "London") == 0.0
    assert exact_match("Paris", []) == 0.0


def test_token_f1() -> None:
    # Chinese by character: pred 北京大学 (4), gold 北京 (2), overlap 2 -> P 1/2, R 1 -> 2/3
    assert token_f1("北京大学", "北京") == pytest.approx(2 / 3)
    # English by word, article dropped: [quick, brown, fox] vs [quick, fox] -> P 2/3, R 1 -> 0.8
    assert token_f1("the quick brown fox", "quick fox") == pytest.approx(0.8)
    # mixed: [iphone, 14, 发, 布] vs [iphone, 发, 布, 会] -> overlap 3 -> P = R = 3/4
    assert token_f1("iPhone 14发布", "iPhone发布会") == pytest.approx(0.75)
    # max over golds: vs 北京市 -> P 1, R 2/3 -> 0.8
    assert token_f1("北京", ["上海", "北京市"]) == pytest.approx(0.8)
    assert token_f1("", "") == 1.0
    assert token_f1("", "北京") == 0.0
    assert token_f1("上海", "北京") == 0.0


def test_contains_answer() -> None:
    assert contains_answer("死亡人数为１２人。", [["12人"]]) == 1.0
    assert contains_answer("2022年交付131万辆", [["1313851", "131万"]]) == 1.0
    assert contains_answer("成员有中国和日本", [["中国"], ["日本"], ["韩国"]]) == 0.0
    assert contains_answer("anything", []) == 0.0
