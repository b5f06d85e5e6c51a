"""ADASYN: exact counts, geometry of synthetic rows, neighbourhoods vs brute force, fallback, determinism,
chunking, Pipeline use and parameter errors. Small synthetic blobs: these test the algorithm, not results."""

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from sklearn.linear_model import LogisticRegression

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.resample import ADASYN, ResamplerError, largest_remainder


def blobs(sizes, seed=0, n_features=3, spread=1.0):
    """Gaussian blob per class, centres 1.5 apart: overlapping, so neighbourhoods are mixed."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(1.5 * c, spread, (n, n_features)) for c, n in enumerate(sizes)])
    y = np.repeat(np.arange(len(sizes)), sizes)
    return X, y


def brute_force_neighbours(X, i, k, pool=None):
    """k nearest rows of row i among ``pool`` by (distance, index), i excluded by index: full sort."""
    pool = np.arange(len(X)) if pool is None else pool
    pool = pool[pool != i]
    dist = np.sqrt(((X[pool] - X[i]) ** 2).sum(axis=1))
    return pool[np.lexsort((pool, dist))[:k]]


@pytest.mark.parametrize(("ratio", "threshold"), [(1.0, 0.6), (0.5, 0.6), (0.25, 1.0), (2.0, 0.3), (0.0, 1.0)])
def test_exactly_g_rows_per_selected_class(ratio, threshold):
    sizes = [200, 40, 70, 130]  # ratios to the majority: 0.2, 0.35, 0.65
    X, y = blobs(sizes)
    X_res, y_res = ADASYN(ratio=ratio, imb_threshold=threshold, k=15, random_state=1).fit_resample(X, y)
    for cls, n in enumerate(sizes):
        expected = math.floor((200 - n) * ratio + 0.5) if n / 200 <= threshold else 0
        assert np.sum(y_res == cls) == n + expected
    assert len(X_res) == len(y_res)


def test_g_is_rounded_half_up_and_sums_exactly():
    X, y = blobs([100, 95])  # deficit 5, ratio 0.5 -> 2.5 -> 3 (half up), never 2 or 0
    sampler = ADASYN(ratio=0.5, imb_threshold=1.0, k=7, random_state=0)
    _, y_res = sampler.fit_resample(X, y)
    assert np.sum(y_res == 1) == 95 + 3
    assert sampler.sampling_strategy_ == {1: 3}
    assert sampler.samples_per_point_[1].sum() == 3


def test_input_rows_come_first_unchanged_then_synthetic_grouped_by_class_and_parent():
    X, y = blobs([120, 20, 30])
    sampler = ADASYN(k=10, random_state=3)
    X_res, y_res = sampler.fit_resample(X, y)
    assert np.array_equal(X_res[: len(X)], X) and np.array_equal(y_res[: len(y)], y)
    synthetic_labels = y_res[len(y):]
    assert np.all(np.diff(synthetic_labels) >= 0)  # class 1 block, then class 2 block
    parents = sampler.provenance_[:, 0]
    for cls in (1, 2):
        assert np.all(np.diff(parents[synthetic_labels == cls]) >= 0)
        counts = np.bincount(parents[synthetic_labels == cls], minlength=len(y))[y == cls]
        assert np.array_equal(counts, sampler.samples_per_point_[cls])


def test_synthetic_rows_lie_on_the_segment_between_same_class_parents():
    X, y = blobs([150, 25, 40], n_features=4)
    sampler = ADASYN(k=12, imb_threshold=0.5, random_state=5)
    X_res, y_res = sampler.fit_resample(X, y)
    new, labels = X_res[len(X):], y_res[len(y):]
    i, z = sampler.provenance_.T
    assert np.array_equal(y[i], labels) and np.array_equal(y[z], labels)
    assert np.all(i != z)
    # independent of steps_: project onto the parent segment and check the residual and the position
    direction = X[z] - X[i]
    lam = np.einsum("ij,ij->i", new - X[i], direction) / np.einsum("ij,ij->i", direction, direction)
    assert np.all((lam >= -1e-12) & (lam < 1 + 1e-12))
    np.testing.assert_allclose(new, X[i] + lam[:, None] * direction, atol=1e-12)
    np.testing.assert_allclose(lam, sampler.steps_, atol=1e-9)


def test_partners_are_class_mates_among_the_k_nearest():
    X, y = blobs([150, 25, 40])
    k = 12
    sampler = ADASYN(k=k, imb_threshold=0.5, random_state=2)
    sampler.fit_resample(X, y)
    for i, z in sampler.provenance_:
        if i in sampler.fallback_points_:
            continue
        assert z in brute_force_neighbours(X, i, k)


def test_neighbour_ratio_matches_brute_force_with_exact_duplicates():
    X, y = blobs([90, 20, 30], seed=4)
    X = np.vstack([X, X[95:99], X[3:5]])  # duplicates of fraud-like rows and of majority rows
    y = np.concatenate([y, y[95:99], y[3:5]])
    k = 9
    sampler = ADASYN(k=k, imb_threshold=1.0, random_state=0)
    sampler.fit_resample(X, y)
    for cls in (1, 2):
        members = np.flatnonzero(y == cls)
        expected = [np.mean(y[brute_force_neighbours(X, i, k)] != cls) for i in members]
        np.testing.assert_array_equal(sampler.neighbour_ratio_[cls], expected)


def test_exact_ties_on_a_grid_far_from_the_origin_go_to_the_lower_row_index():
    # integer grid + a large offset: many neighbours at exactly equal distance, and a product-based
    # distance loses digits here; the k-nearest sets must still be the brute-force (distance, index) ones
    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, size=(400, 3)).astype(np.float64) + np.array([1e6, 0.0, -5e5])
    y = (rng.random(400) < 0.15).astype(np.int64)
    k = 25
    sampler = ADASYN(k=k, imb_threshold=1.0, random_state=0, chunk_size=7)
    sampler.fit_resample(X, y)
    members = np.flatnonzero(y == 1)
    expected = [np.mean(y[brute_force_neighbours(X, i, k)] != 1) for i in members]
    np.testing.assert_array_equal(sampler.neighbour_ratio_[1], expected)
    for i, z in sampler.provenance_:
        if i not in sampler.fallback_points_:
            assert z in brute_force_neighbours(X, i, k)


def test_points_surrounded_by_another_class_get_samples_from_the_fallback_neighbourhood():
    rng = np.random.default_rng(0)
    majority = rng.normal(0, 1, (300, 2))
    minority = rng.normal(8, 0.5, (20, 2))
    lonely = np.array([[0.0, 0.0], [0.3, -0.2]])  # deep inside the majority, far from other minority rows
    X = np.vstack([majority, minority, lonely])
    y = np.array([0] * 300 + [1] * 22)
    k = 6
    sampler = ADASYN(k=k, random_state=0)
    sampler.fit_resample(X, y)
    hard = np.array([320, 321])
    ratio = sampler.neighbour_ratio_[1]
    assert np.all(ratio[-2:] == 1.0)  # all k neighbours of another class...
    counts = sampler.samples_per_point_[1]
    assert np.all(counts[-2:] > 0) and counts[-2:].min() >= counts[:-2].max()  # ...so they get the most
    assert set(hard) <= set(sampler.fallback_points_.tolist())
    members = np.flatnonzero(y == 1)
    for parent in hard:
        partners = sampler.provenance_[sampler.provenance_[:, 0] == parent, 1]
        allowed = brute_force_neighbours(X, parent, min(k, len(members) - 1), pool=members)
        assert len(partners) == counts[parent - 300] and set(partners) <= set(allowed)


def test_uniform_weights_with_a_warning_when_no_point_has_other_class_neighbours():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (60, 2)), rng.normal(50, 1, (10, 2))])
    y = np.array([0] * 60 + [1] * 10)
    sampler = ADASYN(k=3, random_state=0)
    with pytest.warns(UserWarning, match="uniformly"):
        _, y_res = sampler.fit_resample(X, y)
    assert np.sum(y_res == 1) == 60
    assert np.array_equal(sampler.samples_per_point_[1], [5] * 10)


def test_same_seed_same_output_other_seed_other_output():
    X, y = blobs([100, 15, 25])
    first = ADASYN(k=8, random_state=11).fit_resample(X, y)
    second = ADASYN(k=8, random_state=11).fit_resample(X, y)
    other = ADASYN(k=8, random_state=12).fit_resample(X, y)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_chunked_and_unchunked_neighbour_search_agree_exactly(chunk_size):
    X, y = blobs([300, 35, 60], n_features=5)
    X = np.vstack([X, X[310:315]])  # duplicates make ties that chunking must not reorder
    y = np.concatenate([y, y[310:315]])
    whole = ADASYN(k=40, random_state=4, imb_threshold=1.0)
    X_whole, _ = whole.fit_resample(X, y)
    chunked = ADASYN(k=40, random_state=4, imb_threshold=1.0, chunk_size=chunk_size)
    X_chunked, _ = chunked.fit_resample(X, y)
    assert np.array_equal(X_whole, X_chunked)
    assert np.array_equal(whole.provenance_, chunked.provenance_)


def test_matches_the_per_sample_reference_loop_bit_for_bit():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        from reference_adasyn import reference_adasyn
    finally:
        sys.path.pop(0)
    X, y = blobs([150, 18, 40], seed=6)
    X = np.vstack([X, X[150:153]])
    y = np.concatenate([y, y[150:153]])
    for k in (2, 11, 60):
        sampler = ADASYN(k=k, imb_threshold=0.7, random_state=9)
        X_res, y_res = sampler.fit_resample(X, y)
        X_ref, y_ref, provenance, per_point = reference_adasyn(X, y, k=k, imb_threshold=0.7, random_state=9)
        assert np.array_equal(X_res, X_ref) and np.array_equal(y_res, y_ref)
        assert np.array_equal(sampler.provenance_, provenance)
        for cls, counts in per_point.items():
            assert np.array_equal(sampler.samples_per_point_[cls], counts)


def test_dtypes_kept_and_integer_features_interpolated_as_floats():
    X, y = blobs([80, 20])
    X_res, y_res = ADASYN(k=5, random_state=0).fit_resample(X.astype(np.float32), y.astype(np.int32))
    assert X_res.dtype == np.float32 and y_res.dtype == np.int32
    X_int = np.rint(X * 10).astype(np.int64)
    X_res, y_res = ADASYN(k=5, random_state=0).fit_resample(X_int, y)
    assert X_res.dtype == np.float64 and y_res.dtype == y.dtype
    assert np.array_equal(X_res[: len(X_int)], X_int)


def test_sampling_strategy_picks_classes_and_deficit_before_ratio_and_threshold():
    X, y = blobs([200, 40, 60])
    sampler = ADASYN(k=10, ratio=0.5, imb_threshold=1.0, sampling_strategy={1: 100}, random_state=0)
    _, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [200, 40 + 30, 60]  # deficit 60, half of it
    assert sampler.sampling_strategy_ == {1: 30}


def test_works_as_a_step_of_an_imblearn_pipeline():
    X, y = blobs([200, 20])
    pipeline = Pipeline([("adasyn", ADASYN(k=10, random_state=0)), ("model", LogisticRegression())])
    pipeline.fit(X, y)
    assert np.sum(pipeline.named_steps["adasyn"].sampling_strategy_[1]) == 180
    assert pipeline.predict(X).shape == (220,)  # resampling happens in fit only


def test_largest_remainder_matches_exact_fractions_and_breaks_ties_by_position():
    rng = np.random.default_rng(0)
    for _ in range(50):
        weights = rng.integers(0, 30, size=rng.integers(1, 40))
        weights[0] += 1
        total = int(rng.integers(0, 5000))
        counts = largest_remainder(weights, total)
        quotas = [Fraction(int(w) * total, int(weights.sum())) for w in weights]
        assert counts.sum() == total
        assert all(math.floor(q) <= c <= math.floor(q) + 1 for q, c in zip(quotas, counts))
        got_extra = [c > math.floor(q) for q, c in zip(quotas, counts)]
        for a in range(len(weights)):  # nobody with a larger remainder (or equal, earlier) was skipped
            for b in range(len(weights)):
                rem_a, rem_b = quotas[a] - math.floor(quotas[a]), quotas[b] - math.floor(quotas[b])
                if got_extra[b] and not got_extra[a]:
                    assert rem_a < rem_b or (rem_a == rem_b and a > b)
    assert largest_remainder(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    ("params", "data", "message"),
    [
        ({"k": 0}, None, r"'k' parameter of ADASYN must be an int in the range \[1, inf\)"),
        ({"ratio": -0.5}, None, r"'ratio' parameter of ADASYN must be a float in the range \[0.0, inf\)"),
        ({"imb_threshold": 0.0}, None, r"'imb_threshold' parameter of ADASYN must be a float in the range "
                                       r"\(0.0, 1.0\]"),
        ({"imb_threshold": 1.5}, None, r"'imb_threshold' parameter"),
        ({"k": 40}, None, r"k=40 must be smaller than the number of samples \(40\)"),
        ({}, "one_point_class", r"class 1 has 1 sample; over-sampling a class needs at least 2"),
        ({}, "nan", r"Input X contains NaN"),
        ({}, "text", r"could not convert string to float"),
        ({}, "one_class", r"needs to have more than 1 class"),
    ],
)
def test_bad_parameters_and_inputs_are_one_line_errors(params, data, message):
    X, y = blobs([30, 10])
    if data == "one_point_class":
        X, y = X[:31], y[:31]
    elif data == "nan":
        X = X.copy()
        X[3, 1] = np.nan
    elif data == "text":
        X = X.astype(object)
        X[2, 0] = "abc"
    elif data == "one_class":
        y = np.zeros_like(y)
    sampler = ADASYN(**{"k": 3, **params})
    with pytest.raises(ResamplerError, match=message) as caught:
        sampler.fit_resample(X, y)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, AdaptlabError)
    assert "\n" not in str(caught.value)


def test_cli_prints_a_resampler_error_as_one_line_and_exit_code_2(capsys, monkeypatch):
    from adaptlab import cli

    def fetch_that_resamples(*args, **kwargs):
        return ADASYN(k=0).fit_resample(*blobs([20, 5]))

    monkeypatch.setattr(cli, "_call", fetch_that_resamples)  # any handler: the CLI's error path is shared
    code = cli.main(["data", "fetch", "creditcard", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ADASYN: The 'k' parameter") and err.count("\n") == 1
