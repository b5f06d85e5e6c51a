"""Benchmark: our ADASYN vs an sklearn-NearestNeighbors reference, a per-sample loop and imbalanced-learn, on the real split.

Configuration: the reference one (ratio 1.0, imb_threshold 0.6, k 5000) on the reference study's
training split of the ULB data: stratified 20% test, then 25% of the rest validation, seed 42
(``adaptlab.fraud.data.split_indices``) -> 170,883 training rows, 295 frauds. Features: the 30 columns
standardised with training-split statistics (``--features raw`` keeps Time/Amount in seconds/euros).

Timed (wall clock, ``--repeats`` runs each, median reported; the machine is shared, so spread is shown):
- ours: ``adaptlab.fraud.resample.ADASYN`` (fit_resample, end to end);
- sklearn reference: ``NearestNeighbors(k + 1)`` for the frauds, then a per-sample Python loop (the
  headline speed-up is against it);
- reference loop: ``bench/reference_adasyn.py``, the same algorithm as a per-point / per-sample Python loop;
  both consume the random stream identically, so their outputs are compared *bit for bit*;
- the neighbour step alone with ``sklearn.neighbors.NearestNeighbors(algorithm="brute").kneighbors``
  (k + 1 = 5001 neighbours of the 295 frauds), to show why the search is hand-written;
- ``imblearn.over_sampling.ADASYN(n_neighbors=5)``; and ``n_neighbors=5000``, which fails (reason shown).

Run:  .venv/bin/python bench/bench_adasyn.py [--data creditcard.csv] [--update-doc]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_blocks import replace_block  # noqa: E402
from reference_adasyn import reference_adasyn, sklearn_reference_adasyn  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
REFERENCE = {"ratio": 1.0, "imb_threshold": 0.6, "k": 5000}


# Pause before every timed call. A BLAS call's worker threads keep spinning for a while after it returns
# (OpenBLAS / OpenMP wait policies) and take the second core from whatever runs next: right after the
# sklearn reference, our first run measured 0.27 s instead of 0.16 s. The pause is the same for every setup.
SETTLE_S = 1.0


def timed(fn, repeats: int) -> tuple[list[float], object]:
    """Wall-clock seconds of ``repeats`` calls and the last result, each after a ``SETTLE_S`` pause."""
    seconds, result = [], None
    for _ in range(repeats):
        time.sleep(SETTLE_S)
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def training_split(data: Path | None, features: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from adaptlab.fraud.data import FEATURES, LABEL, load_dataset, split_indices

    frame, _ = load_dataset(data, quiet=True)
    split = split_indices(frame, "stratified", seed)
    X = frame[FEATURES].to_numpy(dtype=np.float64)[split.train]
    y = frame[LABEL].to_numpy()[split.train]
    if features == "standardized":
        std = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, y


def summary(seconds: list[float]) -> dict:
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds),
            "runs": len(seconds)}


def run(args: argparse.Namespace) -> dict:
    from imblearn.over_sampling import ADASYN as ImblearnADASYN
    from sklearn.neighbors import NearestNeighbors

    from adaptlab.core.system import machine_description
    from adaptlab.fraud.resample import ADASYN

    X, y = training_split(args.data, args.features, args.seed)
    load_before = os.getloadavg()[0]
    ours = lambda: ADASYN(**REFERENCE, random_state=0).fit_resample(X, y)  # noqa: E731
    reference = lambda: reference_adasyn(X, y, **REFERENCE, random_state=0)  # noqa: E731
    sklearn_reference = lambda: sklearn_reference_adasyn(X, y, **REFERENCE, random_state=0)  # noqa: E731
    # Interleave: other jobs come and go on this shared machine, so ours runs next to every reference run.
    ours_s, ref_s, paired, skl_s, skl_paired = [], [], [], [], []
    for _ in range(args.reference_repeats):
        seconds, (X_ours, y_ours) = timed(ours, args.repeats)
        ours_s += seconds
        seconds, (X_ref, y_ref, provenance_ref, per_point_ref) = timed(reference, 1)
        ref_s += seconds
        paired.append(seconds[0] / statistics.median(ours_s[-args.repeats:]))
        seconds, (X_skl, y_skl, provenance_skl, _) = timed(sklearn_reference, 1)
        skl_s += seconds
        skl_paired.append(seconds[0] / statistics.median(ours_s[-args.repeats:]))
    tracemalloc.start()
    sampler = ADASYN(**REFERENCE, random_state=0)
    sampler.fit_resample(X, y)
    peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    frauds = np.flatnonzero(y == 1)
    knn_s, _ = timed(lambda: NearestNeighbors(n_neighbors=REFERENCE["k"] + 1, algorithm="brute").fit(X)
                     .kneighbors(X[frauds], return_distance=False), args.repeats)
    imb_s, (_, y_imb) = timed(lambda: ImblearnADASYN(n_neighbors=5, random_state=0).fit_resample(X, y), args.repeats)
    try:
        ImblearnADASYN(n_neighbors=REFERENCE["k"], random_state=0).fit_resample(X, y)
        imb_5000 = "ran (unexpected)"
    except ValueError as exc:
        imb_5000 = " ".join(str(exc).split())
    ours, ref, skl = summary(ours_s), summary(ref_s), summary(skl_s)
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "data": {"rows": int(len(y)), "frauds": int(y.sum()), "features": args.features, "split_seed": args.seed},
        "synthetic_rows": int(len(y_ours) - len(y)),
        "fallback_points": int(len(sampler.fallback_points_)),
        "r_min_max": [float(sampler.neighbour_ratio_[1].min()), float(sampler.neighbour_ratio_[1].max())],
        "ours": ours, "reference_loop": ref, "sklearn_reference": skl,
        "speedup_vs_sklearn_reference": skl["median_s"] / ours["median_s"], "speedup_sklearn_paired": skl_paired,
        "identical_to_sklearn_reference": bool(np.array_equal(X_ours, X_skl) and np.array_equal(y_ours, y_skl)
                                               and np.array_equal(sampler.provenance_, provenance_skl)), "sklearn_kneighbors_5001": summary(knn_s),
        "imblearn_adasyn_5": {**summary(imb_s), "synthetic_rows": int(len(y_imb) - len(y))},
        "imblearn_adasyn_5000": imb_5000,
        "speedup_vs_reference": ref["median_s"] / ours["median_s"],
        "speedup_paired": paired,  # each reference run over the median of the ours runs just before it
        "identical_to_reference": bool(np.array_equal(X_ours, X_ref) and np.array_equal(y_ours, y_ref)
                                       and np.array_equal(sampler.provenance_, provenance_ref)
                                       and np.array_equal(sampler.samples_per_point_[1], per_point_ref[1])),
        "load_average_1min": [load_before, os.getloadavg()[0]],  # > 2 means other jobs competed for the 2 cores
        "peak_traced_gib": peak_bytes / 2**30,
        "input_gib": X.nbytes / 2**30,
    }


def markdown(results: list[dict]) -> str:
    first = results[0]
    lines = [
        "## ADASYN resampler (issue 3)", "",
        f"- Date: {first['date']}; machine: {first['machine']}.",
        f"- Command: `{first['command']}`",
        f"- Data: reference training split of the ULB data (stratified 20% test, then 25% validation, seed "
        f"{first['data']['split_seed']}): {first['data']['rows']:,} rows, {first['data']['frauds']} frauds; "
        f"configuration ratio 1.0, imb_threshold 0.6, k 5000, random_state 0.",
        "- The 2-core machine was shared with other developers' jobs while this ran (1-minute load average "
        + ", ".join(f"{r['load_average_1min'][0]:.1f} -> {r['load_average_1min'][1]:.1f}" for r in results)
        + " over the runs below; this benchmark alone would be about 1-2): each time is the median of "
        "repeated runs, with min-max in brackets, and ours is run next to every reference run so both see "
        "the same load. Times are end to end (input checks, neighbour search, allocation, output).", "",
        "| features | ours (s) | sklearn reference (s) | speed-up vs it (median ratio; paired min-max) | "
        "reference loop (s) | speed-up vs it | bit-identical output (sklearn ref / loop) | "
        "sklearn kneighbors k=5001, search only (s) | imblearn ADASYN n_neighbors=5 (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cell = lambda s: f"{s['median_s']:.2f} [{s['min_s']:.2f}-{s['max_s']:.2f}] x{s['runs']}"  # noqa: E731
        paired = f"{min(r['speedup_paired']):.1f}-{max(r['speedup_paired']):.1f}x"
        skl_paired = f"{min(r['speedup_sklearn_paired']):.1f}-{max(r['speedup_sklearn_paired']):.1f}x"
        lines.append(f"| {r['data']['features']} | {cell(r['ours'])} | {cell(r['sklearn_reference'])} | "
                     f"{r['speedup_vs_sklearn_reference']:.1f}x ({skl_paired}) | {cell(r['reference_loop'])} | "
                     f"{r['speedup_vs_reference']:.1f}x ({paired}) | "
                     f"{'yes' if r['identical_to_sklearn_reference'] else 'NO'} / "
                     f"{'yes' if r['identical_to_reference'] else 'NO'} | "
                     f"{cell(r['sklearn_kneighbors_5001'])} | {cell(r['imblearn_adasyn_5'])} |")
    lines += [
        "", "Target (>= 10x the sklearn reference, median): "
        + "; ".join(f"{r['data']['features']}: {r['speedup_vs_sklearn_reference']:.1f}x, "
                    f"{'met' if r['speedup_vs_sklearn_reference'] >= 10 else 'NOT met'}" for r in results) + ". "
        "The reference's own time depends on the load far more than ours: its brute-force `kneighbors` uses "
        "both cores when they are free (the issue measured it at ~4.2 s; this run: "
        + "; ".join(f"{r['sklearn_reference']['min_s']:.2f}-{r['sklearn_reference']['max_s']:.2f} s"
                    for r in results)
        + "), so the ratio is lowest on a quiet machine. Every timed call "
        f"follows a {SETTLE_S:g} s pause (BLAS worker threads of the call before keep spinning for a while). "
        "On this virtual machine the first touch of the ~82 MB output (fresh memory) varies several-fold "
        "from run to run; ours does it in a thread during the neighbour search, which hides most of it, and "
        "the medians include every run.",
        "", f"Each run makes {first['synthetic_rows']:,} synthetic rows (exactly G = 170,588 - 295). "
        "*Bit-identical* means our output equals the reference loop's exactly: same rows, labels, parents "
        "and per-point counts g_i (both consume the random stream the same way), so the distribution of "
        "synthetic points is the same, not merely similar. "
        + "; ".join(f"{r['data']['features']}: {r['fallback_points']} fraud(s) had no fraud among their 5000 "
                    f"neighbours (fallback rule), r_i in [{r['r_min_max'][0]:.3f}, {r['r_min_max'][1]:.3f}], "
                    f"peak memory allocated during one fit_resample {r['peak_traced_gib']:.2f} GiB (tracemalloc; "
                    f"input {r['input_gib']:.2f} GiB, output ~{2 * r['input_gib']:.2f} GiB)" for r in results) + ".",
        "", "*sklearn reference*: `NearestNeighbors(n_neighbors=5001, algorithm='brute')` on the training rows, "
        "queried with the frauds, then the same r_i, g_i, fallback and a per-sample Python generation loop "
        "(bench/reference_adasyn.py, `sklearn_reference_adasyn`): what a careful user would write with the "
        "field's library. *Reference loop*: one exact distance pass and stable sort per fraud, same rules.",
        "", "The reference loop is faster on raw features because the rows are in time order and raw distances "
        "are dominated by Time, so each per-point stable sort (timsort) sees two long sorted runs, which it "
        "sorts far faster than the unordered distances of standardised features.",
        "", "imblearn's ADASYN with `n_neighbors=5000` fails: "
        f"`{first['imblearn_adasyn_5000']}`. It uses one `n_neighbors` twice: for the ratio r_i over the whole "
        "data *and* for the interpolation partners, which it searches among the class's own rows only "
        f"(a nearest-neighbour model fitted on the {first['data']['frauds']} frauds), so k + 1 = 5001 neighbours "
        "cannot exist. Even with enough class rows it would mean 'any of the 5000 nearest class mates', not "
        "the reference's 'the class mates among the 5000 nearest rows'. It also rounds each g_i on its own, "
        f"so the total is not exactly G (here {first['imblearn_adasyn_5']['synthetic_rows']:,} rows instead of "
        f"{first['synthetic_rows']:,}), and raises instead of falling back when every r_i is 0. At "
        "n_neighbors=5 it is a different (SMOTE-like, local) resampler; its time is shown for scale only.",
    ]
    return "\n".join(lines)


def update_doc(block: str, name: str = "bench_adasyn") -> None:
    """Replace the section between ``name``'s markers in docs/benchmarks.md (or append it)."""
    replace_block(DOC, name, block)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="creditcard.csv/parquet (default: adaptlab cache)")
    parser.add_argument("--features", choices=["standardized", "raw", "both"], default="both")
    parser.add_argument("--seed", type=int, default=42, help="split seed (the reference study's: 42)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each fast method (ours: this many next to each reference run)")
    parser.add_argument("--reference-repeats", type=int, default=3, help="runs of the (slow) reference loop")
    parser.add_argument("--update-doc", action="store_true",
                        help="rewrite this benchmark's section of docs/benchmarks.md")
    args = parser.parse_args()
    results = []
    for features in (["standardized", "raw"] if args.features == "both" else [args.features]):
        args.features = features
        results.append(run(args))
        print(json.dumps(results[-1], indent=2), flush=True)
    block = markdown(results)
    print(block)
    if args.update_doc:
        update_doc(block)
    return 0 if all(r["identical_to_reference"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
