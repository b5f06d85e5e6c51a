"""Text-classification (NLI by default) study functions behind ``adaptlab nli train | evaluate | predict``;
each writes an atomic run folder.

Everything here is callable from Python; the CLI only parses flags into :class:`NLIRunConfig`. Under
``accelerate launch`` every process trains, and only the main process writes the run folder.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, set_seed

from adaptlab.core.atomic import atomic_path, check_output_file
from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder, check_output_root
from adaptlab.core.system import machine_description
from adaptlab.errors import AdaptlabError
from adaptlab.nli.artifacts import MODEL_FOLDER, load_trained, read_meta, save_trained, trained_model_dir
from adaptlab.nli.config import NLIEvaluateConfig, NLIPredictConfig, NLIRunConfig
from adaptlab.nli.data import check_data_source, load_eval_data, load_nli_data, resolve_task
from adaptlab.nli.evaluation import (CURVE_CAPTIONS, add_metrics_to_report, evaluate_splits, label_columns,
                                     model_label_names, plot_history, predictions_frame, require_label_columns)
from adaptlab.nli.inference import predict_proba
from adaptlab.nli.methods import MethodConfig, count_parameters, resolved_top_layers
from adaptlab.nli.models import build_model
from adaptlab.nli.readers import read_unlabelled_pairs
from adaptlab.nli.tasks import TASKS, TaskSpec, saved_task
from adaptlab.nli.train import TrainConfig, train


def train_config(config: NLIRunConfig, checkpoint_dir: Path | None) -> TrainConfig:
    """The training loop's settings from a resolved run config."""
    return TrainConfig(
        max_length=config.max_length, batch_size=config.batch_size, grad_accum=config.grad_accum, lr=config.lr,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, epochs=config.epochs,
        max_steps=config.max_steps, eval_every=config.eval_every, save_every=config.save_every,
        checkpoint_dir=checkpoint_dir, resume=Path(config.resume) if config.resume else None, seed=config.seed,
        mixed_precision=config.mixed_precision, gradient_checkpointing=config.gradient_checkpointing,
        max_grad_norm=config.max_grad_norm, quiet=config.quiet)


NLI_TASKS = ("mnli", "snli")


