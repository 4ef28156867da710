"""`zhiku tune encoder`: a tiny randomly initialised sentence-transformers model, saved to tmp,
fine-tuned through the real code (MultipleNegativesRankingLoss), registered and validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.law_corpus import WORDS, law_documents, tune_config

from zhiku.cli.app import main
from zhiku.config import KBConfig
from zhiku.service import KnowledgeBase

pytestmark = pytest.mark.slow  # loads transformers and sentence-transformers (a minute on a busy machine)


def tiny_model(folder: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizer

    chars = sorted(
        set(
            "".join(WORDS)
            + "第一二三四五六七八九十条应当依照本法办理手续部门日内完成审查并告知结果违反规定的由主管责令改正"
            "0123456789"
        )
    )
    (folder / "raw").mkdir(parents=True)
    vocab = folder / "raw" / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]), encoding="utf-8")
    tok = BertTokenizer(str(vocab), do_lower_case=True, tokenize_chinese_chars=True)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(chars) + 5,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(cfg).save_pretrained(folder / "raw")
    tok.save_pretrained(folder / "raw")
    word = models.Transformer(str(folder / "raw"), max_seq_length=128)
    st = SentenceTransformer(
        modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean")], device="cpu"
    )
    st.save(str(folder / "tiny-st"))
    return folder / "tiny-st"


def test_encoder_finetune_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model(tmp_path / "models")
    root = tmp_path / "kb"
    with KnowledgeBase.open(str(root), config=tune_config()) as kb:
        kb.add_texts(law_documents(n_docs=8, articles=4))
    assert main(["tune", "questions", "--kb", str(root), "--json"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "tune",
                "encoder",
                "--kb",
                str(root),
                "--model",
                str(model),
                "--max-train",
                "64",
                "--batch-size",
                "8",
                "--json",
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out)
    man = info["manifest"]
    assert man["steps"] >= 4 and 20 < man["pairs"] <= 64 and "decision" in man
    assert set(info["validation"]) >= {"tiny-st-base", "tiny-st-tuned"}
    cfg = KBConfig.load(root / "zhiku.toml")
    assert cfg.methods["tiny-st-tuned"].options["model"].endswith("models/tiny-st-tuned/model")
    assert (cfg.default_method == "tiny-st-tuned") == man["decision"]["significant"]
    with KnowledgeBase.open(str(root), create=False) as kb:
        assert kb.search("保险 理赔", 3, "tiny-st-tuned")
