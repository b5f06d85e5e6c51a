"""Training throughput of ``adaptlab nli train``'s loop against Hugging Face Trainer + PEFT on the same work.

Every setup trains the same model (MiniLM preset, LoRA from ``adaptlab.nli.methods.apply_method``, so the
trainable parameters are identical, seed 0) on the same MNLI pairs for the same number of optimizer steps, with
the same batch size, learning rate, warmup, weight decay and gradient clipping, no evaluation, no checkpoints,
dataloader workers 0 and the same number of torch threads:

- ``ours``: :func:`adaptlab.nli.train.train` (tokenize once, length-grouped batches, dynamic padding);
- ``trainer-dynamic``: Trainer with ``DataCollatorWithPadding`` (random batches, padded to their longest pair);
- ``trainer-grouped``: the same plus ``group_by_length`` (``train_sampling_strategy="group_by_length"`` in
  transformers 5);
- ``trainer-maxlen``: every pair padded to ``--max-length`` (the naive setup, for context);
- ablations (not run by default): ``ours-torch-dropout`` (torch's own dropout instead of
  :mod:`adaptlab.nli.dropout`'s) and ``ours-full-last-layer`` (the last layer for every position, not only
  the first: :mod:`adaptlab.nli.first_token`).

Two rates per run: *loop* = pairs / time inside the training loop (ours: ``TrainResult.train_seconds``;
Trainer: ``train_runtime``), and *end to end* = pairs / wall time from the pandas frame to the trained model
(tokenization, Accelerator/Trainer set-up and the loop; model loading excluded for all).

    python bench/bench_nli_trainer.py --pairs 1000 --steps 30 --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nli_bench_common import (interleaved, load_average, machine_line, median_of, mnli_pairs, run_child,  # noqa: E402
                              set_threads, spread)

SETUPS = ["ours", "trainer-dynamic", "trainer-grouped", "trainer-maxlen"]
# Ablations of our loop: the same run without one of its CPU speed-ups (adaptlab.nli.dropout,
# adaptlab.nli.first_token), to show what each contributes. Not in the default set.
ABLATIONS = {"ours-torch-dropout": "use_fast_dropout", "ours-full-last-layer": "compute_last_layer_for_first_token"}


def build(args):
    from accelerate.utils import set_seed

    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    set_seed(0)
    return build_model(args.model, MethodConfig(method="lora"), num_labels=3)


def train_ours(args, model, tokenizer, frame, without: str | None = None) -> dict:
    import adaptlab.nli.train as loop
    from adaptlab.nli.train import TrainConfig, train

    if without is not None:  # this child process only: the loop skips that step
        setattr(loop, without, lambda model: None)

    config = TrainConfig(batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps,
                         eval_every=0, quiet=True, seed=0)
    started, cpu = time.perf_counter(), time.process_time()
    result = train(model, tokenizer, frame, {}, config)
    wall = time.perf_counter() - started
    return {"pairs": result.train_samples, "loop_seconds": result.train_seconds, "wall_seconds": wall,
            "cpu_seconds": time.process_time() - cpu, "final_loss": result.history[-1]["train_loss"]}


def train_trainer(args, model, tokenizer, frame, setup: str) -> dict:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator

    from adaptlab.nli.batches import encode_pairs
    from adaptlab.nli.train import TrainConfig

    ours = TrainConfig()  # the same optimisation settings as our loop's defaults
    started, cpu = time.perf_counter(), time.process_time()
    if setup == "trainer-maxlen":
        encoded = tokenizer(frame["premise"].tolist(), frame["hypothesis"].tolist(), truncation=True,
                            max_length=args.max_length, padding="max_length")
        labels = frame["label"].astype(int).tolist()
        features = [{**{k: encoded[k][i] for k in encoded}, "label": labels[i]} for i in range(len(frame))]
        collator = default_data_collator
    else:
        features = encode_pairs(tokenizer, frame, args.max_length)
        collator = DataCollatorWithPadding(tokenizer)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
            learning_rate=ours.lr, weight_decay=ours.weight_decay, warmup_steps=round(ours.warmup_ratio * args.steps),
            lr_scheduler_type="linear", max_grad_norm=ours.max_grad_norm, seed=0,
            train_sampling_strategy="group_by_length" if setup == "trainer-grouped" else "random",
            eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none",
            dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=True, use_cpu=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=features, data_collator=collator)
        output = trainer.train()
    wall = time.perf_counter() - started
    return {"pairs": args.steps * args.batch_size, "loop_seconds": output.metrics["train_runtime"],
            "wall_seconds": wall, "cpu_seconds": time.process_time() - cpu, "final_loss": output.training_loss}


def one(args) -> dict:
    set_threads(args.threads)
    frame = mnli_pairs(args.pairs)
    model, tokenizer = build(args)
    if args.one == "ours" or args.one in ABLATIONS:
        row = train_ours(args, model, tokenizer, frame, ABLATIONS.get(args.one))
    else:
        row = train_trainer(args, model, tokenizer, frame, args.one)
    row["loop_pairs_per_s"] = row["pairs"] / row["loop_seconds"]
    row["wall_pairs_per_s"] = row["pairs"] / row["wall_seconds"]
    return row


def markdown(args, results: dict[str, list[dict]], loads: list[float]) -> str:
    ours_loop, ours_wall = median_of(results["ours"], "loop_pairs_per_s"), median_of(results["ours"], "wall_pairs_per_s")
    lines = ["| setup | loop pairs/s | ours / it (loop) | same round: ours / it (loop) | end-to-end pairs/s "
             "| ours / it (end to end) | CPU s per pair |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, rows in results.items():
        loop, wall = median_of(rows, "loop_pairs_per_s"), median_of(rows, "wall_pairs_per_s")
        paired = [{"ratio": mine["loop_pairs_per_s"] / theirs["loop_pairs_per_s"]}
                  for mine, theirs in zip(results["ours"], rows)]
        cpu = [{"per_pair": r["cpu_seconds"] / r["pairs"]} for r in rows]
        lines.append(f"| {name} | {spread(rows, 'loop_pairs_per_s')} | {ours_loop / loop:.2f}x | "
                     f"{spread(paired, 'ratio', 2)}x | {spread(rows, 'wall_pairs_per_s')} | {ours_wall / wall:.2f}x | "
                     f"{spread(cpu, 'per_pair', 3)} |")
    lines.append("")
    lines.append("*Same round*: each round's ours divided by that round's run of the setup (the two ran minutes "
                 "apart, so they saw nearly the same machine); median [min-max] over rounds. *CPU s per pair*: "
                 "process CPU time (all threads) of the whole run per trained pair.")
    lines.append("")
    lines.append(f"Medians of {args.rounds} interleaved rounds, [min-max]; {args.steps} optimizer steps x batch "
                 f"{args.batch_size} = {args.steps * args.batch_size} pairs per run from the first {args.pairs} "
                 f"MNLI dev-matched pairs, max_length {args.max_length}, {args.threads} torch thread(s). "
                 f"1-minute load average before each run: {min(loads):.1f}-{max(loads):.1f} "
                 f"(median {statistics.median(loads):.1f}). Machine: {machine_line()}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help=f"comma-separated, from {', '.join(SETUPS + list(ABLATIONS))}")
    parser.add_argument("--out", type=Path, help="also write the raw measurements (JSON) here")
    parser.add_argument("--one", choices=SETUPS + list(ABLATIONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return 0
    names = args.setups.split(",")
    shared = ["--model", args.model, "--pairs", str(args.pairs), "--steps", str(args.steps), "--batch-size",
              str(args.batch_size), "--max-length", str(args.max_length), "--threads", str(args.threads)]
    results, loads = interleaved(names, args.rounds, lambda name: run_child(Path(__file__), [*shared, "--one", name]))
    print(markdown(args, results, loads))
    if args.out:
        args.out.write_text(json.dumps({"results": results, "loads": loads, "load_after": load_average()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
