"""Tiny random encoders and a learnable toy NLI task for the training/study tests (no downloads).

Also a worker script: ``accelerate launch tests/nli/toy_nli.py OUT_DIR`` trains a tiny model on every
process and writes each rank's weight checksum and the rows it trained on (see test_distributed_nli.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

WORDS = [f"w{i}" for i in range(40)]
MARKERS = ("yes", "maybe", "no")  # the hypothesis' marker word decides the label: 0, 1, 2


def tiny_bert(seed: int = 0):
    """A 2-layer, 32-wide random BERT classifier (3 labels) and a word-level tokenizer for toy_pairs."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *MARKERS, *WORDS]
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3,
                        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config), tokenizer


def toy_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` pairs of random words; the hypothesis carries yes/maybe/no at a random place -> label 0/1/2."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = int(rng.integers(3))
        premise = " ".join(rng.choice(WORDS, rng.integers(3, 12)))
        words = list(rng.choice(WORDS, rng.integers(2, 8)))
        words.insert(int(rng.integers(len(words) + 1)), MARKERS[label])
        rows.append({"premise": premise, "hypothesis": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def _worker(out: Path) -> None:
    import os

    import torch

    from adaptlab.nli import train as train_module

    rank = int(os.environ.get("RANK", 0))  # read before train() creates the (shared) accelerate state
    model, tokenizer = tiny_bert(seed=0)
    initial = float(sum(p.detach().double().abs().sum() for p in model.parameters()))
    seen: list[int] = []
    original = train_module._micro_batches

    def recording(*args, **kwargs):  # record which rows this rank trains on
        for indices in original(*args, **kwargs):
            seen.extend(indices)
            yield indices

    train_module._micro_batches = recording
    config = train_module.TrainConfig(batch_size=4, max_steps=6, lr=1e-3, eval_every=3, quiet=True, seed=3)
    result = train_module.train(model, tokenizer, toy_pairs(48), {"heldout": toy_pairs(20, seed=1)}, config)
    weights = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    (out / f"rank{rank}.json").write_text(json.dumps({
        "world": result.num_processes, "checksum": float(weights.sum()), "abs_checksum": float(weights.abs().sum()),
        "initial_abs_checksum": initial,
        "first_weights": weights[:64].tolist(), "seen": seen, "history": result.history,
        "train_samples": result.train_samples,
    }))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
