"""Matplotlib figures shared by both studies. Every figure has a title, axis labels and units.

The Agg backend is forced so plotting works on headless machines and in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Path:
    """Line plot of several named series over a shared x axis (epochs, steps)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, values in series.items():
        ax.plot(list(x)[: len(values)], values, marker="o", markersize=3, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_confusion(matrix, labels: Sequence[str], path: Path, *, title: str) -> Path:
    """Confusion matrix heat map with counts in each cell (rows = true class, columns = predicted)."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(labels), 1.2 + 1.0 * len(labels)))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="count")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:,}", ha="center", va="center",
                color="white" if value > threshold else "black")
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    return _save(fig, path)


def plot_pr_curves(curves: Mapping[str, tuple], path: Path, *, title: str) -> Path:
    """Precision-recall curves; ``curves`` maps a label to ``(y_true, scores)``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, (y_true, scores) in curves.items():
        precision, recall, _ = precision_recall_curve(y_true, scores)
        ax.plot(recall, precision, label=name, linewidth=1.2)
    ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_bars(labels: Sequence[str], values: Sequence[float], path: Path, *, title: str,
              ylabel: str, log: bool = False) -> Path:
    """Bar chart with each bar's value written on it (class counts, parameter counts...)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    bars = ax.bar(list(labels), list(values), color="tab:blue")
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom")
    if log:
        ax.set_yscale("log")
    ax.set(title=title, ylabel=ylabel)
    return _save(fig, path)


def plot_histograms(groups: Mapping[str, Sequence[float]], path: Path, *, title: str, xlabel: str,
                    bins: int = 60, log_y: bool = False) -> Path:
    """Overlaid, density-normalised histograms of one variable per group (e.g. per class)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    all_values = np.concatenate([np.asarray(v, dtype=float) for v in groups.values()])
    edges = np.histogram_bin_edges(all_values, bins=bins)
    for name, values in groups.items():
        ax.hist(values, bins=edges, density=True, alpha=0.5, label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel="density")
    ax.legend()
    return _save(fig, path)
