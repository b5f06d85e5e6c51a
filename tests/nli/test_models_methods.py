"""What trains under lora / full / partial, on tiny random encoders of several families, vs independent counts."""

from __future__ import annotations

import time

import pytest
import torch

from adaptlab.errors import AdaptlabError
from adaptlab.nli.data import LABELS
from adaptlab.nli.methods import (MethodConfig, apply_method, count_parameters, parameter_counts,
                                  trainable_names)
from adaptlab.nli.models import build_model, load_model_config

H, I, L = 16, 32, 4  # tiny shape from conftest.TINY_SHAPE


def layer_params(h: int, i: int) -> int:
    """One BERT/RoBERTa block: q,k,v,o (h x h + bias), two LayerNorms, FFN h->i->h."""
    return 4 * (h * h + h) + 2 * 2 * h + (h * i + i) + (i * h + h)


def build(folder, **method):
    torch.manual_seed(0)
    model, tokenizer = build_model(str(folder), MethodConfig(**method), random_init=True)
    return model, tokenizer


def test_lora_trains_exactly_adapters_and_roberta_head(tiny_roberta_dir):
    model, _ = build(tiny_roberta_dir, method="lora", rank=4, targets=("query", "value"))
    expected = {f"base_model.model.roberta.encoder.layer.{n}.attention.self.{t}.lora_{ab}.default.weight"
                for n in range(L) for t in ("query", "value") for ab in "AB"}
    expected |= {f"base_model.model.classifier.modules_to_save.default.{m}.{p}"
                 for m in ("dense", "out_proj") for p in ("weight", "bias")}
    assert set(trainable_names(model)) == expected
    head = (H * H + H) + (H * 3 + 3)
    lora = L * 2 * 4 * (H + H)
    counts = parameter_counts(model)
    assert counts.trainable == lora + head
    assert (counts.adapters, counts.head_copies) == (lora, head)
    # PEFT's own numbers: its "all params" counts the frozen head original and the trained copy
    assert model.get_nb_trainable_parameters() == (counts.trainable, counts.peft_all)


def test_lora_head_peft_trains_bert_classifier_and_not_pooler(tiny_bert_dir):
    model, _ = build(tiny_bert_dir, method="lora", rank=2, targets=("query", "key", "value"), head="peft")
    names = set(trainable_names(model))
    assert {n for n in names if "lora_" not in n} == {
        "base_model.model.classifier.modules_to_save.default.weight",
        "base_model.model.classifier.modules_to_save.default.bias"}
    assert len([n for n in names if "lora_" in n]) == L * 3 * 2
    assert count_parameters(model)[0] == L * 3 * 2 * (H + H) + (H * 3 + 3)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_full_trains_everything_and_total_matches_formula(family, tiny_roberta_dir, tiny_bert_dir):
    folder = tiny_roberta_dir if family == "roberta" else tiny_bert_dir
    model, tokenizer = build(folder, method="full")
    config = model.config
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * H + 2 * H
    head = (H * H + H) + (3 * H + 3)  # RoBERTa: dense + out_proj; BERT: pooler (in the base) + classifier
    assert count_parameters(model) == (embeddings + L * layer_params(H, I) + head,) * 2
    assert all(p.requires_grad for p in model.parameters())
    assert config.id2label == dict(enumerate(LABELS)) and config.label2id["neutral"] == 1


