"""Metrics per split and the report pieces shared by ``adaptlab fraud run`` and ``fraud compare``.

One function evaluates scored parts at both decision thresholds, one turns a metrics dict into report
table columns, one writes confusion-matrix images: both commands call these, so their numbers and
tables can never drift apart.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from adaptlab.core.metrics import binary_metrics
from adaptlab.core.plots import plot_confusion
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder

RULES = ("at_0.5", "at_val_threshold")  # the two decision thresholds every fraud evaluation reports


def evaluate_parts(parts: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float) -> dict:
    """``{part: {"at_0.5": metrics, "at_val_threshold": metrics}}``.

    ``parts`` maps a part name to ``(y_true, scores, amounts)``: labels, fraud probabilities and the
    transaction amounts in EUR (for the share of fraudulent amount caught). ``threshold`` is the
    validation-chosen threshold; metrics come from :func:`adaptlab.core.metrics.binary_metrics`.
    """
    return {
        name: {
            "at_0.5": binary_metrics(y, scores, 0.5, amounts),
            "at_val_threshold": binary_metrics(y, scores, threshold, amounts),
        }
        for name, (y, scores, amounts) in parts.items()
    }


def metrics_row(m: dict) -> dict:
    """The report-table columns of one :func:`binary_metrics` result (shares as fractions, counts as ints)."""
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    return {"accuracy": m["accuracy"], "precision": m["precision"], "recall": m["recall"], "F1": m["f1"],
            "AUPRC": m["average_precision"], "ROC-AUC": m["roc_auc"],
            "fraud amount caught": m.get("amount_caught_share"), "TP": tp, "FP": fp, "FN": fn, "TN": tn}


def confusion_images(run: RunFolder, report: Report, matrices: Mapping[str, dict],
                     title: Callable[[str, dict], str]) -> list:
    """One confusion-matrix PNG per entry of ``matrices`` (file stem -> binary_metrics result), each added
    to ``report`` with ``title(stem, metrics)`` as plot title and caption; returns the paths."""
    paths = []
    for stem, m in matrices.items():
        path = run.file(f"confusion_{stem}.png")
        text = title(stem, m)
        plot_confusion(m["confusion_matrix"], ["normal", "fraud"], path, title=text)
        report.image(path, f"Confusion matrix: {text}")
        paths.append(path)
    return paths
