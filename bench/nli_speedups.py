"""What each of `nli train`'s CPU speed-ups is worth, step by step on the same batches in one process.

The model (MiniLM preset + LoRA, as in ``bench_nli_trainer.py``) trains on the first ``--steps`` length-grouped
batches of MNLI pairs. Every batch is run once in each configuration, the order rotated from batch to batch, so
machine drift (large on a shared machine, minutes apart) hits all configurations alike:

- ``base``: torch's dropout, transformers' SDPA attention, the last layer for every position;
- ``fast-dropout``: :mod:`adaptlab.nli.dropout` (cheap CPU dropout masks, also inside attention);
- ``first-token``: :mod:`adaptlab.nli.first_token` (the last layer for position 0 only);
- ``both``: what ``adaptlab.nli.train.train`` uses.

Timed: forward, backward and an AdamW step per batch; the table gives total seconds and base / it.

    python bench/nli_speedups.py [--steps 30] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nli_bench_common import machine_line, mnli_pairs, set_threads  # noqa: E402

CONFIGS = {"base": (False, False), "fast-dropout": (True, False), "first-token": (False, True), "both": (True, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the batches")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    import torch
    from accelerate.utils import set_seed
    from transformers import DataCollatorWithPadding

    from adaptlab.nli import dropout
    from adaptlab.nli.batches import encode_pairs, length_grouped_batches
    from adaptlab.nli.first_token import compute_last_layer_for_first_token
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    set_seed(0)
    model, tokenizer = build_model("minilm", MethodConfig(method="lora"), num_labels=3)
    features = encode_pairs(tokenizer, mnli_pairs(args.pairs), 128)
    order = length_grouped_batches([len(f["input_ids"]) for f in features], 16, 0, 0)[:args.steps]
    collate = DataCollatorWithPadding(tokenizer)
    batches = [collate([features[i] for i in rows]) for rows in order]

    classifier = model.get_base_model()
    last = classifier.base_model.encoder.layer[-1]
    every_position = type(last).forward
    dropout.use_fast_dropout(model)
    compute_last_layer_for_first_token(model)
    first_position = last.forward

    def configure(fast_dropout: bool, first_token: bool) -> None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.__class__ = dropout.FastDropout if fast_dropout else torch.nn.Dropout
        classifier.set_attn_implementation(dropout.ATTENTION if fast_dropout else "sdpa")
        last.forward = first_position if first_token else (lambda *a, **k: every_position(last, *a, **k))

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    seconds = dict.fromkeys(CONFIGS, 0.0)
    names = list(CONFIGS)
    for _ in range(args.repeats):
        for i, batch in enumerate(batches):
            for name in names[i % len(names):] + names[:i % len(names)]:
                configure(*CONFIGS[name])
                start = time.perf_counter()
                model(**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                seconds[name] += time.perf_counter() - start
    print(f"{len(batches)} batches x {args.repeats} passes, {args.threads} thread(s); {machine_line()}")
    print("| configuration | seconds | base / it |")
    print("|---|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {seconds['base'] / value:.2f}x |")


if __name__ == "__main__":
    main()
