"""FastDropout: torch's dropout distribution with cheaper CPU masks, reproducible from torch's seed."""

import math

import pytest
import torch
from torch import nn

import numpy as np

from adaptlab.nli.dropout import FastDropout, keep_mask, use_fast_dropout, word_at_least


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_drop_rate_is_p_and_kept_values_are_scaled_by_one_over_one_minus_p(p):
    torch.manual_seed(0)
    x = torch.randn(1_000_003, dtype=torch.float64) + 5.0  # not a multiple of the 8 bytes in a random word
    layer = FastDropout(p).train()
    y = layer(x)
    kept = y != 0
    rate = 1.0 - kept.double().mean().item()
    assert abs(rate - p) < 6 * math.sqrt(p * (1 - p) / x.numel())  # binomial: 6 standard deviations
    assert torch.equal(y[kept], x[kept] * (1.0 / (1.0 - p)))
    # no repeating pattern: the two halves differ and are both random
    half = x.numel() // 2
    first, second = kept[:half], kept[half:2 * half]
    assert not torch.equal(first, second)
    assert abs(first.double().mean() - second.double().mean()) < 6 * math.sqrt(2 * p * (1 - p) / half)


def test_masks_follow_torch_manual_seed_and_change_from_call_to_call():
    torch.manual_seed(1)
    a, b = keep_mask((300, 500), 0.2, torch.float32), keep_mask((300, 500), 0.2, torch.float32)
    torch.manual_seed(1)
    assert torch.equal(keep_mask((300, 500), 0.2, torch.float32), a)
    assert not torch.equal(a, b)
    assert keep_mask((7, 3), 0.2, torch.float32).shape == (7, 3)


class _FixedWords:
    """A bit generator stand-in that hands out a fixed stream of 64-bit words, in order."""

    def __init__(self, words: np.ndarray):
        self.words, self.used = words, 0

    def random_raw(self, size: int) -> np.ndarray:
        self.used += size
        return self.words[self.used - size:self.used].copy()


