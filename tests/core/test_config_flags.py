"""Flags generated from dataclass fields: one definition per setting, Trainer spellings, given-only overrides."""

import argparse
from dataclasses import dataclass, field

import pytest

from adaptlab.core.config import add_config_flags, config_overrides, load_config


@dataclass
class Settings:
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate", "flags": ["--learning_rate"]})
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 32], metadata={"help": "hidden layer sizes"})
    top_layers: int | None = field(default=None, metadata={"help": "top layers"})
    quiet: bool = field(default=False, metadata={"help": "no progress output"})
    split: str = field(default="stratified", metadata={"help": "how to split", "choices": ["stratified", "time"]})
    output_dir: str = field(default="runs", metadata={"help": "where run folders go",
                                                      "hidden_flags": ["--runs-dir"]})
    internal: int = field(default=3, metadata={"cli": False})


def _parser(**kwargs):
    parser = argparse.ArgumentParser(prog="t")
    add_config_flags(parser, Settings, **kwargs)
    return parser


def test_only_given_flags_override_and_values_are_typed():
    args = _parser().parse_args(["--learning_rate", "2e-5", "--hidden-sizes", "8,4", "--quiet", "--runs-dir", "r"])
    overrides = config_overrides(args, Settings)
    assert overrides == {"lr": 2e-5, "hidden_sizes": [8, 4], "quiet": True, "output_dir": "r"}
    config = load_config(Settings, None, overrides)
    assert (config.lr, config.hidden_sizes, config.top_layers, config.split) == (2e-5, [8, 4], None, "stratified")
    assert config_overrides(_parser().parse_args([]), Settings) == {}


def test_flags_override_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.5\nsplit: time\n")
    args = _parser().parse_args(["--lr", "0.25"])
    config = load_config(Settings, path, config_overrides(args, Settings))
    assert (config.lr, config.split) == (0.25, "time")


@pytest.mark.parametrize("argv", [["--lr", "abc"], ["--hidden-sizes", "a,b"], ["--split", "random"],
                                  ["--top-layers", "2.5"], ["--internal", "4"]])
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_shows_defaults_and_hides_old_spellings():
    text = _parser(defaults={"lr": 0.01}).format_help()
    assert "--learning_rate" in text and "(default: 0.01)" in text and "(default: 64,32)" in text
    assert "--runs-dir" not in text and "--internal" not in text
