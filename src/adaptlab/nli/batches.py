"""Encoding of single texts or text pairs, and batch order for the training loop: tokenized once,
length-grouped, seeded, sharded per rank.

Batches are lists of row indices, decided up front from (seed, epoch) alone. That makes the order
reproducible, lets ``--resume`` jump straight to micro-batch *k* without replaying a data loader, and
gives every process of an ``accelerate launch`` its own disjoint shard of each epoch.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from adaptlab.errors import AdaptlabError

PAIR_FIELDS = ("premise", "hypothesis")

# Sort by length only inside windows of this many batches: enough to make padding small, few enough
# that each batch still mixes examples from across the shuffled epoch (what HF's LengthGroupedSampler does).
MEGABATCH_FACTOR = 50


# Below this, "training" is a handful of optimizer steps on a few sentences: a data mistake (a wrong file, a
# held-out split that took almost everything), never an experiment. Stated in the error.
MIN_TRAIN_PAIRS = 10


def text_fields_of(df: pd.DataFrame, what: str = "a table of examples") -> tuple[str, ...]:
    """The frame's text columns: ``text`` (a single-text task) or ``premise`` + ``hypothesis`` (a pair task)."""
    if "text" in df.columns:
        return ("text",)
    if all(c in df.columns for c in PAIR_FIELDS):
        return PAIR_FIELDS
    raise AdaptlabError(f"{what} lacks column(s) text, or premise and hypothesis; "
                        f"found: {', '.join(map(str, df.columns)) or 'no columns'}")


def check_pairs(df: pd.DataFrame, what: str, num_labels: int) -> None:
    """One-line errors for a frame (single texts or pairs) the loop cannot train or evaluate on."""
    fields = text_fields_of(df, what)
    if "label" not in df.columns:
        raise AdaptlabError(f"{what} lacks column label; need {', '.join(fields)}, label")
    if len(df) == 0:
        raise AdaptlabError(f"{what} has no rows")
    labels = pd.to_numeric(df["label"], errors="coerce")
    if labels.isna().any() or not labels.between(0, num_labels - 1).all():
        raise AdaptlabError(f"{what} has labels outside 0..{num_labels - 1}")
    empty = np.flatnonzero([any(not str(t).strip() for t in texts) for texts in zip(*(df[f] for f in fields))])
    if empty.size:
        shown = ", ".join(map(str, empty[:5])) + (", ..." if empty.size > 5 else "")
        if fields == PAIR_FIELDS:
            raise AdaptlabError(f"{what}: {empty.size:,} pair(s) have an empty premise or hypothesis (rows {shown}, "
                                "0-based); every pair needs both texts")
        raise AdaptlabError(f"{what}: {empty.size:,} example(s) have an empty text (rows {shown}, 0-based)")


def check_training_pairs(df: pd.DataFrame, num_labels: int) -> None:
    """:func:`check_pairs`, plus what training needs: at least :data:`MIN_TRAIN_PAIRS` examples and two labels."""
    check_pairs(df, "training data", num_labels)
    unit = "pair(s)" if text_fields_of(df) == PAIR_FIELDS else "example(s)"
    if len(df) < MIN_TRAIN_PAIRS:
        raise AdaptlabError(f"training data has {len(df)} {unit}; training needs at least {MIN_TRAIN_PAIRS} "
                            "(after the held-out split)")
    if df["label"].nunique() < 2:
        raise AdaptlabError(f"training data has a single label ({int(df['label'].iloc[0])}): a classifier needs "
                            "examples of at least two")


def encode_pairs(tokenizer, df: pd.DataFrame, max_length: int) -> list[dict]:
    """Tokenize each row's text, or its premise/hypothesis pair (longest-first truncation), to at most
    ``max_length`` tokens, no padding.

    Returns one feature dict per row (``input_ids``, ``attention_mask``, ``token_type_ids`` if the model
    uses them, and ``label``), ready for ``transformers.DataCollatorWithPadding``.
    """
    texts = [df[f].astype(str).tolist() for f in text_fields_of(df)]
    encoded = tokenizer(
        *texts,
        truncation=True,
        # never past what the model has position embeddings for (tokenizers without a limit say ~1e30)
        max_length=min(max_length, tokenizer.model_max_length),
    )
    labels = df["label"].astype(int).tolist()
    keys = list(encoded.keys())
    return [{**{k: encoded[k][i] for k in keys}, "label": labels[i]} for i in range(len(df))]


def length_grouped_batches(lengths, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Row indices of one epoch cut into batches of similar length, as a pure function of (seed, epoch).

    Shuffle everything, sort by length within windows of ``batch_size * MEGABATCH_FACTOR`` rows, cut into
    batches, then shuffle the batch order so long and short batches interleave across the epoch.
    """
    rng = np.random.default_rng([seed, epoch])
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    window = batch_size * MEGABATCH_FACTOR
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def shard(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This rank's batches: every ``world_size``-th one, the list first padded by repeating its head.

    Every rank must take the same number of optimizer steps (gradients are averaged across them), so
    the last few batches are repeated rather than leaving one rank idle, like DistributedSampler does.
    """
    shortfall = -len(batches) % world_size
    padded = batches + batches[:shortfall]
    return padded[rank::world_size]


def fingerprint(df: pd.DataFrame) -> str:
    """sha256 of the texts and labels, in order: a resumed run must train on exactly the same data."""
    digest = hashlib.sha256()
    for *texts, label in zip(*(df[f] for f in text_fields_of(df)), df["label"]):
        digest.update(("\x1f".join(map(str, texts)) + f"\x1f{int(label)}\x1e").encode())
    return digest.hexdigest()