@pytest.mark.parametrize("threshold", [0, 1, 0x19999999 + 1, 0x80000000, 0xFF000000, 2**32 - 1])
def test_word_at_least_decides_exactly_like_comparing_whole_32_bit_words(threshold):
    rng = np.random.default_rng(threshold % 1000)
    n, top_threshold = 4_099, threshold >> 24
    # top bytes crowd around the threshold's top byte so that ties (which draw 24 more bits) are frequent
    tops = np.clip(top_threshold + rng.integers(-1, 2, n), 0, 255).astype(np.uint8)
    padded = np.zeros(-(-n // 8) * 8, np.uint8)
    padded[:n] = tops
    # ...and so do the tie words' upper 24 bits around the threshold's low 24 bits (equality decides "at least")
    uppers = np.clip((threshold & 0xFFFFFF) + rng.integers(-1, 2, 2 * n), 0, 2**24 - 1).astype(np.uint32)
    extra = (uppers << 8) | rng.integers(0, 256, 2 * n, dtype=np.uint32)
    bits = _FixedWords(np.concatenate([padded.view(np.uint64), extra.view(np.uint64)]))
    got = word_at_least(bits, n, threshold)
    # the same decisions from whole words: top byte, then the tie words' upper 24 bits, arbitrary low bits elsewhere
    ties = np.flatnonzero(tops == top_threshold)
    low = rng.integers(0, 2**24, n, dtype=np.uint64)
    low[ties] = extra[:ties.size] >> 8
    words = (tops.astype(np.uint64) << 24) | low
    assert ties.size > 1_000
    assert got.dtype == bool and np.array_equal(got, words >= threshold)


def test_gradient_is_the_same_mask_as_the_forward():
    torch.manual_seed(2)
    x = torch.randn(64, 100, requires_grad=True)
    y = FastDropout(0.3).train()(x)
    weights = torch.randn(64, 100)
    (y * weights).sum().backward()
    kept = y != 0
    assert 0.6 < kept.float().mean() < 0.8
    assert torch.allclose(x.grad, weights * kept / 0.7, rtol=1e-6, atol=0)


def test_backward_keeps_only_the_mask_not_the_input():
    x = torch.randn(64, 100, requires_grad=True)
    hidden = x * 2.0
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = FastDropout(0.3).train()(hidden)
    assert len(saved) == 1 and saved[0].shape == y.shape
    assert saved[0].data_ptr() != hidden.data_ptr()
    mask = saved[0]
    assert torch.equal(mask != 0, y != 0)
    assert torch.equal(mask[mask != 0].unique(), torch.tensor([np.float32(1.0) / np.float32(0.7)]))


def test_eval_mode_p0_and_p1_behave_like_torch():
    x = torch.randn(50, 20)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros_like(x))


def test_use_fast_dropout_converts_every_dropout_of_a_lora_model(tiny_bert_dir):
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    model, _ = build_model(str(tiny_bert_dir), MethodConfig(method="lora"), random_init=True)
    layers = model.config.num_hidden_layers
    # per layer: attention probabilities, attention output, feed-forward output, LoRA on query and value;
    # plus the embeddings and the classification head
    assert sum(type(m) is nn.Dropout for m in model.modules()) == 5 * layers + 2
    expected = 5 * layers + 2
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert use_fast_dropout(model) == expected > 0
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert sum(isinstance(m, FastDropout) for m in model.modules()) == expected
    assert model.state_dict().keys() == state.keys()  # no new parameters or buffers


@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
def test_attention_drops_probabilities_with_the_same_masks_and_ignores_padded_keys(mask_kind):
    from adaptlab.nli.dropout import attention_with_fast_dropout

    torch.manual_seed(3)
    query, key, value = (torch.randn(2, 3, 5, 4) for _ in range(3))
    allowed = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    allowed[1, :, :, 3:] = False  # the second sequence has two padded positions
    # SDPA's two mask forms: True where a query may attend, or floats added to the scores
    given = allowed if mask_kind == "bool" else torch.zeros(2, 1, 5, 5).masked_fill(~allowed, -1e9)
    module = nn.Module().train()
    torch.manual_seed(4)
    out, _ = attention_with_fast_dropout(module, query, key, value, given, dropout=0.25, scaling=0.5)
    torch.manual_seed(4)
    keep = keep_mask((2, 3, 5, 5), 0.25, torch.float32)
    scores = (query @ key.transpose(2, 3) * 0.5).masked_fill(~allowed, float("-inf"))
    expected = (torch.softmax(scores, dim=-1) * keep) @ value
    assert out.shape == (2, 5, 3, 4)
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-6)
    # a padded key never contributes, whatever the mask drew
    value_changed = value.clone()
    value_changed[1, :, 3:] = 1e6
    torch.manual_seed(4)
    again, _ = attention_with_fast_dropout(module, query, key, value_changed, given, dropout=0.25, scaling=0.5)
    assert torch.allclose(again, out, atol=1e-6)


def test_lora_model_trains_with_fast_attention_and_evaluates_exactly_as_before(tiny_bert_dir):
    from adaptlab.nli.dropout import ATTENTION
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    torch.manual_seed(5)
    model, _ = build_model(str(tiny_bert_dir), MethodConfig(method="lora"), random_init=True)
    ids = torch.randint(5, model.config.vocab_size, (4, 9))
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[2:, 6:] = 0
    model.eval()
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
    use_fast_dropout(model)
    assert model.get_base_model().config._attn_implementation == ATTENTION
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, before)
    model.train()
    loss = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2, 0])).loss
    loss.backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)


def test_attention_gradients_match_the_plain_formula_with_the_same_mask():
    from adaptlab.nli.dropout import attention_with_fast_dropout

    torch.manual_seed(6)
    inputs = [torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    allowed = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    allowed[0, :, :, 4:] = False
    weights = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    torch.manual_seed(7)
    out, _ = attention_with_fast_dropout(nn.Module().train(), *inputs, allowed, dropout=0.3, scaling=0.25)
    (out * weights).sum().backward()
    fast = [t.grad.clone() for t in inputs]

    reference = [t.detach().clone().requires_grad_() for t in inputs]
    torch.manual_seed(7)
    keep = keep_mask((2, 3, 5, 5), 0.3, torch.float64)
    query, key, value = reference
    scores = (query @ key.transpose(2, 3) * 0.25).masked_fill(~allowed, float("-inf"))
    ((torch.softmax(scores, dim=-1) * keep) @ value).transpose(1, 2).mul(weights).sum().backward()
    for got, expected in zip(fast, (t.grad for t in reference)):
        assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
