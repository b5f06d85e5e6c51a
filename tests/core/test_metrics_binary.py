"""Binary metrics and the validation threshold against scikit-learn and hand counts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from adaptlab.core.metrics import best_f1_threshold, binary_metrics

# 10 hand-made transactions: 3 frauds (rows 1, 4, 8)
Y = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0])
S = np.array([0.10, 0.90, 0.40, 0.55, 0.35, 0.05, 0.20, 0.60, 0.70, 0.30])
AMOUNT = np.array([5.0, 100.0, 7.0, 9.0, 50.0, 1.0, 2.0, 3.0, 10.0, 4.0])


def test_counts_at_0_5_by_hand():
    m = binary_metrics(Y, S, 0.5, AMOUNT)
    # flagged (>= 0.5): rows 1, 3, 7, 8 -> TP rows 1, 8; FP rows 3, 7; FN row 4
    assert m["confusion_matrix"] == [[5, 2], [1, 2]]
    assert (m["n"], m["positives"]) == (10, 3)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["amount_caught_share"] == pytest.approx(110 / 160)  # rows 1 and 8 out of 100 + 50 + 10


def test_ranking_metrics_match_sklearn_and_ignore_threshold():
    low, high = binary_metrics(Y, S, 0.1), binary_metrics(Y, S, 0.95)
    for m in (low, high):
        assert m["average_precision"] == pytest.approx(average_precision_score(Y, S))
        assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, S))
    assert high["confusion_matrix"] == [[7, 0], [3, 0]] and high["precision"] == 0.0  # nothing flagged


def test_single_class_leaves_ranking_metrics_undefined():
    m = binary_metrics(np.zeros(4), [0.1, 0.2, 0.7, 0.4])
    assert m["average_precision"] is None and m["roc_auc"] is None
    assert m["confusion_matrix"] == [[3, 1], [0, 0]]


def test_best_f1_threshold_beats_every_other_threshold():
    threshold = best_f1_threshold(Y, S)
    best = f1_score(Y, S >= threshold)
    for candidate in np.unique(np.concatenate([S, [0.0, 0.5, 1.0]])):
        assert f1_score(Y, S >= candidate, zero_division=0) <= best + 1e-12
    # by hand: >= 0.70 flags rows 1 and 8 (P 1, R 2/3, F1 0.8); >= 0.35 catches all 3 but with 3 FP (F1 2/3)
    assert threshold == 0.70 and best == pytest.approx(0.8)
    assert best_f1_threshold(np.zeros(3), [0.2, 0.4, 0.9]) == 0.5
