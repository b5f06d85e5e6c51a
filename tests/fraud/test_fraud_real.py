"""The full real ULB data: the published counts and the reference split sizes."""

from __future__ import annotations

import numpy as np
import pytest

from adaptlab.fraud.data import LABEL, load_creditcard, split_indices
from adaptlab.fraud.analysis import class_summary

pytestmark = pytest.mark.slow


def test_full_data_counts_and_splits(real_creditcard):
    frame = load_creditcard(real_creditcard)  # the cached parquet passes the schema check again
    summary = class_summary(frame)
    assert (summary["normal"], summary["fraud"]) == (284_315, 492)
    assert f"{100 * summary['never_fraud_accuracy']:.2f}" == "99.83"
    stratified = split_indices(frame, "stratified", seed=42)
    assert stratified.sizes() == {"train": 170_883, "val": 56_962, "test": 56_962}
    labels = frame[LABEL].to_numpy()
    assert [int(labels[p].sum()) for _, p in stratified.items()] == [295, 99, 98]  # 492 kept at 0.17% each
    by_time = split_indices(frame, "time")
    assert by_time.sizes() == {"train": 170_884, "val": 56_961, "test": 56_962}
    time = frame["Time"].to_numpy()
    assert time[by_time.train].max() <= time[by_time.val].min() <= time[by_time.val].max() <= time[by_time.test].min()
    assert np.concatenate([p for _, p in by_time.items()]).size == 284_807
