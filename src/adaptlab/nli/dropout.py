"""Dropout whose masks are cheap to draw on CPU: the same distribution as ``torch.nn.Dropout``.

Why hand-written: on CPU, torch draws every mask element from its Mersenne-Twister generator one at a time,
which made dropout cost more than the 384x384 linear layer in front of it. A MiniLM-L6 LoRA step has 32
dropouts (the encoder's, the head's, and PEFT's ``lora_dropout`` on every adapted layer's input) plus the
attention probabilities' dropout. Here each mask comes from NumPy's SFC64 generator: an element is kept when
a uniform 32-bit word is >= ``round(p * 2**32)`` (the drop probability is exact to 2**-32, finer than torch's
float32 uniform draws), decided mostly from a single random byte (:func:`word_at_least`). One thread: inside the
training loop a second one competes with torch's own worker threads and was slower. A training step is ~1.21x
faster for it (``bench/nli_speedups.py``, docs/benchmarks.md).

Reproducibility: every mask's seed is one draw from torch's default CPU generator, so ``torch.manual_seed``
fixes the masks, and a checkpoint that stores torch's RNG state (ours does) resumes them exactly. On other
devices, in eval mode or with p = 0 the layer is exactly ``torch.nn.Dropout``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from adaptlab.nli.structure import classifier_of

# The attention function registered with transformers: PyTorch's SDPA, except while training on CPU with
# attention dropout, where SDPA would draw its dropout mask with torch's slow generator.
ATTENTION = "sdpa_fast_dropout"


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with cheaply drawn masks on CPU (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or not x.is_floating_point():
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        # autograd keeps only the mask for the backward pass (x needs no gradient through it), like torch's dropout
        return x * keep_mask(x.shape, self.p, x.dtype)


def keep_mask(shape, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A CPU tensor of ``shape``: each element independently 1 / (1 - p) with probability 1 - p, else 0."""
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))  # from torch's generator: manual_seed rules
    keep = word_at_least(np.random.SFC64(seed), math.prod(shape), min(round(p * 2**32), 2**32 - 1))
    numpy_dtype = np.float64 if dtype == torch.float64 else np.float32  # others (bf16, fp16): converted below
    mask = np.multiply(keep, numpy_dtype(1.0) / numpy_dtype(1.0 - p), dtype=numpy_dtype)
    return torch.from_numpy(mask).view(shape).to(dtype)


def word_at_least(bits: np.random.BitGenerator, n: int, threshold: int) -> np.ndarray:
    """``n`` independent booleans, each whether a uniform 32-bit word is >= ``threshold`` (0 <= threshold < 2**32).

    Why not draw the words: a word is >= the threshold exactly when its top byte is above the threshold's, or
    equal to it with the low 24 bits >= the threshold's. So one random byte per element decides all but the
    1 in 256 that tie, and only those draw 24 more bits: a quarter of the random bits and of the memory
    traffic, the same distribution.
    """
    top_threshold, low_threshold = threshold >> 24, threshold & 0xFFFFFF
    top = bits.random_raw(-(-n // 8)).view(np.uint8)[:n]
    at_least = top > top_threshold
    ties = np.flatnonzero(top == top_threshold)
    if ties.size:
        low = bits.random_raw(-(-ties.size // 2)).view(np.uint32)[:ties.size] >> 8
        at_least[ties] = low >= low_threshold
    return at_least


def attention_with_fast_dropout(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                attention_mask: torch.Tensor | None, dropout: float = 0.0,
                                scaling: float | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers attention function: softmax(q k^T * scaling + mask), dropout, times v; the dropout mask
    drawn like :class:`FastDropout`'s. Anything else (eval, no dropout, not CPU) goes to transformers' SDPA
    function unchanged, so evaluation and GPU training are exactly what they were."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not (module.training and dropout > 0.0 and query.device.type == "cpu"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    # in place on the fresh product: the matmul's backward needs its inputs, not its output
    scores = torch.matmul(query, key.transpose(2, 3)).mul_(query.size(-1) ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:  # the SDPA mask: True where a query may attend, or additive floats
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(attention_mask.logical_not(), torch.finfo(scores.dtype).min)
        else:
            scores.add_(attention_mask)
    probabilities = torch.softmax(scores, dim=-1) * keep_mask(scores.shape, dropout, scores.dtype)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), None


def use_fast_dropout(model: nn.Module) -> int:
    """Turn every ``nn.Dropout`` in ``model`` into a :class:`FastDropout` (same p, same place), and a model on
    transformers' SDPA attention onto :func:`attention_with_fast_dropout`; returns how many dropouts
    changed. In place and without new parameters: saving, loading and evaluation are unchanged."""
    changed = 0
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = FastDropout
            changed += 1
    base = classifier_of(model)
    if getattr(base.config, "_attn_implementation", None) == "sdpa":
        _register_attention()
        base.set_attn_implementation(ATTENTION)
    return changed


@functools.cache
def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, attention_with_fast_dropout)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the same masks SDPA gets
