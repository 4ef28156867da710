"""A small synthetic zh + en corpus with clear topics, for corpus-trained methods (Word2Vec, Doc2Vec, TF-IDF).

Each topic has its own words, and its sentences mix only those words (seeded, so every run writes
the same text): a model trained on it learns that 保险 sits near 理赔 and cat near kitten.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from zhiku.config import KBConfig, MethodConfig

TOPICS: dict[str, tuple[str, list[str]]] = {
    "insurance": ("zh", ["保险", "投保人", "保险金", "理赔", "保险公司", "保费", "被保险人", "赔付"]),
    "labour": ("zh", ["用人单位", "劳动者", "工资", "加班费", "劳动合同", "工作时间", "年休假", "解除"]),
    "farming": ("zh", ["农民", "种植", "粮食", "耕地", "灌溉", "收成", "化肥", "播种"]),
    "cats": ("en", ["cat", "kitten", "milk", "fish", "purr", "whisker", "mouse", "fur"]),
    "bikes": ("en", ["bicycle", "chain", "tyre", "pedal", "brake", "wheel", "saddle", "gear"]),
}
ZH_TEMPLATES = ["{0}和{1}应当依法处理{2}。", "{0}对{1}负责，{2}按照{3}执行。", "关于{0}的{1}，{2}须当场{3}。"]
EN_TEMPLATES = [
    "The {0} and the {1} need a {2}.",
    "A {0} likes its {1}, and the {2} follows the {3}.",
    "Every {0} has a {1} near the {2}.",
]

#: a document whose one chunk an obvious query must find (its words occur nowhere else)
TARGET_SOURCE = "target.md"
TARGET_TEXT = (
    "# 灯塔守则\n\n灯塔看守员每晚点亮灯塔，并记录航船经过的时间。Lighthouse keepers log every passing ship."
)
TARGET_QUERY = "灯塔看守员 记录 航船"


def topic_sentences(topic: str, n: int, seed: int = 7) -> list[str]:
    lang, words = TOPICS[topic]
    rng = random.Random(f"{seed}-{topic}")
    templates = ZH_TEMPLATES if lang == "zh" else EN_TEMPLATES
    return [rng.choice(templates).format(*rng.sample(words, 4)) for _ in range(n)]


def topic_documents(per_topic: int = 4, sentences: int = 15) -> list[tuple[str, str, str]]:
    """(source, title, text) records: ``per_topic`` documents of ``sentences`` sentences per topic."""
    records = []
    for topic in TOPICS:
        lines = topic_sentences(topic, per_topic * sentences)
        for d in range(per_topic):
            body = "\n\n".join(lines[d * sentences : (d + 1) * sentences])
            records.append((f"{topic}-{d}.md", f"{topic} {d}", body))
    return records


def write_topic_files(root: Path, per_topic: int = 4, sentences: int = 15) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for source, _, text in topic_documents(per_topic, sentences):
        (root / source).write_text(text, encoding="utf-8")
    (root / TARGET_SOURCE).write_text(TARGET_TEXT, encoding="utf-8")
    return root


#: small, fast settings: enough epochs for a corpus of a few hundred sentences, one thread (deterministic)
FAST_TRAINING: dict[str, Any] = {"dim": 32, "min_count": 1, "epochs": 40, "workers": 1, "window": 4}


def corpus_vector_config(**extra_methods: MethodConfig) -> KBConfig:
    """bm25 plus every corpus-trained kind, with fast training settings and nothing that loads a model."""
    methods = {
        "bm25": MethodConfig(kind="bm25"),
        "tfidf": MethodConfig(kind="tfidf", enabled=True),
        "w2v-sg": MethodConfig(kind="w2v-sg", enabled=True, options=FAST_TRAINING),
        "w2v-cbow": MethodConfig(kind="w2v-cbow", enabled=True, options=FAST_TRAINING),
        "d2v-dm": MethodConfig(kind="d2v-dm", enabled=True, options=FAST_TRAINING),
        "d2v-dbow": MethodConfig(kind="d2v-dbow", enabled=True, options=FAST_TRAINING),
        **extra_methods,
    }
    return KBConfig(methods=methods)
