"""Benchmark: how ADASYN's cost grows with the training rows and with k, phase by phase.

Rows: the real training split (standardised, as ``fraud compare`` feeds it) stacked x1, x4, x16 with
jittered copies (each copy adds N(0, 0.01^2) per standardised feature, so no two rows coincide; the class
ratio stays 295 : 170,588 per copy), at k = 5000. k: 5, 50, 500, 5000 on the x1 split.

Phases (wall clock, measured by wrapping the resampler's own steps, nothing else changes):
- geometry: ``Geometry.of`` (the float32 copy of the data, norms);
- products: the approximate-distance products and candidate extraction (``_Product.pairs_at_most``),
  the term that grows as n_minority x n x d;
- selection: the rest of the neighbour search (k-th value, uncertain band, exact distances, lexsort;
  grows with n_minority x ~1.3k) plus the partner lists;
- interpolate: writing the output (grows with n + n_synthetic, x d);
- other: input checks, planning, allocation (the remainder of fit_resample).

Run:  .venv/bin/python bench/bench_adasyn_scaling.py [--factors 1,4,16] [--ks 5,50,500,5000] [--update-doc]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_adasyn import training_split, update_doc  # noqa: E402

PHASES = ("geometry", "products", "selection", "interpolate", "other")


@contextmanager
def phase_clock(seconds: dict):
    """Wrap the resampler's steps so each call adds its wall time to ``seconds[phase]``."""
    from adaptlab.fraud import neighbours, resample

    def timed(owner, name, phase):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - start
        return original, wrapper

    patches = [(neighbours.Geometry, "of", "geometry"), (neighbours._Product, "pairs_at_most", "products"),
               (resample.ADASYN, "_other_class_counts", "search"), (resample.ADASYN, "_partners", "partners"),
               (resample.ADASYN, "_interpolate", "interpolate")]
    saved = []
    for owner, name, phase in patches:
        original, wrapper = timed(owner, name, phase)
        saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, classmethod(lambda cls, X, _w=wrapper: _w(X)) if name == "of" else wrapper)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def stacked(X: np.ndarray, y: np.ndarray, factor: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    copies = [X] + [X + rng.normal(0.0, 0.01, X.shape) for _ in range(factor - 1)]
    return np.vstack(copies), np.tile(y, factor)


def measure(X: np.ndarray, y: np.ndarray, k: int, repeats: int) -> dict:
    from adaptlab.fraud.resample import ADASYN

    runs = []
    for _ in range(repeats):
        seconds = defaultdict(float)
        with phase_clock(seconds):
            start = time.perf_counter()
            X_res, _ = ADASYN(k=k, random_state=0).fit_resample(X, y)
            seconds["total"] = time.perf_counter() - start
        seconds["selection"] = seconds["search"] + seconds["partners"] - seconds["products"]
        seconds["other"] = seconds["total"] - sum(seconds[p] for p in PHASES[:-1])
        runs.append(dict(seconds))
        del X_res
    median = {p: float(np.median([r[p] for r in runs])) for p in (*PHASES, "total")}
    return {"rows": int(len(y)), "frauds": int(y.sum()), "k": k, "runs": repeats, "median_s": median,
            "load_average_1min": os.getloadavg()[0]}


def markdown(results: list[dict], meta: dict) -> str:
    lines = ["## ADASYN cost growth (rows, k)", "",
             f"- Date: {meta['date']}; machine: {meta['machine']}; command: `{meta['command']}`.",
             "- Data: the real training split, standardised, stacked with jittered copies (N(0, 0.01^2) per "
             "feature) for x4 and x16; k varied on x1. Medians of the runs shown; 1-minute load average "
             "after each row in the last column (2 cores: above 2 means other jobs competed).", "",
             "| rows | frauds | k | runs | total (s) | geometry | products | selection | interpolate | other | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["median_s"]
        lines.append(f"| {r['rows']:,} | {r['frauds']:,} | {r['k']} | {r['runs']} | {m['total']:.2f} | "
                     + " | ".join(f"{m[p]:.2f}" for p in PHASES) + f" | {r['load_average_1min']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    from adaptlab.core.system import machine_description

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factors", default="1,4,16", help="row multipliers (k = 5000)")
    parser.add_argument("--ks", default="5,50,500,5000", help="k values (on x1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (x16: one)")
    parser.add_argument("--update-doc", action="store_true", help="rewrite this section of docs/benchmarks.md")
    args = parser.parse_args()
    X, y = training_split(None, "standardized", 42)
    results = []
    for k in [int(v) for v in args.ks.split(",")]:
        results.append(measure(X, y, k, args.repeats))
        print(json.dumps(results[-1]), flush=True)
    for factor in [int(v) for v in args.factors.split(",") if int(v) != 1]:
        Xf, yf = stacked(X, y, factor)
        results.append(measure(Xf, yf, 5000, args.repeats if factor < 16 else 1))
        print(json.dumps(results[-1]), flush=True)
        del Xf, yf
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_description(), "command": "python " + " ".join(sys.argv)}
    block = markdown(results, meta)
    print(block)
    if args.update_doc:
        update_doc(block, "bench_adasyn_scaling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
