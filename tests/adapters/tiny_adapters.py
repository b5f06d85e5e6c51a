"""Tiny saved bases (BERT and RoBERTa, random weights saved as safetensors) and three LoRA adapters on each.

Adapters are built, not trained: a PeftModel from the project's own LoRA config with its LoRA and head weights
set to seeded random values (LoRA B starts at zero, which would make every adapter a no-op), saved by
``save_trained`` exactly as ``nli train --method lora`` saves. Three tasks with 3, 2 and 4 labels, one of them
single-text, one with ``head="peft"`` (BERT's pooler then stays the shared base's).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location("nli_fixtures", Path(__file__).parents[1] / "nli" / "conftest.py")
nli_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nli_fixtures)
SENTENCES = nli_fixtures.SENTENCES

# name -> (labels, input kind, method settings)
TASKS = {
    "nli3": (["entailment", "neutral", "contradiction"], "pair", dict(rank=2)),
    "sent2": (["negative", "positive"], "single", dict(rank=4, targets=("attn",))),
    "topic4": (["world", "sports", "business", "science"], "pair", dict(rank=2, head="peft")),
}


def make_adapter(base: Path, out: Path, labels: list[str], kind: str, seed: int, scale: float = 0.5,
                 lora_scale: float = 0.1, **settings) -> Path:
    """A saved LoRA adapter on ``base`` with seeded random LoRA + head weights and the given labels/input kind.

    LoRA matrices ~ N(0, lora_scale): updates that change every output clearly, yet smaller than the base's own
    (as trained adapters are); larger ones make float32 results ill-conditioned in the tiny models. Head ~ N(0,
    scale): outputs far from uniform."""
    from adaptlab.nli.artifacts import META_FILE, save_trained
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    method = MethodConfig(method="lora", **settings)
    torch.manual_seed(seed)
    model, tokenizer = build_model(str(base), method, num_labels=len(labels))
    config = model.get_base_model().config
    config.id2label, config.label2id = dict(enumerate(labels)), {x: i for i, x in enumerate(labels)}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.normal_(0.0, lora_scale if "lora_" in name else scale)
    save_trained(model, tokenizer, out, method)
    meta = json.loads((out / META_FILE).read_text())
    meta["task"] = {"name": out.name, "input": kind, "text_fields": ["text"] if kind == "single" else
                    ["premise", "hypothesis"]}
    (out / META_FILE).write_text(json.dumps(meta))
    return out


def make_family(root: Path, family: str, seed: int = 0) -> tuple[Path, dict[str, Path]]:
    base = nli_fixtures.make_tiny_pretrained(root / f"{family}-base", family, seed=seed)
    adapters = {name: make_adapter(base, root / f"{family}-{name}", labels, kind, seed=i + 10 * seed, **settings)
                for i, (name, (labels, kind, settings)) in enumerate(TASKS.items())}
    return base, adapters


def random_items(rng, count: int) -> list[tuple]:
    """``(task, text, text_pair or None)`` items of random tasks and sentences."""
    items = []
    for _ in range(count):
        task = rng.choice(list(TASKS))
        text = " ".join(rng.choice(SENTENCES, size=rng.integers(1, 4)))
        pair = str(rng.choice(SENTENCES)) if TASKS[task][1] == "pair" else None
        items.append((task, text, pair))
    return items


def alone(adapter: Path, item: tuple, max_length: int = 128) -> list[float]:
    """The item's probabilities from its adapter loaded by itself (``load_trained``), one item per forward."""
    from adaptlab.nli.artifacts import load_trained

    cache = alone.__dict__.setdefault("models", {})
    if adapter not in cache:
        cache[adapter] = load_trained(adapter)
    model, tokenizer = cache[adapter]
    encoded = tokenizer(item[1], item[2], truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        return model(**encoded).logits.softmax(-1)[0].tolist()
