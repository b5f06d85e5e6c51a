"""`adaptlab fraud analyze | run | score` end to end on a slice of the real data (all 492 frauds +
3,000 normal transactions, 2 epochs). Skips cleanly when the data is unreachable."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from adaptlab.cli import main
from adaptlab.fraud.data import FEATURES, LABEL, load_creditcard, split_indices

pytestmark = pytest.mark.slow  # real data (skips cleanly when the registry mirror is unreachable)

N_FRAUD, N_NORMAL = 492, 3000


def _main(argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def run_dir(real_slice_csv, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    code, out = _main(["fraud", "run", "--data", str(real_slice_csv), "--epochs", "2", "--output-dir", str(runs),
                       "--name", "e2e", "--quiet"])
    assert code == 0
    assert out.count("\n") == 1  # --quiet: only the folder
    path = Path(out.strip())
    assert path.parent == runs and path.name.endswith("-e2e")
    assert [p.name for p in runs.iterdir()] == [path.name]  # nothing incomplete left beside it
    return path


@pytest.fixture(scope="module")
def metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_run_folder_has_everything(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "metrics.json", "report.md", "report.html", "model", "class_counts.png",
            "amount_by_class.png", "time_by_class.png", "curve_loss.png", "curve_accuracy.png", "curve_ap.png",
            "pr_curves.png"} <= names
    assert "confusion_matrices.png" in names  # one grid: 3 splits x 2 thresholds
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["epochs"] == 2 and config["split"] == "stratified" and config["seed"] == 42
    html = (run_dir / "report.html").read_text()
    pngs = [n for n in names if n.endswith(".png")]
    assert html.count("data:image/png;base64,") == len(pngs) and ".png\"" not in html  # self-contained


def test_counts_split_and_accuracy_warning(metrics, run_dir):
    classes = metrics["classes"]
    assert (classes["normal"], classes["fraud"], classes["rows"]) == (N_NORMAL, N_FRAUD, N_NORMAL + N_FRAUD)
    assert classes["never_fraud_accuracy"] == pytest.approx(N_NORMAL / (N_NORMAL + N_FRAUD))
    n = N_NORMAL + N_FRAUD
    test = math.ceil(0.2 * n)
    val = math.ceil(0.25 * (n - test))
    assert metrics["split"]["sizes"] == {"train": n - test - val, "val": val, "test": test}
    for part, size in metrics["split"]["sizes"].items():  # stratified: each part keeps the fraud rate
        assert abs(metrics["split"]["frauds"][part] - N_FRAUD * size / n) <= 1
    report = (run_dir / "report.md").read_text()
    assert f"right {100 * N_NORMAL / n:.2f}% of the time" in report
    assert "Why accuracy is misleading here" in report
    test_frauds = metrics["split"]["frauds"]["test"]
    baseline_row = next(line for line in report.splitlines() if "| never fraud |" in line).split(" | ")
    assert baseline_row[2] == f"{1 - test_frauds / metrics['split']['sizes']['test']:.4f}"  # accuracy
    assert baseline_row[-3:] == ["0", str(test_frauds), f"{metrics['split']['sizes']['test'] - test_frauds:,} |"]
    assert len(metrics["training"]["history"]) == 2


def test_score_round_trip_reproduces_the_test_metrics(run_dir, metrics, real_slice_csv, tmp_path):
    out = tmp_path / "scores.csv"
    code, printed = _main(["fraud", "score", str(run_dir), str(real_slice_csv), "--output", str(out)])
    assert code == 0 and f"to {out}" in printed
    scores = pd.read_csv(out)
    frame = load_creditcard(real_slice_csv)
    assert list(scores.columns) == ["row", *frame.columns, "probability", "flag"] and len(scores) == len(frame)
    assert scores["row"].tolist() == list(range(len(frame)))
    # input kept as is (values exact; a float 1.0 is written "1", so a dtype may read back as int)
    pd.testing.assert_frame_equal(scores[list(frame.columns)], pd.read_csv(real_slice_csv), check_dtype=False,
                                  check_exact=True)
    test_rows = split_indices(frame, "stratified", seed=42).test
    y, p = frame[LABEL].to_numpy()[test_rows], scores["probability"].to_numpy()[test_rows]
    threshold = json.loads((run_dir / "model" / "model.json").read_text())["threshold"]
    assert threshold == metrics["val_f1_threshold"]
    np.testing.assert_array_equal(scores["flag"], (scores["probability"] >= threshold).astype(int))
    saved = metrics["metrics"]["test"]["at_val_threshold"]
    assert saved["average_precision"] == pytest.approx(average_precision_score(y, p), abs=1e-6)
    assert saved["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    flags = scores["flag"].to_numpy()[test_rows]
    assert saved["precision"] == pytest.approx(precision_score(y, flags, zero_division=0))
    assert saved["recall"] == pytest.approx(recall_score(y, flags))
    amount = frame["Amount"].to_numpy()[test_rows]
    assert saved["amount_caught_share"] == pytest.approx(amount[(y == 1) & (flags == 1)].sum() / amount[y == 1].sum())


def test_score_prints_to_stdout_without_class_column(run_dir, real_slice_csv, tmp_path):
    features_only = tmp_path / "new.parquet"
    pd.read_csv(real_slice_csv, nrows=5)[FEATURES].to_parquet(features_only)
    code, printed = _main(["fraud", "score", str(run_dir), str(features_only)])
    assert code == 0
    lines = printed.strip().splitlines()
    assert lines[0] == ",".join(["row", *FEATURES, "probability", "flag"])
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3", "4"]


def test_analyze_writes_counts_and_plots(real_slice_csv, tmp_path):
    code, out = _main(["fraud", "analyze", "--data", str(real_slice_csv), "--output-dir", str(tmp_path), "--quiet"])
    assert code == 0
    folder = Path(out.strip())
    summary = json.loads((folder / "metrics.json").read_text())["classes"]
    assert (summary["normal"], summary["fraud"]) == (N_NORMAL, N_FRAUD)
    assert summary["imbalance_ratio"] == pytest.approx(N_NORMAL / N_FRAUD)
    assert {"class_counts.png", "amount_by_class.png", "time_by_class.png", "report.md", "report.html"} <= {
        p.name for p in folder.iterdir()}
