"""``adaptlab fraud analyze`` and the data section every fraud run report opens with.

Class counts, the imbalance ratio, what "never fraud" would score, and Amount/Time per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from adaptlab.core.plots import plot_bars, plot_histograms
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import LABEL, load_dataset

CLASS_NAMES = {0: "normal (0)", 1: "fraud (1)"}


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


def findings(summary: dict) -> list[str]:
    """The :func:`class_summary` numbers as lines for the terminal."""
    return [
        f"rows: {summary['rows']:,} ({summary['normal']:,} normal, {summary['fraud']:,} fraud)",
        f"fraud share: {100 * summary['fraud_share']:.3f}%; imbalance ratio: {summary['imbalance_ratio']:,.1f} "
        "normal transactions per fraud",
        f"never-fraud accuracy: {100 * summary['never_fraud_accuracy']:.2f}% (while catching no fraud: "
        "judge models by precision, recall and AUPRC)",
        f"fraudulent amount: {summary['fraud_amount_total']:,.2f} EUR",
    ]


def write_analysis(frame: pd.DataFrame, run: RunFolder, report: Report, mark: Callable[[str], str] = str) -> dict:
    """Class counts + plots into ``run``, a data section into ``report``; returns the summary.
    ``mark`` rewrites every plot title (a LEAKY run marks them all)."""
    summary = class_summary(frame)
    labels = frame[LABEL].to_numpy()
    plot_bars(list(CLASS_NAMES.values()), [summary["normal"], summary["fraud"]], run.file("class_counts.png"),
              title=mark("Transactions per class"), ylabel="transactions (log scale)", log=True)
    per_class = {CLASS_NAMES[c]: frame.loc[labels == c] for c in (0, 1)}
    plot_histograms({k: np.log10(1 + v["Amount"].to_numpy()) for k, v in per_class.items()},
                    run.file("amount_by_class.png"), title=mark("Transaction amount per class"),
                    xlabel="log10(1 + amount in EUR)")
    plot_histograms({k: v["Time"].to_numpy() / 3600 for k, v in per_class.items()},
                    run.file("time_by_class.png"), title=mark("Transaction time per class"),
                    xlabel="hours since the first transaction", bins=48)
    report.heading("The data")
    report.table([{"class": CLASS_NAMES[0], "transactions": summary["normal"],
                   "share %": 100 * summary["normal"] / summary["rows"]},
                  {"class": CLASS_NAMES[1], "transactions": summary["fraud"],
                   "share %": 100 * summary["fraud_share"]}])
    report.paragraph(f"Imbalance ratio: {summary['imbalance_ratio']:,.1f} normal transactions per fraud.")
    report.image(run.file("class_counts.png"),
                 f"{summary['fraud']:,} frauds against {summary['normal']:,} normal transactions; the log scale "
                 "keeps the fraud bar visible.")
    report.image(run.file("amount_by_class.png"),
                 "Densities, so both classes are comparable despite their sizes: where frauds and normal "
                 "transactions differ in amount.")
    report.image(run.file("time_by_class.png"),
                 "Densities per class over the hours the data covers: where the two shapes part, frauds "
                 "come at other times of day than normal traffic.")
    return summary


def analyze_study(data: Path | None = None, output_dir: Path = Path("runs"), name: str = "fraud-analyze",
                  quiet: bool = False) -> Path:
    """``adaptlab fraud analyze``: class counts, imbalance and distribution plots in a run folder under
    ``output_dir``; the numbers also go to the folder's metrics.json (``classes``)."""
    if not name or "/" in name:
        raise AdaptlabError(f"run name must be non-empty text without '/', not {name!r}")
    frame, provenance = load_dataset(data, quiet=quiet)
    with RunFolder(output_dir, name) as run:
        report = Report("Fraud data analysis: ULB credit-card transactions")
        report.paragraph(provenance_line(provenance))
        summary = write_analysis(frame, run, report)
        accuracy_warning(report, summary)
        run.write_config({"data": None if data is None else str(data), "name": name})
        run.write_json("metrics.json", {"data": provenance, "classes": summary})
        report.write(run.path)
    return run.path


def provenance_line(provenance: dict) -> str:
    """One report sentence naming the data file, where it came from and its sha256 (``provenance`` as
    returned by :func:`adaptlab.fraud.data.load_dataset`)."""
    return (f"Data: {provenance.get('path')} (source: {provenance.get('source')}; "
            f"sha256 {provenance.get('sha256') or 'n/a'}).")


def accuracy_warning(report: Report, summary: dict) -> None:
    """The report section on why accuracy says almost nothing on this data."""
    report.heading("Why accuracy is misleading here")
    report.paragraph(
        f"Only {100 * summary['fraud_share']:.3f}% of transactions are frauds, so a model that answers "
        f"\"never fraud\" for every transaction is right {100 * summary['never_fraud_accuracy']:.2f}% of the "
        "time while catching no fraud at all (recall 0, no fraud amount saved). Accuracy therefore says "
        "almost nothing; judge models by precision, recall, F1 and above all the area under the "
        "precision-recall curve (average precision), which ignore the flood of easy true negatives.")
