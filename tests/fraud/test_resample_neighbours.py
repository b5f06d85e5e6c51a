"""The exact chunked k-nearest-neighbour selection under ADASYN, against brute force."""

import numpy as np

from adaptlab.fraud import neighbours, ragged
from adaptlab.fraud.neighbours import Geometry, select_k_nearest, within_boundary


def brute_force(X, i, pool, k):
    pool = pool[pool != i]
    dist = ((X[pool] - X[i]) ** 2).sum(axis=1)
    order = np.lexsort((pool, dist))
    return np.sort(pool[order[:k]]), dist[order[k - 1]], pool[order[k - 1]]


def as_sets(selection, n_queries):
    return [np.sort(selection.col[selection.row == r]) for r in range(n_queries)]


def test_select_matches_brute_force_when_the_strided_guess_is_too_tight(monkeypatch):
    # the rows the threshold guess samples (every stride-th) sit right next to the queries, so the guess keeps
    # too few candidates and the exact fix-up must take over for those rows
    monkeypatch.setattr(neighbours, "MIN_SAMPLE", 1)  # let a 1000-row pool be sampled at all
    k = 10
    stride = neighbours.sample_stride(1000, k)
    assert stride > 1
    rng = np.random.default_rng(0)
    X = rng.normal(0, 5, (1000, 4))
    X[::stride] = rng.normal(0, 0.01, (len(X[::stride]), 4))
    query = np.array([3, 501, 977])
    X[query] = 0.0
    fixed = []
    original = neighbours._kth_of_full_rows
    monkeypatch.setattr(neighbours, "_kth_of_full_rows",
                        lambda product, geo, q, rows, k: fixed.append(rows) or original(product, geo, q, rows, k))
    geo = Geometry.of(X)
    found = select_k_nearest(geo, query, None, k)
    assert fixed and np.array_equal(fixed[0], np.arange(len(query)))  # the fix-up ran, for every query
    for r, i in enumerate(query):
        expected, kth_distance, kth_index = brute_force(X, i, np.arange(len(X)), k)
        assert np.array_equal(as_sets(found, len(query))[r], expected)
        assert (found.kth_distance[r], found.kth_index[r]) == (kth_distance, kth_index)


def test_rounded_bounds_compare_like_float64():
    # the band and certainly-in tests compare float32 values against float64 bounds rounded to float32
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, 20000).astype(np.float32)
    bounds = np.concatenate([rng.normal(0, 1, 2000), values[:2000].astype(np.float64),
                             np.nextafter(values[:2000].astype(np.float64), np.inf),
                             np.nextafter(values[:2000].astype(np.float64), -np.inf), [1e39, -1e39]])
    up = ragged.round_up_to(bounds, np.float32)
    down = ragged.round_down_to(bounds, np.float32)
    for bound, low, high in zip(bounds[::7], up[::7], down[::7]):
        assert np.array_equal(values < bound, values < low)
        assert np.array_equal(values <= bound, values <= high)


def test_select_within_a_pool_excludes_the_query_by_index_and_keeps_its_duplicates():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (300, 3))
    X[10] = X[11] = X[12]  # three identical rows
    pool = np.arange(0, 300, 2)  # even rows; 10 and 12 are in it
    query = np.array([10, 12, 40, 41])  # 41 is not in the pool
    found = select_k_nearest(Geometry.of(X), query, pool, 6)
    for r, i in enumerate(query):
        assert np.array_equal(as_sets(found, len(query))[r], brute_force(X, i, pool, 6)[0])
    assert 12 in as_sets(found, len(query))[0] and 10 not in as_sets(found, len(query))[0]


def test_within_boundary_gives_the_class_members_among_the_k_nearest():
    rng = np.random.default_rng(2)
    X = np.rint(rng.normal(0, 2, (500, 2)))  # integer points: many exactly tied distances
    y = (rng.random(500) < 0.2).astype(int)
    members = np.flatnonzero(y == 1)
    geo = Geometry.of(X)
    k = 30
    found = select_k_nearest(geo, members, None, k)
    rows, cols = within_boundary(geo, members, members, found.kth_distance, found.kth_index)
    for r, i in enumerate(members):
        neighbours = brute_force(X, i, np.arange(len(X)), k)[0]
        assert np.array_equal(cols[rows == r], neighbours[y[neighbours] == 1])


