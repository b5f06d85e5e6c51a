"""The study on small hand-made data: config precedence, atomic run folders, one-line CLI errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from adaptlab.cli import main
from adaptlab.core.config import load_config
from adaptlab.fraud import study
from adaptlab.fraud.config import REFERENCE_CONFIG, FraudConfig


@pytest.fixture
def small_csv(make_frame, tmp_path) -> Path:
    path = tmp_path / "small.csv"
    make_frame(380, 20, seed=2).to_csv(path, index=False)
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_reference_yaml_is_the_default_config():
    assert load_config(FraudConfig, REFERENCE_CONFIG) == FraudConfig()
    assert yaml.safe_load(REFERENCE_CONFIG.read_text()).keys() == FraudConfig().__dict__.keys()


def test_flags_override_config_file_which_overrides_defaults(small_csv, tmp_path, capsys):
    config_file = tmp_path / "mine.yaml"
    config_file.write_text("epochs: 2\nseed: 5\nhidden_sizes: [8]\nname: from-file\n")
    code = main(["fraud", "run", "--config", str(config_file), "--data", str(small_csv), "--seed", "9",
                 "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 0
    run = Path(capsys.readouterr().out.strip())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["epochs"], saved["seed"], saved["hidden_sizes"], saved["name"]) == (2, 9, [8], "from-file")
    assert saved["batch_size"] == FraudConfig().batch_size and saved["data"] == str(small_csv)
    assert run.name.endswith("-from-file") and run.parent == tmp_path / "runs"


@pytest.mark.parametrize(("content", "expected"), [
    ("epochs: 2\nlearning_rate: 0.1\n", "unknown config key(s) learning_rate"),
    ("dropout: 1.5\n", "dropout must be a number in [0, 1)"),
    ("epochs: 2\nhidden_sizes: 64\n", "config key hidden_sizes: expected a list of integers, got 64"),
    ("split: random\n", "split must be one of stratified, time"),
    ("pos_weight: lots\n", "pos_weight must be empty, 'balanced' or a positive number"),
])
def test_invalid_config_is_a_one_line_error(small_csv, tmp_path, capsys, content, expected):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(content)
    code = main(["fraud", "run", "--config", str(config_file), "--data", str(small_csv),
                 "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 2 and expected in _one_line_error(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("failing", ["train_mlp", "save_model"])
def test_a_run_that_raises_leaves_no_folder(small_csv, tmp_path, monkeypatch, failing):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(study, failing, explode)  # save_model fails after the plots were already written
    config = FraudConfig(data=str(small_csv), epochs=1)
    with pytest.raises(RuntimeError, match="boom"):
        study.run_study(config, tmp_path / "runs", quiet=True)
    assert not (tmp_path / "runs").exists()  # the run created the output folder, so it goes too
    (tmp_path / "runs").mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        study.run_study(config, tmp_path / "runs", quiet=True)
    assert list((tmp_path / "runs").iterdir()) == []  # a folder that was there stays


def test_bad_data_file_fails_before_any_folder(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("Time,V1\n0,1\n")
    code = main(["fraud", "run", "--data", str(bad), "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 2 and "missing column(s)" in _one_line_error(capsys)
    assert not (tmp_path / "runs").exists()


def test_score_errors_are_one_line(small_csv, tmp_path, capsys):
    assert main(["fraud", "score", str(tmp_path / "nope"), str(small_csv)]) == 2
    assert "run folder not found" in _one_line_error(capsys)
    assert main(["fraud", "score", str(tmp_path), str(small_csv)]) == 2
    assert "is not a saved fraud model" in _one_line_error(capsys)


def test_run_prints_its_headline_then_the_run_folder_last(small_csv, tmp_path, capsys):
    assert main(["fraud", "run", "--data", str(small_csv), "--epochs", "2", "--output_dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("run folder: ") and lines[-2].startswith("test AUPRC ")
    run = Path(lines[-1].removeprefix("run folder: "))
    assert run.parent == tmp_path and (run / "report.html").is_file()


def test_the_saved_config_is_the_resolved_config(small_csv, tmp_path, capsys):
    config_file = tmp_path / "few.yaml"
    config_file.write_text("epochs: 2\nlr: 1e-3\n")  # a partial file: every other key from the defaults
    assert main(["fraud", "run", "--config", str(config_file), "--data", str(small_csv), "--output-dir",
                 str(tmp_path / "runs"), "--quiet"]) == 0
    run = Path(capsys.readouterr().out.strip())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert list(saved) == [f.name for f in dataclasses.fields(FraudConfig)]  # every setting, none left out
    assert saved["lr"] == 0.001 and isinstance(saved["lr"], float)  # the YAML text "1e-3" resolved to a number
    assert load_config(FraudConfig, run / "config.yaml") == FraudConfig(data=str(small_csv), epochs=2)


def test_analyze_prints_its_findings_before_the_run_folder(make_frame, tmp_path, capsys):
    frame = make_frame(950, 50, seed=7)
    frame.to_csv(tmp_path / "data.csv", index=False)
    assert main(["fraud", "analyze", "--data", str(tmp_path / "data.csv"), "--output-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    fraud_amount = frame.loc[frame["Class"] == 1, "Amount"].sum()
    assert out == [
        "rows: 1,000 (950 normal, 50 fraud)",
        "fraud share: 5.000%; imbalance ratio: 19.0 normal transactions per fraud",
        "never-fraud accuracy: 95.00% (while catching no fraud: judge models by precision, recall and AUPRC)",
        f"fraudulent amount: {fraud_amount:,.2f} EUR",
        f"run folder: {next((tmp_path / 'runs').iterdir())}",
    ]
    assert main(["fraud", "analyze", "--data", str(tmp_path / "data.csv"), "--output-dir", str(tmp_path / "q"),
                 "--quiet"]) == 0
    assert capsys.readouterr().out == f"{next((tmp_path / 'q').iterdir())}\n"  # --quiet: the bare path only
