"""LoRA through PEFT on tiny random encoders of four architectures (BERT, RoBERTa, MPNet, DistilBERT).

The head rule: under LoRA, everything between the encoder's last layer and the logits trains. The expected set
is computed independently of adaptlab's module-finding: the parameters that receive a gradient from the logits
when the last encoder layer's output is cut off from the graph (a leaf tensor) are exactly the ones between that
layer and the logits.
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import (AutoModelForSequenceClassification, BertConfig, DistilBertConfig, MPNetConfig,
                          RobertaConfig)

from adaptlab.errors import AdaptlabError
from adaptlab.nli.methods import MethodConfig, apply_method, parameter_counts, trainable_names

SHAPE = dict(vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
             max_position_embeddings=40, num_labels=3)
H, I, L = 16, 32, 3
CONFIGS = {
    "bert": lambda: BertConfig(**SHAPE),
    "roberta": lambda: RobertaConfig(**SHAPE, pad_token_id=1),
    "mpnet": lambda: MPNetConfig(**SHAPE, pad_token_id=1),
    "distilbert": lambda: DistilBertConfig(vocab_size=40, dim=16, n_layers=3, n_heads=2, hidden_dim=32,
                                           max_position_embeddings=40, num_labels=3),
}
# what a reader of each architecture's code would name, to check the autograd set against
READABLE = {
    "bert": {"bert.pooler.dense", "classifier"},
    "roberta": {"classifier.dense", "classifier.out_proj"},
    "mpnet": {"classifier.dense", "classifier.out_proj"},
    "distilbert": {"pre_classifier", "classifier"},
}


def tiny(family: str):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(CONFIGS[family]())


def last_layer(model):
    n = model.config.num_hidden_layers
    return next(m for m in model.base_model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n)[-1]


def params_after_last_layer(model) -> set[str]:
    """Parameter names that get a gradient from the logits when the last layer's output is a detached leaf."""
    def cut(_module, _inputs, output):
        if isinstance(output, tuple):
            return (output[0].detach().requires_grad_(), *output[1:])
        return output.detach().requires_grad_()

    model.train(False)
    handle = last_layer(model).register_forward_hook(cut)
    ids = torch.randint(5, 40, (2, 7))
    model.zero_grad()
    model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
    handle.remove()
    return {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def trained_head_params(model) -> set[str]:
    """Trainable non-LoRA parameter names of a PeftModel, in the base model's own naming."""
    names = set()
    for name in trainable_names(model):
        if "lora_" in name:
            continue
        names.add(name.removeprefix("base_model.model.").replace("modules_to_save.default.", ""))
    return names


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_lora_trains_exactly_what_lies_between_the_last_layer_and_the_logits(family):
    expected = params_after_last_layer(tiny(family))
    assert {name.rsplit(".", 1)[0] for name in expected} == READABLE[family]
    model = apply_method(tiny(family), MethodConfig(method="lora", rank=2))
    assert trained_head_params(model) == expected
    counts = parameter_counts(model)
    head = sum(p.numel() for name, p in tiny(family).named_parameters() if name in expected)
    assert counts.trainable == counts.adapters + head
    assert counts.head_copies == head  # modules_to_save keeps the frozen originals beside the trained copies


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_head_peft_trains_what_plain_peft_seq_cls_trains(family):
    from peft import LoraConfig, TaskType, get_peft_model

    model = apply_method(tiny(family), MethodConfig(method="lora", rank=2, head="peft"))
    targets = model.peft_config["default"].target_modules
    plain = get_peft_model(tiny(family), LoraConfig(task_type=TaskType.SEQ_CLS, r=2, target_modules=targets))
    assert set(trainable_names(model)) == set(trainable_names(plain))
    assert not any("pooler" in name for name in trainable_names(model))


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_partial_with_no_layers_trains_the_same_head_path_as_lora(family):
    model = apply_method(tiny(family), MethodConfig(method="partial", top_layers=0))
    assert set(trainable_names(model)) == params_after_last_layer(tiny(family))


def test_lora_head_modules_are_saved_and_restored_with_the_adapter(tmp_path):
    from peft import PeftModel

    model = apply_method(tiny("bert"), MethodConfig(method="lora", rank=2))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.5)
    model.save_pretrained(tmp_path)
    reloaded = PeftModel.from_pretrained(tiny("bert"), tmp_path)
    ids = torch.randint(5, 40, (2, 7))
    model.train(False)
    reloaded.train(False)
    assert torch.allclose(model(input_ids=ids).logits, reloaded(input_ids=ids).logits, atol=1e-6)


# ---- the choices LoRA users make -------------------------------------------------------------------------


def lora(family: str, **options):
    return apply_method(tiny(family), MethodConfig(method="lora", rank=2, **options))


