"""Matplotlib figures shared by both studies. Every figure has a title, axis labels and units.

The Agg backend is forced so plotting works on headless machines and in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight": a legend placed beside the axes stays in
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
    chosen_x: float | None = None,
    chosen_label: str = "kept",
) -> Path:
    """Line plot of several named series over a shared x axis (epochs, steps).

    ``chosen_x`` (the epoch or step whose weights were kept) is marked by a dashed vertical line labelled
    ``chosen_label``. A series of one point is drawn as a marker with its value written next to it: a
    single evaluation is no curve.
    """
    x = list(x)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, values in series.items():
        values = list(values)
        if len(values) == 1:
            (point,) = ax.plot(x[:1], values, marker="o", markersize=7, linestyle="none", label=name)
            ax.annotate(f"{values[0]:.4g}", (x[0], values[0]), textcoords="offset points", xytext=(8, 4),
                        color=point.get_color())
        else:
            ax.plot(x[: len(values)], values, marker="o", markersize=3, label=name)
    if len(x) == 1:
        ax.margins(y=0.2)  # room for the value labels of lone points
    if chosen_x is not None:
        ax.axvline(chosen_x, color="0.3", linestyle="--", linewidth=1, label=f"{chosen_label} ({xlabel} {chosen_x:g})")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if all(float(v).is_integer() for v in x):  # epochs and steps: no ticks at 1.25 epochs
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _confusion_panel(ax, matrix: np.ndarray, labels: Sequence[str], title: str):
    """One confusion matrix on ``ax``: colour = share of the true class (each row sums to 1), so a rare
    class is as readable as a common one; each cell says its count and that share."""
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    display = ConfusionMatrixDisplay(shares, display_labels=list(labels))
    display.plot(ax=ax, cmap="Blues", colorbar=False, im_kw={"vmin": 0.0, "vmax": 1.0})
    for (i, j), text in np.ndenumerate(display.text_):
        share = 100 * shares[i, j]
        # one false alarm in 56,000 is not "0.0%": say it is below the precision shown
        text.set_text(f"{int(matrix[i, j]):,}\n" + ("<0.1%" if 0 < share < 0.05 else f"{share:.1f}%"))
        text.set_fontsize(9)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(axis="x", labelrotation=30 if max(map(len, labels)) > 8 else 0)
    return display


def plot_confusion(matrix, labels: Sequence[str], path: Path, *, title: str) -> Path:
    """One confusion matrix (rows = true class, columns = predicted): counts and row shares in each cell,
    colours by row share (see :func:`plot_confusion_grid` for several in one figure)."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(2.4 + 1.1 * len(labels), 1.8 + 1.0 * len(labels)))
    display = _confusion_panel(ax, matrix, labels, title)
    fig.colorbar(display.im_, ax=ax, label="share of the true class")
    return _save(fig, path)


def plot_confusion_grid(matrices: Mapping[str, Sequence], labels: Sequence[str], path: Path, *, title: str,
                        columns: int = 3) -> Path:
    """Several confusion matrices in one figure (``matrices`` maps a panel title to a matrix), one shared
    colour scale (share of the true class) so panels compare at a glance; counts written in every cell."""
    names = list(matrices)
    columns = max(1, min(columns, len(names)))
    rows = -(-len(names) // columns)
    size = 1.4 + 0.9 * len(labels)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns + 1.2, size * rows + 0.7), squeeze=False,
                             layout="constrained")
    display = None
    for position, (ax, name) in enumerate(zip(axes.flat, names)):
        display = _confusion_panel(ax, np.asarray(matrices[name]), labels, name)
        row, column = divmod(position, columns)
        if column:  # axis titles once per grid row / column: the panels share them
            ax.set_ylabel("")
        if position + columns < len(names):
            ax.set_xlabel("")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    if display is not None:
        fig.colorbar(display.im_, ax=axes, label="share of the true class", shrink=0.8)
    fig.suptitle(title)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # constrained layout: no tight_layout pass
    plt.close(fig)
    return path


def plot_pr_curves(curves: Mapping[str, tuple], path: Path, *, title: str) -> Path:
    """Precision-recall curves; ``curves`` maps a label to ``(y_true, scores)``. The chance level (the
    positive share, what a random scorer's precision is) is drawn once per distinct prevalence."""
    fig, ax = plt.subplots(figsize=(8.4, 4.8))
    prevalences = {}
    for name, (y_true, scores) in curves.items():
        y_true = np.asarray(y_true)
        display = PrecisionRecallDisplay.from_predictions(y_true, scores, ax=ax, name=name)
        display.line_.set(label=name, linewidth=1.2)  # sklearn appends "(AP = ...)": callers name curves
        prevalences.setdefault(round(float(y_true.mean()), 6), display.line_.get_color())
    for prevalence, color in prevalences.items():
        ax.axhline(prevalence, color=color, linestyle=":", linewidth=1,
                   label=f"chance level (positive share {100 * prevalence:.3g}%)")
    ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


def plot_bars(labels: Sequence[str], values: Sequence[float], path: Path, *, title: str,
              ylabel: str, log: bool = False) -> Path:
    """Bar chart with each bar's value written on it (class counts, parameter counts...)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    bars = ax.bar(list(labels), list(values), color="tab:blue")
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom")
    if log:  # bars start at 1, so their heights compare on the log scale (not from an arbitrary floor)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1, top=max(max(values), 1) * 3)
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
