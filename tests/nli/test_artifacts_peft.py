"""Saved models: PEFT adapters that plain PEFT reloads, merge parity, full/partial folders, bad outputs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from adaptlab.cli import main
from adaptlab.errors import AdaptlabError
from adaptlab.nli.artifacts import load_trained, merge_adapter, save_trained
from adaptlab.nli.data import LABELS
from adaptlab.nli.methods import MethodConfig
from adaptlab.nli.models import build_model

PAIRS = (["A man is playing a guitar.", "The children are sleeping.", "Two dogs run."],
         ["Someone plays music.", "Nobody is outside.", "The dogs are running through the snow."])


def trained(folder, method: MethodConfig):
    """A model after one real optimizer step (so LoRA B and the head are no longer at their init)."""
    torch.manual_seed(0)
    model, tokenizer = build_model(str(folder), method)
    batch = tokenizer(*PAIRS, padding=True, return_tensors="pt")
    model.train()
    model(**batch, labels=torch.tensor([0, 2, 1])).loss.backward()
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2).step()
    return model.eval(), tokenizer


def logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(*PAIRS, padding=True, return_tensors="pt")).logits


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_adapter_reloads_with_plain_peft_to_identical_logits(family, tiny_roberta_pretrained,
                                                             tiny_bert_pretrained, tmp_path):
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForSequenceClassification

    base_dir = tiny_roberta_pretrained if family == "roberta" else tiny_bert_pretrained
    method = MethodConfig(method="lora", rank=4)
    model, tokenizer = trained(base_dir, method)
    expected = logits(model, tokenizer)
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)

    config = PeftConfig.from_pretrained(str(out))
    assert config.base_model_name_or_path == str(base_dir) and config.r == 4 and config.lora_alpha == 8
    assert "classifier" in config.modules_to_save and len(set(config.modules_to_save)) == len(config.modules_to_save)
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as weights:
        keys = set(weights.keys())
    assert any("classifier" in k for k in keys) and sum("lora_B" in k for k in keys) == 4 * 2
    base = AutoModelForSequenceClassification.from_pretrained(config.base_model_name_or_path, num_labels=3)
    plain = PeftModel.from_pretrained(base, str(out)).eval()
    assert torch.equal(logits(plain, tokenizer), expected)
    # the adapter matters: the same base without it disagrees
    fresh = AutoModelForSequenceClassification.from_pretrained(config.base_model_name_or_path, num_labels=3)
    assert not torch.allclose(logits(fresh.eval(), tokenizer), expected)

    ours, our_tokenizer = load_trained(out)
    assert torch.equal(logits(ours, our_tokenizer), expected)
    assert ours.get_base_model().config.id2label == dict(enumerate(LABELS))
    meta = json.loads((out / "adaptlab_model.json").read_text())
    assert meta["labels"] == list(LABELS) and meta["method"]["rank"] == 4


def test_merge_matches_unmerged_within_1e4_and_loads_without_peft(tiny_roberta_pretrained, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    method = MethodConfig(method="lora", rank=4, targets=("query", "key", "value"))
    model, tokenizer = trained(tiny_roberta_pretrained, method)
    expected = logits(model, tokenizer)
    adapter = save_trained(model, tokenizer, tmp_path / "adapter", method)
    assert main(["nli", "merge", str(adapter), str(tmp_path / "merged")]) == 0
    assert "merged" in capsys.readouterr().out
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged", use_safetensors=True).eval()
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    assert not any("lora" in name or "modules_to_save" in name for name, _ in merged.named_parameters())
    assert torch.allclose(logits(merged, tokenizer), expected, atol=1e-4, rtol=0)
    assert merged.config.id2label == dict(enumerate(LABELS))


@pytest.mark.parametrize("method", [MethodConfig(method="full"), MethodConfig(method="partial", top_layers=1)])
def test_full_and_partial_save_as_safetensors_and_reload(method, tiny_bert_pretrained, tmp_path):
    model, tokenizer = trained(tiny_bert_pretrained, method)
    out = save_trained(model, tokenizer, tmp_path / "model", method)
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    loaded, loaded_tokenizer = load_trained(out)
    assert torch.equal(logits(loaded, loaded_tokenizer), logits(model, tokenizer))


def test_save_never_clobbers_foreign_folders_and_overwrites_its_own(tiny_bert_pretrained, tmp_path):
    method = MethodConfig(method="full")
    model, tokenizer = trained(tiny_bert_pretrained, method)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AdaptlabError, match="not an adaptlab model folder"):
        save_trained(model, tokenizer, foreign, method)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = save_trained(model, tokenizer, tmp_path / "ours", method)
    save_trained(model, tokenizer, out, method)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "ours"]  # no staging folders left


def test_method_must_match_model_and_merge_needs_an_adapter(tiny_bert_pretrained, tmp_path):
    model, tokenizer = trained(tiny_bert_pretrained, MethodConfig(method="full"))
    with pytest.raises(AdaptlabError, match="does not match"):
        save_trained(model, tokenizer, tmp_path / "x", MethodConfig(method="lora"))
    out = save_trained(model, tokenizer, tmp_path / "full", MethodConfig(method="full"))
    with pytest.raises(AdaptlabError, match="not a LoRA adapter folder"):
        merge_adapter(out, tmp_path / "merged")
    with pytest.raises(AdaptlabError, match="neither a PEFT adapter"):
        load_trained(tmp_path)
    assert not (tmp_path / "merged").exists()


def test_adapter_on_a_random_base_or_without_safetensors_refuses_to_reload(tiny_roberta_dir, tmp_path):
    torch.manual_seed(0)
    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = build_model(str(tiny_roberta_dir), method, random_init=True)
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)
    with pytest.raises(AdaptlabError, match="randomly initialised base"):
        load_trained(out)
    (out / "adapter_model.safetensors").rename(out / "adapter_model.bin")
    with pytest.raises(AdaptlabError, match="only safetensors adapters are loaded"):
        load_trained(out)


def test_adapter_built_from_a_relative_folder_reloads_from_another_directory(tiny_bert_pretrained, tmp_path,
                                                                              monkeypatch):
    from peft import PeftConfig

    monkeypatch.chdir(tiny_bert_pretrained.parent)
    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = trained(tiny_bert_pretrained.name, method)  # a relative spec, as typed on a command line
    expected = logits(model, tokenizer)
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)
    absolute = str(tiny_bert_pretrained.resolve())
    assert PeftConfig.from_pretrained(str(out)).base_model_name_or_path == absolute
    assert json.loads((out / "adaptlab_model.json").read_text())["base_model"] == absolute

    monkeypatch.chdir(tmp_path)  # the relative name means nothing here
    ours, our_tokenizer = load_trained(out)
    assert torch.equal(logits(ours, our_tokenizer), expected)


def test_merge_accepts_a_train_run_folder_like_evaluate_and_predict(tiny_bert_pretrained, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = trained(tiny_bert_pretrained, method)
    expected = logits(model, tokenizer)
    run = tmp_path / "20261126-000000-nli-lora"
    save_trained(model, tokenizer, run / "model", method)  # the layout `nli train` writes
    assert main(["nli", "merge", str(run), str(tmp_path / "merged"), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "merged")
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged", use_safetensors=True).eval()
    assert torch.allclose(logits(merged, tokenizer), expected, atol=1e-4, rtol=0)
    assert main(["nli", "merge", str(tmp_path / "nowhere"), str(tmp_path / "m2")]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_quiet_merge_prints_only_the_path_no_library_bars_or_load_reports(tiny_bert_pretrained, tmp_path, capfd):
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = trained(tiny_bert_pretrained, method)
    adapter = save_trained(model, tokenizer, tmp_path / "adapter", method)
    capfd.readouterr()
    verbosity, bars, hub_bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), \
        are_progress_bars_disabled()
    assert main(["nli", "merge", str(adapter), str(tmp_path / "merged"), "--quiet"]) == 0
    out, err = capfd.readouterr()  # file-descriptor level: transformers' handler holds the original stderr
    assert out.strip() == str(tmp_path / "merged")
    assert err == ""
    # the libraries' settings are restored afterwards (they are process-wide)
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()) \
        == (verbosity, bars, hub_bars)


def test_reloading_an_adapter_does_not_report_its_restored_head_as_new(tiny_roberta_pretrained, tmp_path, caplog,
                                                                       capfd):
    method = MethodConfig(method="lora", rank=4)
    model, tokenizer = trained(tiny_roberta_pretrained, method)
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)
    caplog.clear()
    build_model(str(tiny_roberta_pretrained), method)  # a fresh head is new, and transformers says so
    assert "classifier.dense.weight" in caplog.text and "MISSING" in caplog.text

    caplog.clear()
    capfd.readouterr()
    ours, our_tokenizer = load_trained(out)
    assert "MISSING" not in caplog.text and "newly initialized" not in caplog.text
    assert "warning" not in capfd.readouterr().err
    assert torch.equal(logits(ours, our_tokenizer), logits(model, tokenizer))  # and the head really is restored


def test_adapter_keeps_its_own_label_names_and_order(tiny_roberta_pretrained, tmp_path):
    method = MethodConfig(method="lora", rank=4)
    model, tokenizer = trained(tiny_roberta_pretrained, method)
    names = ["CONTRADICTION", "ENTAILMENT", "NEUTRAL"]
    base = model.get_base_model()
    base.config.id2label = dict(enumerate(names))
    base.config.label2id = {name: i for i, name in enumerate(names)}
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)

    meta = json.loads((out / "adaptlab_model.json").read_text())
    assert meta["id2label"] == {"0": "CONTRADICTION", "1": "ENTAILMENT", "2": "NEUTRAL"}
    assert meta["label2id"] == {"CONTRADICTION": 0, "ENTAILMENT": 1, "NEUTRAL": 2}
    reloaded, _ = load_trained(out)
    assert reloaded.get_base_model().config.id2label == dict(enumerate(names))
    assert reloaded.get_base_model().config.label2id == {name: i for i, name in enumerate(names)}


def test_a_preset_base_is_recorded_by_its_hub_id_not_its_cache_folder(tiny_roberta_pretrained, tmp_path,
                                                                       monkeypatch):
    from peft import PeftConfig

    from adaptlab.nli import models

    # "tiny" plays a preset whose weights sit in a cache folder, as minilm's do
    monkeypatch.setitem(models.PRESETS, "tiny", "example-org/tiny-roberta")
    real_resolve = models.resolve_model
    monkeypatch.setattr(models, "resolve_model",
                        lambda spec: str(tiny_roberta_pretrained) if spec == "tiny" else real_resolve(spec))
    method = MethodConfig(method="lora", rank=4)
    model, tokenizer = trained("tiny", method)
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)

    assert PeftConfig.from_pretrained(str(out)).base_model_name_or_path == "example-org/tiny-roberta"
    assert json.loads((out / "adaptlab_model.json").read_text())["base_model"] == "tiny"
    assert str(tiny_roberta_pretrained) not in (out / "adapter_config.json").read_text()
    reloaded, our_tokenizer = load_trained(out)  # the preset name finds the base again
    assert torch.equal(logits(reloaded, our_tokenizer), logits(model, tokenizer))


def test_a_local_base_is_recorded_by_its_absolute_path(tiny_roberta_pretrained, tmp_path, monkeypatch):
    from peft import PeftConfig

    monkeypatch.chdir(tiny_roberta_pretrained.parent)
    method = MethodConfig(method="lora", rank=4)
    model, tokenizer = trained(tiny_roberta_pretrained.name, method)  # a relative path
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)
    monkeypatch.chdir(tmp_path)
    assert PeftConfig.from_pretrained(str(out)).base_model_name_or_path == str(tiny_roberta_pretrained.resolve())
    reloaded, our_tokenizer = load_trained(out)  # found from another working directory
    assert torch.equal(logits(reloaded, our_tokenizer), logits(model, tokenizer))
