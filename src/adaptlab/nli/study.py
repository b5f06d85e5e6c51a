"""NLI study functions behind ``adaptlab nli train | evaluate | predict``; each writes an atomic run folder.

Everything here is callable from Python; the CLI only parses flags into :class:`NLIRunConfig`. Under
``accelerate launch`` every process trains, and only the main process writes the run folder.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from adaptlab.core.report import Report
from adaptlab.core.runs import RunFolder
from adaptlab.core.system import machine_description
from adaptlab.errors import AdaptlabError

DEFAULT_MODEL = "FacebookAI/roberta-large"


@dataclass
class NLIRunConfig:
    """One training run. Defaults follow the reference study (RoBERTa-large, LoRA r=16 on query/value, length 128)."""

    model: str = DEFAULT_MODEL       # hub id, local folder, or preset: roberta-large | roberta-base | minilm
    method: str = "lora"             # lora | full | partial
    rank: int = 16
    alpha: float | None = None       # None: 2 x rank
    dropout: float = 0.1
    targets: str = "qv"              # preset qv | attn | all-linear, or module names
    use_rslora: bool = False
    use_dora: bool = False
    init: str = "default"            # LoRA init_lora_weights: default | gaussian | orthogonal
    head: str = "full"               # LoRA: full = pooler + classifier train; peft = classifier only
    top_layers: int | None = None    # partial; None: a quarter of the layers
    random_init: bool = False        # random weights from the config (speed/memory benchmarks, tests)
    data: str = "mnli"               # mnli | snli | PATH
    eval_split: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    heldout_fraction: float = 0.1
    max_length: int = 128            # tokens per pair
    batch_size: int = 16             # pairs per process per micro-batch
    grad_accum: int = 1
    lr: float | None = None          # None: defaults.default_lr(model, method)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    epochs: float = 1.0
    max_steps: int | None = None
    eval_every: int = 0              # optimizer steps; 0 = at the end only
    save_every: int = 0              # optimizer steps; 0 = no checkpoints
    checkpoint_dir: str | None = None  # default: <out>/checkpoints/<run name>
    resume: str | None = None
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    out: str = "runs"
    quiet: bool = False

    def validate(self) -> None:
        self.method_config().validate()
        self.train_config(Path(self.out)).validate()

    def method_config(self):
        from adaptlab.nli.methods import MethodConfig

        return MethodConfig(method=self.method, rank=self.rank, alpha=self.alpha, dropout=self.dropout,
                            targets=self.targets, use_rslora=self.use_rslora, use_dora=self.use_dora,
                            init=self.init, head=self.head, top_layers=self.top_layers)

    def train_config(self, checkpoint_dir: Path):
        from adaptlab.nli.defaults import default_lr
        from adaptlab.nli.train import TrainConfig

        return TrainConfig(
            max_length=self.max_length, batch_size=self.batch_size, grad_accum=self.grad_accum,
            lr=self.lr if self.lr is not None else default_lr(self.model, self.method), weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio, epochs=self.epochs, max_steps=self.max_steps, eval_every=self.eval_every,
            save_every=self.save_every, checkpoint_dir=checkpoint_dir,
            resume=Path(self.resume) if self.resume else None, seed=self.seed, mixed_precision=self.mixed_precision,
            gradient_checkpointing=self.gradient_checkpointing, quiet=self.quiet)


CONFIG_KEYS = tuple(f.name for f in fields(NLIRunConfig))


def run_train(config: NLIRunConfig) -> Path | None:
    """Train one method and write its run folder; returns the folder (``None`` on non-main processes)."""
    from accelerate import PartialState
    from accelerate.utils import set_seed

    from adaptlab.nli.artifacts import save_trained
    from adaptlab.nli.data import LABELS, load_nli_data
    from adaptlab.nli.methods import count_parameters
    from adaptlab.nli.models import build_model
    from adaptlab.nli.train import train

    config.validate()
    started = time.perf_counter()
    data = load_nli_data(config.data, eval_split=config.eval_split, max_train_samples=config.max_train_samples,
                         max_eval_samples=config.max_eval_samples, heldout_fraction=config.heldout_fraction,
                         seed=config.seed, quiet=config.quiet)
    if not data.evals:
        raise AdaptlabError(f"{data.source} gave no labelled eval split; pass --eval-split or a held-out fraction")
    method = config.method_config()
    set_seed(config.seed)  # LoRA matrices and the new head are initialised from this
    model, tokenizer = build_model(config.model, method, num_labels=len(LABELS), random_init=config.random_init)
    trainable, total = count_parameters(model)
    name = f"nli-{config.method}"
    checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else \
        Path(config.out) / "checkpoints" / f"{_shared_stamp()}-{name}"
    train_config = config.train_config(checkpoint_dir)
    if not config.quiet and PartialState().is_main_process:
        print(f"{config.method} on {config.model}: {trainable:,} trainable of {total:,} parameters "
              f"({100 * trainable / total:.3f}%)\n{data.describe()}")
    result = train(model, tokenizer, data.train, data.evals, train_config)
    if not PartialState().is_main_process:
        return None

    labels = list(LABELS)
    with RunFolder(config.out, name) as run:
        from adaptlab.nli.evaluation import add_metrics_to_report, evaluate_splits, plot_history, predictions_frame

        model_dir = save_trained(model, tokenizer, run.file("model"), method)
        metrics, images = evaluate_splits(data.evals, result.probabilities, labels, run.path)
        for split, frame in data.evals.items():
            predictions_frame(frame, result.probabilities[split], labels).to_csv(run.file(f"predictions_{split}.csv"),
                                                                                 index=False)
        curves = plot_history(result.history, run.path, f"{config.method} on {Path(config.model).name}")
        summary = {
            "method": config.method, "method_config": method.to_dict(), "model": config.model,
            "trainable_parameters": trainable, "total_parameters": total,
            "trainable_percent": 100 * trainable / total, "data": data.source, "dropped": data.dropped,
            "train_pairs": len(data.train), "eval_pairs": {k: len(v) for k, v in data.evals.items()},
            "lr": train_config.lr,
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
        report = Report(f"NLI fine-tuning: {config.method} on {config.model}")
        report.paragraph(f"{trainable:,} trainable of {total:,} parameters ({summary['trainable_percent']:.3f}%); "
                         f"{result.steps:,} optimizer steps, {result.train_samples:,} training pairs seen, "
                         f"{result.samples_per_second:.1f} pairs/s, "
                         f"peak memory {result.peak_memory_bytes / 2**20:,.0f} MiB "
                         f"({result.peak_memory_kind}), saved weights {summary['weights_bytes'] / 1e6:,.2f} MB "
                         f"({summary['checkpoint_bytes'] / 1e6:,.2f} MB with tokenizer and metadata).")
        report.code(data.describe())
        report.heading("Training history", 3).table(result.history)
        for path in curves:
            report.image(path, path.stem)
        add_metrics_to_report(report, metrics, images, labels)
        report.paragraph(f"Machine: {summary['machine']}. Date: {summary['date']}.")
        report.write(run.path)
    if not config.quiet:
        print(f"run folder: {run.path}")
    return run.path


def _shared_stamp() -> str:
    """The main process's time stamp on every process, so all ranks checkpoint into the same folder."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    # cpu=True on GPU-less hosts, as train() asks: the first PartialState fixes the backend for the process.
    PartialState(cpu=not torch.cuda.is_available())
    return broadcast_object_list([time.strftime("%Y%m%d-%H%M%S")])[0]


