"""Tiny random RoBERTa and BERT model folders for the NLI tests, built offline (no downloads).

- ``tiny_roberta_dir`` / ``tiny_bert_dir``: ``config.json`` + tokenizer files, **no weights**: build them with
  ``build_model(str(folder), method, random_init=True)`` (seed torch first).
- ``tiny_roberta_pretrained`` / ``tiny_bert_pretrained``: the same plus a seeded random ``model.safetensors``, so
  ``build_model(str(folder), method)`` loads real weights the way it loads a hub checkpoint (needed wherever a
  base must be rebuilt identically, e.g. adapter reload and merge tests).

Shapes: 4 layers, hidden 16, 2 heads, intermediate 32 — small enough that a forward/backward takes milliseconds,
deep enough that partial fine-tuning has frozen and trained layers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SENTENCES = [
    "A man is playing a guitar on stage.",
    "A woman reads a book in the park.",
    "Two dogs are running through the snow.",
    "The children are sleeping.",
    "Nobody is outside.",
    "Someone plays music for a crowd.",
]
TINY_SHAPE = dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                  hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def _roberta_tokenizer():
    """A byte-level BPE trained on SENTENCES, with RoBERTa's special tokens at RoBERTa's ids (0..4)."""
    import tempfile

    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    with tempfile.TemporaryDirectory() as raw:
        vocab_file, merges_file = bpe.save_model(raw)
        return RobertaTokenizerFast(vocab=vocab_file, merges=merges_file, model_max_length=64)


def _bert_tokenizer():
    """A WordPiece tokenizer over the lower-cased words of SENTENCES."""
    from transformers import BertTokenizerFast

    words = sorted({w.strip(".").lower() for s in SENTENCES for w in s.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *words]
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=64)


def make_tiny_model_dir(folder: Path, family: str) -> Path:
    """Write config.json + tokenizer (no weights) for ``family`` in {"roberta", "bert"} into ``folder``."""
    from transformers import BertConfig, RobertaConfig

    folder.mkdir(parents=True, exist_ok=True)
    if family == "roberta":
        tokenizer = _roberta_tokenizer()
        config = RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=66, type_vocab_size=1,
                               pad_token_id=1, bos_token_id=0, eos_token_id=2, **TINY_SHAPE)
    elif family == "bert":
        tokenizer = _bert_tokenizer()
        config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=0, **TINY_SHAPE)
    else:
        raise ValueError(family)
    config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_pretrained(folder: Path, family: str, seed: int = 0) -> Path:
    """Like :func:`make_tiny_model_dir` plus seeded random weights saved as model.safetensors."""
    import torch
    from transformers import AutoConfig, AutoModel

    make_tiny_model_dir(folder, family)
    torch.manual_seed(seed)
    AutoModel.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_factory():
    """``make(folder, family, pretrained=False)``: a fresh tiny model folder (for tests that alter one)."""

    def make(folder: Path, family: str, pretrained: bool = False) -> Path:
        return (make_tiny_pretrained if pretrained else make_tiny_model_dir)(folder, family)

    return make


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-roberta"), "roberta")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def tiny_roberta_pretrained(tmp_path_factory) -> Path:
    return make_tiny_pretrained(tmp_path_factory.mktemp("tiny-roberta-pretrained"), "roberta")


@pytest.fixture(scope="session")
def tiny_bert_pretrained(tmp_path_factory) -> Path:
    return make_tiny_pretrained(tmp_path_factory.mktemp("tiny-bert-pretrained"), "bert")


@pytest.fixture
def one_torch_thread():
    """Tiny models run several times slower with 2 threads on a busy 2-core machine (threads contend)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
