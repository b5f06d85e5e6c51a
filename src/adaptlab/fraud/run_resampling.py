"""The resampling side of ``adaptlab fraud run``: what metrics.json and report.md say about it, and the
LEAKY marking of a paper-protocol run's report.

Under ``safe`` the report states how many synthetic training rows were added and that validation and test
stayed untouched (with the guard's counts); under ``paper`` every heading carries ``LEAKY:`` and the
resampling section says how much of validation and test is synthetic or a parent of training rows.
"""

from __future__ import annotations

from adaptlab.core.report import Report
from adaptlab.fraud.config import FraudConfig
from adaptlab.fraud.protocols import LEAKY, SAFE, PreparedData, mark_leaky
from adaptlab.fraud.samplers import describe

LEAKY_WARNING = (f"{LEAKY}: paper protocol: resampled before the split, so validation and test hold synthetic rows "
                 "and their parents; these scores overstate what the model does on new transactions")


class LeakyReport(Report):
    """A report whose title and every heading carry the ``LEAKY:`` mark (paper-protocol runs)."""

    def __init__(self, title: str):
        super().__init__(mark_leaky(title, True))

    def heading(self, text: str, level: int = 2) -> Report:
        return super().heading(mark_leaky(text, True), level)


def resampling_summary(config: FraudConfig, sampler, data: PreparedData, guards: dict,
                       train_rows_before: int) -> dict:
    """What metrics.json records about resampling: resampler, the parameters of ``sampler`` (the one that
    resampled ``data``), training rows before/after, synthetic rows and provenance counts per part, and the
    guard's findings for val and test."""
    summary = {"resampler": config.resampler, "protocol": config.protocol, "leaky": config.leaky}
    if sampler is None:
        return summary
    return {**summary, "description": describe(config.resampler), "params": sampler.get_params(),
            "standardised_features": True,
            "rows_seen_by_resampler": int(len(data.parent_pool)),
            "train_rows_before": train_rows_before if config.protocol == SAFE else None,
            "train_rows_after": int(len(data.train.y)),
            "synthetic_rows": {part.name: int(part.synthetic.sum()) for part in data.parts()},
            "provenance": data.summary(), "guard": guards}


def resampling_section(report: Report, resampling: dict) -> None:
    """The report section on resampling (nothing for ``resampler: none``)."""
    if resampling["resampler"] == "none":
        return
    report.heading("Resampling")
    added = resampling["synthetic_rows"]
    if not resampling["leaky"]:
        held_out = [f"{name}: {g['synthetic_rows']} synthetic rows, {g['parent_rows']} parents of synthetic "
                    f"rows, {g['training_rows']} training rows" for name, g in resampling["guard"].items()]
        report.paragraph(
            f"{resampling['description'][:1].upper()}{resampling['description'][1:]} added {added['train']:,} synthetic rows to the training split "
            f"({resampling['train_rows_before']:,} -> {resampling['train_rows_after']:,} rows; safe protocol). "
            "Validation and test stayed untouched: the resampler never saw them, and the leakage guard checked "
            f"them before scoring ({'; '.join(held_out)}).")
        return
    report.paragraph(
        f"{LEAKY_WARNING}. Resampler: {resampling['description']}; it resampled all {resampling['rows_seen_by_resampler']:,} "
        f"rows before the split, adding {sum(added.values()):,} synthetic rows: "
        + ", ".join(f"{n} {name}" for name, n in added.items())
        + ". Parents of synthetic training rows in validation / test: "
        + " / ".join(str(resampling["guard"][name]["parent_rows"]) for name in ("val", "test")) + ".")