def folder_bytes(folder: Path) -> int:
    """Bytes of all files under ``folder`` (what the saved model costs on disk)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def weights_bytes(folder: Path) -> int:
    """Bytes of the saved weights alone (``*.safetensors``: the adapter + head for LoRA), no tokenizer."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))


def trained_model_dir(path: str | Path) -> Path:
    """A model folder from a run folder (``RUN/model``) or the model folder itself."""
    path = Path(path)
    if (path / "model").is_dir():
        return path / "model"
    if path.is_dir() and ((path / "adapter_config.json").is_file() or (path / "config.json").is_file()):
        return path
    raise AdaptlabError(f"{path} is neither a run folder (with model/) nor a saved model folder")


def run_evaluate(model_path: str | Path, data: str, *, eval_split: str | None = None,
                 max_eval_samples: int | None = None, heldout_fraction: float = 0.1, seed: int = 0,
                 max_length: int = 128, batch_size: int = 32, out: str | Path = "runs", quiet: bool = False) -> Path:
    """Score a saved model on every eval split of ``data``; writes metrics, confusion matrices, report."""
    from adaptlab.nli.artifacts import load_trained
    from adaptlab.nli.data import LABELS, load_nli_data
    from adaptlab.nli.evaluation import (add_metrics_to_report, evaluate_splits, predictions_frame,
                                         require_nli_label_columns)
    from adaptlab.nli.inference import predict_proba

    model_dir = trained_model_dir(model_path)
    model, tokenizer = load_trained(model_dir)
    columns = require_nli_label_columns(model.config, str(model_dir))  # before reading data: fail fast
    dataset = load_nli_data(data, eval_split=eval_split, max_eval_samples=max_eval_samples,
                            heldout_fraction=heldout_fraction, seed=seed, quiet=quiet)
    if not dataset.evals:
        raise AdaptlabError(f"{dataset.source} gave no labelled eval split to evaluate on")
    labels = list(LABELS)
    # columns in LABELS order (the data's label ids), whatever order the model's id2label uses
    probabilities = {name: predict_proba(model, tokenizer, frame, max_length=max_length,
                                         batch_size=batch_size)[:, columns]
                     for name, frame in dataset.evals.items()}
    with RunFolder(out, "nli-evaluate") as run:
        metrics, images = evaluate_splits(dataset.evals, probabilities, labels, run.path)
        for split, frame in dataset.evals.items():
            predictions_frame(frame, probabilities[split], labels).to_csv(run.file(f"predictions_{split}.csv"),
                                                                          index=False)
        run.write_json("metrics.json", {"model": str(model_dir), "data": dataset.source, "evals": metrics,
                                        "machine": machine_description()})
        report = Report(f"NLI evaluation of {model_dir}")
        report.code(dataset.describe())
        add_metrics_to_report(report, metrics, images, labels)
        report.write(run.path)
    if not quiet:
        for name, m in metrics.items():
            print(f"{name}: accuracy {m['accuracy']:.4f} on {m['n']:,} pairs")
        print(f"run folder: {run.path}")
    return run.path


def run_predict(model_path: str | Path, pairs: pd.DataFrame, *, max_length: int = 128) -> pd.DataFrame:
    """Predicted label and class probabilities for each premise/hypothesis pair.

    Probability columns follow :data:`LABELS` when the model's classes are the NLI ones (any order or case),
    else the model's own names and order.
    """
    from adaptlab.nli.artifacts import load_trained
    from adaptlab.nli.data import LABELS
    from adaptlab.nli.evaluation import model_label_names, nli_label_columns, predictions_frame
    from adaptlab.nli.inference import predict_proba

    model, tokenizer = load_trained(trained_model_dir(model_path))
    probabilities = predict_proba(model, tokenizer, pairs, max_length=max_length)
    columns = nli_label_columns(model.config)
    if columns is None:
        labels = model_label_names(model.config)
    else:
        labels, probabilities = list(LABELS), probabilities[:, columns]
    return predictions_frame(pairs.drop(columns="label", errors="ignore"), probabilities, labels)
