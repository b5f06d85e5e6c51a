"""Fine-tune an encoder for NLI: one loop on accelerate, readable top to bottom (nanoGPT style).

The same function runs on a CPU, a GPU, or many processes and machines under ``accelerate launch``:
accelerate wraps the model for distributed data parallel and averages gradients; this module decides
which rows each process sees (:mod:`adaptlab.nli.batches`). Checkpoints are safetensors + JSON folders
(:mod:`adaptlab.nli.checkpoints`); resuming from one continues the exact same trajectory.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import gather_object, set_seed
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

from adaptlab.core.system import peak_rss_bytes
from adaptlab.errors import AdaptlabError
from adaptlab.nli.batches import check_pairs, check_training_pairs, encode_pairs, fingerprint, length_grouped_batches, shard
from adaptlab.nli.checkpoints import find_checkpoint, load_checkpoint, read_trainer_state, save_checkpoint
from adaptlab.nli.config import NLIRunConfig, check_training_settings
from adaptlab.nli.defaults import default_lr
from adaptlab.nli.dropout import use_fast_dropout
from adaptlab.nli.first_token import compute_last_layer_for_first_token
from adaptlab.nli.inference import forward_chunks, length_sorted_chunks

_RUN = NLIRunConfig()  # the one definition of every default below, documented field by field


@dataclass
class TrainConfig:
    """The loop's settings: each field is the run setting of the same name in
    :class:`~adaptlab.nli.config.NLIRunConfig` (meaning, units and default are defined there), with ``lr``
    always a number and the folders as paths."""

    max_length: int = _RUN.max_length
    batch_size: int = _RUN.batch_size
    grad_accum: int = _RUN.grad_accum
    lr: float = default_lr(_RUN.model, "lora")
    weight_decay: float = _RUN.weight_decay
    warmup_ratio: float = _RUN.warmup_ratio
    epochs: float = _RUN.epochs
    max_steps: int | None = _RUN.max_steps
    eval_every: int = _RUN.eval_every
    save_every: int = _RUN.save_every
    checkpoint_dir: Path | None = None
    resume: Path | None = None
    seed: int = _RUN.seed
    mixed_precision: str = _RUN.mixed_precision
    gradient_checkpointing: bool = _RUN.gradient_checkpointing
    max_grad_norm: float = _RUN.max_grad_norm
    quiet: bool = _RUN.quiet

    def validate(self) -> None:
        check_training_settings(self)
        if self.save_every and self.checkpoint_dir is None:
            raise AdaptlabError("save_every needs a checkpoint_dir")


@dataclass
class TrainResult:
    history: list[dict]              # one row per evaluation: step, epoch, train_loss, <split>_loss, <split>_accuracy
    probabilities: dict[str, np.ndarray] = field(repr=False)  # eval split -> (rows, labels) at the last step
    steps: int = 0                   # optimizer steps taken in total (resumed ones included)
    train_samples: int = 0           # pairs fed to the optimizer, all processes, resumed ones included
    train_seconds: float = 0.0       # forward/backward/step time only (no evaluation, no checkpoints)
    wall_seconds: float = 0.0        # this call, start to end, evaluation and checkpoints included
    samples_per_second: float = 0.0  # train_samples / train_seconds
    peak_memory_bytes: int = 0
    peak_memory_kind: str = ""       # "cuda_max_allocated" or "cpu_peak_rss"
    num_processes: int = 1
    mixed_precision: str = "no"


def train(model, tokenizer, train_df: pd.DataFrame, eval_dfs: dict[str, pd.DataFrame],
          config: TrainConfig) -> TrainResult:
    """Train ``model`` (in place) on ``train_df`` and evaluate it on each of ``eval_dfs``.

    Frames need columns premise, hypothesis, label (0..num_labels-1). Only parameters with
    ``requires_grad`` reach the optimizer, so frozen weights never move.
    """
    config.validate()
    started = time.perf_counter()
    # cpu=True on GPU-less hosts is what lets `accelerate launch --multi_gpu` run several CPU processes (gloo).
    # accelerate keeps one process-wide AcceleratorState and refuses a second Accelerator with another mixed
    # precision; a Python caller may train twice in one process (bf16, then fp16), so start from a fresh one.
    # The PartialState (the distributed process group) is kept.
    AcceleratorState._reset_state()
    accelerator = Accelerator(mixed_precision=_resolve_precision(config.mixed_precision),
                              cpu=not torch.cuda.is_available())
    is_main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    set_seed(config.seed)

    # ---- data: tokenize once; batch order is a function of (seed, epoch) ----
    num_labels = model.config.num_labels
    check_training_pairs(train_df, num_labels)
    for name, df in eval_dfs.items():
        check_pairs(df, f"eval split {name!r}", num_labels)
    train_features = encode_pairs(tokenizer, train_df, config.max_length)
    eval_features = {name: encode_pairs(tokenizer, df, config.max_length) for name, df in eval_dfs.items()}
    lengths = [len(f["input_ids"]) for f in train_features]
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if accelerator.device.type == "cuda" else None)
    batches_per_epoch = math.ceil(math.ceil(len(lengths) / config.batch_size) / world)  # per process
    total_steps = config.max_steps or math.ceil(config.epochs * batches_per_epoch / config.grad_accum)

    # ---- model, optimizer, schedule ----
    if config.gradient_checkpointing and accelerator.device.type == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    use_fast_dropout(model)  # CPU: cheaper dropout masks, same distribution (see adaptlab.nli.dropout)
    compute_last_layer_for_first_token(model)  # the head reads position 0 only (see adaptlab.nli.first_token)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise AdaptlabError("the model has no trainable parameters")
    groups = [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    # The scheduler is deliberately not prepared: a prepared one steps once per process per call, while ours
    # counts optimizer steps.

    # ---- resume: weights, optimizer, schedule and every process's RNG, then our counters ----
    setup = {"data_sha256": fingerprint(train_df), "num_processes": world, "total_steps": total_steps,
             "trainable_parameters": sum(p.numel() for p in trainable), "batch_size": config.batch_size,
             "grad_accum": config.grad_accum, "lr": config.lr, "weight_decay": config.weight_decay,
             "warmup_ratio": config.warmup_ratio, "max_length": config.max_length, "seed": config.seed}
    state = {"step": 0, "history": [], "loss_sum": 0.0, "loss_count": 0, "train_samples": 0, "train_seconds": 0.0}
    if config.resume is not None:
        checkpoint = find_checkpoint(config.resume)
        saved = read_trainer_state(checkpoint, required_state=tuple(state))
        _check_same_setup(saved["setup"], setup, checkpoint)
        load_checkpoint(accelerator, model, optimizer, scheduler, checkpoint)
        state = saved["state"]
    step, history = state["step"], state["history"]
    loss_sum, loss_count = state["loss_sum"], state["loss_count"]
    samples, train_seconds = 0, 0.0  # this call's share; added to the resumed totals at the end

    # ---- the loop ----
    batches = _micro_batches(lengths, config, rank, world, batches_per_epoch, start=step * config.grad_accum)
    progress = tqdm(total=total_steps, initial=step, unit="step", desc="train", disable=config.quiet or not is_main)
    probabilities: dict[str, np.ndarray] = {}
    model.train()
    while step < total_steps:
        tick = time.perf_counter()
        for micro in range(config.grad_accum):
            indices = next(batches)
            batch = collate([train_features[i] for i in indices]).to(accelerator.device)
            # Gradients are averaged across processes only on the last micro-batch of each accumulation.
            sync = nullcontext() if micro == config.grad_accum - 1 else accelerator.no_sync(model)
            with sync:
                loss = model(**batch).loss
                accelerator.backward(loss / config.grad_accum)
            loss_sum, loss_count, samples = loss_sum + loss.item(), loss_count + 1, samples + len(indices)
        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: the step did not happen
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        train_seconds += time.perf_counter() - tick
        progress.update(1)
        # the bar's own rate counts evaluation pauses; this one is training time only, all processes
        progress.set_postfix(loss=f"{loss.item():.4f}", pairs_per_s=f"{samples * world / train_seconds:.1f}")

        if step == total_steps or (config.eval_every and step % config.eval_every == 0):
            row = {"step": step, "epoch": round(step * config.grad_accum / batches_per_epoch, 3),
                   "train_loss": _mean_across(accelerator, loss_sum, loss_count)}
            for name, features in eval_features.items():
                row[f"{name}_loss"], probabilities[name] = evaluate(
                    accelerator, model, features, collate, config.batch_size,
                    progress_label=None if config.quiet else f"eval {name}")
                row[f"{name}_accuracy"] = float((probabilities[name].argmax(1) == eval_dfs[name]["label"]).mean())
            history.append(row)
            loss_sum, loss_count = 0.0, 0
            if is_main and not config.quiet:
                _print_row(progress, row, list(eval_features), header=len(history) == 1)

        if config.save_every and (step % config.save_every == 0 or step == total_steps):
            so_far = {"step": step, "history": history, "loss_sum": loss_sum, "loss_count": loss_count,
                      "train_samples": int(state["train_samples"] + _sum_across(accelerator, samples)),
                      "train_seconds": state["train_seconds"] + train_seconds}
            save_checkpoint(accelerator, model, optimizer, scheduler, Path(config.checkpoint_dir), step,
                            {"setup": setup, "state": so_far})
    progress.close()

    if not probabilities:  # resumed from the final checkpoint: nothing left to train, still report the model
        for name, features in eval_features.items():
            _, probabilities[name] = evaluate(accelerator, model, features, collate, config.batch_size)

    total_samples = int(state["train_samples"] + _sum_across(accelerator, samples))
    total_seconds = state["train_seconds"] + train_seconds
    on_gpu = accelerator.device.type == "cuda"
    return TrainResult(
        history=history, probabilities=probabilities, steps=step, train_samples=total_samples,
        train_seconds=total_seconds, wall_seconds=time.perf_counter() - started,
        samples_per_second=total_samples / total_seconds if total_seconds > 0 else 0.0,
        peak_memory_bytes=torch.cuda.max_memory_allocated() if on_gpu else peak_rss_bytes(),
        peak_memory_kind="cuda_max_allocated" if on_gpu else "cpu_peak_rss",
        num_processes=world, mixed_precision=accelerator.mixed_precision,
    )


def evaluate(accelerator: Accelerator, model, features: list[dict], collate, batch_size: int,
             progress_label: str | None = None):
    """Mean cross-entropy and softmax probabilities (rows in input order), sharded across processes.

    ``progress_label``: show a progress bar of evaluation batches (main process), separate from training's.
    """
    model = accelerator.unwrap_model(model)
    chunks = length_sorted_chunks(features, batch_size)[accelerator.process_index :: accelerator.num_processes]
    chunks = tqdm(chunks, desc=progress_label, unit="batch", leave=False,
                  disable=progress_label is None or not accelerator.is_main_process)
    mine = forward_chunks(model, features, chunks, collate, accelerator.device, accelerator.autocast)
    probabilities = np.zeros((len(features), model.config.num_labels))
    losses = np.zeros(len(features))
    for indices, batch_losses, batch_probabilities in gather_object(mine):
        losses[indices], probabilities[indices] = batch_losses, batch_probabilities
    return float(losses.mean()), probabilities


def _resolve_precision(requested: str) -> str:
    if not torch.cuda.is_available():
        if requested in ("bf16", "fp16"):
            raise AdaptlabError(f"mixed precision {requested} needs a GPU; use 'auto' or 'no' on CPU")
        return "no"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def _micro_batches(lengths, config: TrainConfig, rank: int, world: int, per_epoch: int, start: int):
    """This process's micro-batches (lists of row indices) from global micro-batch number ``start`` on."""
    epoch, offset = divmod(start, per_epoch)
    while True:
        batches = shard(length_grouped_batches(lengths, config.batch_size, config.seed, epoch), rank, world)
        yield from batches[offset:]
        epoch, offset = epoch + 1, 0


