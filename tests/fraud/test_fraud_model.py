"""The MLP fit: train-only standardisation, seeding, early stopping, pos_weight, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import FEATURES, LABEL, split_indices
from adaptlab.fraud.config import TrainConfig
from adaptlab.fraud.model import (
    MLP,
    Standardizer,
    load_model,
    predict_proba,
    resolve_pos_weight,
    save_model,
    train_mlp,
)

FAST = dict(epochs=3, batch_size=64, patience=3)


@pytest.fixture
def arrays(make_frame):
    frame = make_frame(760, 40, seed=5)
    split = split_indices(frame, "stratified", seed=0)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    return X[split.train], y[split.train], X[split.val], y[split.val]


def test_standardizer_matches_sklearn_and_survives_json(make_frame):
    X = make_frame(50, 5)[FEATURES].to_numpy()
    X[:, 3] = 7.0  # a constant column must not divide by zero (sklearn also uses scale 1 there)
    ours = Standardizer().fit(X)
    theirs = StandardScaler().fit(X)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-5, atol=1e-5)
    again = Standardizer.from_dict(ours.to_dict())
    np.testing.assert_array_equal(again.transform(X), ours.transform(X))


def test_standardisation_is_fitted_on_training_rows_only(arrays):
    X_train, y_train, X_val, y_val = arrays
    X_val = X_val + 100.0  # validation from a shifted distribution: leaking it would move the mean
    result = train_mlp(X_train, y_train, X_val, y_val, TrainConfig(**FAST), progress=False)
    np.testing.assert_allclose(result.scaler.mean_, X_train.mean(axis=0))
    np.testing.assert_allclose(result.scaler.scale_, X_train.std(axis=0))


def test_early_stopping_says_so_and_the_bar_ends_at_the_last_epoch_run(arrays, capsys):
    config = TrainConfig(epochs=40, batch_size=64, patience=1, lr=0.05)
    result = train_mlp(*arrays, config, progress=True)
    assert result.stopped_early  # patience 1 on this small set stops long before 40 epochs
    run = len(result.history)
    err = capsys.readouterr().err
    last_line = err.strip().splitlines()[-1]
    assert last_line == f"stopped at epoch {run}, kept epoch {result.best_epoch} (no better validation AP for 1 epoch)"
    final_bar = err.split("\r")[-1].splitlines()[0]  # the bar's last redraw, before the message
    assert f"| {run}/40 [" in final_bar, final_bar
    assert result.stopping_note() == f"stopped at epoch {run}, kept epoch {result.best_epoch}"


def test_a_run_to_the_epoch_cap_says_it_ran_them_all(arrays, capsys):
    result = train_mlp(*arrays, TrainConfig(**FAST), progress=True)
    assert not result.stopped_early
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"ran all 3 epochs, kept epoch {result.best_epoch}"


def test_same_seed_same_model_other_seed_other_model(arrays):
    runs = [train_mlp(*arrays, TrainConfig(seed=s, **FAST), progress=False) for s in (1, 1, 2)]
    weights = [torch.cat([p.flatten() for p in r.model.parameters()]) for r in runs]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])
    assert runs[0].history == runs[1].history


def test_skipping_the_training_set_scores_changes_no_weight_and_no_validation_number(arrays):
    config = TrainConfig(epochs=6, batch_size=64, patience=2, lr=0.05, seed=4)
    full, lean = (train_mlp(*arrays, config, progress=False, score_train=flag) for flag in (True, False))
    assert all(torch.equal(a, b) for a, b in zip(full.model.parameters(), lean.model.parameters()))
    assert [{k: v for k, v in row.items() if not k.startswith("train_")} for row in full.history] == lean.history
    assert set(full.history[0]) - set(lean.history[0]) == {"train_loss", "train_accuracy", "train_ap"}
    assert lean.best_epoch == full.best_epoch


def test_early_stopping_restores_the_best_validation_epoch(arrays):
    X_train, y_train, X_val, y_val = arrays
    result = train_mlp(X_train, y_train, X_val, y_val, TrainConfig(epochs=25, batch_size=64, patience=2, lr=0.05),
                       progress=False)
    aps = [h["val_ap"] for h in result.history]
    assert result.best_epoch == int(np.argmax(aps)) + 1
    assert len(aps) == 25 or len(aps) == result.best_epoch + 2  # stopped exactly `patience` epochs later
    assert result.stopped_early == (len(aps) < 25)
    restored = average_precision_score(y_val, predict_proba(result.model, result.scaler, X_val))
    assert restored == pytest.approx(max(aps), abs=1e-6)
    assert set(result.history[0]) == {"epoch", "train_loss", "train_accuracy", "train_ap",
                                      "val_loss", "val_accuracy", "val_ap"}


def test_pos_weight_options():
    y = np.array([0] * 90 + [1] * 10)
    assert resolve_pos_weight(None, y) is None
    assert resolve_pos_weight("balanced", y) == 9.0
    assert resolve_pos_weight(2.5, y) == 2.5


def test_validation_without_both_classes_is_refused(arrays):
    X_train, y_train, X_val, y_val = arrays
    with pytest.raises(AdaptlabError, match="validation set needs both classes"):
        train_mlp(X_train, y_train, X_val, np.zeros_like(y_val), TrainConfig(**FAST), progress=False)


def test_thread_count_is_restored(arrays):
    before = torch.get_num_threads()
    train_mlp(*arrays, TrainConfig(threads=1, epochs=1), progress=False)
    assert torch.get_num_threads() == before


def test_architecture_follows_hidden_sizes():
    model = MLP(30, [16, 8, 4], dropout=0.1)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(30, 16), (16, 8), (8, 4), (4, 1)]
    assert model(torch.zeros(5, 30)).shape == (5,)


def test_save_and_load_give_identical_predictions(arrays, tmp_path):
    X_train, y_train, X_val, y_val = arrays
    config = TrainConfig(hidden_sizes=[8, 4], **FAST)
    result = train_mlp(X_train, y_train, X_val, y_val, config, progress=False)
    save_model(tmp_path / "model", result, features=FEATURES, threshold=0.3, threshold_rule="test", config=config)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "model.safetensors", "scaler.json"]
    model, scaler, meta = load_model(tmp_path / "model")
    assert meta["features"] == FEATURES and meta["threshold"] == 0.3 and meta["hidden_sizes"] == [8, 4]
    np.testing.assert_array_equal(predict_proba(model, scaler, X_val),
                                  predict_proba(result.model, result.scaler, X_val))
    (tmp_path / "model" / "scaler.json").unlink()
    with pytest.raises(AdaptlabError, match="missing scaler.json"):
        load_model(tmp_path / "model")


@pytest.mark.parametrize("pos_weight", [None, "balanced", 4.0])
def test_reported_loss_is_the_weighted_bce_of_the_kept_model(arrays, pos_weight):
    X_train, y_train, X_val, y_val = arrays
    result = train_mlp(X_train, y_train, X_val, y_val, TrainConfig(epochs=1, pos_weight=pos_weight), progress=False)
    p = predict_proba(result.model, result.scaler, X_train)
    w = {None: 1.0, "balanced": (y_train == 0).sum() / (y_train == 1).sum(), 4.0: 4.0}[pos_weight]
    by_hand = -np.mean(w * y_train * np.log(p) + (1 - y_train) * np.log(1 - p))
    assert result.history[0]["train_loss"] == pytest.approx(by_hand, rel=1e-4)


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
