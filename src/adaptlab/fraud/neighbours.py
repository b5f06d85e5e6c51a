"""Exact, chunked k-nearest-neighbour selection for ADASYN (Euclidean, ties broken by row index).

Why hand-written instead of ``sklearn.neighbors.NearestNeighbors(algorithm="brute").kneighbors``:
ADASYN needs only (a) the *set* of each query's k nearest rows and (b) a key that decides membership later,
while sklearn keeps a sorted k=5000 heap per query and leaves the order of equal distances unspecified.
Here: BLAS products of a block of queries against cache-sized tiles of the pool give *approximate*
squared distances (each tile is thresholded while still in cache; tiles are shared among threads); a
threshold guessed from every ``stride``-th pool row (~2k products per query) keeps ~1.3*k candidates;
the k-th smallest approximate value t then splits them into certainly-in (< t - 2m), certainly-out
(> t + 2m) and a thin band, and only the band gets exact distances (m: a rigorous bound on the
floating-point error of the approximation). On the reference training split (170,883 rows x 30, 295
queries, k=5000) the whole ADASYN fit takes less time than sklearn's search alone (docs/benchmarks.md).

Exactness contract. The distance between rows ``a`` and ``b`` is always computed by
:func:`exact_sq_distances`: ``sum_f (x[b, f] - x[a, f])**2`` accumulated feature by feature in float64.
Every code path (whole data or one class, chunked or not) uses that function, so the same pair always
gets the same bits, and "the k nearest" is a well-defined set: sort by (distance, row index), take k.
Memory: one float32 copy of the data ((d + 1) x n), the candidate lists of one block of queries
(``auto_chunk_rows``), one tile per thread; neither an n x n nor a (queries x n) matrix is ever built.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from adaptlab.core.system import usable_cores
from adaptlab.fraud.ragged import (first_by_distance_then_index, for_parts, kth_smallest_per_row, round_up_to,
                                   row_parts, split_at_bounds)

# Target size of one block of queries: bounds the candidate lists kept per block (~1.3*k per query) and
# the per-query vectors; the distance products themselves are computed tile by tile (TILE_VALUES).
BLOCK_BYTES = 128 * 2**20
# Values of one (queries x pool rows) tile of approximate distances: ~2 MiB of float32 stays in cache while it
# is thresholded and its candidates extracted, instead of one 100+ MiB block that is written to memory by
# the product and read back twice (compare, extract). Measured on the reference split (2-core Zen 3, 512 KiB
# L2): 2**19 values per tile beat 2**18 by ~5% (fewer tiles, fewer per-tile calls) and 2**20 by ~10%.
TILE_VALUES = 2**19
MIN_SAMPLE = 4096  # pool rows sampled at least for the threshold guess
MIN_TILE_COLUMNS = 256  # below this the per-tile overhead (a few numpy calls) shows
# Rows per step when building the geometry or gathering rows for exact distances (a few MiB at d=30).
ROW_STEP = 1 << 14
# Threads for the distance products (numpy releases the GIL in them): the cores this process may use.
_WORKERS = min(8, usable_cores())
_U64 = float(np.finfo(np.float64).eps) / 2


@dataclass(frozen=True)
class Geometry:
    """Precomputed views of one data matrix, shared by all queries against it."""

    data: np.ndarray  # (n, d) float64, C-contiguous: the rows themselves (exact distances gather rows)
    augmented: np.ndarray  # (n, d + 1): [x - mean, |x - mean|^2]; one product gives |x|^2 - 2 q.x
    sq_norms: np.ndarray  # (n,) float64 |x - mean|^2
    largest_sq: float  # max |x - mean|^2 + |mean|^2 over the data
    unit_roundoff: float  # of the approximation's dtype
    mean_sq: float  # |mean|^2 (what largest_sq adds to the largest centred norm)

    @classmethod
    def of(cls, X: np.ndarray) -> "Geometry":
        X = np.ascontiguousarray(X, dtype=np.float64)
        n, d = X.shape
        mean = np.einsum("ij->j", X) / n  # ~2x faster than X.mean(axis=0); any centre keeps the search exact
        mean_sq = float(mean @ mean)
        # centring keeps the norms (and so the cancellation error) small; done in row steps so no centred
        # full-size float64 copy is ever built, each step's centred rows giving both the norms and the copy.
        # float32 copy: the approximation only pre-selects (see margin()); half the bytes to stream, ~2x
        # faster. float64 only where squared norms would overflow float32 (then built again).
        sq_norms = np.empty(n)
        for dtype in (np.float32, np.float64):
            augmented = np.empty((n, d + 1), dtype=dtype)  # a tile's rows are contiguous: a transposed BLAS operand
            with np.errstate(over="ignore"):  # values past float32's range: detected below, rebuilt in float64
                for start in range(0, n, ROW_STEP):
                    centred = X[start:start + ROW_STEP] - mean
                    sq_norms[start:start + ROW_STEP] = np.einsum("ij,ij->i", centred, centred)
                    augmented[start:start + ROW_STEP, :d] = centred
            largest_sq = float(sq_norms.max(initial=0.0)) + mean_sq
            if largest_sq < 1e30:
                break
        augmented[:, d] = sq_norms
        return cls(X, augmented, sq_norms, largest_sq, float(np.finfo(dtype).eps) / 2, mean_sq)

    def margin(self, query: np.ndarray, pool_sq_norm: np.ndarray | None = None) -> np.ndarray:
        """Per-query bound (squared distance units) on |approx() + shift() - exact squared distance|, for
        every pool row x with |x - mean|^2 <= ``pool_sq_norm`` (per query; None: any row of the data).

        The product of K = d + 1 terms errs by at most gamma_K * sum|terms| <= K u (|q|^2 + 2|x|^2)
        (since 2|q_f x_f| <= q_f^2 + x_f^2), whatever order the BLAS sums in, and rounding the inputs
        adds <= 3u (|q|^2 + 2|x|^2); factor 2 on top for safety. The float64 terms (centring, the exact
        formula) are ~1e-16 relative and get a generous 64x(d + 2) cover. A wider margin only costs a
        few more exact distances, never correctness.
        """
        n_terms = self.augmented.shape[1]
        largest_sq = self.largest_sq if pool_sq_norm is None else pool_sq_norm + self.mean_sq
        scale = self.sq_norms[query] + 2.0 * largest_sq
        return 2.0 * (n_terms + 4) * self.unit_roundoff * scale + 64.0 * (n_terms + 1) * _U64 * scale

    def query_side(self, query: np.ndarray) -> np.ndarray:
        """(len(query), d + 1) left factor: ``lhs @ augmented[j]`` is ``|x_j|^2 - 2 q.x_j``, the squared
        distance minus the per-row constant ``|q|^2`` (so the order within a row is the same)."""
        q = self.augmented[query, :-1]
        return np.hstack([-2.0 * q, np.ones((len(query), 1), dtype=q.dtype)])

    def pool_side(self, pool: np.ndarray | None) -> np.ndarray:
        """(len(pool) or n, d + 1) rows whose transpose is the right factor of the product."""
        return self.augmented if pool is None else self.augmented[pool]

    def shift(self, query: np.ndarray) -> np.ndarray:
        """The per-row constant |q|^2 that the product leaves out (float64)."""
        return self.sq_norms[query]


def exact_sq_distances(data: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of each pair (rows_a[i], rows_b[i]), float64, accumulated feature by
    feature in a fixed order so the result for a pair never depends on how pairs were batched.

    Gathers whole rows (a few thousand pairs at a time, so the differences stay in cache) instead of
    keeping a transposed copy of the data; the sum is still ``((0 + t_0) + t_1) + ...`` in feature order."""
    total = np.zeros(len(rows_a), dtype=np.float64)
    for start in range(0, len(rows_a), ROW_STEP // 4):
        diff = np.take(data, rows_b[start:start + ROW_STEP // 4], axis=0)  # np.take: faster than data[rows]
        diff -= np.take(data, rows_a[start:start + ROW_STEP // 4], axis=0)
        diff *= diff
        part = total[start:start + ROW_STEP // 4]
        for feature in diff.T:
            part += feature
    return total


def auto_chunk_rows(n_queries: int, n_pool: int, chunk_rows: int | None, k: int | None = None) -> int:
    """Queries per block: ``chunk_rows`` if given, else as many as keep a block's memory near BLOCK_BYTES.

    Per query a block holds its candidate lists (~1.3k pairs of ~40 bytes) when the threshold is guessed
    from a sample, but a whole row of n_pool values when it is not (small pools) or k is unknown. Fewer,
    bigger blocks stream the pool fewer times and make each tile's product more efficient."""
    if chunk_rows is not None:
        return max(1, min(int(chunk_rows), max(n_queries, 1)))
    sampled = k is not None and sample_stride(n_pool, k) > 1
    per_query = 64 * k if sampled else 4 * max(n_pool, 1)
    return max(1, min(max(n_queries, 1), BLOCK_BYTES // per_query))


@dataclass(frozen=True)
class Selection:
    """The k nearest pool rows of each query of one block, as a ragged row-major list of pairs."""

    row: np.ndarray  # (m,) position of the query within the block
    col: np.ndarray  # (m,) pool row index (into the Geometry's data), ascending within each query
    kth_distance: np.ndarray  # (n_queries,) exact squared distance of the k-th neighbour
    kth_index: np.ndarray  # (n_queries,) its row index: neighbours are all (d, j) <= (kth_distance, kth_index)


def select_k_nearest(geo: Geometry, query: np.ndarray, pool: np.ndarray | None, k: int,
                     pairs: bool = True) -> Selection:
    """The exact k nearest rows of ``pool`` (ascending row indices; None: every row) for each row of
    ``query``. A query row that is also in the pool is excluded by index (not by distance 0), so its
    exact duplicates still count as neighbours. Requires ``k <= len(pool) - (query in pool)``.
    ``pairs=False``: only each query's k-th neighbour key (``row``/``col`` empty), which is all
    :func:`within_boundary` needs; saves gathering ~k pairs per query.

    Candidates are the rows with approx <= tau (a per-query threshold). With t = each query's k-th
    smallest candidate value, M the error margin of the candidates (their own largest norm, see
    :meth:`Geometry.margin`) and m that of any row: the k candidates with approx <= t are within t + M
    exactly; every other candidate is at least t - M, every non-candidate at least tau - m >= t + M. So
    the true k-th exact distance T lies in [t - M, t + M] (shifted by |q|^2): rows with approx < t - 2M
    are certainly in, rows with approx > t + 2M certainly out, and only the thin band between needs
    exact distances. M rather than m matters on real data: one outlier far from every query sets m and
    made the band ~12x wider (ULB training split).
    """
    product = _Product(geo, query, pool)
    threshold = _guess_threshold(product, k)
    pool_pos, value, counts, largest = product.pairs_at_most(threshold)
    short = np.flatnonzero(counts < k)
    if len(short):  # the guess left fewer than k candidates (rare): exact k-th value for those rows
        threshold = threshold.astype(np.float64)
        threshold[short] = _kth_of_full_rows(product, geo, query, short, k)
        pool_pos, value, counts, largest = product.pairs_at_most(threshold)
    if np.any(counts < k):
        raise RuntimeError("neighbour search: approximate-distance margin violated; please report this data")
    kth_approx = kth_smallest_per_row(counts, value, k, _WORKERS)
    col = pool_pos if pool is None else pool[pool_pos]
    margin = geo.margin(query, largest)
    any_margin = geo.margin(query)
    if np.any(threshold < kth_approx + np.maximum(2.0 * margin, margin + any_margin)):
        # tau too close to t (stride 1, fix-up rows): widen to t + 2m, so the bound holds with the wider
        # candidates' own margin (M <= m); the k-th candidate value t stays the same
        threshold = np.maximum(threshold, kth_approx + 2.0 * any_margin)
        pool_pos, value, counts, largest = product.pairs_at_most(threshold)
        col = pool_pos if pool is None else pool[pool_pos]
        margin = geo.margin(query, largest)
    sure, n_sure, band = split_at_bounds(value, counts, kth_approx, 2.0 * margin, _WORKERS)
    band_row = np.searchsorted(np.cumsum(counts), band, side="right")  # ~1% of entries looked up
    band_dist = exact_sq_distances(geo.data, query[band_row], col[band])
    wanted = k - n_sure
    chosen, kth_distance, kth_index = first_by_distance_then_index(band_row, col[band], band_dist, wanted,
                                                                    len(query))
    if not pairs:
        return Selection(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), kth_distance, kth_index)
    keep = sure
    keep[band[chosen]] = True
    return Selection(np.repeat(np.arange(len(query)), counts)[keep], col[keep], kth_distance, kth_index)


def within_boundary(geo: Geometry, query: np.ndarray, pool: np.ndarray, kth_distance: np.ndarray,
                    kth_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (block row, pool row) with (d, j) <= (kth_distance, kth_index), the query itself excluded,
    row-major with ascending pool rows.

    With ``pool`` one class, this returns exactly the class members among each query's k nearest rows
    of the whole data, because those k rows are a prefix of the same (distance, index) order.
    """
    margin = geo.margin(query)
    limit = kth_distance - geo.shift(query)
    pool_pos, value, counts, _ = _Product(geo, query, pool).pairs_at_most(limit + margin)
    block_row = np.repeat(np.arange(len(query)), counts)
    col = pool[pool_pos]
    inside = value < (limit - margin)[block_row]  # certainly closer than the k-th neighbour
    band = np.flatnonzero(~inside)
    dist = exact_sq_distances(geo.data, query[block_row[band]], col[band])
    inside[band] = (dist < kth_distance[block_row[band]]) | (
        (dist == kth_distance[block_row[band]]) & (col[band] <= kth_index[block_row[band]]))
    return block_row[inside], col[inside]


class _Product:
    """Approximate distances of a block of queries to a pool, computed tile by tile on demand, with each
    query's own entry (a query that is also in the pool) set to +inf."""

    def __init__(self, geo: Geometry, query: np.ndarray, pool: np.ndarray | None):
        self.geo, self.query = geo, query
        self.lhs = geo.query_side(query)
        self.rhs = geo.pool_side(pool)
        n_pool = len(self.rhs)
        if pool is None:
            own = query.astype(np.int64)
        else:
            own = np.searchsorted(pool, query)
            own = np.where((own < n_pool) & (pool[np.minimum(own, n_pool - 1)] == query), own, -1)
        self.own = own  # pool position of each query, -1 if not in the pool
        self.pool_sq = geo.sq_norms if pool is None else geo.sq_norms[pool]
        self.tile = max(MIN_TILE_COLUMNS, TILE_VALUES // max(len(query), 1))

    @property
    def n_pool(self) -> int:
        return len(self.rhs)

    def columns(self, positions: slice, rows: np.ndarray | slice | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
        """(rows or all queries) x (the pool positions) approximate values, own entries +inf; written
        into ``out`` when it has exactly that shape."""
        lhs = self.lhs if rows is None else self.lhs[rows]
        own = self.own if rows is None else self.own[rows]
        rhs = self.rhs[positions]
        if out is not None and out.shape != (len(lhs), len(rhs)):
            out = None
        values = np.matmul(lhs, rhs.T, out=out)
        start, stop, step = positions.indices(self.n_pool)
        hit = (own >= start) & (own < stop) & ((own - start) % step == 0)
        values[np.flatnonzero(hit), (own[hit] - start) // step] = np.inf
        return values

    def full(self, rows: np.ndarray) -> np.ndarray:
        return self.columns(slice(None), rows)

    def pairs_at_most(self, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(pool position, value) of the entries <= limit[query], row-major (ascending positions within a
        query), the number of entries of each query (so query r's entries are one run), and the largest
        |x - mean|^2 among each query's entries (-inf: none; what the entries' error margin depends on).

        One cache-sized tile at a time: the product, the comparison and the extraction all touch the same
        ~2 MiB, and the (queries x pool) block never exists whole."""
        limit = round_up_to(limit, self.lhs.dtype)[:, None]
        starts = list(range(0, self.n_pool, self.tile))
        workers = min(_WORKERS, len(starts))
        share = -(-len(starts) // workers)
        # One single-threaded BLAS per worker: tiles are small, and OpenBLAS's own threads on every small
        # product cost more in synchronisation than they gain (several times slower on a loaded machine).
        groups = [starts[i * share:(i + 1) * share] for i in range(workers)]  # consecutive tiles per worker
        with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda group: self._pairs_in(group, limit), groups))
            return self._row_major(parts, pool)

    def _row_major(self, parts: list[list], pool: ThreadPoolExecutor) -> tuple[np.ndarray, ...]:
        """Merge the workers' tiles (``parts``: each worker's consecutive tiles, in pool order) into one
        row-major list. Each entry's destination follows from the per-(tile, query) counts, so the merge is
        two scatters instead of a stable sort of every entry by query (which took ~40% of the search on the
        reference data); each worker scatters its own tiles (disjoint destinations)."""
        n_queries = len(self.lhs)
        tiles = [tile for part in parts for tile in part]
        counts = np.array([tile[0] for tile in tiles], dtype=np.int64).reshape(len(tiles), n_queries)
        per_query = counts.sum(axis=0)
        # where (tile t, query q)'s entries start in the output: q's start plus what earlier tiles gave q
        out_start = (np.cumsum(counts, axis=0) - counts) + (np.cumsum(per_query) - per_query)
        local_start = np.cumsum(counts, axis=1) - counts  # and where they start within tile t's piece
        total = int(per_query.sum())
        col, value = np.empty(total, dtype=np.int64), np.empty(total, dtype=self.lhs.dtype)

        def scatter(first_tile: int, part: list) -> None:
            for t, (tile_counts, tile_col, tile_value, _) in enumerate(part, first_tile):
                destination = np.repeat(out_start[t] - local_start[t], tile_counts)
                destination += np.arange(len(tile_col))
                col[destination] = tile_col
                value[destination] = tile_value

        for _ in pool.map(scatter, np.cumsum([0] + [len(part) for part in parts[:-1]]).tolist(), parts):
            pass  # re-raises a worker's exception here
        return col, value, per_query, np.max([tile[3] for tile in tiles], axis=0, initial=-np.inf)

    def _pairs_in(self, starts: list[int], limit: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """Per tile: (entries per query, pool positions, values, largest |x - mean|^2 per query or -inf) of the
        entries <= limit, row-major."""
        tiles = []
        # one buffer per thread for the products and one for the comparison, reused by every full tile:
        # a fresh ~2 MiB array per tile costs page faults and cache misses that show next to the product
        buffer = np.empty((len(self.lhs), self.tile), dtype=self.lhs.dtype)
        below = np.empty(buffer.shape, dtype=bool)
        # the limits spread over a whole tile once: comparing against a (queries x 1) column made numpy copy
        # each query's limit across the row on every tile, half the comparison's time. Not for tiles of very
        # many queries (MIN_TILE_COLUMNS wide, far above TILE_VALUES), whose memory it would nearly double.
        spread = buffer.size <= 4 * TILE_VALUES
        limits = np.ascontiguousarray(np.broadcast_to(limit, buffer.shape)) if spread else limit
        for start in starts:
            block = self.columns(slice(start, start + self.tile), out=buffer)
            width = block.shape[1]
            # a (queries x 1) column sliced to :width stays itself, so one expression serves both layouts
            flat = np.flatnonzero(np.less_equal(block, limits[:, :width], out=below if block is buffer else None))
            # flat is sorted, so each query's entries are one run: its bounds by binary search, no division
            bounds = np.searchsorted(flat, np.arange(len(block) + 1) * width)
            counts = np.diff(bounds)
            col = flat - np.repeat(np.arange(len(block)) * width - start, counts)
            # each query's largest norm here, in parallel and while the tile's entries are in cache, rather
            # than gathering every candidate's norm afterwards (~16 ms on the reference data, serial)
            largest = np.full(len(block), -np.inf)
            filled = np.flatnonzero(counts)
            if len(filled):
                largest[filled] = np.maximum.reduceat(self.pool_sq[col], bounds[filled])
            tiles.append((counts, col, block.ravel()[flat], largest))
        return tiles


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Found once: building a controller (or calling ``threadpool_limits``) scans the loaded libraries,
    ~20 ms each time."""
    return ThreadpoolController()


def _kth_of_full_rows(product: "_Product", geo: Geometry, query: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """A threshold that keeps at least k candidates of each of ``rows`` in the tiled products: the k-th
    smallest of the whole row's product plus twice the error margin, because a tile's product of the same
    pair may round differently from the whole row's (both within the margin of the exact value)."""
    kth = np.partition(product.full(rows), k - 1, axis=1)[:, k - 1].astype(np.float64)
    return kth + 2.0 * geo.margin(query[rows])


def sample_stride(n_pool: int, k: int) -> int:
    """Every how many pool rows the threshold guess samples: ~2k samples (at least MIN_SAMPLE, so a small k
    is still placed well). On the reference data the guess is then ~5% of the search instead of ~12% with
    4k samples at 6 sd, for ~5% more candidates."""
    return max(1, n_pool // max(2 * k, MIN_SAMPLE))


def _guess_threshold(product: _Product, k: int) -> np.ndarray:
    """Per-row tau that very likely has at least k values <= tau (the caller checks and fixes rows).

    Taken from every ``stride``-th pool row, so only ~n/stride products are computed and partitioned
    per query instead of n, at ~5 standard deviations above the expected position of the k-th value
    (a row falls short with probability ~3e-7; the caller then fixes it): ~1.3*k candidates survive. With
    stride 1 it is the exact k-th smallest value.
    """
    stride = sample_stride(product.n_pool, k)
    if stride == 1:
        return _kth_of_full_rows(product, product.geo, product.query, np.arange(len(product.lhs)), k)
    expected = k / stride
    position = min(len(range(0, product.n_pool, stride)) - 1, math.ceil(expected + 5.0 * math.sqrt(expected)))
    threshold = np.empty(len(product.lhs), dtype=product.lhs.dtype)

    def guess(_, rows: slice, __) -> None:  # queries split between the threads: the partition is half the cost
        sample = product.columns(slice(0, None, stride), rows)
        threshold[rows] = np.partition(sample, position, axis=1)[:, position]

    with _blas_controller().limit(limits=1, user_api="blas"):
        for_parts(guess, row_parts(np.ones(len(threshold), dtype=np.int64), _WORKERS))  # one entry per query
    return threshold
