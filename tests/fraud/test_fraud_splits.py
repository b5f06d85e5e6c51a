"""Split sizes, stratification (exact counts), disjointness, seeding and the time order."""

from __future__ import annotations

import numpy as np
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import split_indices, split_positions


def _check_partition(split, n):
    together = np.concatenate([split.train, split.val, split.test])
    assert len(together) == n and len(np.unique(together)) == n  # disjoint and covering
    for _, part in split.items():
        assert np.all(np.diff(part) > 0)  # sorted positions


def test_stratified_sizes_and_fraud_counts_are_exact(make_frame):
    frame = make_frame(950, 50)
    split = split_indices(frame, "stratified", seed=0)
    _check_partition(split, 1000)
    # 20% of 1000 is test; 25% of the remaining 800 is validation; the 5% fraud rate holds in each part
    assert split.sizes() == {"train": 600, "val": 200, "test": 200}
    labels = frame["Class"].to_numpy()
    assert [int(labels[p].sum()) for _, p in split.items()] == [30, 10, 10]


def test_stratified_is_seeded(make_frame):
    frame = make_frame(950, 50)
    a, b, c = (split_indices(frame, "stratified", seed=s) for s in (7, 7, 8))
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.test, c.test)


def test_time_split_is_ordered_oldest_to_newest(make_frame):
    frame = make_frame(970, 30, seed=3).sample(frac=1.0, random_state=1).reset_index(drop=True)  # file order != time
    split = split_indices(frame, "time", seed=0)
    _check_partition(split, 1000)
    assert split.sizes() == {"train": 600, "val": 200, "test": 200}
    time = frame["Time"].to_numpy()
    assert time[split.train].max() <= time[split.val].min()
    assert time[split.val].max() <= time[split.test].min()
    np.testing.assert_array_equal(split.test, np.sort(np.argsort(time, kind="stable")[800:]))


def test_too_few_frauds_and_unknown_method_are_clear_errors(make_frame):
    with pytest.raises(AdaptlabError, match="stratified"):
        split_indices(make_frame(100, 1), "stratified")
    late_frauds = make_frame(100, 3).assign(Class=[0] * 100 + [1] * 3)  # all frauds are the newest rows
    with pytest.raises(AdaptlabError, match="train part .* only one class"):
        split_indices(late_frauds, "time")
    with pytest.raises(AdaptlabError, match="unknown split 'random'"):
        split_indices(make_frame(100, 10), "random")


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
