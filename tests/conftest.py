"""Fixtures shared by several test folders: small hand-made fraud frames (fraud study and its server)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adaptlab.fraud.data import COLUMNS, FEATURES, LABEL


def _make_frame(n_normal: int, n_fraud: int, seed: int = 0) -> pd.DataFrame:
    """A valid ULB-shaped frame: frauds shifted on V1..V4 so a model can learn them; Time increasing."""
    rng = np.random.default_rng(seed)
    n = n_normal + n_fraud
    labels = np.array([0] * n_normal + [1] * n_fraud)
    rng.shuffle(labels)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    frame.loc[labels == 1, ["V1", "V2", "V3", "V4"]] += 3.0
    frame["Time"] = np.sort(rng.uniform(0, 172_800, n)).round()
    frame["Amount"] = rng.exponential(80, n).round(2)
    frame[LABEL] = labels
    return frame[COLUMNS]


@pytest.fixture(scope="session")  # a pure function: safe to share, and usable by module-scoped fixtures
def make_frame():
    """``make_frame(n_normal, n_fraud, seed=0)`` -> a small valid frame (see :func:`_make_frame`)."""
    return _make_frame
