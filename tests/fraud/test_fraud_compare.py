"""`adaptlab fraud compare` on a small hand-made data set: one row per method, LEAKY marking everywhere
it must be, the leakage guard, inflation numbers = table differences, the time split, one-line errors."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest

from adaptlab.cli import main
from adaptlab.core.report import format_value
from adaptlab.fraud import compare_report, evaluation
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.compare import run_all
from adaptlab.fraud.config import CompareConfig
from adaptlab.fraud.methods import DEFAULT_METHODS, METHODS
from adaptlab.fraud.data import FEATURES, LABEL, load_creditcard, split_indices
from adaptlab.fraud.protocols import SAFE, LeakageError, guard_scoring, prepare_method

SMALL = {"adasyn_k": 40, "epochs": 1, "patience": 1, "bootstrap": 10}
PAPER_TWINS = ["random-over-paper", "smote-paper", "imblearn-adasyn-paper"]


@pytest.fixture(scope="module")
def small(make_frame, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("compare")
    make_frame(1200, 60, seed=5).to_csv(folder / "small.csv", index=False)
    (folder / "small.yaml").write_text("".join(f"{k}: {v}\n" for k, v in SMALL.items()))
    return folder / "small.csv", folder / "small.yaml"


def _compare(small, tmp_path_factory, *flags) -> tuple[Path, dict]:
    """Run the CLI (quiet) while recording every PR-curve legend/title and confusion-matrix title."""
    csv, yaml_path = small
    runs = tmp_path_factory.mktemp("runs")
    seen = {"pr": [], "confusion": []}
    real_pr, real_confusion = compare_report.plot_pr_curves, evaluation.plot_confusion_grid

    def pr(curves, path, *, title):
        seen["pr"].append((title, list(curves)))
        return real_pr(curves, path, title=title)

    def confusion(matrices, labels, path, *, title, **kwargs):
        seen["confusion"].append((title, list(matrices)))
        return real_confusion(matrices, labels, path, title=title, **kwargs)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(compare_report, "plot_pr_curves", pr)
        patch.setattr(evaluation, "plot_confusion_grid", confusion)
        code = main(["fraud", "compare", "--data", str(csv), "--config", str(yaml_path), "--output-dir", str(runs),
                     "--quiet", *flags])
    assert code == 0 and out.getvalue().count("\n") == 1  # --quiet: only the folder
    return Path(out.getvalue().strip()), seen


@pytest.fixture(scope="module")
def stratified(small, tmp_path_factory):
    path, seen = _compare(small, tmp_path_factory)
    return path, json.loads((path / "metrics.json").read_text()), (path / "report.md").read_text(), seen


@pytest.fixture(scope="module")
def timed(small, tmp_path_factory):
    path, seen = _compare(small, tmp_path_factory, "--split", "time", "--protocol", "paper")
    return path, json.loads((path / "metrics.json").read_text())


def _report_table(report: str, heading: str) -> list[list[str]]:
    """Cells of the first table after ``## heading`` (header and separator lines dropped)."""
    lines = report.split(f"## {heading}\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in lines[start + 2:end]]


def test_one_table_row_per_method(stratified):
    path, metrics, report, _ = stratified
    labels = [METHODS[name].label for name in DEFAULT_METHODS]
    assert [row["method"] for row in metrics["table"]] == labels
    assert [cells[0] for cells in _report_table(report, "Results on the test split")] == labels
    assert set(metrics["methods"]) == set(DEFAULT_METHODS)
    names = {p.name for p in path.iterdir()}
    assert {"config.yaml", "metrics.json", "report.md", "report.html", "pr_curves.png"} <= names
    assert "confusion_matrices.png" in names and not any(n.startswith("confusion_") and n != "confusion_matrices.png"
                                                         for n in names)  # one grid, not a PNG per row
    html = (path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len([n for n in names if n.endswith(".png")])
    sizes = metrics["split"]["sizes"]["42"]
    for name in ("none", "class-weights", "lightgbm"):  # no resampling: the split's own training rows
        assert metrics["methods"][name]["seeds"]["42"]["train_rows"] == sizes["train"]
    note = next(line for line in report.splitlines() if line.startswith("Training length (seed 42): "))
    for name in DEFAULT_METHODS:  # every row's training length, read from metrics.json
        model = metrics["methods"][name]["seeds"]["42"]["model"]
        expected = (f"{model['best_iteration']} boosting rounds" if name == "lightgbm"
                    else f"{model['epochs_run']} epochs (best {model['best_epoch']})")
        assert f"{METHODS[name].label} {expected}" in note
    frauds = metrics["split"]["frauds"]["42"]["train"]
    for name in ("random-over", "adasyn"):  # exact G at ratio 1: as many frauds as normals
        assert metrics["methods"][name]["seeds"]["42"]["train_rows"] == 2 * (sizes["train"] - frauds)


def test_leaky_row_is_marked_everywhere_and_only_there(stratified):
    _, metrics, report, seen = stratified
    leaky = {name for name, m in metrics["methods"].items() if m["leaky"]}
    assert leaky == {"adasyn-paper"}
    entry = metrics["methods"]["adasyn-paper"]
    assert entry["label"] == "LEAKY: adasyn-paper" and "LEAKY" in entry["warning"] and entry["protocol"] == "paper"
    assert all("LEAKY" not in json.dumps(metrics["methods"][n]) for n in DEFAULT_METHODS if n != "adasyn-paper")
    table = {cells[0]: cells for cells in _report_table(report, "Results on the test split")}
    assert "LEAKY: adasyn-paper" in table and table["LEAKY: adasyn-paper"][1] == "paper"
    headings = [line for line in report.splitlines() if line.startswith("#")]
    assert any(h.startswith("## LEAKY:") and "inflate" in h for h in headings)
    assert "LEAKY" in headings[0]  # the report's title
    (title, legend), = seen["pr"]
    assert "LEAKY" in title
    assert [entry.split(" (AP")[0] for entry in legend] == [METHODS[n].label for n in DEFAULT_METHODS]
    (_, panels), = seen["confusion"]  # one figure, one panel per row, the paper row's marked
    assert [t.startswith("LEAKY: adasyn-paper") for t in panels] == [n == "adasyn-paper" for n in DEFAULT_METHODS]


def test_safe_rows_pass_the_guard_and_the_paper_row_only_in_paper_mode(stratified, small):
    _, metrics, _, _ = stratified
    for name in DEFAULT_METHODS:
        for part, found in metrics["methods"][name]["seeds"]["42"]["guard"].items():
            counts = (found["synthetic_rows"], found["parent_rows"], found["training_rows"])
            assert (counts == (0, 0, 0)) == (name != "adasyn-paper"), (name, part, counts)
    frame = load_creditcard(small[0])
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    config = CompareConfig(**SMALL)
    split = split_indices(frame, "stratified", 42)
    safe = prepare_method(METHODS["adasyn"], config, 42, X, y, split)
    parents = safe.train.parent_ids[safe.train.synthetic]
    assert len(parents) and np.isin(parents, split.train).all()
    assert guard_scoring(safe, "test").synthetic_rows == 0
    paper = prepare_method(METHODS["adasyn-paper"], config, 42, X, y, split)
    assert guard_scoring(paper, "test").leaky  # scored only because the run is explicitly LEAKY
    pretending = dataclasses.replace(paper, protocol=SAFE, leaky=False)
    for part in ("val", "test"):
        with pytest.raises(LeakageError, match="refusing to score"):
            guard_scoring(pretending, part)


def test_inflation_equals_the_table_differences(stratified):
    _, metrics, report, _ = stratified
    table = {row["method"]: row for row in metrics["table"]}
    inflation = metrics["inflation"]
    assert {r["metric"] for r in inflation} == set(compare_report.METRIC_COLUMNS)
    shown = _report_table(report, "LEAKY: how much the paper protocol inflates the scores")
    assert len(shown) == len(inflation)
    for row, cells in zip(inflation, shown):
        safe, paper = table["adasyn"][row["metric"]], table["LEAKY: adasyn-paper"][row["metric"]]
        assert (row["safe"], row["paper"]) == (safe, paper)
        assert row["absolute"] == paper - safe
        assert row["relative"] == (None if safe == 0 else (paper - safe) / safe)
        relative = None if row["relative"] is None else 100 * row["relative"]
        assert cells[2:] == [row["metric"], *map(format_value, (safe, paper, paper - safe, relative))]
    auprc = next(r for r in inflation if r["metric"] == "AUPRC")
    assert f"{auprc['absolute']:+.4f} absolute" in report


def test_time_split_works_for_every_row(timed, small):
    _, metrics = timed
    expected = [*DEFAULT_METHODS]
    for twin in PAPER_TWINS:  # --protocol paper: each resampling row gets its LEAKY twin right after it
        expected.insert(expected.index(twin.removesuffix("-paper")) + 1, twin)
    assert [row["method"] for row in metrics["table"]] == [METHODS[n].label for n in expected]
    frame = load_creditcard(small[0])
    time_split = split_indices(frame, "time", 42)
    for name in expected:
        seed = metrics["methods"][name]["seeds"]["42"]
        assert seed["leaky"] == name.endswith("-paper")
        if not seed["leaky"]:
            assert seed["parts"]["test"]["rows"] == len(time_split.test)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    paper = prepare_method(METHODS["smote-paper"], CompareConfig(**SMALL, split="time"), 42, X, y, time_split)
    times = [part.X[:, FEATURES.index("Time")] for part in paper.parts()]
    assert times[0].max() <= times[1].min() and times[1].max() <= times[2].min()  # ordered by (interpolated) Time
    assert paper.test.synthetic.any()


@pytest.mark.parametrize("flags, message", [
    (["--methods", "none,magic"], "unknown method(s) 'magic'; choose from none, class-weights"),
    (["--methods", "none,none"], "methods lists a method twice"),
    (["--seeds", "1,1"], "seeds lists a seed twice"),
])
def test_bad_selection_is_a_one_line_error(small, tmp_path, capsys, flags, message):
    csv, yaml_path = small
    code = main(["fraud", "compare", "--data", str(csv), "--config", str(yaml_path), "--output-dir",
                 str(tmp_path / "runs"), "--quiet", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and message in err
    assert not (tmp_path / "runs").exists()


def test_rows_in_worker_processes_equal_rows_one_after_the_other(make_frame, capsys):
    """Each row seeds its own resampler and model, so two worker processes give the very numbers (and test
    scores) of one process running the rows in order; every row is reported once."""
    frame = make_frame(1200, 60, seed=5)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    settings = {**SMALL, "epochs": 2, "seeds": [3, 4], "methods": ["none", "smote", "adasyn-paper", "lightgbm"]}
    timing = {"resample_seconds", "fit_seconds", "train_seconds", "_test"}
    runs = {}
    for workers in (1, 2):
        config = CompareConfig(**settings, workers=workers)
        assert config.resolved_workers() == workers  # 8 rows (4 methods x 2 seeds): room for either count
        runs[workers] = run_all(config, X, y, frame, quiet=workers == 1)
    err = capsys.readouterr().err
    assert "running 8 rows in 2 worker processes" in err
    finished = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in finished] == [f"[{i}/8" for i in range(1, 9)]
    assert sorted(line.split(": test AUPRC")[0].split("] ")[1] for line in finished) == sorted(
        f"seed {seed}: {METHODS[name].label}" for seed in (3, 4) for name in settings["methods"])
    for seed in (3, 4):
        one, two = runs[1][seed], runs[2][seed]
        assert list(two["rows"]) == settings["methods"]  # table order, whatever order the rows finished in
        assert np.array_equal(one["split"].test, two["split"].test)
        for name in settings["methods"]:
            a, b = one["rows"][name], two["rows"][name]
            assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
            assert all(np.array_equal(p, q) for p, q in zip(a["_test"], b["_test"]))


def test_an_error_in_a_worker_process_is_one_line_and_writes_nothing(small, tmp_path, capsys):
    csv, yaml_path = small
    code = main(["fraud", "compare", "--data", str(csv), "--config", str(yaml_path), "--output-dir",
                 str(tmp_path / "runs"), "--quiet", "--methods", "none,class-weights", "--workers", "2",
                 "--lr", "1e38"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: training diverged at epoch 1") and "\n" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(AdaptlabError, match="workers must be empty or an integer from 1 to"):
        CompareConfig(workers=workers).validate()
