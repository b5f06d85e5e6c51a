"""The over-samplers a fraud run or comparison can use, built from a config, on standardised features.

:data:`RESAMPLERS` is the one table of resampler names; ``fraud run --resampler NAME`` and the rows of
``fraud compare`` both build their sampler through :func:`make_sampler`.

k-NN resamplers (SMOTE, both ADASYNs) see *standardised* features (statistics of the rows they
resample): on raw features the Euclidean distance is Time (seconds, range ~172,800) and Amount (EUR)
and nothing else. Interpolation commutes with that affine map, so synthetic rows come back in raw units.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from adaptlab.errors import AdaptlabError

NO_RESAMPLER = "none"


def _random_over(settings, seed: int):
    from imblearn.over_sampling import RandomOverSampler
    return RandomOverSampler(random_state=seed)


def _smote(settings, seed: int):
    from imblearn.over_sampling import SMOTE
    return SMOTE(random_state=seed)  # k_neighbors=5, imbalanced-learn's default


def _our_adasyn(settings, seed: int):
    from adaptlab.fraud.resample import ADASYN
    return ADASYN(ratio=settings.adasyn_ratio, imb_threshold=settings.adasyn_imb_threshold, k=settings.adasyn_k,
                  random_state=seed)


def _imblearn_adasyn(settings, seed: int):
    from imblearn.over_sampling import ADASYN
    return ADASYN(n_neighbors=settings.imblearn_adasyn_neighbors, random_state=seed)


# name -> (what it is, factory(settings, seed) -> an imbalanced-learn over-sampler); ``settings`` is any
# object with the adasyn_* / imblearn_adasyn_neighbors keys (a fraud run's or comparison's config)
RESAMPLERS: dict[str, tuple[str, Callable]] = {
    "random-over": ("random over-sampling (imblearn RandomOverSampler)", _random_over),
    "smote": ("SMOTE (imblearn, k_neighbors=5)", _smote),
    "adasyn": ("our ADASYN (reference semantics)", _our_adasyn),
    "imblearn-adasyn": ("imblearn ADASYN (n_neighbors=5)", _imblearn_adasyn),
}


def describe(name: str) -> str:
    """What the resampler ``name`` is, in words (for reports)."""
    return RESAMPLERS[name][0]


class Standardised:
    """Run an over-sampler on standardised features and give its rows back in raw units.

    The input rows are returned exactly as given; new rows are mapped back with the inverse scaling
    (copies of random over-sampling are taken from the raw rows, bit for bit). The sampler's provenance
    (``provenance_`` or ``sample_indices_``) is exposed unchanged for the leakage protocols.
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def get_params(self) -> dict:
        """The wrapped sampler's parameters (what a run records)."""
        return self.sampler.get_params()

    def fit_resample(self, X, y):
        from sklearn.preprocessing import StandardScaler

        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        scaler = StandardScaler().fit(X)
        scaled = scaler.transform(X)
        X_res, y_res = self.sampler.fit_resample(scaled, y)
        X_res, y_res = np.asarray(X_res), np.asarray(y_res)
        if not (np.array_equal(X_res[:len(X)], scaled) and np.array_equal(y_res[:len(y)], y)):
            raise AdaptlabError(f"{type(self.sampler).__name__} did not return its input rows first and unchanged")
        if hasattr(self.sampler, "sample_indices_"):
            self.sample_indices_ = np.asarray(self.sampler.sample_indices_)
            new = X[self.sample_indices_[len(X):]]
        else:
            new = scaler.inverse_transform(X_res[len(X):])
        if hasattr(self.sampler, "provenance_"):
            self.provenance_ = self.sampler.provenance_
        return np.vstack([X, new]), y_res


def make_sampler(name: str, settings, seed: int) -> Standardised | None:
    """The over-sampler ``name`` (a key of :data:`RESAMPLERS`, or ``none`` for None) built from
    ``settings``, seeded, running on standardised features (see the module docstring)."""
    if name == NO_RESAMPLER:
        return None
    if name not in RESAMPLERS:
        raise AdaptlabError(f"unknown resampler {name!r}; choose from {NO_RESAMPLER}, {', '.join(RESAMPLERS)}")
    return Standardised(RESAMPLERS[name][1](settings, seed))
