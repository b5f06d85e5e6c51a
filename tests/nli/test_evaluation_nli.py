"""nli/evaluation.py: per-split and per-genre scores against hand counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

LABELS = ["entailment", "neutral", "contradiction"]


def test_split_metrics_per_genre_against_hand_counts():
    from adaptlab.nli.evaluation import split_metrics

    frame = pd.DataFrame({"label": [0, 1, 2, 0, 1, 2],
                          "genre": ["fiction", "fiction", "travel", "travel", "travel", None]})
    probabilities = np.eye(3)[[0, 2, 2, 1, 1, 2]]  # predictions 0,2,2,1,1,2: rows 0,2,4,5 right
    metrics = split_metrics(frame, probabilities, LABELS)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_genre"] == {"fiction": {"n": 2, "accuracy": 0.5}, "travel": {"n": 3, "accuracy": 2 / 3},
                                    "unknown": {"n": 1, "accuracy": 1.0}}
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert "per_genre" not in split_metrics(frame.drop(columns="genre"), probabilities, LABELS)


def test_every_split_is_one_panel_of_one_confusion_grid(tmp_path):
    import matplotlib.image

    from adaptlab.core.report import Report
    from adaptlab.nli.evaluation import add_metrics_to_report, evaluate_splits

    evals = {"validation_matched": pd.DataFrame({"label": [0, 1, 2, 2]}),
             "validation_mismatched": pd.DataFrame({"label": [1, 1, 0]})}
    probabilities = {"validation_matched": np.eye(3)[[0, 1, 1, 2]], "validation_mismatched": np.eye(3)[[1, 0, 0]]}
    metrics, image = evaluate_splits(evals, probabilities, LABELS, tmp_path)
    assert image == tmp_path / "confusion.png" and [p.name for p in tmp_path.glob("*.png")] == ["confusion.png"]
    assert metrics["validation_matched"]["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert metrics["validation_mismatched"]["accuracy"] == pytest.approx(2 / 3)  # rows 0 and 2 right
    height, width = matplotlib.image.imread(image).shape[:2]
    assert width > height  # two panels side by side
    report = Report("t")
    add_metrics_to_report(report, metrics, image, LABELS)
    assert [block for block in report.blocks if block[0] == "image"] == [
        ("image", (image, "Rows: true class, columns: predicted; colour: share of the true class, the same scale "
                          "in every panel"))]
