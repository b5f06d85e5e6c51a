"""One run setting swept over several values in ``nli compare --sweep KEY=V1,V2,...``.

The LoRA paper's "which weights, which rank" tables (``targets=qv,attn,all-linear``, ``rank=1,4,16,64``), learning
rates (``lr=1e-4,3e-4,1e-3``) and learning curves by data size (``max_train_samples=1000,3000,all``) are all
sweeps: the same compare, one row per (method, value).
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from adaptlab.core.config import coerce_value
from adaptlab.errors import AdaptlabError

LORA_ONLY = ("rank", "alpha", "dropout", "targets", "use_rslora", "use_dora", "init", "head")
PARTIAL_ONLY = ("top_layers",)
SWEEP_KEYS = ("lr", *LORA_ONLY, *PARTIAL_ONLY, "max_train_samples", "epochs", "max_length", "batch_size", "seed")
LOG_SCALE = ("lr", "rank", "alpha", "max_train_samples")  # values spread over orders of magnitude


@dataclass(frozen=True)
class Sweep:
    key: str
    values: tuple
    texts: tuple[str, ...]  # the values as written, for labels

    @classmethod
    def parse(cls, text: str, settings: type) -> "Sweep":
        """``KEY=V1,V2,...`` -> Sweep, each value converted to the type of that field of the dataclass ``settings``
        (the run config) (``all`` = no limit)."""
        key, sep, values_text = text.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in SWEEP_KEYS:
            raise AdaptlabError(f"--sweep needs KEY=V1,V2,... with KEY one of {', '.join(SWEEP_KEYS)}; "
                                f"got {text!r}")
        texts = tuple(v.strip() for v in values_text.split(",") if v.strip())
        if len(texts) < 2 or len(set(texts)) != len(texts):
            raise AdaptlabError(f"--sweep {key}: give at least two different values, got {values_text!r}")
        hint = typing.get_type_hints(settings)[key]
        values = tuple(coerce_value(f"--sweep {key}", _read(key, t), hint) for t in texts)
        return cls(key, values, texts)

    def applies_to(self, method: str) -> bool:
        if self.key in LORA_ONLY:
            return method == "lora"
        return method == "partial" if self.key in PARTIAL_ONLY else True

    def to_dict(self) -> dict:
        return {"key": self.key, "values": list(self.texts)}

    def plot(self, rows: list[dict], split: str, folder: Path) -> list[Path]:
        """Accuracy on ``split`` against the swept value, one line per method (numeric sweeps only)."""
        from adaptlab.core.plots import plot_curves

        if not all(_is_number(v) for v in self.values if v is not None) or self.key == "seed":
            return []
        series, xs = {}, {}
        for row in rows:
            if row.get("setting", "").startswith(f"{self.key}="):
                x = row["train pairs"] if self.key == "max_train_samples" else float(row["setting"].split("=", 1)[1])
                xs.setdefault(row["method"], []).append(math.log10(x) if self.key in LOG_SCALE else x)
                series.setdefault(row["method"], []).append(row[f"accuracy {split}"])
        if not series:
            return []
        # plot_curves shares one x axis: each method has the same points, except learning curves, whose "all"
        # can differ by method only if the data did, which it does not (same data, same seed)
        x = next(iter(xs.values()))
        label = "training pairs" if self.key == "max_train_samples" else self.key
        name = "learning_curve" if self.key == "max_train_samples" else f"sweep_{self.key}"
        return [plot_curves(x, series, folder / f"{name}.png", title=f"{split} accuracy against {label}",
                            xlabel=f"log10 {label}" if self.key in LOG_SCALE else label,
                            ylabel="accuracy (share of pairs)")]


def _read(key: str, text: str):
    if key == "max_train_samples" and text.lower() == "all":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None or isinstance(value, (dict, list)) else value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sweep_runs(config, methods: list[str], lrs: dict[str, float], sweep: Sweep | None) -> list[tuple]:
    """``(label, setting, run config)`` per run, each validated; a LoRA-only sweep runs full/partial once."""
    if sweep is not None and sweep.key == "lr" and (lrs or config.lr is not None):
        raise AdaptlabError("--sweep lr and --lr cannot be combined: the sweep gives every run its rate")
    runs = []
    for method in methods:
        base = replace(config, method=method, lr=lrs.get(method, config.lr))
        if sweep is None or not sweep.applies_to(method):
            setting = "" if sweep is None else f"{sweep.key} not swept"
            runs.append((method, setting, base))
            continue
        for value, text in zip(sweep.values, sweep.texts):
            runs.append((f"{method} {sweep.key}={text}", f"{sweep.key}={text}", replace(base, **{sweep.key: value})))
    for label, _, run_config in runs:
        try:
            run_config.validate()
        except AdaptlabError as exc:
            raise AdaptlabError(f"{label}: {exc}") from None
    return runs
