"""Compute the encoder's last layer for the first token only: the only position a classifier reads.

BERT's pooler and RoBERTa's classification head read ``last_hidden_state[:, 0]`` and nothing else, yet
transformers computes the last layer for every position: queries, attention, output projection and the
feed-forward block of L - 1 positions whose results are thrown away (and, in training, back-propagated
as zeros). Here the last layer takes keys and values from every position, as before, but queries, the
attention output and the feed-forward block only for position 0. The logits are the same (up to float
rounding: smaller matrix products round differently) and so are the gradients of everything that trains.
Most of one layer's work is saved: ~1/num_layers of the encoder (a MiniLM-L6 LoRA step is ~1.13x faster,
``bench/nli_speedups.py``; roberta-large has 24 layers, so expect a few percent there).

Only for the families whose layer code this mirrors (BERT and RoBERTa in transformers 5) and whose
sequence-classification head reads the first token; any other model is left exactly as it is.
"""

from __future__ import annotations

import sys
from types import MethodType

import torch
from torch import nn

from adaptlab.nli.structure import classifier_of, encoder_layers

# (classification model, its layer class): heads that read only position 0 of the last hidden state
SUPPORTED = {
    "BertForSequenceClassification": "BertLayer",
    "RobertaForSequenceClassification": "RobertaLayer",
    "XLMRobertaForSequenceClassification": "XLMRobertaLayer",
}


def compute_last_layer_for_first_token(model: nn.Module) -> bool:
    """Make the classifier ``model`` (or the transformers model inside a PeftModel) compute its last layer
    for position 0 only; True if it did, False if the model is not one this applies to (left unchanged)."""
    base = classifier_of(model)
    layer_class = SUPPORTED.get(type(base).__name__)
    if layer_class is None or getattr(base.config, "is_decoder", False):
        return False
    _, layers = encoder_layers(base)
    last = layers[-1]
    if (type(last).__name__ != layer_class or getattr(last, "add_cross_attention", False)
            or getattr(last, "chunk_size_feed_forward", 0) or _eager_attention(last) is None):
        return False
    last.forward = MethodType(_first_token_forward, last)
    return True


def _first_token_forward(layer: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         *args, **kwargs) -> torch.Tensor:
    """The layer's forward (self-attention, output, feed-forward) with queries from position 0 only;
    returns (batch, 1, hidden): the first position of what the full layer returns."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    attention = layer.attention.self
    batch, length, _ = hidden_states.shape
    first = hidden_states[:, :1]

    def heads(x: torch.Tensor, positions: int) -> torch.Tensor:
        return x.view(batch, positions, -1, attention.attention_head_size).transpose(1, 2)

    query = heads(attention.query(first), 1)
    key = heads(attention.key(hidden_states), length)
    value = heads(attention.value(hidden_states), length)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :1, :]  # the first query's row (a (b, 1, 1, L) mask stays)
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, _eager_attention(layer))
    context, _ = attend(attention, query, key, value, attention_mask,
                        dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling)
    attention_output = layer.attention.output(context.reshape(batch, 1, -1), first)
    return layer.feed_forward_chunk(attention_output)


def _eager_attention(layer: nn.Module):
    """The family's own "eager" attention function (transformers registers only the optimised ones)."""
    return getattr(sys.modules[type(layer).__module__], "eager_attention_forward", None)
