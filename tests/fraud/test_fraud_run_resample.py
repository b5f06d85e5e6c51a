"""`adaptlab fraud run --resampler ... --protocol ...` on small hand-made data: exact synthetic counts and
a clean guard under safe, LEAKY on every output under paper, one-line errors, the default run unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from adaptlab.cli import main
from adaptlab.fraud import analysis, evaluation, study
from adaptlab.fraud.config import FraudConfig
from adaptlab.fraud.data import FEATURES, LABEL, split_indices
from adaptlab.fraud.model import predict_proba, train_mlp

FAST = ["--epochs", "2", "--hidden", "8", "--quiet"]


@pytest.fixture(scope="module")
def small_csv(make_frame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resample-run") / "small.csv"
    make_frame(380, 20, seed=3).to_csv(path, index=False)
    return path


def _run(capsys, tmp_path, small_csv, *flags) -> Path:
    code = main(["fraud", "run", "--data", str(small_csv), "--output-dir", str(tmp_path / "runs"), *FAST, *flags])
    out = capsys.readouterr().out.strip()
    assert code == 0
    return Path(out.splitlines()[-1])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_safe_adasyn_adds_exactly_g_training_rows_and_leaves_val_test_untouched(small_csv, tmp_path, capsys):
    ratio = 0.75
    run = _run(capsys, tmp_path, small_csv, "--resampler", "adasyn", "--adasyn-k", "10",
               "--adasyn-ratio", str(ratio))
    frame = pd.read_csv(small_csv)
    split = split_indices(frame, "stratified", 42, 0.2, 0.25)
    train_y = frame[LABEL].to_numpy()[split.train]
    deficit = int((train_y == 0).sum() - (train_y == 1).sum())
    assert (deficit * ratio) % 1 != 0.5  # no rounding tie: G below is unambiguous
    expected_g = math.floor(deficit * ratio + 0.5)

    metrics = json.loads((run / "metrics.json").read_text())
    resampling = metrics["resampling"]
    assert metrics["leaky"] is False and "warning" not in metrics
    assert resampling["resampler"] == "adasyn" and resampling["protocol"] == "safe"
    assert (resampling["params"]["ratio"], resampling["params"]["k"], resampling["params"]["imb_threshold"]) == \
        (ratio, 10, 0.6)
    assert resampling["synthetic_rows"] == {"train": expected_g, "val": 0, "test": 0}
    assert resampling["train_rows_before"] == len(split.train)
    assert resampling["train_rows_after"] == len(split.train) + expected_g
    assert metrics["split"]["sizes"] == {"train": len(split.train) + expected_g, "val": len(split.val),
                                         "test": len(split.test)}
    assert metrics["split"]["frauds"]["train"] == int(train_y.sum()) + expected_g  # G synthetic frauds
    for name in ("val", "test"):
        guard = resampling["guard"][name]
        assert (guard["synthetic_rows"], guard["parent_rows"], guard["training_rows"], guard["leaky"]) == \
            (0, 0, 0, False)
        assert resampling["provenance"][name]["parents_of_training_synthetic_rows"] == 0
    assert resampling["provenance"]["train"]["synthetic_rows"] == expected_g

    report = (run / "report.md").read_text()
    assert f"added {expected_g:,} synthetic rows to the training split" in report
    assert "Validation and test stayed untouched" in report and "LEAKY" not in report
    assert json.loads((run / "model" / "model.json").read_text())["leaky"] is False
    assert main(["fraud", "score", str(run), str(small_csv), "--output", str(tmp_path / "s.csv"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_paper_run_is_marked_leaky_everywhere(small_csv, tmp_path, capsys, monkeypatch):
    titles = []

    def recording(function):
        def plot(*args, title, **kwargs):
            titles.append(title)
            return function(*args, title=title, **kwargs)
        return plot

    for module, name in ((analysis, "plot_bars"), (analysis, "plot_histograms"), (study, "plot_curves"),
                         (study, "plot_pr_curves"), (evaluation, "plot_confusion_grid")):
        monkeypatch.setattr(module, name, recording(getattr(module, name)))

    run = _run(capsys, tmp_path, small_csv, "--resampler", "adasyn", "--adasyn-k", "10", "--protocol", "paper")
    assert run.name.endswith("-fraud-LEAKY")
    # 3 analysis plots, 3 curves, 1 PR plot, 1 grid of the 6 confusion matrices (3 parts x 2 thresholds)
    assert len(titles) == 8 and all(t.startswith("LEAKY: ") for t in titles)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["leaky"] is True and metrics["warning"].startswith("LEAKY: ")
    resampling = metrics["resampling"]
    assert resampling["leaky"] is True and resampling["rows_seen_by_resampler"] == 400
    assert resampling["synthetic_rows"]["test"] > 0  # the paper protocol puts synthetic rows in test
    assert resampling["guard"]["test"]["leaky"] is True

    report = (run / "report.md").read_text().splitlines()
    headings = [line for line in report if line.startswith("#")]
    assert headings[0].startswith("# LEAKY: ") and len(headings) > 5
    assert all(line.lstrip("#").startswith(" LEAKY: ") for line in headings)
    results = report[report.index("## LEAKY: Results"):]
    table = [line for line in results[:results.index(next(l for l in results[1:] if l.startswith("#")))]
             if line.startswith("|") and not set(line) <= set("|-: ")][1:]  # data rows, header dropped
    assert len(table) == 7 and all(row.split("|")[1].strip().startswith("LEAKY: ") for row in table)

    meta = json.loads((run / "model" / "model.json").read_text())
    assert meta["leaky"] is True and meta["protocol"] == "paper" and meta["warning"] == metrics["warning"]
    assert main(["fraud", "score", str(run), str(small_csv), "--output", str(tmp_path / "s.csv"), "--quiet"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: LEAKY: ") and "\n" not in err


@pytest.mark.parametrize(("flags", "yaml_text", "expected"), [
    (["--protocol", "paper"], None, "protocol paper means resampling all rows before the split: it needs a resampler"),
    ([], "resampler: borderline\n", "resampler must be one of none"),
    ([], "resampler: adasyn\nprotocol: leaky\n", "protocol must be one of safe, paper"),
    (["--resampler", "adasyn", "--adasyn-k", "0"], None, "adasyn_k must be a positive integer"),
])
def test_bad_resampling_settings_are_one_line_errors(small_csv, tmp_path, capsys, flags, yaml_text, expected):
    config = []
    if yaml_text is not None:
        (tmp_path / "bad.yaml").write_text(yaml_text)
        config = ["--config", str(tmp_path / "bad.yaml")]
    code = main(["fraud", "run", *config, "--data", str(small_csv), "--output-dir", str(tmp_path / "runs"),
                 "--quiet", *flags])
    assert code == 2 and expected in _one_line_error(capsys)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_unknown_resampler_flag_is_a_usage_error_naming_the_choices(small_csv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fraud", "run", "--data", str(small_csv), "--output-dir", str(tmp_path / "runs"), "--resampler", "adasin"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice: 'adasin'" in err and "'none', 'random-over', 'smote', 'adasyn', 'imblearn-adasyn'" in err
    assert not (tmp_path / "runs").exists()


def test_default_run_is_plain_training_and_ignores_resampler_parameters(small_csv, tmp_path, capsys):
    plain = _run(capsys, tmp_path, small_csv)
    tuned = _run(capsys, tmp_path, small_csv, "--adasyn-k", "7", "--adasyn-ratio", "0.3")
    first, second = (json.loads((run / "metrics.json").read_text()) for run in (plain, tuned))
    assert first["metrics"] == second["metrics"] and first["resampling"] == second["resampling"] == \
        {"resampler": "none", "protocol": "safe", "leaky": False}
    assert "LEAKY" not in plain.name and "## Resampling" not in (plain / "report.md").read_text()

    # the same model trained directly on the original split gives the same test AUPRC
    frame = pd.read_csv(small_csv)
    split = split_indices(frame, "stratified", 42, 0.2, 0.25)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    config = FraudConfig(epochs=2, hidden_sizes=[8]).training()
    result = train_mlp(X[split.train], y[split.train], X[split.val], y[split.val], config, progress=False)
    scores = predict_proba(result.model, result.scaler, X[split.test])
    assert first["metrics"]["test"]["at_0.5"]["average_precision"] == pytest.approx(
        average_precision_score(y[split.test], scores), abs=1e-12)
    assert first["split"]["sizes"] == split.sizes()
    assert np.isclose(first["never_fraud_accuracy"]["test"], 1 - y[split.test].mean())