def test_select_is_exact_when_one_feature_dwarfs_the_others():
    # seconds-scale "Time" shared by groups of rows + tiny features: the float32 pre-selection cannot
    # resolve the tiny differences at all, so the exact band decides everything
    rng = np.random.default_rng(3)
    time_s = np.repeat(rng.integers(0, 172_800, 60), 10).astype(np.float64)
    X = np.column_stack([time_s, rng.normal(0, 1e-3, (600, 3))])
    query = np.array([0, 5, 123, 599])
    found = select_k_nearest(Geometry.of(X), query, None, 15)
    for r, i in enumerate(query):
        expected, kth_distance, kth_index = brute_force(X, i, np.arange(len(X)), 15)
        assert np.array_equal(as_sets(found, len(query))[r], expected)
        assert (found.kth_distance[r], found.kth_index[r]) == (kth_distance, kth_index)


def test_select_is_exact_for_values_near_the_float32_range():
    X = np.random.default_rng(4).normal(0, 1e16, (200, 3))  # |x|^2 ~ 1e32: too close to float32's 3.4e38,
    geo = Geometry.of(X)  # so the pre-selection runs in float64
    assert geo.augmented.dtype == np.float64
    query = np.array([1, 50, 199])
    found = select_k_nearest(geo, query, None, 7)
    for r, i in enumerate(query):
        assert np.array_equal(as_sets(found, len(query))[r], brute_force(X, i, np.arange(len(X)), 7)[0])


def test_tiled_and_threaded_search_equals_brute_force(monkeypatch):
    # tiny tiles: many tiles per block, split between threads, merged back into row-major order
    monkeypatch.setattr(neighbours, "TILE_VALUES", 1)
    monkeypatch.setattr(neighbours, "MIN_TILE_COLUMNS", 37)
    monkeypatch.setattr(neighbours, "_WORKERS", 3)
    rng = np.random.default_rng(5)
    X = np.rint(rng.normal(0, 3, (900, 3)))  # ties across tile borders
    y = (rng.random(900) < 0.1).astype(int)
    members = np.flatnonzero(y == 1)
    geo = Geometry.of(X)
    found = select_k_nearest(geo, members, None, 40)
    assert np.all(np.diff(found.row) >= 0)
    rows, cols = within_boundary(geo, members, members, found.kth_distance, found.kth_index)
    for r, i in enumerate(members):
        expected, kth_distance, kth_index = brute_force(X, i, np.arange(len(X)), 40)
        assert np.array_equal(found.col[found.row == r], expected)  # ascending within each query
        assert (found.kth_distance[r], found.kth_index[r]) == (kth_distance, kth_index)
        assert np.array_equal(cols[rows == r], expected[y[expected] == 1])


def test_select_is_exact_when_the_threshold_is_the_exact_kth_approximation():
    # small pool (stride 1): the threshold is the k-th smallest approximate value itself, so rows just above
    # it (within the error margin) must still reach the exact band; integer points make near-ties common
    rng = np.random.default_rng(6)
    X = np.rint(rng.normal(0, 2, (400, 3))) + rng.normal(0, 1e-7, (400, 3))
    query = np.arange(0, 400, 7)
    found = select_k_nearest(Geometry.of(X), query, None, 25)
    for r, i in enumerate(query):
        expected, kth_distance, kth_index = brute_force(X, i, np.arange(len(X)), 25)
        assert np.array_equal(as_sets(found, len(query))[r], expected)
        assert (found.kth_distance[r], found.kth_index[r]) == (kth_distance, kth_index)


def test_one_far_outlier_neither_breaks_exactness_nor_widens_the_exact_band(monkeypatch):
    # the error margin of the candidates is set by the candidates' own norms: one row far from every query
    # (an Amount in the millions) must not send thousands of extra pairs to the exact distance
    exact_pairs = []
    exact = neighbours.exact_sq_distances
    monkeypatch.setattr(neighbours, "exact_sq_distances",
                        lambda data, a, b: exact_pairs.append(len(a)) or exact(data, a, b))
    rng = np.random.default_rng(7)
    X = np.rint(rng.normal(0, 3, (20_000, 3)))  # integer points: many exact ties at the k-th distance
    query = np.arange(0, 20_000, 997)
    k = 200
    assert neighbours.sample_stride(len(X), k) > 1  # the strided threshold guess path
    select_k_nearest(Geometry.of(X), query, None, k)
    without_outlier = sum(exact_pairs)
    X[-1] = [3e3, 0, 0]
    exact_pairs.clear()
    found = select_k_nearest(Geometry.of(X), query, None, k)
    assert sum(exact_pairs) <= 2 * without_outlier
    for r, i in enumerate(query):
        expected, kth_distance, kth_index = brute_force(X, i, np.arange(len(X)), k)
        assert np.array_equal(as_sets(found, len(query))[r], expected)
        assert (found.kth_distance[r], found.kth_index[r]) == (kth_distance, kth_index)
