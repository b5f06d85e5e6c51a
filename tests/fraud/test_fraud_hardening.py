"""Bad input and broken runs end in one-line AdaptlabErrors, never tracebacks (reviewer findings)."""

from __future__ import annotations

import numpy as np
import pytest

from adaptlab.core.config import load_config
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import FEATURES, LABEL, split_indices
from adaptlab.fraud.model import TrainConfig, train_mlp
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
