"""`adaptlab fraud score`: every input column kept (Class included), rows numbered from 0 like the file's own
index, probabilities and flags; damaged models, bad paths and failing writes end in one line, no leftovers."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptlab.cli import main
from adaptlab.fraud.config import TrainConfig
from adaptlab.fraud.data import FEATURES, LABEL, split_indices
from adaptlab.fraud.model import load_model, predict_proba, save_model, train_mlp


@pytest.fixture(scope="module")
def model_run(make_frame, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("score")
    frame = make_frame(380, 20, seed=3)
    frame.to_csv(folder / "train.csv", index=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["fraud", "run", "--data", str(folder / "train.csv"), "--epochs", "1", "--output-dir",
                     str(folder / "runs"), "--quiet"]) == 0
    return Path(out.getvalue().strip()), frame


def test_every_input_column_is_kept_in_order_with_row_numbers_from_0(model_run, tmp_path):
    run_dir, frame = model_run
    extended = frame.head(25).copy()  # the features and Class
    extended.insert(0, "transaction_id", [f"tx-{i:03d}" for i in range(25)])
    extended["merchant"] = np.arange(25) % 4
    extended.to_csv(tmp_path / "extended.csv", index=False)
    frame[FEATURES].head(25).to_csv(tmp_path / "plain.csv", index=False)
    for name in ("plain", "extended"):
        assert main(["fraud", "score", str(run_dir), str(tmp_path / f"{name}.csv"), "--output",
                     str(tmp_path / f"{name}-scores.csv"), "--quiet"]) == 0
    scores = pd.read_csv(tmp_path / "extended-scores.csv")
    assert list(scores.columns) == ["row", *extended.columns, "probability", "flag"]
    assert scores["row"].tolist() == list(range(25)) == pd.read_csv(tmp_path / "extended.csv").index.tolist()
    # values exactly as in the file (pyarrow writes a float 1.0 as "1", so a dtype may read back as int)
    pd.testing.assert_frame_equal(scores[list(extended.columns)], pd.read_csv(tmp_path / "extended.csv"),
                                  check_dtype=False, check_exact=True)
    assert scores[LABEL].tolist() == frame[LABEL].head(25).tolist()
    # the probabilities are the model's, independent of the extra columns
    model, scaler, meta = load_model(run_dir / "model")
    expected = predict_proba(model, scaler, frame[FEATURES].head(25).to_numpy())
    np.testing.assert_allclose(scores["probability"], expected, rtol=1e-6)
    assert scores["flag"].tolist() == (expected >= meta["threshold"]).astype(int).tolist()
    plain = pd.read_csv(tmp_path / "plain-scores.csv")
    pd.testing.assert_frame_equal(scores[["row", "probability", "flag"]], plain[["row", "probability", "flag"]])


def test_scores_on_stdout_are_the_same_table(model_run, tmp_path):
    run_dir, frame = model_run
    frame.head(4).to_parquet(tmp_path / "four.parquet")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["fraud", "score", str(run_dir), str(tmp_path / "four.parquet")]) == 0
    lines = out.getvalue().strip().splitlines()
    assert lines[0] == ",".join(["row", *frame.columns, "probability", "flag"])
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3"]


def test_the_old_out_flag_still_writes_the_file(model_run, tmp_path):
    run_dir, frame = model_run
    frame.head(3).to_csv(tmp_path / "three.csv", index=False)
    assert main(["fraud", "score", str(run_dir), str(tmp_path / "three.csv"), "--out", str(tmp_path / "s.csv"),
                 "--quiet"]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 3


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


@pytest.fixture(scope="module")
def saved_model(make_frame, tmp_path_factory):
    """A small trained model saved by save_model, plus a CSV to score (original files, copy before damaging)."""
    frame = make_frame(380, 20, seed=3)
    split = split_indices(frame, "stratified", seed=0)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    config = TrainConfig(hidden_sizes=[8, 4], epochs=1, batch_size=64)
    result = train_mlp(X[split.train], y[split.train], X[split.val], y[split.val], config, progress=False)
    folder = tmp_path_factory.mktemp("saved")
    save_model(folder / "model", result, features=FEATURES, threshold=0.5, threshold_rule="test", config=config)
    frame.to_csv(folder / "rows.csv", index=False)
    return folder


def _damaged_copy(saved_model, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(saved_model / "model", run / "model")
    damage(run / "model")
    return run


def _edit_json(name, edit):
    def damage(folder):
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(edit(data)))
    return damage


DAMAGES = {
    "model.json is a list": (_edit_json("model.json", lambda meta: [meta]),
                             r"model.json: a saved model file holds a JSON object, not a list"),
    "garbage weights": (lambda folder: (folder / "model.safetensors").write_bytes(b"\x00garbage" * 10),
                        r"model.safetensors: not a readable safetensors file"),
    "scaler of the wrong length": (_edit_json("scaler.json", lambda s: {**s, "mean": s["mean"][:-1]}),
                                   r"scaler.json mean must be 30 finite numbers"),
    "renamed feature": (_edit_json("model.json", lambda m: {**m, "features": ["Seconds", *m["features"][1:]]}),
                        r"model.json features are \['Seconds', 'V1'.*not the 30 columns Time, V1"),
    "changed hidden_sizes": (_edit_json("model.json", lambda m: {**m, "hidden_sizes": [8, 4, 2]}),
                             r"weights do not fit the MLP of model.json \(hidden_sizes \[8, 4, 2\]\): missing "
                             r"net.9.weight, net.9.bias; net.6.weight is \(1, 4\), expected \(2, 4\)"),
    "threshold text": (_edit_json("model.json", lambda m: {**m, "threshold": "high"}),
                       r"model.json threshold must be a number in \[0, 1\], not 'high'"),
}


@pytest.mark.parametrize("what", DAMAGES)
def test_score_on_a_damaged_model_is_one_line_error(saved_model, tmp_path, capsys, what):
    damage, message = DAMAGES[what]
    run = _damaged_copy(saved_model, tmp_path, damage)
    assert main(["fraud", "score", str(run), str(saved_model / "rows.csv")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert re.search(message, err), err
    assert captured.out == ""


def test_score_out_to_a_folder_is_refused_without_leftovers(saved_model, tmp_path, capsys):
    target = tmp_path / "scores"
    target.mkdir()
    assert main(["fraud", "score", str(saved_model), str(saved_model / "rows.csv"), "--output", str(target)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [target] and list(target.iterdir()) == []


def test_score_writes_no_temp_file_when_the_write_fails(saved_model, tmp_path, capsys, monkeypatch):
    import adaptlab.fraud.scoring as scoring

    real_csv_bytes = scoring._csv_bytes

    def full_disk(frame, header):
        real_csv_bytes(frame, header)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scoring, "_csv_bytes", full_disk)
    out = tmp_path / "scores.csv"
    assert main(["fraud", "score", str(saved_model), str(saved_model / "rows.csv"), "--output", str(out)]) == 2
    assert "cannot write the scores" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_rows_that_overflow_after_standardising_are_refused_by_position(model_run, tmp_path, capsys):
    run_dir, frame = model_run
    rows = frame.head(6).copy()
    rows.loc[rows.index[[1, 4]], "Amount"] = 1e41  # finite in the file, beyond float32 once standardised
    rows.to_csv(tmp_path / "huge.csv", index=False)
    out = tmp_path / "scores.csv"
    assert main(["fraud", "score", str(run_dir), str(tmp_path / "huge.csv"), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 row(s) cannot be scored" in err and "rows 1, 4" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["huge.csv"]


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_a_saved_scaler_with_a_non_positive_scale_is_refused(model_run, tmp_path, scale, capsys):
    run = _copy_run(model_run[0], tmp_path)
    scaler_path = run / "model" / "scaler.json"
    scaler = json.loads(scaler_path.read_text())
    scaler["scale"][3] = scale
    scaler_path.write_text(json.dumps(scaler))
    model_run[1].head(3).to_csv(tmp_path / "rows.csv", index=False)
    assert main(["fraud", "score", str(run), str(tmp_path / "rows.csv")]) == 2
    err = capsys.readouterr().err
    assert "scale must be positive" in err and len(err.strip().splitlines()) == 1


def test_training_refuses_a_feature_whose_spread_overflows(make_frame):
    from adaptlab.errors import AdaptlabError
    from adaptlab.fraud.model import Standardizer

    X = make_frame(50, 5, seed=1)[FEATURES].to_numpy()
    X[:25, FEATURES.index("V7")] = 1e300
    X[25:, FEATURES.index("V7")] = -1e300  # the variance (1e600) overflows float64
    with pytest.raises(AdaptlabError, match="cannot standardise feature V7"):
        Standardizer().fit(X)
    fitted = Standardizer().fit(make_frame(50, 5, seed=1)[FEATURES].to_numpy())
    assert np.isfinite(fitted.mean_).all() and (fitted.scale_ > 0).all()


# ---------------------------------------------------------------------------------------------- streaming
def test_chunked_scores_equal_whole_file_scores_csv_and_parquet(model_run, tmp_path):
    """Chunk boundaries (7 rows per chunk over 25 rows) change nothing: rows numbered across chunks, same
    probabilities as one in-memory pass, and a parquet output holds the same table as the CSV one."""
    from adaptlab.fraud.scoring import score_file

    run_dir, frame = model_run
    rows = frame.head(25).copy()
    rows.insert(0, "transaction_id", [f"tx-{i:03d}" for i in range(25)])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet")
    whole = score_file(run_dir, tmp_path / "rows.csv", tmp_path / "whole.csv")
    chunked = score_file(run_dir, tmp_path / "rows.parquet", tmp_path / "chunked.parquet", chunk_rows=7)
    assert (whole.rows, chunked.rows) == (25, 25) and whole.flagged == chunked.flagged
    expected, got = pd.read_csv(tmp_path / "whole.csv"), pd.read_parquet(tmp_path / "chunked.parquet")
    assert got["row"].tolist() == list(range(25))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    model, scaler, meta = load_model(run_dir / "model")
    direct = predict_proba(model, scaler, rows[FEATURES].to_numpy())
    np.testing.assert_allclose(got["probability"], direct, rtol=1e-6)  # float32 matmuls differ by batch size
    assert int(got["flag"].sum()) == whole.flagged == int((direct >= meta["threshold"]).sum())


def test_an_error_in_a_late_chunk_names_the_file_row_and_leaves_no_output(model_run, tmp_path, capsys):
    from adaptlab.fraud.scoring import score_file

    run_dir, frame = model_run
    rows = frame.head(30).copy()
    rows.loc[rows.index[22], "V3"] = np.inf  # in the fourth chunk of 7
    rows.loc[rows.index[27], "Amount"] = 1e41
    rows.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(Exception) as caught:
        score_file(run_dir, tmp_path / "rows.csv", tmp_path / "out.csv", chunk_rows=7)
    assert "column V3, row 23: value is not finite" in str(caught.value)  # 1-based data row, as for one chunk
    rows.loc[rows.index[22], "V3"] = 0.0
    rows.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(Exception) as caught:
        score_file(run_dir, tmp_path / "rows.csv", tmp_path / "out.csv", chunk_rows=7)
    assert "1 row(s) cannot be scored" in str(caught.value) and "rows 27, 0-based" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_an_empty_parquet_file_is_a_one_line_error_without_output(model_run, tmp_path, capsys):
    run_dir, frame = model_run
    frame.head(0).to_parquet(tmp_path / "empty.parquet")
    out = tmp_path / "scores.parquet"
    assert main(["fraud", "score", str(run_dir), str(tmp_path / "empty.parquet"), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("has no rows") and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.parquet"]
