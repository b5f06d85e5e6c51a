"""What the shared figures draw, read back from the matplotlib figure itself: one confusion grid with counts
and row shares, PR curves with their chance level, the kept epoch on learning curves, a lone point as a
marker (no line)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve

from adaptlab.core import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions close, kept for inspection."""
    figures = []
    real_close = plots.plt.close

    def keep(fig=None):
        figures.append(fig)
        real_close(fig)
    monkeypatch.setattr(plots.plt, "close", keep)
    return figures


def test_confusion_grid_is_one_figure_with_counts_and_row_shares(drawn, tmp_path):
    matrices = {"a": [[990, 10], [3, 7]], "b": [[1000, 0], [10, 0]], "c": [[5, 0], [0, 5]]}
    path = plots.plot_confusion_grid(matrices, ["normal", "fraud"], tmp_path / "grid.png", title="All", columns=2)
    assert path.stat().st_size > 0
    (fig,) = drawn
    panels = [ax for ax in fig.axes if ax.get_title() in matrices]
    assert [ax.get_title() for ax in panels] == ["a", "b", "c"]
    texts = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in panels}
    assert texts["a"] == ["990\n99.0%", "10\n1.0%", "3\n30.0%", "7\n70.0%"]
    assert texts["b"] == ["1,000\n100.0%", "0\n0.0%", "10\n100.0%", "0\n0.0%"]
    # colours are row shares on one 0..1 scale: the 7 caught frauds are as dark as 70% of a row, not 7/1000
    image = panels[0].images[0]
    assert image.get_clim() == (0.0, 1.0) and image.get_array()[1, 1] == pytest.approx(0.7)
    assert sum(1 for ax in fig.axes if ax.get_visible() and ax.get_label() == "<colorbar>") == 1


def test_a_tiny_nonzero_share_is_not_shown_as_zero(drawn, tmp_path):
    plots.plot_confusion([[56_000, 1], [20, 80]], ["normal", "fraud"], tmp_path / "one.png", title="t")
    (fig,) = drawn
    assert fig.axes[0].texts[1].get_text() == "1\n<0.1%"


def test_pr_curves_draw_the_chance_level_at_the_positive_share(drawn, tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.04).astype(int)
    scores = y * 0.3 + rng.random(500)
    plots.plot_pr_curves({"model (AP 0.5)": (y, scores)}, tmp_path / "pr.png", title="PR")
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    chance = next(line for label, line in lines.items() if label.startswith("chance level"))
    np.testing.assert_allclose(chance.get_ydata(), y.mean(), atol=1e-6)  # a horizontal line at 4% or so
    precision, recall, _ = precision_recall_curve(y, scores)
    curve = lines["model (AP 0.5)"]
    np.testing.assert_allclose(curve.get_xdata(), recall)
    np.testing.assert_allclose(curve.get_ydata(), precision)


def test_learning_curve_marks_the_kept_epoch_and_a_lone_point_is_a_marker(drawn, tmp_path):
    plots.plot_curves([1, 2, 3], {"train": [3, 2, 1]}, tmp_path / "c.png", title="t", xlabel="epoch", ylabel="y",
                      chosen_x=2, chosen_label="weights kept")
    plots.plot_curves([7], {"val": [0.5]}, tmp_path / "p.png", title="t", xlabel="step", ylabel="y")
    curve_fig, point_fig = drawn
    kept = next(line for line in curve_fig.axes[0].get_lines() if line.get_label().startswith("weights kept"))
    assert list(kept.get_xdata()) == [2, 2] and kept.get_label() == "weights kept (epoch 2)"
    (point,) = point_fig.axes[0].get_lines()
    assert point.get_linestyle() == "None" and point.get_marker() == "o"
    assert [t.get_text() for t in point_fig.axes[0].texts] == ["0.5"]


def test_epoch_axes_tick_whole_epochs_only(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from adaptlab.core import plots

    captured = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: captured.setdefault("fig", fig) and path)
    plots.plot_curves([1, 2, 3], {"train": [0.3, 0.2, 0.1]}, tmp_path / "c.png", title="t", xlabel="epoch",
                      ylabel="loss")
    fig = captured["fig"]
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    plt.close(fig)
    assert ticks and all(float(t).is_integer() for t in ticks)