def test_partial_trains_top_layers_pooler_and_head(tiny_roberta_dir, tiny_bert_dir):
    roberta, _ = build(tiny_roberta_dir, method="partial", top_layers=2)
    groups = {".".join(n.split(".")[:4]) if ".layer." in n else n.split(".")[0] for n in trainable_names(roberta)}
    assert groups == {"roberta.encoder.layer.2", "roberta.encoder.layer.3", "classifier"}
    assert count_parameters(roberta)[0] == 2 * layer_params(H, I) + (H * H + H) + (3 * H + 3)
    bert, _ = build(tiny_bert_dir, method="partial", top_layers=1)
    assert set(trainable_names(bert)) == (
        {n for n, _ in bert.named_parameters() if n.startswith("bert.encoder.layer.3.")}
        | {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"})
    assert count_parameters(bert)[0] == layer_params(H, I) + (H * H + H) + (3 * H + 3)


def test_partial_default_is_a_quarter_of_the_layers_rounded_up(tiny_roberta_dir):
    model, _ = build(tiny_roberta_dir, method="partial")  # 4 layers -> 1
    assert {n.split(".")[3] for n in trainable_names(model) if ".layer." in n} == {"3"}


def test_partial_zero_layers_is_a_head_only_probe(tiny_bert_dir):
    model, _ = build(tiny_bert_dir, method="partial", top_layers=0)
    assert count_parameters(model)[0] == (H * H + H) + (3 * H + 3)


def _tiny_config(model_type: str):
    from transformers import AutoConfig

    if model_type == "distilbert":
        return AutoConfig.for_model("distilbert", vocab_size=50, dim=H, n_layers=L, n_heads=2, hidden_dim=I,
                                    max_position_embeddings=32, num_labels=3)
    return AutoConfig.for_model(model_type, vocab_size=50, hidden_size=H, num_hidden_layers=L,
                                num_attention_heads=2, intermediate_size=I, max_position_embeddings=34,
                                num_labels=3)


def test_partial_is_generic_mpnet_keeps_shared_relative_bias_frozen():
    from transformers import AutoModelForSequenceClassification

    model = apply_method(AutoModelForSequenceClassification.from_config(_tiny_config("mpnet")),
                         MethodConfig(method="partial", top_layers=1))
    names = trainable_names(model)
    assert all(n.startswith(("mpnet.encoder.layer.3.", "mpnet.pooler.", "classifier.")) for n in names)
    assert any(n.startswith("mpnet.encoder.layer.3.") for n in names)
    assert not model.mpnet.encoder.relative_attention_bias.weight.requires_grad


def test_lora_head_is_generic_distilbert_pre_classifier_trains():
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_config(_tiny_config("distilbert"))
    model = apply_method(base, MethodConfig(method="lora", rank=2, targets=("q_lin", "v_lin")))
    heads = {n.split(".")[2] for n in trainable_names(model) if "lora_" not in n}
    assert heads == {"pre_classifier", "classifier"}
    with pytest.raises(AdaptlabError, match=r"'query' not found .*q_lin"):
        apply_method(AutoModelForSequenceClassification.from_config(_tiny_config("distilbert")),
                     MethodConfig(method="lora", targets="query,value"))
    preset = apply_method(AutoModelForSequenceClassification.from_config(_tiny_config("distilbert")),
                          MethodConfig(method="lora", rank=2))  # the default preset qv finds q_lin/v_lin
    assert set(preset.peft_config["default"].target_modules) == {"q_lin", "v_lin"}


def test_checkpoint_without_pooler_weights_trains_and_saves_the_pooler(tmp_path, tiny_model_factory):
    """Weights the checkpoint lacks are random: they must train under LoRA too (and so be saved with it)."""
    from transformers import AutoConfig, BertModel

    folder = tiny_model_factory(tmp_path / "nopool", "bert")
    BertModel(AutoConfig.from_pretrained(folder), add_pooling_layer=False).save_pretrained(folder)
    model, _ = build_model(str(folder), MethodConfig(method="lora", rank=2))
    names = set(trainable_names(model))
    assert {"base_model.model.bert.pooler.dense.modules_to_save.default.weight",
            "base_model.model.bert.pooler.dense.modules_to_save.default.bias"} <= names
    assert "bert.pooler.dense" in model.peft_config["default"].modules_to_save


def _one_step(model, tokenizer):
    batch = tokenizer(["A man is playing a guitar.", "The children are sleeping."],
                      ["Someone plays music.", "Nobody is outside."], padding=True, return_tensors="pt")
    model.train()
    loss = model(**batch, labels=torch.tensor([0, 2])).loss
    loss.backward()
    # every parameter goes to the optimizer, as a careless loop would: freezing must hold by itself
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()


@pytest.mark.parametrize("method", [dict(method="lora", rank=4), dict(method="partial", top_layers=2)])
def test_frozen_weights_do_not_change_after_an_optimizer_step(method, tiny_roberta_dir):
    model, tokenizer = build(tiny_roberta_dir, **method)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _one_step(model, tokenizer)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert frozen and trained
    assert all(torch.equal(before[n], dict(model.named_parameters())[n]) for n in frozen)
    changed = [n for n in trained if not torch.equal(before[n], dict(model.named_parameters())[n])]
    assert changed == trained


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="adapters"), "unknown method 'adapters'"),
    (dict(method="lora", rank=0), "rank must be a positive integer"),
    (dict(method="lora", alpha=-1), "alpha must be a positive number"),
    (dict(method="lora", dropout=1.5), "dropout must be in"),
    (dict(method="lora", targets=()), "at least one target"),
    (dict(method="partial", top_layers=-1), "--top-layers must be an integer >= 0"),
])
def test_bad_method_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(AdaptlabError, match=message) as info:
        MethodConfig(**kwargs).validate()
    assert "\n" not in str(info.value)


