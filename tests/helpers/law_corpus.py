"""A small law-like corpus (documents of 第X条 articles) for the tune tests: each document has its
own vocabulary, so questions about one article have one right answer."""

from __future__ import annotations

import random

from zhiku.config import ChunkingConfig, KBConfig, MethodConfig

WORDS = (
    "保险 理赔 合同 劳动 工资 加班 休假 税收 发票 土地 房屋 租赁 专利 商标 版权 环境 污染 排放 交通 驾驶 "
    "车辆 医疗 药品 食品 卫生 教育 学校 教师 学生 银行 贷款 利息 证券 股票 公司 股东 董事 破产 债务 担保 "
    "抵押 继承 遗嘱 婚姻 离婚 抚养 赡养 消费 广告 价格 质量 产品 安全 生产 矿山 森林 草原 渔业 水利 电力 "
    "邮政 电信 网络 数据 个人 信息 隐私 档案 统计 审计 会计 海关 出口 进口 外汇 旅游 体育 文物 气象 地震"
).split()
NUMERALS = "一二三四五六七八九十"


def law_documents(n_docs: int = 12, articles: int = 6, seed: int = 0) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        vocab = rng.sample(WORDS, 12)
        lines = []
        for a in range(articles):
            words = rng.sample(vocab, 6)
            days = rng.randint(3, 90)
            lines.append(
                f"第{NUMERALS[a]}条 {words[0]}{words[1]}应当依照本法办理{words[2]}手续。"
                f"{words[3]}部门应当在{days}日内完成{words[4]}审查并告知{words[5]}结果。"
                f"违反{words[1]}{words[3]}规定的，由主管部门责令改正。"
            )
        docs.append((f"laws/法{d}.md", f"测试法{d}", "\n\n".join(lines)))
    return docs


def tune_config() -> KBConfig:
    return KBConfig(
        chunking=ChunkingConfig(size=120, min_size=10),
        methods={
            "bm25": MethodConfig(kind="bm25"),
            "dense": MethodConfig(kind="dense", enabled=True, options={"embedder": "hashing", "dim": 128}),
            "hybrid": MethodConfig(kind="hybrid", options={"of": ["bm25", "dense"]}),
        },
    )
