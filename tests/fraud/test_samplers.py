"""The sampler table: every resampler builds from a config, runs on standardised features and gives raw rows
back; a k-NN sampler with too few frauds is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from adaptlab.cli import main
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.config import CompareConfig, FraudConfig
from adaptlab.fraud.data import FEATURES, LABEL, split_indices
from adaptlab.fraud.protocols import prepare_protocol
from adaptlab.fraud.resample import ADASYN
from adaptlab.fraud.samplers import RESAMPLERS, Standardised, make_sampler


def test_none_builds_no_sampler_and_every_name_builds_a_seeded_one():
    assert make_sampler("none", FraudConfig(), 0) is None
    config = FraudConfig(adasyn_k=77, imblearn_adasyn_neighbors=3)
    for name in RESAMPLERS:
        sampler = make_sampler(name, config, 123)
        assert isinstance(sampler, Standardised) and sampler.get_params()["random_state"] == 123
    assert make_sampler("adasyn", config, 0).get_params()["k"] == 77
    assert make_sampler("imblearn-adasyn", config, 0).get_params()["n_neighbors"] == 3
    # the comparison's config carries the same resampler settings
    assert make_sampler("adasyn", CompareConfig(adasyn_k=9), 0).get_params()["k"] == 9


def test_an_unknown_name_is_refused():
    with pytest.raises(AdaptlabError, match="unknown resampler 'adasin'; choose from none, random-over"):
        make_sampler("adasin", FraudConfig(), 0)


def test_standardised_sampler_returns_raw_rows_on_the_parent_segments(make_frame):
    frame = make_frame(300, 20, seed=1)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    wrapped = Standardised(ADASYN(k=30, random_state=0))
    X_res, y_res = wrapped.fit_resample(X, y)
    assert np.array_equal(X_res[:len(X)], X) and np.array_equal(y_res[:len(y)], y)
    new, (i, z) = X_res[len(X):], wrapped.provenance_.T
    steps = wrapped.sampler.steps_[:, None]
    np.testing.assert_allclose(new, X[i] + steps * (X[z] - X[i]), rtol=1e-9, atol=1e-6)  # raw units
    from imblearn.over_sampling import RandomOverSampler
    copies = Standardised(RandomOverSampler(random_state=0))
    X_copy, _ = copies.fit_resample(X, y)
    assert np.array_equal(X_copy[len(X):], X[copies.sample_indices_[len(X):]])  # exact copies


@pytest.mark.parametrize("resampler, sampler_class", [("smote", "SMOTE"), ("imblearn-adasyn", "ADASYN")])
def test_knn_sampler_with_too_few_training_frauds_is_one_line_error(make_frame, resampler, sampler_class):
    frame = make_frame(992, 8, seed=1)  # 5 training frauds: k_neighbors=5 needs 6
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    split = split_indices(frame, "stratified", 0)
    assert int(y[split.train].sum()) == 5
    sampler = make_sampler(resampler, FraudConfig(), 0)
    with pytest.raises(AdaptlabError, match=rf"^{sampler_class} cannot resample the train rows "
                                            r"\(595 of class 0, 5 of class 1\): Expected n_neighbors"):
        prepare_protocol("safe", sampler, "stratified", 0, X, y, split)


def test_fraud_run_with_too_few_frauds_for_smote_exits_2(make_frame, tmp_path, capsys):
    data = tmp_path / "few.csv"
    make_frame(992, 8, seed=1).to_csv(data, index=False)
    code = main(["fraud", "run", "--data", str(data), "--resampler", "smote", "--epochs", "1",
                 "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: SMOTE cannot resample the train rows") and "\n" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
