"""Classification metrics, backed by scikit-learn, and the validation-chosen threshold.

Binary metrics take *scores* (probabilities of the positive class) and a threshold, so one set of
scores gives both the 0.5 view and the tuned view. Thresholds are chosen on validation only.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)


def binary_metrics(y_true, scores, threshold: float = 0.5, amounts=None) -> dict:
    """Accuracy, precision, recall, F1, AUPRC, ROC-AUC and the confusion matrix at ``threshold``.

    ``amounts`` (e.g. transaction amounts) adds ``amount_caught_share``: the share of the positive
    class's total amount that the predictions flag. Ranking metrics are ``None`` when only one class
    is present (they are undefined there).
    """
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    y_pred = (scores >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    result = {
        "threshold": float(threshold),
        "n": int(len(y_true)),
        "positives": int(y_true.sum()),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "average_precision": float(average_precision_score(y_true, scores)) if both_classes else None,
        "roc_auc": float(roc_auc_score(y_true, scores)) if both_classes else None,
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }
    if amounts is not None:
        amounts = np.asarray(amounts, dtype=float)
        fraud_total = amounts[y_true == 1].sum()
        caught = amounts[(y_true == 1) & (y_pred == 1)].sum()
        result["amount_caught_share"] = float(caught / fraud_total) if fraud_total > 0 else None
    return result


def best_f1_threshold(y_true, scores) -> float:
    """The score threshold that maximises F1 on (validation) data; 0.5 if there are no positives.

    Candidates are the distinct scores themselves (from the PR curve), so the result reproduces
    exactly the best F1 achievable by any threshold on this data.
    """
    y_true = np.asarray(y_true).astype(int)
    if y_true.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y_true, np.asarray(scores, dtype=float))
    # precision/recall have one more entry than thresholds (the final (1, 0) point): drop it.
    p, r = precision[:-1], recall[:-1]
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return float(thresholds[int(np.argmax(f1))])


def multiclass_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(labels)
        },
        "macro_f1": float(np.mean(f1)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def resampled_average_precision(y_true, scores, resamples) -> np.ndarray:
    """Average precision of many resamples of one scored set: ``resamples[b]`` holds the row positions
    drawn (with repeats) into resample ``b``. Equals ``average_precision_score(y[idx], scores[idx])`` for
    each resample ``idx`` (sklearn's step-wise definition, ties grouped), shape ``(len(resamples),)``; every
    resample must draw a positive (a stratified bootstrap always does).

    Hand-written because a bootstrap calls sklearn once per resample, each call re-sorting the scores:
    200 resamples of a 57k-row test split took 3.4 s; sorting once and counting each resample's draws in
    that order gives the same numbers (to float rounding) about 20x faster.
    """
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    sorted_scores, positive = scores[order], y_true[order]
    # The PR curve has a point after each group of tied scores; only groups holding a positive add recall,
    # so precision is needed at the ends of those groups alone.
    group_end = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    group_of = np.repeat(np.arange(len(group_end)), np.diff(group_end, prepend=-1))
    ends = group_end[np.unique(group_of[positive])]
    out = np.empty(len(resamples))
    for b, drawn in enumerate(resamples):
        counts = np.bincount(rank[np.asarray(drawn)], minlength=len(order))
        flagged = np.cumsum(counts)[ends]
        true_positives = np.cumsum(counts * positive)[ends]
        # a group drawn zero times adds no recall, so its (undefined) precision never counts
        precision = np.divide(true_positives, flagged, out=np.ones(len(ends)), where=flagged > 0)
        out[b] = np.sum(np.diff(true_positives, prepend=0) / true_positives[-1] * precision)
    return out
