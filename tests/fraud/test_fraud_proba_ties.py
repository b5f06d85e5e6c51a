"""Fraud probabilities keep the ranking of large logits (no float32 saturation ties at 1.0)."""

from __future__ import annotations

import numpy as np
import torch

from adaptlab.fraud.model import MLP, Standardizer, predict_proba


def test_large_logits_stay_distinct_and_ordered():
    model = MLP(1, [], dropout=0.0)  # a single Linear(1, 1): logit = x
    with torch.no_grad():
        model.net[0].weight.fill_(1.0)
        model.net[0].bias.zero_()
    scaler = Standardizer()
    scaler.mean_, scaler.scale_ = np.zeros(1), np.ones(1)
    logits = np.array([[18.0], [22.0], [26.0], [30.0], [34.0]])  # all 1.0 in a float32 sigmoid
    assert (torch.sigmoid(torch.tensor(logits, dtype=torch.float32)) == 1.0).all()
    probability = predict_proba(model, scaler, logits)
    assert probability.dtype == np.float64
    assert np.all(np.diff(probability) > 0) and np.all(probability < 1.0)
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-logits[:, 0])), rtol=0, atol=1e-15)
