"""Fraud settings: one dataclass family validated once, flags generated from its fields, the reference
configuration shown in --help and printed by `adaptlab fraud config`, every value range checked."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from adaptlab.cli import build_parser, main
from adaptlab.core.config import load_config
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.config import REFERENCE_CONFIG, CompareConfig, FraudConfig, FraudSettings
from adaptlab.fraud.methods import DEFAULT_METHODS, METHODS


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_compare_extends_the_shared_settings_instead_of_repeating_them():
    shared = {f.name for f in dataclasses.fields(FraudSettings)}
    run = {f.name for f in dataclasses.fields(FraudConfig)}
    compare = {f.name for f in dataclasses.fields(CompareConfig)}
    assert issubclass(CompareConfig, FraudSettings) and issubclass(FraudConfig, FraudSettings)
    assert run - shared == {"seed", "pos_weight", "resampler"}
    assert compare - shared == {"seeds", "methods", "lightgbm_jobs", "workers", "bootstrap"}
    # compare overrides a few defaults of the shared settings, each still documented
    assert (CompareConfig().epochs, CompareConfig().patience, CompareConfig().name) == (20, 4, "fraud-compare")
    for cls in (FraudConfig, CompareConfig):
        assert all(f.metadata.get("help") for f in dataclasses.fields(cls)), cls
    assert CompareConfig().methods == list(DEFAULT_METHODS) and set(DEFAULT_METHODS) <= set(METHODS)


def test_a_shared_rule_applies_to_both_commands():
    for cls in (FraudConfig, CompareConfig):
        with pytest.raises(AdaptlabError, match=r"invalid config: dropout must be a number in \[0, 1\), not 1.5"):
            load_config(cls, None, {"dropout": 1.5})


def test_every_method_name_in_the_help_comes_from_the_one_table(capsys):
    with pytest.raises(SystemExit):
        main(["fraud", "compare", "--help"])
    help_text = "".join(capsys.readouterr().out.split())  # argparse wraps lines at hyphens too
    assert f"from:{','.join(METHODS)}" in help_text


def test_run_help_shows_the_reference_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["fraud", "run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    reference = yaml.safe_load(REFERENCE_CONFIG.read_text())
    assert f"(default: {reference['epochs']})" in help_text and "--num_train_epochs" in help_text
    assert f"(default: {','.join(map(str, reference['hidden_sizes']))})" in help_text
    assert "--output-dir DIR, --output_dir DIR" in help_text and "--runs-dir" not in help_text


def test_trainer_spellings_and_the_old_runs_dir_set_the_same_settings():
    parser = build_parser()
    hf = parser.parse_args(["fraud", "run", "--learning_rate", "0.01", "--num_train_epochs", "3",
                            "--per_device_train_batch_size", "64", "--output_dir", "out"])
    ours = parser.parse_args(["fraud", "run", "--lr", "0.01", "--epochs", "3", "--batch-size", "64",
                              "--runs-dir", "out"])
    for args in (hf, ours):
        assert (args.lr, args.epochs, args.batch_size, str(args.output_dir)) == (0.01, 3, 64, "out")
    assert not hasattr(parser.parse_args(["fraud", "run"]), "lr")  # not given: the YAML's value stays


def test_fraud_config_prints_commented_yaml_that_loads_back_to_the_reference(tmp_path, capsys):
    assert main(["fraud", "config"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "mine.yaml").write_text(text)
    assert load_config(FraudConfig, tmp_path / "mine.yaml") == load_config(FraudConfig, REFERENCE_CONFIG)
    lines = text.splitlines()
    for field in dataclasses.fields(FraudConfig):  # each key preceded by its help as a comment
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{field.name}:"))
        assert lines[at - 1].startswith("# "), field.name
    assert main(["fraud", "config", "--compare"]) == 0
    (tmp_path / "compare.yaml").write_text(capsys.readouterr().out)
    assert load_config(CompareConfig, tmp_path / "compare.yaml") == CompareConfig()


@pytest.mark.parametrize("key, value", [("lr", float("inf")), ("lr", float("nan")),
                                        ("pos_weight", float("inf")), ("pos_weight", float("nan"))])
def test_non_finite_lr_or_pos_weight_is_refused(key, value):
    with pytest.raises(AdaptlabError, match=f"{key} must be"):
        load_config(FraudConfig, None, {key: value})


def test_cli_refuses_infinite_pos_weight(capsys):
    assert main(["fraud", "run", "--pos-weight", "inf"]) == 2
    assert "pos_weight must be empty, 'balanced' or a positive number, not inf" in _one_line_error(capsys)


@pytest.mark.parametrize("overrides, message", [
    ({"seed": -1}, r"seed must be an integer from 0 to 2\*\*32 - 1, not -1"),
    ({"seed": 2**32}, r"seed must be an integer from 0 to 2\*\*32 - 1, not 4294967296"),
    ({"threads": 100_000}, r"threads must be an integer from 1 to 1024, not 100000"),
    ({"threads": 0}, r"threads must be an integer from 1 to 1024, not 0"),
])
def test_seed_and_threads_out_of_range_are_refused(overrides, message):
    with pytest.raises(AdaptlabError, match=message):
        load_config(FraudConfig, None, overrides)


def test_seed_and_threads_at_the_limits_are_accepted():
    config = load_config(FraudConfig, None, {"seed": 2**32 - 1, "threads": 1024})
    assert (config.seed, config.threads) == (2**32 - 1, 1024)


def test_compare_refuses_a_negative_seed(capsys):
    assert main(["fraud", "compare", "--seeds", "1,-1"]) == 2
    assert "seeds must be a non-empty list of integers from 0 to 2**32 - 1" in capsys.readouterr().err


def test_hidden_sizes_flag_needs_positive_integers(capsys):
    assert main(["fraud", "run", "--hidden", "64,0"]) == 2  # parses, then validation refuses it
    assert "hidden_sizes must be a non-empty list of positive integers, not [64, 0]" in _one_line_error(capsys)
    with pytest.raises(SystemExit) as exit_info:  # not integers at all: argparse's usage error
        main(["fraud", "run", "--hidden-sizes", "64,x"])
    assert exit_info.value.code == 2
    assert "expected a list of integers, got '64,x'" in capsys.readouterr().err
