"""`adaptlab fraud score` ignores columns it does not know for scoring and passes them through."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptlab.cli import main
from adaptlab.fraud.data import FEATURES, LABEL


@pytest.fixture(scope="module")
def model_run(make_frame, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("score")
    frame = make_frame(380, 20, seed=3)
    frame.to_csv(folder / "train.csv", index=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["fraud", "run", "--data", str(folder / "train.csv"), "--epochs", "1", "--runs-dir",
                     str(folder / "runs"), "--quiet"]) == 0
    return Path(out.getvalue().strip()), frame


def test_extra_columns_are_ignored_for_scoring_and_passed_through(model_run, tmp_path):
    run_dir, frame = model_run
    plain = frame[FEATURES].head(25)
    extended = plain.copy()
    extended.insert(0, "transaction_id", [f"tx-{i:03d}" for i in range(25)])
    extended["merchant"] = np.arange(25) % 4
    extended[LABEL] = frame[LABEL].head(25).to_numpy()
    plain.to_csv(tmp_path / "plain.csv", index=False)
    extended.to_csv(tmp_path / "extended.csv", index=False)
    for name in ("plain", "extended"):
        assert main(["fraud", "score", str(run_dir), str(tmp_path / f"{name}.csv"), "--out",
                     str(tmp_path / f"{name}-scores.csv"), "--quiet"]) == 0
    scores_plain = pd.read_csv(tmp_path / "plain-scores.csv")
    scores_extended = pd.read_csv(tmp_path / "extended-scores.csv")
    assert list(scores_extended.columns) == ["row", "transaction_id", "merchant", "probability", "flag"]
    assert scores_extended["transaction_id"].tolist() == extended["transaction_id"].tolist()
    assert scores_extended["merchant"].tolist() == extended["merchant"].tolist()
    pd.testing.assert_frame_equal(scores_extended[["row", "probability", "flag"]], scores_plain)


def test_extra_column_named_like_an_output_is_a_one_line_error(model_run, tmp_path, capsys):
    run_dir, frame = model_run
    clashing = frame[FEATURES].head(3).assign(flag=1)
    clashing.to_csv(tmp_path / "clash.csv", index=False)
    assert main(["fraud", "score", str(run_dir), str(tmp_path / "clash.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "column(s) flag would clash" in err


def test_a_missing_feature_is_still_an_error(model_run, tmp_path, capsys):
    run_dir, frame = model_run
    frame[FEATURES].head(3).drop(columns=["V7"]).assign(ID=1).to_csv(tmp_path / "missing.csv", index=False)
    assert main(["fraud", "score", str(run_dir), str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing column(s) V7" in err and "\n" not in err