def test_bad_targets_and_too_many_layers_name_the_problem(tiny_roberta_dir):
    with pytest.raises(AdaptlabError, match=r"LoRA target module 'qkv' not found .*query, .*value"):
        build(tiny_roberta_dir, method="lora", targets="query,qkv")
    with pytest.raises(AdaptlabError, match="--top-layers 5 exceeds the model's 4 encoder layers"):
        build(tiny_roberta_dir, method="partial", top_layers=5)


def test_method_config_defaults_and_parsing():
    config = MethodConfig(rank=8, targets="query, key,value")
    assert config.alpha == 16 and config.targets == ("query", "key", "value")
    assert MethodConfig().alpha == 32 and MethodConfig(rank=4, alpha=4).alpha == 4


def test_whole_number_alpha_is_an_int_wherever_it_comes_from(capsys):
    from adaptlab.cli import main

    # --alpha is parsed as a float and YAML may say 16.0: PEFT and the run's description should still say 16
    for given in (16.0, 16):
        config = MethodConfig(rank=8, alpha=given)
        assert type(config.alpha) is int and config.alpha == 16 and "alpha=16," in config.describe()
    assert MethodConfig(rank=8, alpha=12.5).alpha == 12.5
    from adaptlab.nli.config import NLIRunConfig  # train/compare build theirs from the run config

    assert type(MethodConfig.of(NLIRunConfig(alpha=16.0)).alpha) is int
    assert type(NLIRunConfig(alpha=16.0).resolved().alpha) is int
    assert main(["nli", "params", "--model", "roberta-base", "--rank", "8", "--alpha", "16.0", "--json"]) == 0
    assert '"alpha": 16,' in capsys.readouterr().out


def test_unknown_model_fails_within_seconds_with_one_line():
    start = time.monotonic()
    with pytest.raises(AdaptlabError) as info:
        build_model("no-such-org/no-such-model", MethodConfig())
    assert time.monotonic() - start < 10
    assert "\n" not in str(info.value) and "no-such-org/no-such-model" in str(info.value)
    with pytest.raises(AdaptlabError, match="unknown model 'not a model!'"):
        load_model_config("not a model!")
    with pytest.raises(AdaptlabError, match="no such model file or folder"):
        load_model_config("./missing-folder")


def test_bare_config_needs_random_init(tiny_roberta_dir):
    with pytest.raises(AdaptlabError, match="bare config"):
        build_model(str(tiny_roberta_dir / "config.json"), MethodConfig())
    model, tokenizer = build_model(str(tiny_roberta_dir / "config.json"), MethodConfig(), random_init=True)
    assert tokenizer.pad_token_id == model.config.pad_token_id == 1


def test_a_tokenizer_from_another_family_is_fitted_or_refused(tiny_roberta_dir, tiny_bert_dir):
    """RoBERTa has one segment embedding: a BERT tokenizer's token_type_ids must not reach it."""
    torch.manual_seed(0)
    model, tokenizer = build_model(str(tiny_roberta_dir), MethodConfig(), random_init=True,
                                   tokenizer=str(tiny_bert_dir))
    batch = tokenizer(["a man"], ["nobody is outside"], return_tensors="pt")
    assert "token_type_ids" not in batch and model(**batch).logits.shape == (1, 3)
    with pytest.raises(AdaptlabError, match="tokenizer has .* tokens but the model's vocabulary only"):
        build_model(str(tiny_bert_dir), MethodConfig(), random_init=True, tokenizer=str(tiny_roberta_dir))


def test_an_unreachable_hub_fails_fast_with_the_probe_reason(monkeypatch):
    import socket

    from adaptlab.nli import models

    with socket.socket() as sock:  # a local port nothing listens on: the "hub" refuses at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    models.hub_unreachable.cache_clear()
    start = time.perf_counter()
    try:
        with pytest.raises(AdaptlabError) as info:
            models.load_model_config("adaptlab-test/no-such-model")
    finally:
        models.hub_unreachable.cache_clear()
    message = str(info.value)
    assert time.perf_counter() - start < 10 and "\n" not in message
    assert f"the hub is unreachable (http://127.0.0.1:{port}: " in message and "minilm" in message
