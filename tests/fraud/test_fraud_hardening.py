"""Bad input and broken runs end in one-line AdaptlabErrors, never tracebacks (reviewer findings)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptlab.core.config import load_config
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.compare import prepare_protocol
from adaptlab.fraud.data import FEATURES, LABEL, split_indices, split_positions
from adaptlab.fraud.model import TrainConfig, train_mlp
from adaptlab.fraud.protocols import PAPER
from adaptlab.fraud.study import FraudConfig


@pytest.mark.parametrize("key, value", [("lr", float("inf")), ("lr", float("nan")),
                                        ("pos_weight", float("inf")), ("pos_weight", float("nan"))])
def test_non_finite_lr_or_pos_weight_is_refused(key, value):
    with pytest.raises(AdaptlabError, match=f"{key} must be"):
        load_config(FraudConfig, None, {key: value})


def test_cli_refuses_infinite_pos_weight(capsys):
    from adaptlab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fraud", "run", "--pos-weight", "inf"])
    assert exit_info.value.code == 2
    assert "finite" in capsys.readouterr().err


def test_diverging_training_is_one_line_error(make_frame):
    frame = make_frame(380, 20, seed=1)
    split = split_indices(frame, "stratified", seed=0)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    config = TrainConfig(lr=1e20, epochs=3, batch_size=64)  # Adam steps of ~1e20 overflow the logits
    with pytest.raises(AdaptlabError, match=r"training diverged at epoch 1 \(non-finite loss\)"):
        train_mlp(X[split.train], y[split.train], X[split.val], y[split.val], config, progress=False)


def test_overflowing_adam_step_is_the_same_one_line_error(make_frame):
    frame = make_frame(380, 20, seed=1)
    split = split_indices(frame, "stratified", seed=0)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    config = TrainConfig(lr=1e38, epochs=3, batch_size=64)  # torch's Adam itself overflows converting the step
    with pytest.raises(AdaptlabError, match=r"training diverged at epoch 1"):
        train_mlp(X[split.train], y[split.train], X[split.val], y[split.val], config, progress=False)


# ------------------------------------------------------------------ one split function, sizes honoured

def test_time_split_keeps_the_reference_sizes_on_the_full_data_length():
    n = 284_807  # rows of the ULB file: the time split must stay 170,884 / 56,961 / 56,962
    train, val, test = split_positions(np.zeros(n), "time", times=np.arange(n))
    assert (len(train), len(val), len(test)) == (170_884, 56_961, 56_962)
    assert train[-1] == 170_883 and test[0] == 170_884 + 56_961


def test_time_split_honours_test_and_val_size(make_frame):
    frame = make_frame(960, 40, seed=2)
    split = split_indices(frame, "time", test_size=0.3, val_size=0.25)
    # 1000 rows: test 30% = 300 newest; of the other 700, 25% = 175 validate, 525 oldest train
    assert split.sizes() == {"train": 525, "val": 175, "test": 300}
    order = np.argsort(frame["Time"].to_numpy(), kind="stable")
    np.testing.assert_array_equal(split.test, np.sort(order[700:]))


@pytest.mark.parametrize("split_method", ["stratified", "time"])
def test_paper_protocol_resplits_with_the_configured_sizes(make_frame, split_method):
    from imblearn.over_sampling import RandomOverSampler

    frame = make_frame(760, 40, seed=4)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    split = split_indices(frame, split_method, 0, 0.3, 0.5)
    data = prepare_protocol(PAPER, RandomOverSampler(random_state=0), split_method, 0, X, y, split, 0.3, 0.5)
    n = 2 * 760  # random over-sampling to balance: 760 normal + 760 fraud rows
    assert sum(len(part.y) for part in data.parts()) == n
    if split_method == "stratified":  # sklearn rounds the test share up: ceil(0.3 * 1520) = 456
        assert (len(data.test.y), len(data.val.y)) == (456, 532)
    else:  # floor(0.35 * 1520) = 532 train, floor(0.35 * 1520) = 532 validation, the newest 456 test
        assert (len(data.train.y), len(data.val.y), len(data.test.y)) == (532, 532, 456)


# ------------------------------------------------------------------ too few frauds for a k-NN sampler

@pytest.mark.parametrize("resampler, sampler_class", [("smote", "SMOTE"), ("imblearn-adasyn", "ADASYN")])
def test_knn_sampler_with_too_few_training_frauds_is_one_line_error(make_frame, resampler, sampler_class):
    from adaptlab.fraud.compare import make_sampler

    frame = make_frame(992, 8, seed=1)  # 5 training frauds: k_neighbors=5 needs 6
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    split = split_indices(frame, "stratified", 0)
    assert int(y[split.train].sum()) == 5
    sampler = make_sampler(resampler, FraudConfig(), 0)
    with pytest.raises(AdaptlabError, match=rf"^{sampler_class} cannot resample the train rows "
                                            r"\(595 of class 0, 5 of class 1\): Expected n_neighbors"):
        prepare_protocol("safe", sampler, "stratified", 0, X, y, split)


def test_fraud_run_with_too_few_frauds_for_smote_exits_2(make_frame, tmp_path, capsys):
    from adaptlab.cli import main

    data = tmp_path / "few.csv"
    make_frame(992, 8, seed=1).to_csv(data, index=False)
    code = main(["fraud", "run", "--data", str(data), "--resampler", "smote", "--epochs", "1",
                 "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: SMOTE cannot resample the train rows") and "\n" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ------------------------------------------------------------------ datetime columns are not numbers

@pytest.mark.parametrize("convert", [lambda t: pd.to_datetime(t, unit="s"), lambda t: pd.to_timedelta(t, unit="s"),
                                     lambda t: pd.to_datetime(t, unit="s").dt.tz_localize("UTC")])
def test_datetime_or_timedelta_time_column_is_refused(make_frame, tmp_path, convert):
    from adaptlab.fraud.data import load_creditcard

    frame = make_frame(95, 5)
    frame["Time"] = convert(frame["Time"])
    path = tmp_path / "dated.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(AdaptlabError, match=r"dated.parquet: column Time holds (datetime|timedelta)64.* not numbers"):
        load_creditcard(path)


# ------------------------------------------------------------------ a damaged model folder, a bad --out

@pytest.fixture(scope="module")
def saved_model(make_frame, tmp_path_factory):
    """A small trained model saved by save_model, plus a CSV to score (original files, copy before damaging)."""
    from adaptlab.fraud.model import save_model

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
    import shutil

    run = tmp_path / "run"
    shutil.copytree(saved_model / "model", run / "model")
    damage(run / "model")
    return run


def _edit_json(name, edit):
    import json

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
    from adaptlab.cli import main

    damage, message = DAMAGES[what]
    run = _damaged_copy(saved_model, tmp_path, damage)
    assert main(["fraud", "score", str(run), str(saved_model / "rows.csv")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert re.search(message, err), err
    assert captured.out == ""


def test_score_out_to_a_folder_is_refused_without_leftovers(saved_model, tmp_path, capsys):
    from adaptlab.cli import main

    target = tmp_path / "scores"
    target.mkdir()
    assert main(["fraud", "score", str(saved_model), str(saved_model / "rows.csv"), "--out", str(target)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [target] and list(target.iterdir()) == []


def test_score_writes_no_temp_file_when_the_write_fails(saved_model, tmp_path, capsys, monkeypatch):
    from adaptlab.cli import main

    def full_disk(self, *args, **kwargs):
        Path(args[0]).write_text("row,prob")  # half a file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    out = tmp_path / "scores.csv"
    assert main(["fraud", "score", str(saved_model), str(saved_model / "rows.csv"), "--out", str(out)]) == 2
    assert "cannot write the scores" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ seeds and threads in range

@pytest.mark.parametrize("overrides, message", [
    ({"seed": -1}, r"seed must be an integer from 0 to 2\*\*32 - 1, not -1"),
    ({"seed": 2**32}, r"seed must be an integer from 0 to 2\*\*32 - 1, not 4294967296"),
    ({"threads": 100_000}, r"threads must be an integer from 1 to 1024, not 100000"),
    ({"threads": 0}, r"threads must be an integer from 1 to 1024, not 0"),
])
def test_seed_and_threads_out_of_range_are_refused(overrides, message):
    with pytest.raises(AdaptlabError, match=message):
        load_config(FraudConfig, None, overrides)


def test_seed_and_threads_at_the_limits_are_accepted():
    config = load_config(FraudConfig, None, {"seed": 2**32 - 1, "threads": 1024})
    assert (config.seed, config.threads) == (2**32 - 1, 1024)


def test_compare_refuses_a_negative_seed(capsys):
    from adaptlab.cli import main

    assert main(["fraud", "compare", "--seeds", "1,-1"]) == 2
    assert "seeds must be a non-empty list of integers from 0 to 2**32 - 1" in capsys.readouterr().err


def test_hidden_sizes_flag_needs_positive_integers(capsys):
    from adaptlab.cli import main

    with pytest.raises(SystemExit):
        main(["fraud", "run", "--hidden", "64,0"])
    assert "expected integers >= 1, got '64,0'" in capsys.readouterr().err


def test_paper_resplit_that_cannot_stratify_is_one_line_error():
    from adaptlab.fraud.protocols import prepare_paper

    class Unchanged:  # an over-sampler that adds nothing: the one fraud stays alone
        def fit_resample(self, X, y):
            return X, y

    X, y = np.zeros((50, 3)), np.array([0] * 49 + [1])
    with pytest.raises(AdaptlabError, match=r"^cannot split 50 rows with 1 frauds stratified: The least populated"):
        prepare_paper(X, y, Unchanged(), seed=0)
