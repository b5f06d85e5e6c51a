"""``adaptlab fraud run``: analyse the data, (resample,) train the MLP, evaluate honestly, write the run folder.

:func:`run_study` is what the command calls; a Python user can call it too. Thresholds are chosen on
validation only, never on test.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from adaptlab.core.metrics import best_f1_threshold, binary_metrics
from adaptlab.core.plots import plot_curves, plot_pr_curves
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder, check_output_root
from adaptlab.fraud.analysis import accuracy_warning, provenance_line, write_analysis
from adaptlab.fraud.config import FraudConfig
from adaptlab.fraud.data import AMOUNT, FEATURES, LABEL, load_dataset, split_indices
from adaptlab.fraud.evaluation import confusion_grid, evaluate_parts, metrics_row
from adaptlab.fraud.model import TrainResult, predict_proba, save_model, train_mlp
from adaptlab.fraud.protocols import LEAKY, Part, guard_scoring, mark_leaky, prepare_protocol
from adaptlab.fraud.run_resampling import LEAKY_WARNING, LeakyReport, resampling_section, resampling_summary
from adaptlab.fraud.samplers import make_sampler

CURVES = (("loss", "BCE loss", "binary cross-entropy (nats)"), ("accuracy", "accuracy at 0.5", "accuracy"),
          ("ap", "average precision", "average precision (AUPRC)"))


def run_study(config: FraudConfig, output_dir: Path = Path("runs"), quiet: bool = False) -> Path:
    """``adaptlab fraud run``: analyse, split, (resample,) train, evaluate at 0.5 and at the val-F1 threshold,
    report, in a new run folder under ``output_dir``. With ``resampler`` set, the parts come from
    :func:`prepare_protocol`; val and test pass :func:`guard_scoring` before anything is scored, and a
    paper-protocol run is marked LEAKY throughout."""
    from adaptlab.core.system import machine_description, peak_rss_bytes

    started = time.perf_counter()
    frame, provenance = load_dataset(None if config.data is None else Path(config.data), quiet=quiet)
    check_output_root(output_dir)  # a bad --output-dir fails now, not after training
    split = split_indices(frame, config.split, config.seed, config.test_size, config.val_size)
    X = frame[FEATURES].to_numpy()
    y = frame[LABEL].to_numpy()
    sampler = make_sampler(config.resampler, config, config.seed)
    data = prepare_protocol(config.protocol, sampler, config.split, config.seed, X, y, split,
                            config.test_size, config.val_size)
    guards = {name: guard_scoring(data, name).to_dict() for name in ("val", "test")}  # raises on a safe leak
    parts = {part.name: part for part in data.parts()}
    mark = partial(mark_leaky, leaky=config.leaky)
    with RunFolder(output_dir, f"{config.name}-{LEAKY}" if config.leaky else config.name) as run:
        run.write_config(config)
        report = (LeakyReport if config.leaky else Report)("Fraud detection with an MLP on the ULB credit-card data")
        report.paragraph(provenance_line(provenance))
        summary = write_analysis(frame, run, report, mark)
        accuracy_warning(report, summary)
        resampling = resampling_summary(config, sampler, data, guards, len(split.train))
        resampling_section(report, resampling)

        train_config = config.training()
        result = train_mlp(data.train.X, data.train.y, data.val.X, data.val.y, train_config, progress=not quiet)
        scores = {name: predict_proba(result.model, result.scaler, part.X) for name, part in parts.items()}
        threshold = best_f1_threshold(data.val.y, scores["val"])
        metrics = evaluate(parts, scores, threshold)
        warning = {"warning": LEAKY_WARNING} if config.leaky else {}
        save_model(run.file("model"), result, features=FEATURES, threshold=threshold,
                   threshold_rule="maximises F1 on the validation split", config=train_config,
                   extra={"leaky": config.leaky, **warning, "resampler": config.resampler,
                          "protocol": config.protocol})

        wall_s = time.perf_counter() - started
        run.write_json("metrics.json", {
            "leaky": config.leaky, **warning,
            "data": provenance,
            "classes": summary,
            "split": {"method": config.split, "seed": config.seed,
                      "sizes": {name: len(part.y) for name, part in parts.items()},
                      "frauds": {name: int(part.y.sum()) for name, part in parts.items()}},
            "resampling": resampling,
            "training": {"history": result.history, "best_epoch": result.best_epoch,
                         "stopped_early": result.stopped_early, "seconds": result.seconds},
            "val_f1_threshold": threshold,
            "metrics": metrics,
            "never_fraud_accuracy": {name: 1 - float(part.y.mean()) for name, part in parts.items()},
            "wall_seconds": wall_s,
            "peak_rss_bytes": peak_rss_bytes(),
            "machine": machine_description(),
            "command": " ".join(sys.argv),
        })
        _model_section(run, report, config, parts, result, threshold, mark)
        _results_section(run, report, parts, scores, metrics, mark)
        report.heading("Scoring new transactions")
        report.paragraph("The model folder holds the weights (model.safetensors), the training-split scaler "
                         "(scaler.json), the feature order and the validation threshold (model.json). Score a "
                         "CSV or parquet file with the 30 feature columns:")
        report.code(f"adaptlab fraud score {run.final_path} transactions.csv --output scores.csv")
        report.heading("Run")
        report.bullets([f"wall time {wall_s:.1f} s (training {result.seconds:.1f} s)",
                        f"machine: {machine_description()}",
                        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"])
        report.write(run.path)
    return run.path


def evaluate(parts: dict[str, Part], scores: dict, threshold: float) -> dict:
    """``{part: {"at_0.5": metrics, "at_val_threshold": metrics}}`` (see :func:`evaluate_parts`); amounts
    come from each row's Amount feature (a synthetic row's is interpolated)."""
    return evaluate_parts({name: (part.y, scores[name], part.X[:, AMOUNT]) for name, part in parts.items()},
                          threshold)


def _part_label(part: Part) -> str:
    synthetic = int(part.synthetic.sum())
    return f"{part.name} (incl. {synthetic:,} synthetic)" if synthetic else part.name


def _model_section(run: RunFolder, report: Report, config: FraudConfig, parts: dict[str, Part],
                   result: TrainResult, threshold: float, mark: Callable[[str], str]) -> None:
    """How the model was built and trained, with its learning curves (the kept epoch marked)."""
    report.heading("Model and protocol")
    sizes = {name: len(part.y) for name, part in parts.items()}
    frauds = ", ".join(f"{int(part.y.sum())} frauds in {name}" for name, part in parts.items())
    resampled = "" if config.resampler == "none" else f", after {config.resampler} ({config.protocol} protocol)"
    report.bullets([
        f"split: {config.split} (seed {config.seed}){resampled}: train {sizes['train']:,} / validation "
        f"{sizes['val']:,} / test {sizes['test']:,} rows, with {frauds}",
        f"MLP {len(FEATURES)} -> {' -> '.join(map(str, config.hidden_sizes))} -> 1, ReLU, dropout {config.dropout}; "
        f"inputs standardised with training-split statistics only",
        f"Adam lr {config.lr}, batch {config.batch_size}, BCEWithLogitsLoss, pos_weight {config.pos_weight or 'none'}; "
        f"early stopping on validation average precision (patience {config.patience}): {result.stopping_note()}",
        f"decision thresholds: 0.5, and {threshold:.4f} = the threshold maximising F1 on validation "
        "(chosen on validation only; test never informs a choice)",
    ])
    history = result.history
    if len(history) < 2:  # one epoch is a point, not a curve: a table says it better
        report.table([{"split": split, **{label: history[0][f"{split}_{key}"] for key, label, _ in CURVES}}
                      for split in ("train", "val")])
        report.paragraph("One epoch was trained, so there are no learning curves; the table gives its numbers.")
        return
    epochs = [h["epoch"] for h in history]
    for key, label, unit in CURVES:
        path = run.file(f"curve_{key}.png")
        plot_curves(epochs, {"train": [h[f"train_{key}"] for h in history],
                             "validation": [h[f"val_{key}"] for h in history]},
                    path, title=mark(f"{label[:1].upper()}{label[1:]} per epoch"), xlabel="epoch", ylabel=unit,
                    chosen_x=result.best_epoch, chosen_label="weights kept")
        best = history[result.best_epoch - 1]
        report.image(path, f"At the kept epoch {result.best_epoch}: train {best[f'train_{key}']:.4f}, validation "
                           f"{best[f'val_{key}']:.4f}; {len(history)} epochs run.")


def _results_section(run: RunFolder, report: Report, parts: dict[str, Part], scores: dict, metrics: dict,
                     mark: Callable[[str], str]) -> None:
    """The metrics table per split and threshold, the never-fraud baseline, PR curves, confusion matrices."""
    report.heading("Results")
    rows = []
    for name, by_threshold in metrics.items():
        for rule, m in by_threshold.items():
            label = f"{m['threshold']:.4f}" + (" (val F1)" if rule != "at_0.5" else "")
            rows.append({"split": mark(_part_label(parts[name])), "threshold": label, **metrics_row(m)})
    # the "never fraud" baseline on test, through the same metric code: a constant score of 0
    test_part = parts["test"]
    base = binary_metrics(test_part.y, np.zeros(len(test_part.y)), 0.5, test_part.X[:, AMOUNT])
    rows.append({"split": mark("test"), "threshold": "never fraud", **metrics_row(base)})
    report.table(rows)
    test = metrics["test"]["at_val_threshold"]
    never = 1 - float(test_part.y.mean())
    amount_share = test["amount_caught_share"] or 0.0
    report.paragraph(
        f"On test, \"never fraud\" would score accuracy {100 * never:.2f}%; the MLP scores "
        f"{100 * test['accuracy']:.2f}% — a gap of {100 * (test['accuracy'] - never):.2f} points that hides "
        f"what matters: it catches {100 * test['recall']:.1f}% of frauds ({100 * amount_share:.1f}% "
        f"of the fraudulent amount) with precision {100 * test['precision']:.1f}% at the validation threshold.")
    pr_path = run.file("pr_curves.png")
    plot_pr_curves({f"{n} (AP {metrics[n]['at_0.5']['average_precision']:.3f})": (part.y, scores[n])
                    for n, part in parts.items()}, pr_path, title=mark("Precision-recall curves per split"))
    report.image(pr_path, "Dotted: the chance level, a random scorer's precision, which is the fraud share of "
                          "the split; the height of a curve above it is what the model adds. AP in the legend.")
    report.heading("Confusion matrices")
    matrices = {f"{name}, threshold {m['threshold']:.4f}" + (" (val F1)" if rule != "at_0.5" else ""): m
                for name, by_rule in metrics.items() for rule, m in by_rule.items()}
    confusion_grid(run, report, matrices, title=mark("Confusion matrices per split and threshold"), columns=2,
                   caption="Colours show the share of each true class (rows sum to 100%), so the few frauds are "
                           "as readable as the many normal transactions; each cell gives the count and that share. "
                           "The validation threshold trades false alarms for caught frauds.")
