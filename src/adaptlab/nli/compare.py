"""``adaptlab nli compare``: LoRA vs full vs partial on the same data, seeds and budget, in one table.

``sweep=(key, values)`` runs every method once per value of one run setting (``rank=1,4,16,64``,
``targets=qv,attn,all-linear``, ``lr=...``, ``max_train_samples=1000,3000,all`` for learning curves by data size):
one row per (method, value), plus a plot of accuracy against the value when the values are numbers. A LoRA-only
setting (rank, targets, ...) runs full and partial once, since it does not change them.

Each run trains in its own subprocess (``adaptlab nli train --config``), so its peak memory is its own
and one method's allocations cannot inflate another's. The subprocesses write ordinary train run folders
inside the compare run folder; this module reads their metrics.json/history.json and builds the table,
the curves and the report.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from adaptlab.core.plots import plot_curves
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder
from adaptlab.core.system import machine_description
from adaptlab.errors import AdaptlabError
from adaptlab.nli.config import METHODS, NLIRunConfig
from adaptlab.nli.defaults import format_lr
from adaptlab.nli.sweep import Sweep, sweep_runs
from adaptlab.nli.tasks import DEFAULT_TASK, TASKS


def run_compare(config: NLIRunConfig, methods: list[str], lrs: dict[str, float] | None = None,
                sweep: Sweep | None = None) -> Path:
    """Train each of ``methods`` with ``config`` (method swapped in) and write the comparison run folder.

    ``lrs``: a peak learning rate per method (methods differ in how large a step they tolerate); a method
    missing from it uses ``config.lr``, else its default (:mod:`adaptlab.nli.defaults`).
    ``sweep``: one setting and its values (:mod:`adaptlab.nli.sweep`); every method runs once per value.
    """
    lrs = dict(lrs or {})
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise AdaptlabError(f"unknown method(s) {', '.join(unknown) or '(none)'}; "
                            f"choose from {', '.join(METHODS)}")
    if set(lrs) - set(methods):
        extra = ", ".join(sorted(set(lrs) - set(methods)))
        raise AdaptlabError(f"learning rate given for method(s) not compared: {extra}")
    if len(set(methods)) != len(methods):
        raise AdaptlabError("each method may appear once in --methods")
    if config.resume:
        raise AdaptlabError("compare starts fresh runs; resume a single method with `adaptlab nli train --resume`")
    runs = sweep_runs(config, methods, lrs, sweep)  # validates every run's settings before the first trains

    with RunFolder(config.output_dir, "nli-compare") as run:
        rows, histories, started = [], {}, time.perf_counter()
        for label, setting, run_config in runs:
            method = run_config.method
            if not config.quiet:
                print(f"=== {label} ===", flush=True)
            method_root = run.file(f"methods/{label.replace(' ', '-')}")
            method_config = replace(run_config, output_dir=str(method_root),
                                    checkpoint_dir=str(method_root / "checkpoints") if config.save_every else None)
            config_path = run.file(f"methods/{label.replace(' ', '-')}.yaml")
            config_path.write_text(_yaml(asdict(method_config)))
            tick = time.perf_counter()
            # The child inherits the terminal, so its eval table and progress bar show live (errors even when quiet).
            done = subprocess.run([sys.executable, "-m", "adaptlab", "nli", "train", "--config", str(config_path)],
                                  stdout=subprocess.DEVNULL if config.quiet else None)
            if done.returncode != 0:
                raise AdaptlabError(f"the {label} run failed (exit code {done.returncode}); see its output above")
            method_run = _only_run_folder(method_root)
            metrics = json.loads((method_run / "metrics.json").read_text())
            histories[label] = json.loads((method_run / "history.json").read_text())
            rows.append(_table_row(method, setting, metrics, time.perf_counter() - tick,
                                   method_run.relative_to(run.path)))
        total_seconds = time.perf_counter() - started

        splits = [k.removeprefix("accuracy ") for k in rows[0] if k.startswith("accuracy ")]
        curves = _plot_comparison(histories, splits, run.path)
        if sweep is not None:
            curves += sweep.plot(rows, splits[0], run.path)
        # the rate each method used is in method_lr (a swept rate in its row); a shared lr of None reads as "unset"
        run.write_config({**{k: v for k, v in asdict(config).items() if k != "lr"}, "methods": methods,
                          "method_lr": {m: lrs.get(m, config.lr) for m in methods},
                          "sweep": None if sweep is None else sweep.to_dict()})
        run.write_json("metrics.json", {"methods": methods, "rows": rows, "total_seconds": total_seconds,
                                           "machine": machine_description(),
                                           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
        task = config.task or (config.data if str(config.data).lower() in TASKS else DEFAULT_TASK)
        report = Report(f"{'NLI' if task == DEFAULT_TASK else task}: {' vs '.join(methods)} on {config.model}"
                        + (f", sweeping {sweep.key}" if sweep is not None else ""))
        report.paragraph(f"Same task ({task}) and data ({config.data or 'its hub dataset'}), seed {config.seed} and budget for every method "
                         f"({_budget(config)}); each method ran in its own process. "
                         f"Total time {total_seconds / 60:.1f} min. Machine: {machine_description()}.")
        report.table(_shown(rows), list(rows[0]))
        report.bullets([
            "trainable / % of total: parameters the optimizer updates, over the classification model's parameters",
            "train wall (s): the training loop incl. its evaluations; process wall (s): the whole subprocess",
            "peak memory: CUDA max allocated on GPU, else the process's peak resident set size (CPU)",
            "saved weights: the *.safetensors files alone (LoRA: adapter + head); saved folder: with tokenizer and metadata",
        ])
        for path in curves:
            report.image(path, path.stem)
        report.write(run.path)
    if not config.quiet:
        print(_format_table(_shown(rows)))
    return run.path


def _table_row(method: str, setting: str, metrics: dict, process_seconds: float, folder: Path) -> dict:
    train = metrics["train"]
    row = {
        "method": method,
        **({"setting": setting} if setting else {}),
        "trainable params": metrics["trainable_parameters"],
        "% of total": round(metrics["trainable_percent"], 3),
        "total params": metrics["total_parameters"],
        "lr": metrics["lr"],
        "train pairs": metrics["train_pairs"],
        "steps": train["steps"],
        "train wall (s)": round(train["wall_seconds"], 1),
        "process wall (s)": round(process_seconds, 1),
        "train samples/s": round(train["samples_per_second"], 2),
        "peak memory (MiB)": round(train["peak_memory_bytes"] / 2**20, 1),
        "saved weights (MB)": round(metrics["weights_bytes"] / 1e6, 3),
        "saved folder (MB)": round(metrics["checkpoint_bytes"] / 1e6, 3),
    }
    for split, m in metrics["evals"].items():
        row[f"accuracy {split}"] = round(m["accuracy"], 4)
    row["run"] = str(folder)
    return row


def _shown(rows: list[dict]) -> list[dict]:
    """Rows for display: learning rates as ``:g`` text (2e-05; a fixed-decimals float format shows 0.0000)."""
    return [{**row, "lr": format_lr(row["lr"])} for row in rows]


def _plot_comparison(histories: dict[str, list[dict]], splits: list[str], folder: Path) -> list[Path]:
    """One loss plot (training + first eval split per method) and one accuracy plot (every split per method)."""
    steps = max((h for h in histories.values()), key=len)
    x = [row["step"] for row in steps]
    primary = splits[0]
    losses = {}
    for method, history in histories.items():
        losses[f"{method} training"] = [row["train_loss"] for row in history]
        losses[f"{method} {primary}"] = [row[f"{primary}_loss"] for row in history]
    accuracy = {f"{method} {split}" if len(splits) > 1 else method: [row[f"{split}_accuracy"] for row in history]
                for method, history in histories.items() for split in splits}
    return [
        plot_curves(x, losses, folder / "loss.png", title="Loss per method", xlabel="optimizer step",
                    ylabel="cross-entropy (nats)"),
        plot_curves(x, accuracy, folder / "accuracy.png", title="Accuracy per method", xlabel="optimizer step",
                    ylabel="accuracy (share of pairs)"),
    ]


def _only_run_folder(root: Path) -> Path:
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "checkpoints"]
    if len(found) != 1:
        raise AdaptlabError(f"expected one run folder in {root}, found {len(found)}")
    return found[0]


def _budget(config: NLIRunConfig) -> str:
    steps = f"{config.max_steps} optimizer steps" if config.max_steps else f"{config.epochs:g} epoch(s)"
    return (f"{steps}, batch {config.batch_size} x {config.grad_accum} accumulation, max length {config.max_length}, "
            f"train pairs {config.max_train_samples or 'all'}")


def _format_table(rows: list[dict]) -> str:
    columns = [c for c in rows[0] if c != "run"]
    cells = [[str(r[c]) if not isinstance(r[c], int) else f"{r[c]:,}" for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _yaml(values: dict) -> str:
    import yaml

    return yaml.safe_dump(values, sort_keys=False)