def _check_same_setup(saved: dict, current: dict, checkpoint: Path) -> None:
    different = [f"{k} {saved.get(k)!r} -> {v!r}" for k, v in current.items() if saved.get(k) != v]
    if different:
        raise AdaptlabError(f"cannot resume from {checkpoint}: the run changed ({'; '.join(different)})")


def _sum_across(accelerator: Accelerator, value: float) -> float:
    """``value`` summed over all processes (float64, so sample counts stay exact)."""
    return accelerator.reduce(torch.tensor(float(value), dtype=torch.float64, device=accelerator.device), "sum").item()


def _mean_across(accelerator: Accelerator, total: float, count: int) -> float:
    count = _sum_across(accelerator, count)
    return _sum_across(accelerator, total) / count if count else float("nan")


def _print_row(progress, row: dict, splits: list[str], header: bool) -> None:
    """The reference study's table: Step | Training Loss | Validation Loss | Accuracy (per split if several)."""
    names = [("Validation Loss", "Accuracy")] if len(splits) == 1 else [(f"{s} loss", f"{s} acc") for s in splits]
    columns = ["Step", "Training Loss"] + [c for pair in names for c in pair]
    widths = [max(len(c), 8) for c in columns]
    values = [row["step"], row["train_loss"]] + [row[f"{s}_{k}"] for s in splits for k in ("loss", "accuracy")]
    if header:
        progress.write("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in values]
    progress.write("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
