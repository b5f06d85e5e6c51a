"""The ``fraud compare`` run folder: one table, the paper-protocol inflation, whether ADASYN helps,
noise (bootstrap intervals, seed spread), PR curves, confusion matrices, metrics.json, report.md/html.

Every number in the report is computed here from the run's own results; nothing is typed in.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from adaptlab.core.metrics import resampled_average_precision
from adaptlab.core.plots import plot_pr_curves
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder, check_output_root
from adaptlab.fraud.analysis import provenance_line
from adaptlab.fraud.compare import LIGHTGBM_PARAMS, run_all
from adaptlab.fraud.config import CompareConfig
from adaptlab.fraud.data import FEATURES, LABEL, load_dataset
from adaptlab.fraud.evaluation import confusion_grid, metrics_row
from adaptlab.fraud.methods import METHODS
from adaptlab.fraud.protocols import LEAKY

THRESHOLD_KEYS = {"at_0.5": "@0.5", "at_val_threshold": "@val thr"}
RATE_COLUMNS = ("precision", "recall", "F1", "fraud amount caught")
# the metrics of the table that the inflation and the seed spread are computed for, in table order
METRIC_COLUMNS = ("AUPRC", "ROC-AUC", *[f"{c} {k}" for k in THRESHOLD_KEYS.values() for c in RATE_COLUMNS])


def compare_study(config: CompareConfig, output_dir: Path = Path("runs"), quiet: bool = False) -> Path:
    """``adaptlab fraud compare``: run every selected row for every seed and write the run folder under
    ``output_dir``."""
    from adaptlab.core.system import machine_description, peak_rss_bytes

    started = time.perf_counter()
    frame, provenance = load_dataset(None if config.data is None else Path(config.data), quiet=quiet)
    check_output_root(output_dir)  # a bad --output-dir fails now, not after training
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    results = run_all(config, X, y, frame, quiet=quiet)
    methods = config.selected()
    table, spread = summary_table(methods, results)
    inflation = inflation_rows(table)
    boot = {seed: bootstrap_auprc(r["rows"], config.bootstrap, seed) for seed, r in results.items()}
    with RunFolder(output_dir, config.name) as run:
        run.write_config(config)
        leaky = any(m.leaky for m in methods)
        report = Report("Fraud: resampler comparison" + (f" (includes {LEAKY} rows)" if leaky else ""))
        report.paragraph(provenance_line(provenance))
        _setup_section(report, config, results)
        _table_section(report, table, spread, len(config.seeds), config.resolved_workers())
        _training_note(report, config, methods, results)
        _inflation_section(report, inflation, results, float(y.mean()))
        helps = _helps_section(report, results, boot, table, spread)
        _plots(run, report, methods, results)
        wall_s = time.perf_counter() - started
        run.write_json("metrics.json", {
            "data": provenance,
            "split": {"method": config.split, "seeds": config.seeds,
                      "sizes": {s: r["split"].sizes() for s, r in results.items()},
                      "frauds": {s: {n: int(y[rows].sum()) for n, rows in r["split"].items()}
                                 for s, r in results.items()}},
            "methods": {m.name: {"label": m.label, "description": m.description, "protocol": m.protocol,
                                 "leaky": m.leaky, **({"warning": f"{LEAKY}: scored on a split that holds "
                                                      "synthetic rows and their parents"} if m.leaky else {}),
                                 "seeds": {s: {k: v for k, v in r["rows"][m.name].items() if k != "_test"}
                                           for s, r in results.items()}}
                        for m in methods},
            "table": table, "seed_std": spread, "inflation": inflation, "bootstrap": boot, "adasyn_helps": helps,
            "wall_seconds": wall_s, "peak_rss_bytes": peak_rss_bytes(),
            # with workers > 1 the rows ran in worker processes: the largest finished child process's peak
            "peak_worker_rss_bytes": peak_rss_bytes(children=True), "machine": machine_description(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv)})
        report.heading("Run")
        report.bullets([f"wall time {wall_s:.1f} s", f"machine: {machine_description()}",
                        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"])
        report.write(run.path)
    return run.path


# -------------------------------------------------------------------------------------------- numbers

def row_numbers(result: dict) -> dict:
    """One seed's table numbers of one row (test split), from the shared :func:`metrics_row`."""
    test = result["metrics"]["test"]
    numbers = {"training rows": result["train_rows"], "train s": result["train_seconds"]}
    first = metrics_row(test["at_0.5"])
    numbers.update({"AUPRC": first["AUPRC"], "ROC-AUC": first["ROC-AUC"], "val thr": result["val_f1_threshold"]})
    for rule, suffix in THRESHOLD_KEYS.items():
        columns = metrics_row(test[rule])
        numbers.update({f"{c} {suffix}": columns[c] for c in RATE_COLUMNS})
    return numbers


