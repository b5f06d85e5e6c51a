"""Metrics per split and the report pieces shared by ``adaptlab fraud run`` and ``fraud compare``.

One function evaluates scored parts at both decision thresholds, one turns a metrics dict into report
table columns, one draws all confusion matrices in one figure: both commands call these, so their numbers and
tables can never drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from adaptlab.core.metrics import binary_metrics
from adaptlab.core.plots import plot_confusion_grid
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


def confusion_grid(run: RunFolder, report: Report, matrices: Mapping[str, dict], title: str, caption: str,
                   columns: int = 3, file: str = "confusion_matrices.png") -> Path:
    """All confusion matrices of a report in one figure (``matrices`` maps a panel title to a
    :func:`binary_metrics` result), added to ``report`` with ``caption``; returns the PNG's path."""
    path = run.file(file)
    plot_confusion_grid({name: m["confusion_matrix"] for name, m in matrices.items()}, ["normal", "fraud"], path,
                        title=title, columns=columns)
    report.image(path, caption)
    return path
