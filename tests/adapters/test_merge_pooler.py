"""Merging for deployment: a BERT adapter whose head includes the pooler, with 4 labels, merges to 1e-4."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification

from adaptlab.nli.artifacts import load_trained, merge_adapter


def test_merged_model_equals_adapter_within_1e4(tiny, tmp_path):
    base = tiny.nli_fixtures.make_tiny_pretrained(tmp_path / "base", "bert")
    labels = ["world", "sports", "business", "science"]
    adapter = tiny.make_adapter(base, tmp_path / "adapter", labels, "pair", seed=5, scale=0.1,
                                 rank=4, targets=("all-linear",))
    model, tokenizer = load_trained(adapter)
    assert "bert.pooler" in model.peft_config["default"].modules_to_save
    texts = tiny.SENTENCES
    encoded = tokenizer(texts, texts[::-1], padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**encoded).logits
    merged_dir = merge_adapter(adapter, tmp_path / "merged")
    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir, use_safetensors=True).eval()
    with torch.inference_mode():
        got = merged(**encoded).logits
    assert got.shape == (len(texts), 4) and merged.config.id2label == dict(enumerate(labels))
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    assert not torch.allclose(got, torch.zeros_like(got), atol=1e-2)  # a real head, not a blank one
