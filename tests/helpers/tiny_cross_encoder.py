"""A tiny randomly initialised cross-encoder (BERT, 2 layers, 32 wide) saved to a folder.

Its vocabulary is every CJK character and Latin word of the texts it is given (plus BERT's special
tokens), so Chinese and English passages tokenise into real ids rather than ``[UNK]``. The scores
are meaningless but deterministic; zhiku loads it through its real sentence-transformers code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_PIECES = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]+|[^\sa-z0-9\u4e00-\u9fff]")


def build_tiny_cross_encoder(folder: Path, texts: Iterable[str], seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = sorted({p for t in texts for p in _PIECES.findall(t.lower())})
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(_SPECIALS + words)}
    # transformers 5 takes the vocabulary itself (`vocab=`); an unknown `vocab_file=` is ignored and
    # leaves a tokenizer that maps every text to [UNK], which the check below would catch.
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, tokenize_chinese_chars=True)
    sample = words[-1]
    if tokenizer.tokenize(sample) != [sample]:
        raise RuntimeError(f"the tiny tokenizer does not know {sample!r}: check the tokenizer API")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(_SPECIALS) + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=1,
        initializer_range=0.5,  # wide weights spread the scores, so ties are rare
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