def summary_table(methods, results: dict) -> tuple[list[dict], dict]:
    """Table rows (mean over seeds of every number) and ``{method: {column: std over seeds}}``."""
    table, spread = [], {}
    for method in methods:
        per_seed = [row_numbers(r["rows"][method.name]) for r in results.values()]
        row = {"method": method.label, "protocol": method.protocol}
        spread[method.name] = {}
        for column in per_seed[0]:
            values = np.array([np.nan if p[column] is None else p[column] for p in per_seed], dtype=float)
            row[column] = float(values.mean())
            spread[method.name][column] = float(values.std(ddof=1)) if len(values) > 1 else None
        row["training rows"] = int(round(row["training rows"]))
        table.append(row)
    return table, spread


def inflation_rows(table: list[dict]) -> list[dict]:
    """For every paper row whose safe twin is in the table: per metric, safe value, paper value,
    ``absolute = paper - safe`` and ``relative = absolute / safe`` (None when safe is 0)."""
    by_label = {row["method"]: row for row in table}
    out = []
    for row in table:
        method = METHODS[row["method"].removeprefix(f"{LEAKY}: ")]
        if not method.leaky or method.safe_twin not in by_label:
            continue
        safe = by_label[method.safe_twin]
        for metric in METRIC_COLUMNS:
            absolute = row[metric] - safe[metric]
            out.append({"paper row": row["method"], "safe row": method.safe_twin, "metric": metric,
                        "safe": safe[metric], "paper": row[metric], "absolute": absolute,
                        "relative": absolute / safe[metric] if safe[metric] else None})
    return out


def bootstrap_auprc(rows: dict, n_boot: int, seed: int) -> dict:
    """Stratified bootstrap of the test split (frauds and normals resampled separately, so every resample
    keeps the fraud count): per row a 95% interval of test AUPRC, and for every safe row the paired
    difference to ``none`` and ``class-weights`` (same resamples, so split noise cancels)."""
    if n_boot == 0:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, np.ndarray] = {}
    samples: dict[bytes, list] = {}  # one set of resamples per distinct test split (safe rows share one)
    for name, result in rows.items():
        y, scores = result["_test"]
        key = y.tobytes() + str(len(y)).encode()
        if key not in samples:
            fraud, normal = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
            samples[key] = [np.concatenate([rng.choice(fraud, len(fraud)), rng.choice(normal, len(normal))])
                            for _ in range(n_boot)]
        draws[name] = resampled_average_precision(y, scores, samples[key])
    out = {"resamples": n_boot, "auprc_ci95": {n: _interval(d) for n, d in draws.items()}, "paired": {}}
    for reference in ("none", "class-weights"):
        if reference not in rows:
            continue
        for name, result in rows.items():
            if name != reference and not result["leaky"] and not rows[reference]["leaky"]:
                diff = draws[name] - draws[reference]
                out["paired"][f"{name} - {reference}"] = {"mean": float(diff.mean()), "ci95": _interval(diff)}
    return out


def _interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


# -------------------------------------------------------------------------------------------- report

def _setup_section(report: Report, config: CompareConfig, results: dict) -> None:
    first = next(iter(results.values()))
    sizes = first["split"].sizes()
    report.heading("Setup")
    report.bullets([
        f"split: {config.split}, seeds {', '.join(map(str, config.seeds))} (each seed sets the split, the "
        f"resampler and the model); seed {config.seeds[0]}: train {sizes['train']:,} / validation "
        f"{sizes['val']:,} / test {sizes['test']:,} rows",
        f"MLP {len(FEATURES)} -> {' -> '.join(map(str, config.hidden_sizes))} -> 1 as in `fraud run` (batch "
        f"{config.batch_size}, lr {config.lr}, {config.threads} thread), but at most {config.epochs} epochs with "
        f"patience {config.patience}: oversampled training sets are about twice as large",
        f"our ADASYN: ratio {config.adasyn_ratio}, imb_threshold {config.adasyn_imb_threshold}, k {config.adasyn_k}; "
        f"imblearn ADASYN: n_neighbors {config.imblearn_adasyn_neighbors}; SMOTE: k_neighbors 5",
        "k-NN resamplers (SMOTE, both ADASYNs) work on standardised features (statistics of the rows they "
        "resample); synthetic rows are mapped back to raw units",
        f"LightGBM: {LIGHTGBM_PARAMS}, {config.lightgbm_jobs} thread(s)",
        "every row's decision threshold maximises F1 on its own validation part; test never informs a choice",
        "safe protocol: only training rows are resampled; each validation and test part passed the leakage "
        "guard (no synthetic row, no parent of a synthetic row, no training row)",
    ] + ([
        f"paper protocol ({LEAKY}): all rows resampled, then split "
        + ("by time: resampled rows ordered by their Time feature (synthetic rows carry the interpolated "
           f"Time), the same shares as the data's time split (test_size {config.test_size}, val_size "
           f"{config.val_size} of the rest)" if config.split == "time" else
           f"stratified ({config.test_size:.0%} test, then {config.val_size:.0%} of the rest validation)")
        + "; synthetic rows and their parents land in validation and test",
    ] if any(r["leaky"] for r in first["rows"].values()) else []))


