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
