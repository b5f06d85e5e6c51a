"""ADASYN with the reference study's semantics, as an imbalanced-learn over-sampler.

For each class ``c`` that is rare enough (``N_c / N_majority <= imb_threshold``):

1. ``G = round((N_majority - N_c) * ratio)`` synthetic rows are made, exactly G (rounded half up).
2. ``r_i`` = share of x_i's k nearest neighbours (Euclidean, whole training data, x_i itself excluded by
   *index*, so exact duplicates count) that are not of class c. Ties in distance go to the lower row index.
3. ``g_i = r_i / sum(r) * G``, rounded by largest remainder: everybody gets ``floor(g_i)``; the rows still
   missing go to the largest fractional parts, equal parts to the lower row index. Computed in exact
   integer arithmetic, so sum(g) == G always. If every r_i is 0, all points weigh the same (warning).
4. Each synthetic row is ``x_i + lambda * (x_z - x_i)``, lambda ~ U[0, 1), x_z drawn uniformly from x_i's
   *same-class* points among its k nearest neighbours. **Fallback** (the reference skips such points, yet
   they are the hardest ones, the ones ADASYN exists for): a point with no class mate among its k nearest
   neighbours uses its ``min(k, N_c - 1)`` nearest class mates instead, i.e. SMOTE's class-restricted
   neighbourhood of the same size k.

Randomness: per class (ascending label), one ``random_state.random_sample((G, 2))`` draw; row s gives
``u`` (neighbour pick: the ``min(floor(u * m), m - 1)``-th of the m candidate neighbours, listed in
ascending row order) and ``lambda``. Output order: the input rows unchanged, then the synthetic rows,
grouped by class (ascending), then by parent (ascending row), ``g_i`` consecutive rows per parent.

``sampling_strategy`` (imbalanced-learn's parameter) chooses which classes are candidates and the deficit
to fill; ``ratio`` scales that deficit and ``imb_threshold`` filters classes. With the default ``"auto"``
(every class but the majority, deficit ``N_majority - N_c``) this is exactly the reference semantics.
After ``fit_resample``, ``sampling_strategy_`` holds the number of rows actually generated per class.

Errors: parameters and inputs are checked in ``fit_resample`` (sklearn convention: ``__init__`` only
stores). Every such error is a :class:`ResamplerError`, which is both a ``ValueError`` (what sklearn and
imbalanced-learn callers catch) and an :class:`AdaptlabError` (what the CLI prints as one line, exit 2).
"""

from __future__ import annotations

import math
import threading
import warnings
from numbers import Integral, Real

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from scipy import sparse
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.neighbours import Geometry, auto_chunk_rows, select_k_nearest, within_boundary


class ResamplerError(AdaptlabError, ValueError):
    """Bad parameter or input for a resampler: a ValueError for sklearn, a one-line error for the CLI."""