def _table_section(report: Report, table: list[dict], spread: dict, n_seeds: int, workers: int) -> None:
    report.heading("Results on the test split")
    if n_seeds == 1:
        report.table(table)
    else:
        shown = []
        for row in table:
            std = spread[row["method"].removeprefix(f"{LEAKY}: ")]
            shown.append({k: (f"{v:.4f} ± {std[k]:.4f}" if isinstance(v, float) and std.get(k) is not None else v)
                          for k, v in row.items()})
        report.table(shown)
        report.paragraph(f"Mean ± standard deviation over {n_seeds} seeds.")
    report.paragraph("Rates are fractions; '@0.5' at threshold 0.5, '@val thr' at the threshold that maximises "
                     "F1 on validation ('val thr'); 'train s' includes the resampling time"
                     + (f" and was measured while {workers} rows ran side by side (one per worker process), so "
                        "it is longer than a row alone would take. " if workers > 1 else ". ")
                     + f"{LEAKY} rows are scored on their own test split, which holds synthetic rows.")


def _training_note(report: Report, config: CompareConfig, methods, results: dict) -> None:
    """How long each model trained (first seed): early stopping vs the epoch cap, boosting rounds."""
    seed, first = next(iter(results.items()))
    parts, capped = [], []
    for method in methods:
        model = first["rows"][method.name]["model"]
        if "best_iteration" in model:
            parts.append(f"{method.label} {model['best_iteration']} boosting rounds")
        else:
            parts.append(f"{method.label} {model['epochs_run']} epochs (best {model['best_epoch']})")
            if model["epochs_run"] == config.epochs and model["best_epoch"] == config.epochs:
                capped.append(method.label)
    text = f"Training length (seed {seed}): " + "; ".join(parts) + "."
    if capped:
        text += (f" Still improving when the {config.epochs}-epoch cap ended training: {', '.join(capped)} "
                 "(a larger --epochs may lift them a little).")
    report.paragraph(text)


def _inflation_section(report: Report, inflation: list[dict], results: dict, fraud_rate: float) -> None:
    if not inflation:
        return
    report.heading(f"{LEAKY}: how much the paper protocol inflates the scores")
    report.table([{**row, "relative %": None if row["relative"] is None else 100 * row["relative"]}
                  for row in inflation], ["paper row", "safe row", "metric", "safe", "paper", "absolute", "relative %"])
    auprc = [r for r in inflation if r["metric"] == "AUPRC"]
    sentences = [f"{r['paper row']} reports test AUPRC {r['paper']:.4f} where the same resampler under the safe "
                 f"protocol gets {r['safe']:.4f}: {r['absolute']:+.4f} absolute ({_percent(r['relative'])})."
                 for r in auprc]
    seed, first = next(iter(results.items()))
    for name, result in first["rows"].items():
        if result["leaky"]:
            test, guard = result["parts"]["test"], result["guard"]["test"]
            sentences.append(
                f"Why (seed {seed}, {name}): its test part has {test['rows']:,} rows, {guard['synthetic_rows']:,} "
                f"of them synthetic and {guard['parent_rows']:,} parents of synthetic training rows; "
                f"{100 * result['metrics']['test']['at_0.5']['positives'] / test['rows']:.1f}% are frauds "
                f"(in the data: {100 * fraud_rate:.2f}%). The model is graded on interpolations of points it "
                "trained on.")
    report.paragraph(" ".join(sentences))


def _percent(value) -> str:
    return "n/a relative" if value is None else f"{100 * value:+.1f}% relative"


