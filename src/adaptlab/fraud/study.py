"""The fraud study: analyse the data, train the MLP, evaluate honestly, write the run folder.

:func:`analyze_study` and :func:`run_study` are what ``adaptlab fraud analyze`` / ``run`` call; a
Python user can call them too. Thresholds are chosen on validation only, never on test.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from adaptlab.core.metrics import best_f1_threshold, binary_metrics
from adaptlab.core.plots import plot_bars, plot_curves, plot_histograms, plot_pr_curves
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import FEATURES, LABEL, SPLIT_METHODS, load_dataset, split_indices
from adaptlab.core.checks import MAX_THREADS, is_int, is_number, is_seed
from adaptlab.fraud.compare import AMOUNT, RESAMPLERS, make_sampler, prepare_protocol
from adaptlab.fraud.evaluation import confusion_images, evaluate_parts, metrics_row
from adaptlab.fraud.model import TrainConfig, TrainResult, predict_proba, save_model, train_mlp
from adaptlab.fraud.protocols import LEAKY, PAPER, PROTOCOLS, SAFE, Part, guard_scoring, mark_leaky
from adaptlab.fraud.run_resampling import LEAKY_WARNING, LeakyReport, resampling_section, resampling_summary

REFERENCE_CONFIG = Path(__file__).with_name("reference.yaml")
_TRAIN = TrainConfig()  # the single source of the training defaults


@dataclass
class FraudConfig:
    """Everything a fraud run depends on; saved as ``config.yaml`` in the run folder."""

    name: str = "fraud"
    data: str | None = None  # CSV/parquet path; None = the resolved, cached ULB data
    split: str = "stratified"
    test_size: float = 0.2  # share of all rows held out as test (time split: the newest)
    val_size: float = 0.25  # share of the remaining rows used for validation (time split: the next newest)
    seed: int = _TRAIN.seed
    hidden_sizes: list[int] = field(default_factory=lambda: list(_TRAIN.hidden_sizes))
    dropout: float = _TRAIN.dropout
    lr: float = _TRAIN.lr
    batch_size: int = _TRAIN.batch_size
    epochs: int = _TRAIN.epochs
    patience: int = _TRAIN.patience
    pos_weight: float | str | None = _TRAIN.pos_weight
    threads: int = _TRAIN.threads
    resampler: str = "none"  # none, or a key of compare.RESAMPLERS: applied per the protocol below
    protocol: str = SAFE  # safe: resample the training split only; paper: resample all rows, then split (LEAKY)
    adasyn_ratio: float = 1.0  # our ADASYN, reference parameters (see fraud/resample.py)
    adasyn_imb_threshold: float = 0.6
    adasyn_k: int = 5000
    imblearn_adasyn_neighbors: int = 5

    def validate(self) -> None:
        problems = []
        if self.split not in SPLIT_METHODS:
            problems.append(f"split must be one of {', '.join(SPLIT_METHODS)}, not {self.split!r}")
        if not (isinstance(self.hidden_sizes, list) and self.hidden_sizes
                and all(is_int(h) and h > 0 for h in self.hidden_sizes)):
            problems.append(f"hidden_sizes must be a non-empty list of positive integers, not {self.hidden_sizes!r}")
        ranges = {"dropout": (0, 1, "[0, 1)"), "test_size": (0, 1, "(0, 1)"), "val_size": (0, 1, "(0, 1)")}
        for key, (low, high, text) in ranges.items():
            value = getattr(self, key)
            if not (is_number(value) and (low <= value < high if key == "dropout" else low < value < high)):
                problems.append(f"{key} must be a number in {text}, not {value!r}")
        if not (is_number(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, not {self.lr!r}")
        for key in ("batch_size", "epochs", "patience"):
            if not (is_int(getattr(self, key)) and getattr(self, key) > 0):
                problems.append(f"{key} must be a positive integer, not {getattr(self, key)!r}")
        if not (is_int(self.threads) and 1 <= self.threads <= MAX_THREADS):
            problems.append(f"threads must be an integer from 1 to {MAX_THREADS}, not {self.threads!r}")
        if not is_seed(self.seed):
            problems.append(f"seed must be an integer from 0 to 2**32 - 1, not {self.seed!r}")
        if not (self.pos_weight is None or self.pos_weight == "balanced"
                or (is_number(self.pos_weight) and self.pos_weight > 0)):
            problems.append(f"pos_weight must be empty, 'balanced' or a positive number, not {self.pos_weight!r}")
        if not (isinstance(self.name, str) and self.name and "/" not in self.name):
            problems.append(f"name must be non-empty text without '/', not {self.name!r}")
        if self.data is not None and not isinstance(self.data, str):
            problems.append(f"data must be a file path, not {self.data!r}")
        problems += self._resampling_problems()
        if problems:
            raise AdaptlabError("invalid config: " + "; ".join(problems))

    def _resampling_problems(self) -> list[str]:
        problems = []
        if self.resampler != "none" and self.resampler not in RESAMPLERS:
            problems.append(f"resampler must be one of none, {', '.join(RESAMPLERS)}, not {self.resampler!r}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        elif self.protocol == PAPER and self.resampler == "none":
            problems.append("protocol paper means resampling all rows before the split: it needs a resampler "
                            "(e.g. --resampler adasyn), and resampler is none")
        for key in ("adasyn_k", "imblearn_adasyn_neighbors"):
            if not (is_int(getattr(self, key)) and getattr(self, key) > 0):
                problems.append(f"{key} must be a positive integer, not {getattr(self, key)!r}")
        if not (is_number(self.adasyn_ratio) and self.adasyn_ratio >= 0):
            problems.append(f"adasyn_ratio must be a number >= 0, not {self.adasyn_ratio!r}")
        if not (is_number(self.adasyn_imb_threshold) and 0 < self.adasyn_imb_threshold <= 1):
            problems.append(f"adasyn_imb_threshold must be in (0, 1], not {self.adasyn_imb_threshold!r}")
        return problems

    @property
    def leaky(self) -> bool:
        return self.protocol == PAPER

    def sampler(self):
        """The configured over-sampler (seeded with ``seed``), or None for ``resampler: none``."""
        return None if self.resampler == "none" else make_sampler(self.resampler, self, self.seed)

    def training(self) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


# --------------------------------------------------------------------------------------------- analysis

def class_summary(frame: pd.DataFrame) -> dict:
    """Class counts, imbalance ratio and the accuracy of always answering "not fraud"."""
    labels = frame[LABEL].to_numpy()
    frauds = int(labels.sum())
    normals = int(len(labels) - frauds)
    return {
        "rows": int(len(labels)),
        "normal": normals,
        "fraud": frauds,
        "fraud_share": frauds / len(labels),
        "imbalance_ratio": normals / frauds,  # normal transactions per fraud
        "never_fraud_accuracy": normals / len(labels),
        "fraud_amount_total": float(frame.loc[labels == 1, "Amount"].sum()),
    }


def write_analysis(frame: pd.DataFrame, run: RunFolder, report: Report, mark: Callable[[str], str] = str) -> dict:
    """Class counts + plots into ``run``, a data section into ``report``; returns the summary.
    ``mark`` rewrites every plot title (a LEAKY run marks them all)."""
    summary = class_summary(frame)
    labels = frame[LABEL].to_numpy()
    names = {0: "normal (0)", 1: "fraud (1)"}
    plot_bars(list(names.values()), [summary["normal"], summary["fraud"]], run.file("class_counts.png"),
              title=mark("Transactions per class (log scale)"), ylabel="transactions", log=True)
    per_class = {names[c]: frame.loc[labels == c] for c in (0, 1)}
    plot_histograms({k: np.log10(1 + v["Amount"].to_numpy()) for k, v in per_class.items()},
                    run.file("amount_by_class.png"), title=mark("Transaction amount per class"),
                    xlabel="log10(1 + amount in EUR)")
    plot_histograms({k: v["Time"].to_numpy() / 3600 for k, v in per_class.items()},
                    run.file("time_by_class.png"), title=mark("Transaction time per class"),
                    xlabel="hours since the first transaction", bins=48)
    report.heading("The data")
    report.table([{"class": names[0], "transactions": summary["normal"],
                   "share %": 100 * summary["normal"] / summary["rows"]},
                  {"class": names[1], "transactions": summary["fraud"], "share %": 100 * summary["fraud_share"]}])
    report.paragraph(f"Imbalance ratio: {summary['imbalance_ratio']:,.1f} normal transactions per fraud.")
    report.image(run.file("class_counts.png"), "Transactions per class (log scale)")
    report.image(run.file("amount_by_class.png"), "Amount distribution per class (density)")
    report.image(run.file("time_by_class.png"), "Time distribution per class (density)")
    return summary


def analyze_study(data: Path | None = None, runs_dir: Path = Path("runs"), name: str = "fraud-analyze",
                  quiet: bool = False) -> Path:
    """``adaptlab fraud analyze``: class counts, imbalance and distribution plots in a run folder."""
    if not name or "/" in name:
        raise AdaptlabError(f"run name must be non-empty text without '/', not {name!r}")
    frame, provenance = load_dataset(data, quiet=quiet)
    with RunFolder(runs_dir, name) as run:
        report = Report("Fraud data analysis: ULB credit-card transactions")
        report.paragraph(provenance_line(provenance))
        summary = write_analysis(frame, run, report)
        _accuracy_warning(report, summary)
        run.write_config({"data": None if data is None else str(data)})
        run.write_json("metrics.json", {"data": provenance, "classes": summary})
        report.write(run.path)
    return run.path


def provenance_line(provenance: dict) -> str:
    """One report sentence naming the data file, where it came from and its sha256 (``provenance`` as
    returned by :func:`adaptlab.fraud.data.load_dataset`)."""
    return (f"Data: {provenance.get('path')} (source: {provenance.get('source')}; "
            f"sha256 {provenance.get('sha256') or 'n/a'}).")


def _accuracy_warning(report: Report, summary: dict) -> None:
    report.heading("Why accuracy is misleading here")
    report.paragraph(
        f"Only {100 * summary['fraud_share']:.3f}% of transactions are frauds, so a model that answers "
        f"\"never fraud\" for every transaction is right {100 * summary['never_fraud_accuracy']:.2f}% of the "
        "time while catching no fraud at all (recall 0, no fraud amount saved). Accuracy therefore says "
        "almost nothing; judge models by precision, recall, F1 and above all the area under the "
        "precision-recall curve (average precision), which ignore the flood of easy true negatives.")


# -------------------------------------------------------------------------------------------- the study

def run_study(config: FraudConfig, runs_dir: Path = Path("runs"), quiet: bool = False) -> Path:
    """``adaptlab fraud run``: analyse, split, (resample,) train, evaluate at 0.5 and at the val-F1 threshold,
    report. With ``resampler`` set, the parts come from :func:`prepare_protocol`; val and test pass
    :func:`guard_scoring` before anything is scored, and a paper-protocol run is marked LEAKY throughout."""
    from adaptlab.core.system import machine_description, peak_rss_bytes

    started = time.perf_counter()
    frame, provenance = load_dataset(None if config.data is None else Path(config.data), quiet=quiet)
    split = split_indices(frame, config.split, config.seed, config.test_size, config.val_size)
    X = frame[FEATURES].to_numpy()
    y = frame[LABEL].to_numpy()
    data = prepare_protocol(config.protocol, config.sampler(), config.split, config.seed, X, y, split,
                            config.test_size, config.val_size)
    guards = {name: guard_scoring(data, name).to_dict() for name in ("val", "test")}  # raises on a safe leak
    parts = {part.name: part for part in data.parts()}
    mark = partial(mark_leaky, leaky=config.leaky)
    with RunFolder(runs_dir, f"{config.name}-{LEAKY}" if config.leaky else config.name) as run:
        run.write_config(config)
        report = (LeakyReport if config.leaky else Report)("Fraud detection with an MLP on the ULB credit-card data")
        report.paragraph(provenance_line(provenance))
        summary = write_analysis(frame, run, report, mark)
        _accuracy_warning(report, summary)
        resampling = resampling_summary(config, data, guards, len(split.train))
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
        _write_results(run, report, config, parts, scores, result, metrics, threshold, mark)
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


def _write_results(run: RunFolder, report: Report, config: FraudConfig, parts: dict[str, Part], scores: dict,
                   result: TrainResult, metrics: dict, threshold: float, mark: Callable[[str], str]) -> None:
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
        f"early stopping on validation average precision (patience {config.patience}): "
        f"{len(result.history)} epochs run, weights of epoch {result.best_epoch} kept",
        f"decision thresholds: 0.5, and {threshold:.4f} = the threshold maximising F1 on validation "
        "(chosen on validation only; test never informs a choice)",
    ])
    epochs = [h["epoch"] for h in result.history]
    for key, label in (("loss", "BCE loss"), ("accuracy", "accuracy at 0.5"), ("ap", "average precision")):
        path = run.file(f"curve_{key}.png")
        plot_curves(epochs, {"train": [h[f"train_{key}"] for h in result.history],
                             "validation": [h[f"val_{key}"] for h in result.history]},
                    path, title=mark(f"{label} per epoch"), xlabel="epoch", ylabel=label)
        report.image(path, f"{label} per epoch (train vs validation)")

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
                    for n, part in parts.items()}, pr_path, title=mark("Precision-recall curves"))
    report.image(pr_path, "Precision-recall curves per split")
    report.heading("Confusion matrices")
    matrices = {f"{name}_{rule}": m for name, by_rule in metrics.items() for rule, m in by_rule.items()}
    confusion_images(run, report, matrices,
                     lambda stem, m: mark(f"{stem.split('_')[0]} split, threshold {m['threshold']:.4f}"))
    report.heading("Scoring new transactions")
    report.paragraph("The model folder holds the weights (model.safetensors), the training-split scaler "
                     "(scaler.json), the feature order and the validation threshold (model.json). Score a "
                     "CSV or parquet file with the 30 feature columns:")
    report.code(f"adaptlab fraud score {run.final_path} transactions.csv --out scores.csv")
