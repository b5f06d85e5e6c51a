"""Where `adaptlab nli train`'s loop spends its time: cProfile of a short LoRA run, grouped into the model's forward
(with its linear layers, dropout and attention), the backward pass, and everything else (collation, optimizer,
clipping, schedule, bookkeeping). Same model and work as ``bench_nli_trainer.py``'s "ours" setup.

    python bench/nli_loop_profile.py [--steps 30] [--threads 2]   # numbers quoted in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nli_bench_common import machine_line, mnli_pairs, set_threads  # noqa: E402

# (label, function name as cProfile records it, file it is defined in; "" for built-ins)
BUCKETS = [("forward (whole model)", "forward", "peft_model.py"),
           ("  linear layers", "<built-in method torch._C._nn.linear>", ""),
           ("  dropout (masks + scaling)", "forward", "dropout.py"),
           ("  attention (with dropout)", "attention_with_fast_dropout", "dropout.py"),
           ("backward", "<method 'run_backward' of 'torch._C._EngineBase' objects>", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    from accelerate.utils import set_seed

    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model
    from adaptlab.nli.train import TrainConfig, train

    frame = mnli_pairs(args.pairs)
    set_seed(0)
    model, tokenizer = build_model("minilm", MethodConfig(method="lora"), num_labels=3)
    config = TrainConfig(batch_size=16, max_length=128, max_steps=args.steps, eval_every=0, quiet=True, seed=0)
    profile = cProfile.Profile()
    profile.enable()
    result = train(model, tokenizer, frame, {}, config)
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (calls, primitive calls, own, cumulative, callers)
    cumulative = {}
    for (file, _, name), (_, _, _, total, _) in stats.items():
        for label, wanted, where in BUCKETS:
            if name == wanted and file.endswith(where):
                cumulative[label] = max(cumulative.get(label, 0.0), total)
    loop = result.train_seconds
    print(f"{args.steps} steps, loop {loop:.1f} s ({machine_line()})")
    for label, _, _ in BUCKETS:
        print(f"{label:28s} {cumulative.get(label, 0.0):6.1f} s")
    other = loop - cumulative["forward (whole model)"] - cumulative["backward"]
    print(f"{'everything else':28s} {other:6.1f} s ({other / loop:.1%} of the loop)")


if __name__ == "__main__":
    main()