class ADASYN(BaseOverSampler):
    """Adaptive synthetic over-sampling (He et al., 2008) with the reference study's parameters.

    Parameters
    ----------
    ratio : float >= 0, default 1.0
        Fraction of each selected class's deficit to fill: ``G = round(deficit * ratio)``.
    imb_threshold : float in (0, 1], default 0.6
        A class is over-sampled only if ``N_c / N_majority <= imb_threshold``.
    k : int >= 1, default 5000
        Neighbours used both for the difficulty ``r_i`` and for choosing interpolation partners.
        Must be smaller than the number of samples.
    random_state : int, RandomState instance or None
        Seed of the (only) random draw; same seed and data, same output.
    sampling_strategy : imbalanced-learn's ``sampling_strategy``, default "auto"
        Candidate classes and their deficits (see the module docstring).
    chunk_size : int or None, default None
        Query rows per neighbour-search block; None keeps each block near 128 MiB. Results do not depend
        on it (bit-for-bit).

    Attributes (after ``fit_resample``)
    -----------------------------------
    sampling_strategy_ : dict, class -> number of synthetic rows generated.
    provenance_ : int64 array (n_synthetic, 2), for each synthetic row the input-row indices of its
        parents ``(i, z)``: the point it grows from and the class mate it moves towards.
    steps_ : float64 array (n_synthetic,), each row's lambda.
    neighbour_ratio_ : dict, class -> r_i for the class's rows in ascending row order.
    samples_per_point_ : dict, class -> g_i (same order).
    fallback_points_ : int64 array, input rows that had no class mate among their k neighbours and so
        used the fallback neighbourhood.
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "ratio": [Interval(Real, 0, None, closed="left")],
        "imb_threshold": [Interval(Real, 0, 1, closed="right")],
        "k": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, *, ratio=1.0, imb_threshold=0.6, k=5000, random_state=None, sampling_strategy="auto",
                 chunk_size=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.ratio = ratio
        self.imb_threshold = imb_threshold
        self.k = k
        self.random_state = random_state
        self.chunk_size = chunk_size

    def fit_resample(self, X, y, **params):
        """Resample ``X, y``; returns ``(X_resampled, y_resampled)`` (see the module docstring for order).

        ValueErrors raised while checking parameters and inputs (by sklearn, imbalanced-learn or here)
        come out as :class:`ResamplerError` with a one-line message; errors after the checks are bugs
        and keep their type and traceback.
        """
        self._inputs_checked = False
        try:
            return super().fit_resample(X, y, **params)
        except ResamplerError:
            raise
        except ValueError as exc:
            if self._inputs_checked:
                raise
            raise ResamplerError(f"{type(self).__name__}: {' '.join(str(exc).split())}") from exc

    def _fit_resample(self, X, y):
        plan = self._plan(X, y)  # class -> G, after every input check
        self._inputs_checked = True
        random_state = check_random_state(self.random_state)
        sparse_format = X.format if sparse.issparse(X) else None
        if sparse_format:  # distances are dense BLAS products anyway; densify once, give sparse back
            X = X.toarray()
        X64 = np.asarray(X, dtype=np.float64)
        out_dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64  # ints can't interpolate
        X_res = np.empty((len(X) + sum(plan.values()), X.shape[1]), dtype=out_dtype)
        # The output (~twice the input) is fresh memory, whose first touch costs as much as writing it, and on
        # virtual machines sometimes several times more: a thread copies the input rows into it and touches
        # the rest while the neighbour search runs.
        filler = threading.Thread(target=_copy_and_touch, args=(X_res, X), daemon=True)
        filler.start()
        try:
            geo = Geometry.of(X64) if plan else None
            provenance, steps, fallback = self._search(geo, plan, y, random_state)
        finally:
            filler.join()
        self.provenance_ = np.concatenate(provenance) if provenance else np.empty((0, 2), dtype=np.int64)
        self.steps_ = np.concatenate(steps) if steps else np.empty(0)
        self.fallback_points_ = _joined(fallback)
        self.sampling_strategy_ = {cls: int(plan.get(cls, 0)) for cls in self.sampling_strategy_}
        y_new = np.repeat(np.asarray(sorted(plan), dtype=y.dtype), [plan[c] for c in sorted(plan)])
        self._interpolate(X_res[len(X):], X64)
        if sparse_format:
            X_res = sparse.csr_matrix(X_res).asformat(sparse_format)
        return X_res, np.concatenate([y, y_new])

    def _search(self, geo: Geometry | None, plan: dict, y: np.ndarray, random_state) -> tuple[list, list, list]:
        """Per class to over-sample: (parent, partner) rows, steps lambda and fallback points; also sets the
        per-class attributes (neighbour_ratio_, samples_per_point_)."""
        provenance, steps, fallback = [], [], []
        self.neighbour_ratio_, self.samples_per_point_ = {}, {}
        for cls in sorted(plan):
            members = np.flatnonzero(y == cls)
            other, kth = self._other_class_counts(geo, members, y)
            weights = other
            if not other.any():
                warnings.warn(f"ADASYN: no point of class {cls} has a neighbour of another class among its "
                              f"k={self.k} nearest; weighting its points uniformly", UserWarning, stacklevel=4)
                weights = np.ones_like(other)
            per_point = largest_remainder(weights, plan[cls])
            self.neighbour_ratio_[cls] = other / self.k
            self.samples_per_point_[cls] = per_point
            uniforms = random_state.random_sample((plan[cls], 2))
            parents, partners, used_fallback = self._partners(geo, members, per_point, kth, uniforms[:, 0])
            fallback.append(used_fallback)
            provenance.append(np.column_stack([parents, partners]))
            steps.append(uniforms[:, 1])
        return provenance, steps, fallback

    def _interpolate(self, out: np.ndarray, X64: np.ndarray) -> None:
        """``x_i + lambda * (x_z - x_i)`` for every provenance row, computed in float64 in blocks written
        straight into ``out`` (no second full-size copy)."""
        block = 1 << 12  # ~1 MiB per temporary: the gathers and arithmetic stay in cache
        for start in range(0, len(self.provenance_), block):
            # np.take, not X64[rows]: the same rows, gathered ~1.4x faster (whole-row copies)
            parent = np.take(X64, self.provenance_[start:start + block, 0], axis=0)
            partner = np.take(X64, self.provenance_[start:start + block, 1], axis=0)
            partner -= parent
            partner *= self.steps_[start:start + block, None]
            np.add(partner, parent, out=out[start:start + len(parent)])  # rounds once into out's dtype, as before

    def _plan(self, X, y) -> dict:
        """class -> exact number G of synthetic rows; raises ResamplerError on unusable input."""
        n_samples = len(y)
        if self.k >= n_samples:
            raise ResamplerError(f"ADASYN: k={self.k} must be smaller than the number of samples ({n_samples}): "
                                 "every point needs k neighbours besides itself")
        labels, counts = np.unique(y, return_counts=True)
        size = dict(zip(labels.tolist(), counts.tolist()))
        majority = max(size.values())
        plan = {}
        for cls, deficit in self.sampling_strategy_.items():
            if size[cls] / majority > self.imb_threshold or deficit <= 0:
                continue
            n_new = math.floor(deficit * self.ratio + 0.5)
            if n_new == 0:
                continue
            if size[cls] < 2:
                raise ResamplerError(f"ADASYN: class {cls} has {size[cls]} sample; over-sampling a class needs "
                                     "at least 2 of its points to interpolate between")
            plan[cls] = n_new
        return plan

    def _other_class_counts(self, geo: Geometry, members: np.ndarray,
                            y: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """For each member, how many of its k nearest rows (whole data) belong to another class, and its
        k-th neighbour's key (exact squared distance, row index) that bounds that neighbourhood.

        Counted as k minus the class mates inside that key (a search within the class only), not by
        looking up the labels of all k neighbours: ~k pairs per member never need to be gathered."""
        chunk = auto_chunk_rows(len(members), len(y), self.chunk_size, self.k)
        other = np.empty(len(members), dtype=np.int64)
        kth = (np.empty(len(members)), np.empty(len(members), dtype=np.int64))
        for start in range(0, len(members), chunk):
            block = members[start:start + chunk]
            found = select_k_nearest(geo, block, None, self.k, pairs=False)
            mates, _ = within_boundary(geo, block, members, found.kth_distance, found.kth_index)
            other[start:start + len(block)] = self.k - np.bincount(mates, minlength=len(block))
            kth[0][start:start + len(block)] = found.kth_distance
            kth[1][start:start + len(block)] = found.kth_index
        return other, kth

    def _partners(self, geo: Geometry, members: np.ndarray, per_point: np.ndarray, kth: tuple,
                  picks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Parent and partner row of every synthetic row of one class, plus the parents that needed the
        fallback. ``picks`` (one U[0, 1) per synthetic row) choose among each parent's candidates."""
        has_samples = np.flatnonzero(per_point > 0)
        parents_all = members[has_samples]
        kth_distance, kth_index = kth[0][has_samples], kth[1][has_samples]
        fallback_k = min(self.k, len(members) - 1)
        sample_end = np.cumsum(per_point[has_samples])
        chunk = auto_chunk_rows(len(parents_all), len(members), self.chunk_size)
        parents, partners, fallback = [], [], []
        for start in range(0, len(parents_all), chunk):
            block = parents_all[start:start + chunk]
            rows, cols = within_boundary(geo, block, members, kth_distance[start:start + chunk],
                                         kth_index[start:start + chunk])
            lonely = np.flatnonzero(np.bincount(rows, minlength=len(block)) == 0)
            if len(lonely):
                found = select_k_nearest(geo, block[lonely], members, fallback_k)
                rows, cols = np.concatenate([rows, lonely[found.row]]), np.concatenate([cols, found.col])
                order = np.lexsort((cols, rows))  # candidates of a parent in ascending row order
                rows, cols = rows[order], cols[order]
                fallback.append(block[lonely])
            n_candidates = np.bincount(rows, minlength=len(block))
            first = np.concatenate([[0], np.cumsum(n_candidates)[:-1]])
            first_sample = sample_end[start - 1] if start else 0
            per_parent = per_point[has_samples][start:start + chunk]
            # per synthetic row: its parent's candidate count and first candidate (repeats, not gathers:
            # each parent's rows are consecutive)
            n_options = np.repeat(n_candidates, per_parent)
            u = picks[first_sample:first_sample + len(n_options)]
            pick = (u * n_options).astype(np.int64)
            np.minimum(pick, n_options - 1, out=pick)
            pick += np.repeat(first, per_parent)
            parents.append(np.repeat(block, per_parent))
            partners.append(cols[pick])
        return _joined(parents), _joined(partners), _joined(fallback)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts end to end (int64); one part is returned as is (no copy of ~170k rows for one block)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _copy_and_touch(out: np.ndarray, X: np.ndarray) -> None:
    """``out[:len(X)] = X`` and one write per page of the rest (the kernel zeroes each page on first touch)."""
    out[:len(X)] = X
    rest = out[len(X):].reshape(-1)
    rest[::max(1, 4096 // rest.itemsize)] = 0


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` (int) in proportion to non-negative integer ``weights``: floors of the exact
    quotas, then one more to the largest remainders (equal remainders: lower position first).

    Exact integer arithmetic; returns int64 counts summing to ``total``.
    """
    weights = np.asarray(weights, dtype=np.int64)
    weight_sum = int(weights.sum())
    scaled = weights * np.int64(total)  # <= k * total: far below 2**63 for any real data size
    counts = scaled // weight_sum
    remainders = scaled % weight_sum
    missing = total - int(counts.sum())
    order = np.lexsort((np.arange(len(weights)), -remainders))
    counts[order[:missing]] += 1
    return counts