def _helps_section(report: Report, results: dict, boot: dict, table: list[dict], spread: dict) -> dict:
    """Does our ADASYN help under the safe protocol? Numbers and noise; returns them for metrics.json."""
    seed, first = next(iter(results.items()))
    rows = first["rows"]
    if "adasyn" not in rows or "none" not in rows:
        return {}
    report.heading("Does ADASYN help under the safe protocol?")
    y_test = rows["none"]["_test"][0]
    frauds = int(y_test.sum())
    by_name = {row["method"]: row for row in table}
    facts, helps = [], {"test_frauds": frauds, "recall_points_per_fraud": 100 / frauds}
    for reference in ("none", "class-weights"):
        if reference not in by_name:
            continue
        diff = by_name["adasyn"]["AUPRC"] - by_name[reference]["AUPRC"]
        paired = boot.get(seed, {}).get("paired", {}).get(f"adasyn - {reference}")
        verdict = ""
        if paired:
            low, high = paired["ci95"]
            verdict = (" — better beyond the noise" if low > 0 else " — worse beyond the noise" if high < 0
                       else " — within the noise: no measurable difference")
            verdict = f" (paired bootstrap 95% interval, seed {seed}: [{low:+.4f}, {high:+.4f}]){verdict}"
        mean = f" (mean of {len(results)} seeds)" if len(results) > 1 else ""
        facts.append(f"test AUPRC{mean} adasyn {by_name['adasyn']['AUPRC']:.4f} vs {reference} "
                     f"{by_name[reference]['AUPRC']:.4f}: {diff:+.4f}{verdict}.")
        helps[f"auprc_minus_{reference}"] = {"difference": diff, "paired_bootstrap": paired}
    counts = {name: rows[name]["metrics"]["test"]["at_val_threshold"]["confusion_matrix"]
              for name in ("adasyn", "none", "class-weights") if name in rows}
    facts.append(f"At the validation threshold (seed {seed}) " + "; ".join(
        f"{name} catches {m[1][1]} of {frauds} test frauds with {m[0][1]} false alarms" for name, m in counts.items())
        + ".")
    facts.append(f"Noise: the test split holds {frauds} frauds, so one fraud is {100 / frauds:.1f} recall points; "
                 "differences of a few frauds are within what another split or seed would give. The bootstrap "
                 "covers only the sampling of test rows, not training noise (initialisation, batch order, "
                 "early stopping): that spread shows across seeds (--seeds).")
    if len(boot) > 1:  # the same paired comparison on every seed's own split: does the sign hold?
        for reference in ("none", "class-weights"):
            per_seed = [(s, b["paired"][f"adasyn - {reference}"]) for s, b in boot.items()
                        if f"adasyn - {reference}" in b.get("paired", {})]
            if per_seed:
                facts.append(f"Paired bootstrap of adasyn - {reference} per seed (mean [95% interval]): " + "; ".join(
                    f"seed {s} {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" for s, d in per_seed)
                    + ".")
    if spread["adasyn"].get("AUPRC") is not None:
        facts.append("Seed spread (std) of test AUPRC: " + ", ".join(
            f"{name} {spread[name]['AUPRC']:.4f}" for name in ("none", "class-weights", "adasyn") if name in spread)
            + ".")
    report.paragraph(" ".join(facts))
    intervals = boot.get(seed, {}).get("auprc_ci95", {})
    if intervals:
        report.table([{"method": METHODS[n].label,
                       "test AUPRC": rows[n]["metrics"]["test"]["at_0.5"]["average_precision"],
                       "95% low": lo, "95% high": hi} for n, (lo, hi) in intervals.items()])
        report.paragraph(f"Stratified bootstrap of the test split ({boot[seed]['resamples']} resamples, seed {seed}).")
    return helps


def _plots(run: RunFolder, report: Report, methods, results: dict) -> None:
    seed, first = next(iter(results.items()))
    rows = first["rows"]
    leaky = any(m.leaky for m in methods)
    title = f"Test precision-recall curves (seed {seed})" + (f"; {LEAKY} rows on their own split" if leaky else "")
    curves = {f"{m.label} (AP {rows[m.name]['metrics']['test']['at_0.5']['average_precision']:.3f})":
              rows[m.name]["_test"] for m in methods}
    path = run.file("pr_curves.png")
    plot_pr_curves(curves, path, title=title)
    report.heading("Precision-recall curves")
    report.image(path, "Dotted: the chance level (fraud share of each distinct test split), what a random scorer "
                       "reaches; AP in the legend." + (f" {LEAKY} rows are scored on their own test split, whose "
                                                       "fraud share is far higher." if leaky else ""))
    report.heading("Confusion matrices (test, validation threshold)")
    matrices = {f"{METHODS[name].label}, thr {m['threshold']:.4f}": m for name, m in
                ((m.name, rows[m.name]["metrics"]["test"]["at_val_threshold"]) for m in methods)}
    confusion_grid(run, report, matrices, title=f"Test confusion matrices at each row's validation threshold "
                                                f"(seed {seed})", columns=4,
                   caption="Colours show the share of each true class (rows sum to 100%); each cell gives the "
                           "count and that share: frauds caught (bottom right) against false alarms (top right).")
