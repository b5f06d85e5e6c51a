"""The rows ``fraud compare`` can run: one table of method names, used by the config, the CLI and the report.

- ``none``: the MLP on the original training rows.
- ``class-weights``: the same MLP with ``pos_weight = n_normal / n_fraud`` of the training rows.
- ``random-over``, ``smote``, ``adasyn`` (ours, reference parameters), ``imblearn-adasyn``
  (``n_neighbors=5``): resample the training rows (safe protocol), then the MLP.
- ``<resampler>-paper``: the same resampler under the paper protocol: resample all rows, then split. LEAKY.
- ``lightgbm``: gradient-boosted trees on the original training rows (what users pick instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from adaptlab.fraud.protocols import PAPER, SAFE, mark_leaky
from adaptlab.fraud.samplers import RESAMPLERS, describe


@dataclass(frozen=True)
class Method:
    """One row of the comparison."""

    name: str
    description: str
    protocol: str = SAFE
    resampler: str | None = None  # a key of samplers.RESAMPLERS, or None for no resampling
    model: str = "mlp"  # "mlp" or "lightgbm"
    pos_weight: str | None = None  # the MLP's BCE pos_weight ("balanced" = n_normal / n_fraud on train)
    safe_twin: str | None = None  # for a paper row: the same resampler's safe row

    @property
    def leaky(self) -> bool:
        return self.protocol == PAPER

    @property
    def label(self) -> str:
        """The name every output shows: ``LEAKY: adasyn-paper`` for a paper row."""
        return mark_leaky(self.name, self.leaky)


def _methods() -> dict[str, Method]:
    methods = {"none": Method("none", "MLP, no resampling"),
               "class-weights": Method("class-weights", "MLP, pos_weight = n_normal / n_fraud (training rows)",
                                       pos_weight="balanced")}
    for name in RESAMPLERS:
        methods[name] = Method(name, f"MLP on training rows resampled by {describe(name)}", resampler=name)
    for name in RESAMPLERS:
        methods[f"{name}-paper"] = Method(f"{name}-paper", f"MLP, {describe(name)} on ALL rows before the split "
                                          "(paper protocol)", PAPER, name, safe_twin=name)
    methods["lightgbm"] = Method("lightgbm", "LightGBM gradient-boosted trees, no resampling", model="lightgbm")
    return methods


METHODS = _methods()
DEFAULT_METHODS = ("none", "class-weights", "random-over", "smote", "adasyn", "imblearn-adasyn", "adasyn-paper",
                   "lightgbm")
