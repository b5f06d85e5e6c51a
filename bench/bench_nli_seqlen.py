"""NLI training time per optimizer step against sequence length (``adaptlab.nli.train.train``, MiniLM, LoRA).

The pairs are long enough to fill every length: each premise is several MNLI premises joined and each hypothesis
several hypotheses, so longest-first truncation cuts every pair to exactly ``max_length`` tokens and a batch is
``batch_size x max_length`` real tokens (no padding). The lengths are interleaved round by round in one process;
each measurement is a fresh model trained for ``--steps`` steps, time from ``TrainResult.train_seconds``.

How the time grows tells which term dominates: the encoder's linear layers cost the same per token at every
length (time ~ L), attention's score and weighted-sum products cost ~ L per token (time ~ L^2). The fit
``t(L) = a + b L + c L^2`` and the time per token at each length are printed with the FLOP split for scale.

    python bench/bench_nli_seqlen.py --lengths 32,64,128,256 --steps 4 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nli_bench_common import load_average, machine_line, mnli_pairs, set_threads  # noqa: E402


def long_pairs(count: int, join: int):
    """``count`` pairs, each the concatenation of ``join`` consecutive MNLI premises / hypotheses."""
    import pandas as pd

    source = mnli_pairs(count * join)
    return pd.DataFrame({
        "premise": [" ".join(source["premise"].iloc[i * join:(i + 1) * join]) for i in range(count)],
        "hypothesis": [" ".join(source["hypothesis"].iloc[i * join:(i + 1) * join]) for i in range(count)],
        "label": source["label"].iloc[::join].to_numpy()[:count],
    })


def step_seconds(args, frame, length: int) -> float:
    from accelerate.utils import set_seed

    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model
    from adaptlab.nli.train import TrainConfig, train

    set_seed(0)
    model, tokenizer = build_model(args.model, MethodConfig(method="lora"), num_labels=3)
    config = TrainConfig(batch_size=args.batch_size, max_length=length, max_steps=args.steps, eval_every=0,
                         quiet=True, seed=0)
    return train(model, tokenizer, frame, {}, config).train_seconds / args.steps


def flops_split(model_config, length: int) -> tuple[float, float]:
    """Forward multiply-adds per token: (linear layers, attention scores + weighted sum), encoder only."""
    d, ff, layers = model_config.hidden_size, model_config.intermediate_size, model_config.num_hidden_layers
    return layers * (4 * d * d + 2 * d * ff), layers * 2 * length * d


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--lengths", default="32,64,128,256")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    frame = long_pairs(args.batch_size * args.steps, join=8)
    seconds: dict[int, list[float]] = {length: [] for length in lengths}
    loads = []
    for r in range(args.rounds):
        for length in (lengths if r % 2 == 0 else lengths[::-1]):
            loads.append(load_average())
            seconds[length].append(step_seconds(args, frame, length))
            print(f"round {r + 1} L={length}: {seconds[length][-1]:.3f} s/step", file=sys.stderr, flush=True)

    from adaptlab.nli.models import load_model_config

    model_config = load_model_config(args.model)
    medians = {length: statistics.median(values) for length, values in seconds.items()}
    a, b, c = np.polynomial.polynomial.polyfit(lengths, [medians[length] for length in lengths], 2)
    print("| max_length | s/step (median [min-max]) | ms per token | x of previous length | attention share of "
          "forward multiply-adds |\n|---:|---:|---:|---:|---:|")
    previous = None
    for length in lengths:
        values = seconds[length]
        linear, attention = flops_split(model_config, length)
        growth = f"{medians[length] / medians[previous]:.2f}x" if previous else "-"
        print(f"| {length} | {medians[length]:.3f} [{min(values):.3f}-{max(values):.3f}] | "
              f"{1000 * medians[length] / (args.batch_size * length):.3f} | {growth} | "
              f"{100 * attention / (linear + attention):.0f}% |")
        previous = length
    longest = lengths[-1]
    print(f"\nFit t(L) = {a:.3f} + {b * 1000:.3f} ms x L + {c * 1e6:.3f} us x L^2 (s/step); at L={longest} the "
          f"quadratic term is {100 * c * longest ** 2 / medians[longest]:.0f}% of the step. Batch {args.batch_size}, "
          f"{args.steps} steps per measurement, {args.rounds} rounds, {args.threads} torch thread(s); 1-minute "
          f"load average {min(loads):.1f}-{max(loads):.1f}. Machine: {machine_line()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
