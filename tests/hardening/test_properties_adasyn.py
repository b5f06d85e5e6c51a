"""Property-based checks of our ADASYN (adaptlab.fraud.resample) on random small imbalanced datasets.

Each example draws the class sizes, dimension, k, ratio, imb_threshold and a seed; the points come from a seeded
normal distribution (continuous: no distance ties, so a brute-force neighbour search is an independent oracle).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptlab.fraud.resample import ADASYN

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw, n_classes=st.integers(2, 3)):
    """``(X, y, params)``: a majority class of 8-30 rows, smaller classes of 2-12, d in 1..4 features."""
    classes = draw(n_classes)
    sizes = [draw(st.integers(8, 30))] + [draw(st.integers(2, 12)) for _ in range(classes - 1)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dim = draw(st.integers(1, 4))
    X = np.concatenate([rng.normal(loc=1.5 * c, size=(size, dim)) for c, size in enumerate(sizes)])
    y = np.repeat(np.arange(classes), sizes)
    order = rng.permutation(len(y))  # classes interleaved in row order, as in real data
    params = dict(k=draw(st.integers(1, min(25, len(y) - 1))), ratio=draw(st.floats(0, 2)),
                  imb_threshold=draw(st.floats(0.05, 1)), random_state=draw(st.integers(0, 2**32 - 1)))
    return X[order], y[order], params


def expected_counts(y: np.ndarray, ratio: float, imb_threshold: float) -> dict[int, int]:
    """The documented plan: G = round-half-up((N_majority - N_c) * ratio) for each non-majority class with
    N_c / N_majority <= imb_threshold, else 0."""
    labels, counts = np.unique(y, return_counts=True)
    majority = counts.max()
    plan = {}
    for label, count in zip(labels.tolist(), counts.tolist()):
        eligible = count < majority and count / majority <= imb_threshold
        plan[label] = math.floor((majority - count) * ratio + 0.5) if eligible else 0
    return {label: n for label, n in plan.items() if counts[labels == label][0] < majority or n}


def nearest(X: np.ndarray, row: int, candidates: np.ndarray, k: int) -> np.ndarray:
    """Brute force: the k candidates nearest to X[row] (itself excluded), ties to the lower row index."""
    candidates = candidates[candidates != row]
    distances = ((X[candidates] - X[row]) ** 2).sum(axis=1)
    return candidates[np.lexsort((candidates, distances))[:k]]


@PROPERTY_SETTINGS
@given(datasets())
def test_input_rows_first_counts_as_documented_points_on_segments(data):
    X, y, params = data
    sampler = ADASYN(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # uniform weights when every r_i is 0
        X_res, y_res = sampler.fit_resample(X, y)
    n = len(y)
    np.testing.assert_array_equal(X_res[:n], X)  # the original rows unchanged, in order
    np.testing.assert_array_equal(y_res[:n], y)

    plan = expected_counts(y, params["ratio"], params["imb_threshold"])
    new_labels = y_res[n:]
    for label, count in plan.items():
        assert int(np.sum(new_labels == label)) == count == sampler.sampling_strategy_.get(label, 0)
    assert len(new_labels) == sum(plan.values())
    assert list(new_labels) == sorted(new_labels)  # grouped by class, ascending

    parents, partners = sampler.provenance_[:, 0], sampler.provenance_[:, 1]
    steps = sampler.steps_
    assert np.all((steps >= 0) & (steps < 1))
    assert np.all(y[parents] == new_labels) and np.all(y[partners] == new_labels)  # class mates
    assert np.all(parents != partners)
    np.testing.assert_allclose(X_res[n:], X[parents] + steps[:, None] * (X[partners] - X[parents]),
                               rtol=1e-12, atol=1e-12)
    fallback = set(sampler.fallback_points_.tolist())
    k = params["k"]
    for parent, partner in set(zip(parents.tolist(), partners.tolist())):
        members = np.flatnonzero(y == y[parent])
        neighbours = nearest(X, parent, np.arange(n), k)
        if parent in fallback:  # no class mate among its k nearest: its min(k, N_c - 1) nearest class mates
            assert not np.any(y[neighbours] == y[parent])
            assert partner in nearest(X, parent, members, min(k, len(members) - 1))
        else:
            assert partner in neighbours


@PROPERTY_SETTINGS
@given(datasets())
def test_same_seed_same_output_and_largest_remainder_split(data):
    X, y, params = data
    first, second = ADASYN(**params), ADASYN(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # uniform weights when every r_i is 0: checked below
        X1, y1 = first.fit_resample(X, y)
        X2, y2 = second.fit_resample(X, y)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    for label, per_point in first.samples_per_point_.items():
        total = first.sampling_strategy_[label]
        r = first.neighbour_ratio_[label]
        # the documented difficulty: the share of each point's k nearest rows (whole data) of another class
        members = np.flatnonzero(y == label)
        expected_r = [np.mean(y[nearest(X, i, np.arange(len(y)), params["k"])] != label) for i in members]
        np.testing.assert_allclose(r, expected_r)
        weights = r if r.sum() > 0 else np.ones_like(r)
        quota = weights / weights.sum() * total
        assert per_point.sum() == total and np.all(np.abs(per_point - quota) < 1)  # largest remainder


@PROPERTY_SETTINGS
@given(datasets(n_classes=st.just(2)))
def test_total_against_imbalanced_learn_rounding(data):
    """imbalanced-learn rounds each point's share on its own (np.rint), so its total can miss G (docs/benchmarks.md);
    with the same k and ratio 1 its total is exactly that per-point rounding of our r_i, and ours is exactly G."""
    from imblearn.over_sampling import ADASYN as ImblearnADASYN

    X, y, params = data
    counts = np.bincount(y)
    if counts[0] == counts[1]:
        return  # no minority class: nothing to generate for either
    minority = int(np.argmin(counts))
    k = min(params["k"], int(np.sum(y == minority)) - 1)  # imblearn also needs k class mates per point
    ours = ADASYN(k=k, ratio=1.0, imb_threshold=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the all-r_i-zero warning: that case is skipped below
        X_ours, _ = ours.fit_resample(X, y)
    r = ours.neighbour_ratio_[minority]
    if r.sum() == 0:
        return  # imbalanced-learn refuses this case (RuntimeError); ours weighs points uniformly
    G = int(np.bincount(y).max() - np.sum(y == minority))
    assert len(X_ours) - len(y) == G
    theirs_expected = int(np.rint(r / r.sum() * G).sum())
    if theirs_expected == 0:  # every share rounds to 0: imbalanced-learn refuses
        with pytest.raises(ValueError, match="No samples will be generated"):
            ImblearnADASYN(n_neighbors=k, random_state=0).fit_resample(X, y)
        return
    X_theirs, _ = ImblearnADASYN(n_neighbors=k, random_state=0).fit_resample(X, y)
    assert len(X_theirs) - len(y) == theirs_expected


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k_is_a_one_line_resampler_error(k):
    from adaptlab.fraud.resample import ResamplerError

    X = np.random.default_rng(0).normal(size=(12, 2))
    with pytest.raises(ResamplerError) as info:
        ADASYN(k=k).fit_resample(X, np.array([0] * 9 + [1] * 3))
    assert "\n" not in str(info.value)
