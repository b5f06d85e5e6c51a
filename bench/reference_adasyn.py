"""A straightforward per-point / per-sample loop implementation of the *same* ADASYN as
:class:`adaptlab.fraud.resample.ADASYN` — written for the benchmark only, as the baseline a careful
person would write first (loops in Python, one full sort per minority point, no chunking tricks).

It follows the same documented rules (exact k nearest by (distance, row index), r_i, largest-remainder
g_i, fallback to the min(k, N_c - 1) nearest class mates, candidates listed in ascending row order) and
consumes the random stream the same way (per class, per synthetic row: one uniform for the pick, then one
for lambda), so with the same seed its output must equal the vectorised one bit for bit. Not used by the
package; never import it from src/.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import check_random_state


def squared_distances_to(X: np.ndarray, i: int) -> np.ndarray:
    """Squared distance from row i to every row, accumulated feature by feature (same bits as the package)."""
    total = np.zeros(len(X))
    for f in range(X.shape[1]):
        diff = X[:, f] - X[i, f]
        total += diff * diff
    return total


def nearest_rows(X: np.ndarray, i: int, pool: np.ndarray, k: int) -> np.ndarray:
    """The k rows of ``pool`` nearest to row i (i itself excluded by index), by (distance, row index)."""
    pool = pool[pool != i]
    dist = squared_distances_to(X, i)[pool]
    order = np.argsort(dist, kind="stable")  # pool is ascending, so equal distances keep index order
    return pool[order[:k]]


def reference_adasyn(X, y, *, ratio=1.0, imb_threshold=0.6, k=5000, random_state=None, only_points=None):
    """Returns (X_resampled, y_resampled, provenance (n_new, 2), per-point counts {class: g}).

    ``only_points`` (optional int): for timing on big data, compute the neighbourhoods of only the first
    that many points of each class (then g and the synthetic rows are not produced; returns None for them).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    rng = check_random_state(random_state)
    everyone = np.arange(len(y))
    labels, counts = np.unique(y, return_counts=True)
    majority = counts.max()
    new_rows, new_labels, provenance, per_point = [], [], [], {}
    for cls, n_cls in zip(labels, counts):
        if n_cls / majority > imb_threshold:
            continue
        G = math.floor((majority - n_cls) * ratio + 0.5)
        if G == 0:
            continue
        members = np.flatnonzero(y == cls)
        others, candidates = [], []
        for i in members[:only_points]:
            neighbours = nearest_rows(X, i, everyone, k)
            others.append(int(np.sum(y[neighbours] != cls)))
            mates = np.sort(neighbours[y[neighbours] == cls])
            if len(mates) == 0:  # fallback: the min(k, N_c - 1) nearest class mates
                mates = np.sort(nearest_rows(X, i, members, min(k, n_cls - 1)))
            candidates.append(mates)
        if only_points is not None:
            continue
        per_point[cls] = _generate(X, cls, members, G, others, candidates, rng, new_rows, new_labels, provenance)
    if only_points is not None:
        return None
    X_new = np.array(new_rows).reshape(-1, X.shape[1])
    return (np.vstack([X, X_new]), np.concatenate([y, np.array(new_labels, dtype=y.dtype)]),
            np.array(provenance, dtype=np.int64).reshape(-1, 2), per_point)


def sklearn_reference_adasyn(X, y, *, ratio=1.0, imb_threshold=0.6, k=5000, random_state=None):
    """The plain realistic baseline: scikit-learn ``NearestNeighbors(k + 1)`` (brute force) for each
    minority class's rows, then the same r_i, g_i, fallback and per-sample generation loop as
    :func:`reference_adasyn`. Same return value. Its neighbour sets can differ from the exact
    (distance, index) rule only where distances tie or differ in the last bits (sklearn computes them as
    |x|^2 - 2 x.q + |q|^2), which the benchmark reports as a flag rather than assumes away."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    rng = check_random_state(random_state)
    labels, counts = np.unique(y, return_counts=True)
    majority = counts.max()
    everyone = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X)
    new_rows, new_labels, provenance, per_point = [], [], [], {}
    for cls, n_cls in zip(labels, counts):
        G = math.floor((majority - n_cls) * ratio + 0.5)
        if n_cls / majority > imb_threshold or G == 0:
            continue
        members = np.flatnonzero(y == cls)
        found = everyone.kneighbors(X[members], return_distance=False)
        others, candidates = [], []
        for i, row in zip(members, found):
            neighbours = row[row != i][:k]
            others.append(int(np.sum(y[neighbours] != cls)))
            mates = np.sort(neighbours[y[neighbours] == cls])
            if len(mates) == 0:  # fallback: the min(k, N_c - 1) nearest class mates
                own = NearestNeighbors(n_neighbors=min(k, n_cls - 1) + 1, algorithm="brute").fit(X[members])
                nearest = members[own.kneighbors(X[i:i + 1], return_distance=False)[0]]
                mates = np.sort(nearest[nearest != i][:min(k, n_cls - 1)])
            candidates.append(mates)
        per_point[cls] = _generate(X, cls, members, G, others, candidates, rng, new_rows, new_labels, provenance)
    X_new = np.array(new_rows).reshape(-1, X.shape[1])
    return (np.vstack([X, X_new]), np.concatenate([y, np.array(new_labels, dtype=y.dtype)]),
            np.array(provenance, dtype=np.int64).reshape(-1, 2), per_point)


def _generate(X, cls, members, G, others, candidates, rng, new_rows, new_labels, provenance) -> np.ndarray:
    """g_i by largest remainder of r_i (uniform if every r_i is 0), then one synthetic row per sample in a plain
    Python loop (the reference's way); appends to the three output lists and returns g."""
    weights = others if sum(others) > 0 else [1] * len(others)
    total = sum(weights)
    g = [w * G // total for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda j: (-(weights[j] * G % total), j))
    for j in by_remainder[: G - sum(g)]:
        g[j] += 1
    for j, i in enumerate(members):
        for _ in range(g[j]):
            u = rng.random_sample()
            lam = rng.random_sample()
            mates = candidates[j]
            z = mates[min(int(u * len(mates)), len(mates) - 1)]
            new_rows.append(X[i] + lam * (X[z] - X[i]))
            new_labels.append(cls)
            provenance.append((i, z))
    return np.array(g)
