"""Bootstrap average precision against scikit-learn."""

from __future__ import annotations

import numpy as np


def test_resampled_average_precision_equals_sklearn_on_each_resample():
    """Against sklearn on the drawn rows themselves: tied scores (some groups mixing both classes),
    groups no resample drew, a positive ranked first and one ranked last."""
    from sklearn.metrics import average_precision_score

    from adaptlab.core.metrics import resampled_average_precision

    rng = np.random.default_rng(7)
    y = (rng.random(3000) < 0.02).astype(int)
    scores = np.round(rng.random(3000) * 0.6 + 0.4 * y, 2)  # ~100 distinct values: heavy ties
    scores[np.flatnonzero(y)[0]], scores[np.flatnonzero(y)[1]] = 2.0, -1.0
    resamples = [np.r_[np.flatnonzero(y)[2], rng.choice(3000, size=n)] for n in (3000, 3000, 500, 40)]
    resamples.append(np.flatnonzero(y))  # only positives: AP 1
    expected = [average_precision_score(y[i], scores[i]) for i in resamples]
    got = resampled_average_precision(y, scores, resamples)
    assert got.shape == (5,) and got[-1] == 1.0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
