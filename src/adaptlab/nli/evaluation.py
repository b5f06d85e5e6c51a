"""Scores of text-classification predictions: accuracy per split and per genre (where known), per-class
P/R/F1, confusion matrix PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adaptlab.core.metrics import multiclass_metrics
from adaptlab.core.plots import plot_confusion_grid, plot_curves
from adaptlab.core.report import Report
from adaptlab.errors import AdaptlabError


def model_label_names(config) -> list[str]:
    """The model's class names in output order, from its ``id2label`` (keys may be ints or strings)."""
    return [str(config.id2label.get(i, config.id2label.get(str(i), f"LABEL_{i}"))) for i in range(config.num_labels)]


def label_columns(config, labels) -> list[int] | None:
    """For each of ``labels`` (the data's label ids in order), the model output that predicts it; None if the
    model's class names are not the same set.

    Names match case-insensitively, so hub MNLI checkpoints (``CONTRADICTION``, ``NEUTRAL``, ``ENTAILMENT`` in
    their own order) are scored against the data's labels correctly: ``probabilities[:, columns]``.
    """
    names = [name.lower() for name in model_label_names(config)]
    wanted = [label.lower() for label in labels]
    if sorted(names) != sorted(wanted):
        return None
    return [names.index(label) for label in wanted]


def require_label_columns(config, labels, where: str, task_name: str) -> list[int]:
    """:func:`label_columns`, or a one-line error: such a model cannot be scored on the task's labels."""
    columns = label_columns(config, labels)
    if columns is None:
        raise AdaptlabError(f"the model in {where} has labels {', '.join(model_label_names(config))}, not "
                            f"{', '.join(labels)} (in any order, any case); it cannot be scored on task {task_name}")
    return columns


def split_metrics(frame: pd.DataFrame, probabilities: np.ndarray, labels: list[str]) -> dict:
    """core.multiclass_metrics for one split, plus accuracy per genre when the data names genres."""
    predicted = probabilities.argmax(1)
    metrics = multiclass_metrics(frame["label"].to_numpy(), predicted, labels)
    if "genre" in frame.columns and frame["genre"].notna().any():
        correct = pd.Series(predicted == frame["label"].to_numpy(), index=frame.index)
        metrics["per_genre"] = {
            str(genre): {"n": int(len(hits)), "accuracy": float(hits.mean())}
            for genre, hits in correct.groupby(frame["genre"].fillna("unknown"), sort=True)
        }
    return metrics


def evaluate_splits(evals: dict[str, pd.DataFrame], probabilities: dict[str, np.ndarray], labels: list[str],
                    folder: Path) -> tuple[dict, Path]:
    """Metrics per split, and ``confusion.png`` in ``folder``: every split's confusion matrix in one grid on one
    colour scale, so splits compare at a glance."""
    metrics = {name: split_metrics(frame, probabilities[name], labels) for name, frame in evals.items()}
    image = plot_confusion_grid({f"{name} (n={m['n']:,})": m["confusion_matrix"] for name, m in metrics.items()},
                                labels, folder / "confusion.png", title="Confusion matrices")
    return metrics, image


def predictions_frame(frame: pd.DataFrame, probabilities: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """The examples with true label, predicted label and one probability column per class."""
    # ids and genres only where the data has them (most tasks have neither)
    out = frame[[c for c in ("pair_id", "genre", "premise", "hypothesis", "text") if c in frame.columns
                 and (c not in ("pair_id", "genre") or frame[c].notna().any())]].copy()
    if "label" in frame.columns:
        out["label"] = [labels[i] for i in frame["label"]]
    out["predicted"] = [labels[i] for i in probabilities.argmax(1)]
    for i, name in enumerate(labels):
        out[f"p_{name}"] = probabilities[:, i].round(6)
    return out


# What a learning-curve figure shows beyond its title, by file stem (train and compare reports).
CURVE_CAPTIONS = {
    "loss": "Training loss: mean over the optimizer steps since the previous evaluation; validation loss: mean "
            "cross-entropy over every example of the eval split, measured at each evaluation step.",
    "accuracy": "Share of eval examples whose most probable class is the gold label, at each evaluation step "
                "(chance: about 1/{classes} with balanced classes).",
}


def plot_history(history: list[dict], folder: Path, title: str) -> list[Path]:
    """Loss curves (training + each eval split) and accuracy curves over optimizer steps."""
    if not history:
        return []
    steps = [row["step"] for row in history]
    splits = [k[: -len("_accuracy")] for k in history[0] if k.endswith("_accuracy")]
    losses = {"training": [row["train_loss"] for row in history]}
    losses.update({f"{s} (validation)": [row[f"{s}_loss"] for row in history] for s in splits})
    paths = [plot_curves(steps, losses, folder / "loss.png", title=f"Loss, {title}", xlabel="optimizer step",
                         ylabel="cross-entropy (nats)")]
    if splits:
        paths.append(plot_curves(steps, {s: [row[f"{s}_accuracy"] for row in history] for s in splits},
                                 folder / "accuracy.png", title=f"Accuracy, {title}", xlabel="optimizer step",
                                 ylabel="accuracy (share of examples)"))
    return paths


def add_metrics_to_report(report: Report, metrics: dict, image: Path, labels: list[str]) -> None:
    """Per split: accuracy, macro F1, a per-class table, per-genre accuracy (if known); then the confusion grid."""
    for name, m in metrics.items():
        report.heading(f"Evaluation: {name}", 3)
        report.paragraph(f"{m['n']:,} examples; accuracy {m['accuracy']:.4f}; macro F1 {m['macro_f1']:.4f}.")
        report.table([{"class": c, **m["per_class"][c]} for c in labels],
                     ["class", "precision", "recall", "f1", "support"])
        if m.get("per_genre"):
            report.table([{"genre": g, **v} for g, v in m["per_genre"].items()], ["genre", "n", "accuracy"])
    report.image(image, "Rows: true class, columns: predicted; colour: share of the true class, the same scale "
                 "in every panel")
