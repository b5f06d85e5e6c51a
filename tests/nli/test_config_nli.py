"""nli/config.py: the settings family, its computed defaults written out, and its one-line checks."""

from __future__ import annotations

import dataclasses

import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.defaults import default_lr
from adaptlab.nli.config import (EVAL_CAP_FLOOR, METHODS, NLICompareConfig, NLIEvaluateConfig,
                                 NLIModelConfig, NLIPredictConfig, NLIRunConfig)


@pytest.mark.parametrize("cls", [NLIModelConfig, NLIEvaluateConfig, NLIRunConfig, NLICompareConfig, NLIPredictConfig])
def test_every_field_documents_itself(cls):
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


def test_a_run_extends_the_model_and_data_settings_instead_of_repeating_them():
    run = {f.name for f in dataclasses.fields(NLIRunConfig)}
    assert {f.name for f in dataclasses.fields(NLIModelConfig)} <= run
    assert {"data", "eval_split", "max_eval_samples", "output_dir", "quiet"} <= run
    assert {f.name for f in dataclasses.fields(NLICompareConfig)} - run == {"methods", "sweep", "learning_curve"}


@pytest.mark.parametrize("method", METHODS)
def test_resolved_writes_out_every_computed_default(method):
    resolved = NLIRunConfig(method=method, rank=8).resolved()
    assert resolved.lr == default_lr("roberta-large", method) and resolved.alpha == 16 and type(resolved.alpha) is int
    assert resolved.max_eval_samples == 0  # no training subset: every eval pair
    assert NLIRunConfig(method=method, lr=1e-3, alpha=12.5).resolved().lr == 1e-3
    assert NLIRunConfig(alpha=12.5).resolved().alpha == 12.5


@pytest.mark.parametrize("max_train, max_eval, cap", [
    (None, None, 0), (500, None, EVAL_CAP_FLOOR), (3000, None, 3000), (3000, 0, 0), (3000, 100, 100),
])
def test_eval_splits_are_capped_when_training_on_a_subset(max_train, max_eval, cap):
    config = NLIRunConfig(max_train_samples=max_train, max_eval_samples=max_eval)
    assert config.eval_cap() == cap and config.resolved().max_eval_samples == cap


def test_compare_learning_rates_one_for_all_or_one_per_method():
    assert NLICompareConfig(lr=5e-4).per_method_lrs() == {"lora": 5e-4, "full": 5e-4, "partial": 5e-4}
    assert NLICompareConfig(lr="lora=2e-3,full=1e-4").per_method_lrs() == {
        "lora": 2e-3, "full": 1e-4, "partial": default_lr("roberta-large", "partial")}
    assert NLICompareConfig(methods="lora", lr="full=1e-4").per_method_lrs() == {"full": 1e-4, "lora": 3e-4}
    run = NLICompareConfig(lr="lora=2e-3", rank=4, max_train_samples=3000).run_config()
    assert type(run) is NLIRunConfig and run.lr is None and (run.alpha, run.max_eval_samples) == (8, 3000)
    with pytest.raises(AdaptlabError, match="'lora=fast' is not a number"):
        NLICompareConfig(lr="lora=fast").validate()


@pytest.mark.parametrize("changes, message", [
    (dict(method="bogus"), "unknown method 'bogus'"),
    (dict(rank=0), "LoRA rank must be a positive integer"),
    (dict(batch_size=True), "batch_size must be at least 1"),
    (dict(max_eval_samples=-1), "max_eval_samples must be a whole number of pairs >= 0"),
    (dict(heldout_fraction=1.0), "heldout_fraction must be between 0 and 1"),
    (dict(warmup_ratio=1.0), "warmup_ratio must be in [0, 1)"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(mixed_precision="fp8"), "mixed_precision must be one of"),
])
def test_invalid_settings_are_one_line_errors(changes, message):
    with pytest.raises(AdaptlabError) as info:
        NLIRunConfig(**changes).validate()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_evaluate_and_predict_checks():
    with pytest.raises(AdaptlabError, match="heldout_fraction"):
        NLIEvaluateConfig(heldout_fraction=0.0).validate()
    NLIEvaluateConfig().validate()  # no held-out fraction: score every pair
    with pytest.raises(AdaptlabError, match="a pair needs both --premise and --hypothesis"):
        NLIPredictConfig(premise="A dog runs.").validate()
    with pytest.raises(AdaptlabError, match="give one of --text .*, or --file$"):
        NLIPredictConfig().validate()
    with pytest.raises(AdaptlabError, match="got --text and --premise/--hypothesis"):
        NLIPredictConfig(text="good", premise="a", hypothesis="b").validate()
    NLIPredictConfig(text="A fine film.").validate()
    with pytest.raises(AdaptlabError, match="--output needs --file"):
        NLIPredictConfig(premise="a", hypothesis="b", output="x.csv").validate()
