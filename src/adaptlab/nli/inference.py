"""Class probabilities for single texts or premise/hypothesis pairs from a trained classifier (used by the
loop and by predict)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from adaptlab.nli.batches import encode_pairs


def length_sorted_chunks(features: list[dict], batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of similar length (inference pads less; order is restored by index)."""
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def forward_chunks(model, features: list[dict], chunks, collate, device, autocast=nullcontext) -> list[tuple]:
    """``(indices, per-row cross-entropy or None, probabilities)`` for each chunk, in eval mode, no grad."""
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode(), autocast():
        for indices in chunks:
            batch = collate([features[i] for i in indices]).to(device)
            labels = batch.pop("labels", None)
            logits = model(**batch).logits.float()
            losses = F.cross_entropy(logits, labels, reduction="none").cpu().numpy() if labels is not None else None
            out.append((np.asarray(indices).tolist(), losses, logits.softmax(-1).cpu().numpy()))
    model.train(was_training)
    return out


def predict_proba(model, tokenizer, pairs: pd.DataFrame, *, max_length: int = 128, batch_size: int = 32,
                  progress_label: str | None = None) -> np.ndarray:
    """``(rows, num_labels)`` softmax probabilities for a frame with a text column or premise/hypothesis columns
    (label optional).

    ``progress_label``: show a progress bar of batches with this description.
    """
    device = next(model.parameters()).device
    frame = pairs if "label" in pairs.columns else pairs.assign(label=0)  # the collator wants a label; unused
    features = encode_pairs(tokenizer, frame, max_length)
    for feature in features:
        feature.pop("label")
    collate = DataCollatorWithPadding(tokenizer)
    probabilities = np.zeros((len(features), model.config.num_labels))
    chunks = tqdm(length_sorted_chunks(features, batch_size), desc=progress_label, unit="batch", leave=False,
                  disable=progress_label is None)
    for indices, _, batch_probabilities in forward_chunks(model, features, chunks, collate, device):
        probabilities[indices] = batch_probabilities
    return probabilities