@pytest.mark.parametrize("family, qv, attn", [
    ("bert", {"query", "value"}, {"query", "key", "value", "attention.output.dense"}),
    ("roberta", {"query", "value"}, {"query", "key", "value", "attention.output.dense"}),
    ("mpnet", {"q", "v"}, {"q", "k", "v", "o"}),
    ("distilbert", {"q_lin", "v_lin"}, {"q_lin", "k_lin", "v_lin", "out_lin"}),
])
def test_presets_name_each_architectures_own_layers(family, qv, attn):
    for preset, expected, per_layer in (("qv", qv, 2 * 2 * (H + H)), ("attn", attn, 4 * 2 * (H + H)),
                                        ("all-linear", None, 4 * 2 * (H + H) + 2 * 2 * (H + I))):
        model = lora(family, targets=preset)
        if expected is not None:
            assert set(model.peft_config["default"].target_modules) == expected
        assert parameter_counts(model).adapters == L * per_layer  # only inside the encoder layers, never the head


def test_alpha_rslora_and_dora_reach_peft():
    def scaling(model):
        from peft.tuners.lora import LoraLayer

        return next(m.scaling["default"] for m in model.modules() if isinstance(m, LoraLayer))

    assert scaling(lora("bert")) == 4 / 2  # alpha = 2 x rank by default
    assert scaling(lora("bert", alpha=8)) == 8 / 2
    assert scaling(lora("bert", use_rslora=True)) == pytest.approx(4 / math.sqrt(2))
    plain, dora = parameter_counts(lora("bert")), parameter_counts(lora("bert", use_dora=True))
    assert dora.adapters - plain.adapters == L * 2 * H  # one magnitude per output of each adapted layer


def test_init_options_change_the_starting_adapter():
    torch.manual_seed(0)
    default = lora("bert")
    gaussian = lora("bert", init="gaussian")
    a_default = next(p for n, p in default.named_parameters() if "lora_A" in n)
    a_gaussian = next(p for n, p in gaussian.named_parameters() if "lora_A" in n)
    b_default = next(p for n, p in default.named_parameters() if "lora_B" in n)
    assert torch.count_nonzero(b_default) == 0  # B = 0: the adapter starts as a no-op
    assert a_gaussian.std().item() == pytest.approx(1 / 2, rel=0.5)  # PEFT's gaussian: std 1/r
    assert a_default.abs().max() < a_gaussian.abs().max()
    orthogonal = dict(lora("bert", init="orthogonal").named_parameters())
    a, b = (next(p for n, p in orthogonal.items() if f"lora_{x}" in n) for x in "AB")
    assert torch.count_nonzero(b) > 0 and torch.allclose(b @ a, torch.zeros(H, H), atol=1e-6)  # a no-op, B != 0


@pytest.mark.parametrize("options, message", [
    (dict(init="pissa"), "'pissa' is not offered: it rewrites the base weights"),
    (dict(init="pissa_niter_4"), "'pissa_niter_4' is not offered"),
    (dict(init="eva"), "needs calibration data"),
    (dict(init="kaiming"), "init_lora_weights must be one of default, gaussian, orthogonal"),
    (dict(init="orthogonal", rank=3), "needs an even rank, got 3"),
    (dict(head="pooler"), "LoRA head must be one of full, peft"),
    (dict(use_dora="yes"), "use_dora must be true or false"),
    (dict(targets="qv,key"), "preset 'qv' cannot be combined"),
    (dict(alpha=float("inf")), "alpha must be a positive number"),
])
def test_bad_lora_options_are_one_line_errors(options, message):
    config = MethodConfig(method="lora", **{"rank": 2, **options})
    with pytest.raises(AdaptlabError, match=message) as raised:
        config.validate()
    assert "\n" not in str(raised.value)


def test_params_report_names_the_trained_head_modules(tiny_bert_dir):
    from adaptlab.nli.params import format_params, params_report

    report = params_report(str(tiny_bert_dir), [MethodConfig(rank=2), MethodConfig(rank=2, head="peft")])
    full_head, peft_head = report["rows"]
    pooler, classifier = 16 * 16 + 16, 16 * 3 + 3  # conftest.TINY_SHAPE: hidden 16, 4 layers
    assert report["above_encoder"] == {"bert.pooler": pooler}
    assert (full_head["trained_head_modules"], full_head["trained_head"]) == (["bert.pooler", "classifier"],
                                                                              pooler + classifier)
    assert (peft_head["trained_head_modules"], peft_head["trained_head"]) == (["classifier"], classifier)
    assert full_head["trainable"] == 4 * 2 * 2 * (16 + 16) + pooler + classifier
    assert f"+ bert.pooler + classifier {pooler + classifier:,} (everything trained" in format_params(report)