def run_train(config: NLIRunConfig) -> Path | None:
    """Train one method and write its run folder; returns the folder (``None`` on non-main processes).

    ``config`` is checked where it is made (``core.config.load_config`` calls its ``validate()``); build one by
    hand with ``NLIRunConfig(...)`` and call ``validate()`` to get every one-line error before any data is read.
    """
    config = config.resolved()  # computed defaults written out: what config.yaml records
    check_output_root(config.output_dir)  # a bad --output-dir fails now, not after training
    started = time.perf_counter()
    data = load_nli_data(config.data, task=config.task, eval_split=config.eval_split,
                         max_train_samples=config.max_train_samples, max_eval_samples=config.max_eval_samples,
                         heldout_fraction=config.heldout_fraction, seed=config.seed, quiet=config.quiet)
    if not data.evals:
        raise AdaptlabError(f"{data.source} gave no labelled eval split; pass --eval-split or a held-out fraction")
    task, labels = data.task, data.labels
    method = MethodConfig.of(config)
    set_seed(config.seed)  # LoRA matrices and the new head are initialised from this
    model, tokenizer = build_model(config.model, method, labels=labels, random_init=config.random_init)
    trainable, total = count_parameters(model)
    name = f"{_title(task).lower()}-{config.method}"
    checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else \
        Path(config.output_dir) / "checkpoints" / f"{_shared_stamp()}-{name}"
    config = replace(config, task=task.name, eval_split=",".join(data.evals),
                     checkpoint_dir=str(checkpoint_dir) if config.save_every else None,
                     top_layers=resolved_top_layers(method, model.config.num_hidden_layers)
                     if config.method == "partial" else config.top_layers)
    if not config.quiet and PartialState().is_main_process:
        print(f"{config.method} on {config.model}: {trainable:,} trainable of {total:,} parameters "
              f"({100 * trainable / total:.3f}%)\n{data.describe()}")
    result = train(model, tokenizer, data.train, data.evals, train_config(config, checkpoint_dir))
    if not PartialState().is_main_process:
        return None

    with RunFolder(config.output_dir, name) as run:
        model_dir = save_trained(model, tokenizer, run.file(MODEL_FOLDER), method, task=task)
        metrics, confusion = evaluate_splits(data.evals, result.probabilities, labels, run.path)
        _write_predictions(run, data.evals, result.probabilities, labels)
        curves = plot_history(result.history, run.path, f"{config.method} on {Path(config.model).name}")
        summary = {
            "method": config.method, "method_config": method.to_dict(), "model": config.model,
            "trainable_parameters": trainable, "total_parameters": total,
            "trainable_percent": 100 * trainable / total, "task": {**task.meta(), "labels": labels},
            "data": data.source, "dropped": data.dropped,
            "train_pairs": len(data.train), "eval_pairs": {k: len(v) for k, v in data.evals.items()},
            "lr": config.lr,
            "train": {k: v for k, v in asdict(result).items() if k not in ("history", "probabilities")},
            "checkpoint_bytes": folder_bytes(model_dir), "weights_bytes": weights_bytes(model_dir),
            "process_seconds": time.perf_counter() - started,
            "checkpoints": str(checkpoint_dir) if config.save_every else None,
            "evals": metrics, "machine": machine_description(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        run.write_config(asdict(config))
        run.write_json("metrics.json", summary)
        run.write_json("history.json", result.history)
        (run.file("data.txt")).write_text(data.describe() + "\n")
        report = Report(f"{_title(task)} fine-tuning: {config.method} on {config.model}")
        report.paragraph(f"{trainable:,} trainable of {total:,} parameters ({summary['trainable_percent']:.3f}%); "
                         f"{result.steps:,} optimizer steps, {result.train_samples:,} training {task.unit} seen, "
                         f"{result.samples_per_second:.1f} {task.unit}/s, "
                         f"peak memory {result.peak_memory_bytes / 2**20:,.0f} MiB "
                         f"({result.peak_memory_kind}), saved weights {summary['weights_bytes'] / 1e6:,.2f} MB "
                         f"({summary['checkpoint_bytes'] / 1e6:,.2f} MB with tokenizer and metadata).")
        report.code(data.describe())
        report.heading("Training history", 3).table(result.history)
        for path in curves:
            report.image(path, CURVE_CAPTIONS[path.stem].format(classes=len(labels)))
        add_metrics_to_report(report, metrics, confusion, labels)
        report.paragraph(f"Machine: {summary['machine']}. Date: {summary['date']}.")
        report.write(run.path)
    return run.path


def _title(task: TaskSpec) -> str:
    """How runs and reports name the task: MultiNLI and SNLI keep the study's name (run folders nli-lora ...)."""
    return "NLI" if task.name in NLI_TASKS else task.name


def _shared_stamp() -> str:
    """The main process's time stamp on every process, so all ranks checkpoint into the same folder."""
    # cpu=True on GPU-less hosts, as train() asks: the first PartialState fixes the backend for the process.
    PartialState(cpu=not torch.cuda.is_available())
    return broadcast_object_list([time.strftime("%Y%m%d-%H%M%S")])[0]


def folder_bytes(folder: Path) -> int:
    """Bytes of all files under ``folder`` (what the saved model costs on disk)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def weights_bytes(folder: Path) -> int:
    """Bytes of the saved weights alone (``*.safetensors``: the adapter + head for LoRA), no tokenizer."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))


def run_evaluate(model_path: str | Path, config: NLIEvaluateConfig | None = None) -> Path:
    """Score a saved model (a train run folder or a model folder) on the labelled examples ``config.data`` names.

    The task is ``config.task`` if given, else the one the model was trained on (``adaptlab_model.json``; mnli
    for folders without one); ``config.data`` ``None`` means that task's hub dataset.

    Writes metrics, predictions, confusion matrices and a report into a new run folder under
    ``config.output_dir`` and returns it. A single file is scored whole unless ``config.heldout_fraction`` asks
    for the part a training run held out (see :func:`adaptlab.nli.data.load_eval_data`).
    """
    config = config or NLIEvaluateConfig()  # checked where it is made, as for run_train
    check_output_root(config.output_dir)
    model_dir = trained_model_dir(model_path)
    check_data_source(config.data, config.task)  # a missing --data fails now, not after loading the model
    model, tokenizer = load_trained(model_dir)
    task = _task_to_score(model, model_dir, config)
    labels = list(task.labels)
    columns = require_label_columns(model.config, labels, str(model_dir), task.name)  # before reading data
    dataset = load_eval_data(config.data, task=task, eval_split=config.eval_split,
                             max_eval_samples=config.max_eval_samples, heldout_fraction=config.heldout_fraction,
                             seed=config.seed, quiet=config.quiet)
    if not config.quiet:
        print(dataset.describe())
    # columns in the task's label order (the data's label ids), whatever order the model's id2label uses
    probabilities = {name: predict_proba(model, tokenizer, frame, max_length=config.max_length,
                                         batch_size=config.batch_size,
                                         progress_label=None if config.quiet else f"eval {name}")[:, columns]
                     for name, frame in dataset.evals.items()}
    with RunFolder(config.output_dir, "nli-evaluate") as run:
        metrics, confusion = evaluate_splits(dataset.evals, probabilities, labels, run.path)
        _write_predictions(run, dataset.evals, probabilities, labels)
        run.write_config({"model": str(model_dir), **asdict(replace(config, task=task.name,
                                                                   eval_split=",".join(dataset.evals)))})
        run.write_json("metrics.json", {"model": str(model_dir), "task": {**task.meta(), "labels": labels},
                                        "data": dataset.source, "evals": metrics, "machine": machine_description()})
        report = Report(f"{_title(task)} evaluation of {model_dir}")
        report.code(dataset.describe())
        add_metrics_to_report(report, metrics, confusion, labels)
        report.write(run.path)
    if not config.quiet:
        for name, m in metrics.items():
            print(f"{name}: accuracy {m['accuracy']:.4f} on {m['n']:,} {task.unit}")
    return run.path


def model_task(model, model_dir: Path) -> TaskSpec:
    """The task a saved model was trained on, with the model's own label names for a custom task."""
    return saved_task(read_meta(model_dir), model_label_names(model.config))


def _task_to_score(model, model_dir: Path, config: NLIEvaluateConfig) -> TaskSpec:
    """``config.task`` (or the task ``config.data`` names) when given, else the model's own task."""
    own = model_task(model, model_dir)
    if config.task is None and (config.data is None or str(config.data).lower() not in TASKS):
        return resolve_task(own, config.data)
    task = resolve_task(config.task, config.data)
    if task.labels is None:  # --task custom: the model's labels and input kind
        return replace(task, input=own.input, labels=tuple(model_label_names(model.config)))
    return task


def _write_predictions(run: RunFolder, evals: dict, probabilities: dict, labels: list[str]) -> None:
    for split, frame in evals.items():
        predictions_frame(frame, probabilities[split], labels).to_csv(run.file(f"predictions_{split}.csv"),
                                                                      index=False)


def write_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    """Write a predictions table as CSV in one piece: a failed write leaves no half-written file."""
    check_output_file(path)
    try:
        with atomic_path(path) as tmp:
            predictions.to_csv(tmp, index=False)
    except OSError as exc:
        raise AdaptlabError(f"cannot write the predictions to {path}: {exc.strerror or exc}") from None
    return path


def run_predict(model_path: str | Path, examples: pd.DataFrame, *, max_length: int = 128,
                batch_size: int = 32) -> pd.DataFrame:
    """Predicted label and class probabilities for each example: a ``text`` column for a single-text model,
    ``premise`` + ``hypothesis`` for a pair model (a one-line error when they do not match the model's task).

    Probability columns follow the task's label order when the model's classes are the task's (any order or
    case; e.g. hub MNLI checkpoints), else the model's own names and order.
    """
    model_dir = trained_model_dir(model_path)
    model, tokenizer = load_trained(model_dir)
    task = model_task(model, model_dir)
    check_inputs(examples, task)
    probabilities = predict_proba(model, tokenizer, examples, max_length=max_length, batch_size=batch_size)
    columns = label_columns(model.config, task.labels)
    if columns is None:
        labels = model_label_names(model.config)
    else:
        labels, probabilities = list(task.labels), probabilities[:, columns]
    return predictions_frame(examples.drop(columns="label", errors="ignore"), probabilities, labels)


def examples_to_predict(model_path: str | Path, config: NLIPredictConfig) -> pd.DataFrame:
    """The examples ``config`` gives (``--text``, ``--premise``/``--hypothesis``, or ``--file`` read with the
    saved model's task layout), checked against the model's input kind before any weights load."""
    model_dir = trained_model_dir(model_path)
    meta = read_meta(model_dir)
    task = saved_task(meta, list(meta.get("labels") or []))
    if config.file is not None:
        examples = read_unlabelled_pairs(Path(config.file), task)
    elif config.text is not None:
        examples = pd.DataFrame({"text": [config.text]})
    else:
        examples = pd.DataFrame({"premise": [config.premise], "hypothesis": [config.hypothesis]})
    check_inputs(examples, task)
    return examples


def check_inputs(examples: pd.DataFrame, task: TaskSpec) -> None:
    """One-line error unless ``examples`` has exactly the text columns of ``task`` (a single text or a pair)."""
    fields = task.text_fields
    other = ("premise", "hypothesis") if fields == ("text",) else ("text",)
    if not all(f in examples.columns for f in fields) or any(f in examples.columns for f in other):
        want = "one text (--text, or a text/sentence column)" if task.input == "single" else \
            "a pair (--premise and --hypothesis, or sentence1/sentence2 columns)"
        kind = "single texts" if task.input == "single" else "text pairs"
        raise AdaptlabError(f"this model classifies {kind} (task {task.name}); give {want}")
