"""Safe vs paper protocol: what the resampler sees, provenance in original ids, and the scoring guard."""

import dataclasses

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import FEATURES, LABEL, split_indices, split_positions
from adaptlab.fraud.protocols import (
    NO_ROW,
    PAPER,
    SAFE,
    UNKNOWN_PARENT,
    LeakageError,
    Part,
    guard_scoring,
    mark_leaky,
    prepare,
    prepare_paper,
    prepare_protocol,
    prepare_safe,
)
from adaptlab.fraud.resample import ADASYN


@pytest.fixture
def data():
    """600 normal + 40 rare rows, overlapping; rows shuffled so ids and classes are interleaved."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (600, 3)), rng.normal(1.2, 1, (40, 3))])
    y = np.array([0] * 600 + [1] * 40)
    order = rng.permutation(len(y))
    return X[order], y[order]


@pytest.fixture
def split(data):
    return split_positions(data[1], "stratified", seed=3)


def test_safe_protocol_resamples_training_rows_only(data, split):
    X, y = data
    prepared = prepare_safe(X, y, split, ADASYN(k=10, random_state=0))
    train, val, test = split
    assert not prepared.leaky and prepared.protocol == SAFE
    for part, positions in ((prepared.val, val), (prepared.test, test)):
        assert np.array_equal(part.row_ids, positions) and np.array_equal(part.X, X[positions])
        assert not part.synthetic.any() and np.all(part.parent_ids == NO_ROW)
    n_train_rare = int(y[train].sum())
    assert prepared.train.synthetic.sum() == (len(train) - n_train_rare) - n_train_rare  # exact G, ratio 1
    parents = prepared.train.parent_ids[prepared.train.synthetic]
    assert set(parents.ravel()) <= set(train.tolist())  # every parent is a training row...
    assert not np.isin(parents, np.concatenate([val, test])).any()  # ...never a validation or test row
    assert np.all(y[parents] == 1)


def test_safe_provenance_is_in_original_row_ids(data, split):
    X, y = data
    prepared = prepare_safe(X, y, split, ADASYN(k=10, random_state=0))
    synthetic = prepared.train.synthetic
    i, z = prepared.train.parent_ids[synthetic].T
    new = prepared.train.X[synthetic]
    # each synthetic row lies on the segment between the two *original* rows named by its parent ids
    direction = X[z] - X[i]
    lam = np.einsum("ij,ij->i", new - X[i], direction) / np.einsum("ij,ij->i", direction, direction)
    np.testing.assert_allclose(new, X[i] + lam[:, None] * direction, atol=1e-12)
    assert np.all((lam >= 0) & (lam < 1))


def test_safe_guard_lets_val_and_test_be_scored_and_refuses_train(data, split):
    prepared = prepare_safe(*data, split, ADASYN(k=10, random_state=0))
    for name in ("val", "test"):
        report = guard_scoring(prepared, name)
        assert (report.synthetic_rows, report.parent_rows, report.training_rows, report.leaky) == (0, 0, 0, False)
    with pytest.raises(LeakageError, match="training part"):
        guard_scoring(prepared, "train")


def test_paper_protocol_puts_synthetic_rows_and_parents_in_test_and_is_marked_leaky(data):
    X, y = data
    prepared = prepare(X, y, protocol=PAPER, sampler=ADASYN(k=10, random_state=0), seed=3)
    assert prepared.leaky and prepared.protocol == PAPER
    n_total = len(y) + (600 - 40)
    assert sum(len(part.y) for part in prepared.parts()) == n_total
    assert len(prepared.test.y) == round(0.2 * n_total)
    assert prepared.test.synthetic.sum() > 0
    report = guard_scoring(prepared, "test")  # allowed, because the paper protocol was asked for...
    assert report.leaky and report.synthetic_rows == prepared.test.synthetic.sum()
    assert report.parent_rows > 0 and report.parent_rows == prepared.summary()["test"][
        "parents_of_training_synthetic_rows"]
    # ...and the same split presented as safe is refused
    with pytest.raises(LeakageError, match=r"refusing to score the test part: it holds \d+ synthetic"):
        guard_scoring(dataclasses.replace(prepared, leaky=False, protocol=SAFE), "test")


def test_paper_protocol_accepts_a_custom_splitter_over_the_resampled_rows(data):
    def newest_last(X, y, seed):  # a "time" split on feature 0 of the resampled rows
        order = np.argsort(X[:, 0], kind="stable")
        n = len(order)
        return order[: int(0.6 * n)], order[int(0.6 * n): int(0.8 * n)], order[int(0.8 * n):]

    prepared = prepare_paper(*data, ADASYN(k=10, random_state=0), seed=0, splitter=newest_last)
    assert prepared.train.X[:, 0].max() <= prepared.val.X[:, 0].min()
    assert prepared.val.X[:, 0].max() <= prepared.test.X[:, 0].min()
    assert prepared.leaky and guard_scoring(prepared, "test").leaky


def test_guard_catches_a_parent_row_without_any_synthetic_row(data, split):
    prepared = prepare_safe(*data, split, ADASYN(k=10, random_state=0))
    parent = int(prepared.train.parent_ids[prepared.train.synthetic][0, 0])
    X, y = data
    tampered = Part("test", np.vstack([prepared.test.X, X[[parent]]]), np.append(prepared.test.y, y[parent]),
                    np.append(prepared.test.row_ids, parent), np.vstack([prepared.test.parent_ids, [[NO_ROW] * 2]]))
    with pytest.raises(LeakageError, match=r"1 parent\(s\) of synthetic training rows and 1 training row"):
        guard_scoring(dataclasses.replace(prepared, test=tampered), "test")


def test_samplers_without_provenance_are_guarded_by_the_rows_they_saw(data, split):
    safe = prepare_safe(*data, split, SMOTE(random_state=0))
    synthetic = safe.train.synthetic
    assert synthetic.sum() > 0 and np.all(safe.train.parent_ids[synthetic] == UNKNOWN_PARENT)
    assert guard_scoring(safe, "test").parent_rows == 0  # val/test were never shown to SMOTE
    paper = prepare_paper(*data, SMOTE(random_state=0), seed=3)
    report = guard_scoring(paper, "test")  # any original test row may have been a parent
    assert report.parent_rows == (~paper.test.synthetic).sum()


def test_random_oversampling_records_the_copied_row_as_both_parents(data, split):
    X, y = data
    prepared = prepare_safe(X, y, split, RandomOverSampler(random_state=0))
    synthetic = prepared.train.synthetic
    parents = prepared.train.parent_ids[synthetic]
    assert np.array_equal(parents[:, 0], parents[:, 1])
    assert np.array_equal(prepared.train.X[synthetic], X[parents[:, 0]])


def test_no_sampler_keeps_the_split_as_it_is(data, split):
    prepared = prepare(*data, protocol=SAFE, split=split)
    assert np.array_equal(prepared.train.row_ids, split[0]) and not prepared.train.synthetic.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "oversample-first"}, "unknown protocol 'oversample-first'"),
        ({"protocol": SAFE}, "needs the train/val/test split"),
        ({"protocol": PAPER}, "give it a sampler"),
        ({"protocol": SAFE, "split": (np.arange(10), np.arange(5, 20), np.arange(20, 30))},
         "train and val share 5 row"),
        ({"protocol": SAFE, "split": (np.arange(10), np.array([700]), np.arange(20, 30))}, "outside 0..639"),
    ],
)
def test_bad_protocol_requests_are_clear_errors(data, kwargs, message):
    with pytest.raises(AdaptlabError, match=message):
        prepare(*data, **kwargs)


def test_mark_leaky_labels_only_leaky_outputs():
    assert mark_leaky("ADASYN (paper protocol)", True) == "LEAKY: ADASYN (paper protocol)"
    assert mark_leaky("ADASYN (safe)", False) == "ADASYN (safe)"


@pytest.mark.slow
def test_real_data_safe_protocol_never_uses_held_out_rows(real_frame):
    from adaptlab.fraud.data import FEATURES, LABEL, split_indices

    split = split_indices(real_frame, "stratified", seed=42)
    X, y = real_frame[FEATURES].to_numpy(), real_frame[LABEL].to_numpy()
    prepared = prepare_safe(X, y, split, ADASYN(random_state=0))  # the reference configuration, k=5000
    assert len(split.train) == 170_883
    n_fraud = int(y[split.train].sum())
    assert prepared.train.synthetic.sum() == 170_883 - 2 * n_fraud
    parents = prepared.train.parents_of_synthetic()
    assert np.isin(parents, split.train).all() and not np.isin(parents, np.concatenate([split.val, split.test])).any()
    assert guard_scoring(prepared, "test").parent_rows == 0


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


def test_paper_resplit_that_cannot_stratify_is_one_line_error():
    class Unchanged:  # an over-sampler that adds nothing: the one fraud stays alone
        def fit_resample(self, X, y):
            return X, y

    X, y = np.zeros((50, 3)), np.array([0] * 49 + [1])
    with pytest.raises(AdaptlabError, match=r"^cannot split 50 rows with 1 frauds stratified: The least populated"):
        prepare_paper(X, y, Unchanged(), seed=0)
