"""The last encoder layer computed for position 0 only gives the same logits and gradients."""

import pytest
import torch

from adaptlab.nli.first_token import compute_last_layer_for_first_token
from adaptlab.nli.methods import MethodConfig
from adaptlab.nli.models import build_model


def logits_and_gradients(model, ids, mask, labels):
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return out.logits.detach(), grads


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("method", ["lora", "full"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_same_logits_and_gradients_as_the_full_last_layer(family, method, attention, request):
    folder = request.getfixturevalue(f"tiny_{family}_dir")
    torch.manual_seed(0)
    model, _ = build_model(str(folder), MethodConfig(method=method), random_init=True)
    classifier = model.get_base_model() if method == "lora" else model
    classifier.set_attn_implementation(attention)
    model.eval()  # no dropout: both forwards must agree to rounding
    ids = torch.randint(5, model.config.vocab_size, (5, 11))
    mask = torch.ones(5, 11, dtype=torch.long)
    mask[1, 7:] = 0
    mask[3, 2:] = 0  # padding makes the first query's mask row matter
    labels = torch.tensor([0, 1, 2, 1, 0])
    expected_logits, expected_grads = logits_and_gradients(model, ids, mask, labels)
    assert compute_last_layer_for_first_token(model)
    logits, grads = logits_and_gradients(model, ids, mask, labels)
    assert torch.allclose(logits, expected_logits, atol=1e-6, rtol=1e-5)
    assert grads.keys() == expected_grads.keys() and len(grads) > 0
    for name, grad in grads.items():
        assert torch.allclose(grad, expected_grads[name], atol=1e-6, rtol=1e-4), name
    # the last layer's position-0 output feeds the head; the layer really returns one position now
    layers = classifier.base_model.encoder.layer
    seen = []
    handle = layers[-1].register_forward_hook(lambda module, args, output: seen.append(output.shape))
    model(input_ids=ids, attention_mask=mask)
    handle.remove()
    assert seen == [(5, 1, model.config.hidden_size)]


def test_other_models_are_left_as_they_are():
    from transformers import MPNetConfig, MPNetForSequenceClassification

    model = MPNetForSequenceClassification(MPNetConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                       num_attention_heads=2, intermediate_size=32))
    forwards = [layer.forward for layer in model.mpnet.encoder.layer]
    assert not compute_last_layer_for_first_token(model)
    assert [layer.forward for layer in model.mpnet.encoder.layer] == forwards
