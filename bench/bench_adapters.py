"""Many adapters on one base vs the alternatives: throughput and memory of the adapter registry (CPU or GPU).

Four LoRA adapters (3, 2, 2 and 4 labels; rank ``--rank`` on query/value, head = pooler + classifier) are built on
the real base ``--model`` (default: minilm, all-MiniLM-L6-v2) with seeded random LoRA and head weights: speed and
memory do not depend on the values. Measured, each as the median of ``--repeats`` timed calls after one warm-up:

(a) the registry on a 4-task mixed batch vs a single-task batch of the same texts and size (target >= 0.7x);
(b) the naive way, four full fine-tuned models in memory (each adapter merged into its own copy of the base):
    parameter bytes, RSS growth while building, and items/s on the same mixed items (each model runs its rows);
(c) one adapter merged for deployment vs the plain base model of the same architecture: batch latency (target:
    within 5%).

    python bench/bench_adapters.py --items 64 --repeats 5 --threads 1
    python bench/bench_adapters.py --random-base roberta-large --tokenizer TOKENIZER_DIR --device cuda --items 256

``--random-base PRESET`` builds that architecture with random weights from its shipped config (no download) and
saves it as the base folder, with the tokenizer of ``--tokenizer`` (any whose vocabulary fits): GPU speed and
memory of e.g. roberta-large without its weights. On a GPU, memory is counted as allocated CUDA bytes.

The table (markdown) goes to stdout and, with --out, to a file together with the raw JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

LABEL_COUNTS = (3, 2, 2, 4)
PAIRS = [("A man is playing a guitar on stage in front of a large crowd.", "A person makes music."),
         ("Two dogs run through the deep snow near the frozen lake.", "The animals are asleep indoors."),
         ("The committee approved the new budget after a long debate.", "The budget was rejected."),
         ("A child in a red coat feeds the ducks at the pond.", "A kid is outside."),
         ("The stock market fell sharply on Monday morning.", "Shares lost value."),
         ("Researchers published a study on coral reef recovery.", "Scientists studied the ocean.")]


DEVICE = "cpu"


def rss_bytes() -> int:
    """Resident memory of this process (CPU) or CUDA memory allocated by torch (GPU)."""
    import psutil
    import torch

    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated()
    return psutil.Process().memory_info().rss


def synchronize() -> None:
    import torch

    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def random_base(preset: str, tokenizer_spec: str, folder: Path) -> str:
    """A randomly initialised ``preset`` saved as a model folder (safetensors + tokenizer): a base to adapt."""
    import torch

    from adaptlab.nli.models import load_base_model, load_tokenizer

    torch.manual_seed(0)
    model, _ = load_base_model(preset, random_init=True, report_missing=False)
    model.base_model.save_pretrained(folder)  # the encoder only, like a hub checkpoint: no head of its own
    load_tokenizer(tokenizer_spec).save_pretrained(folder)
    return str(folder)


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        call()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_adapters(model: str, folder: Path, rank: int) -> list[Path]:
    import torch

    from adaptlab.nli.artifacts import save_trained
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    method = MethodConfig(method="lora", rank=rank)
    adapters = []
    for i, count in enumerate(LABEL_COUNTS):
        torch.manual_seed(i)
        peft_model, tokenizer = build_model(model, method, num_labels=count)
        with torch.no_grad():
            for param in (p for p in peft_model.parameters() if p.requires_grad):
                param.normal_(0.0, 0.02)
        adapters.append(save_trained(peft_model, tokenizer, folder / f"task{i}", method))
    return adapters


def max_diff_vs_alone(registry, items, adapters: dict, device: str) -> float:
    """Largest |probability difference| between the registry's mixed batch and each adapter loaded alone."""
    import numpy as np
    import pandas as pd

    from adaptlab.nli.artifacts import load_trained
    from adaptlab.nli.inference import predict_proba

    served = registry.classify(items)
    worst = 0.0
    for name, folder in adapters.items():
        rows = [i for i, item in enumerate(items) if item[0] == name]
        model, tokenizer = load_trained(folder)
        alone = predict_proba(model.to(device), tokenizer, pd.DataFrame(
            {"premise": [items[i][1] for i in rows], "hypothesis": [items[i][2] for i in rows]}))
        together = np.array([list(served[i].probabilities.values()) for i in rows])
        worst = max(worst, float(np.abs(together - alone).max()))
    return worst


def parameter_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--items", type=int, default=64, help="items per call (= batch size)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--random-base", default=None, metavar="PRESET",
                        help="a randomly initialised PRESET (e.g. roberta-large) instead of --model's weights")
    parser.add_argument("--tokenizer", default="minilm", help="tokenizer for --random-base (default: minilm)")
    parser.add_argument("--lora-batching", default="auto", choices=("auto", "gathered", "peft"),
                        help="the registry's mixed-batch LoRA path (auto: gathered on GPUs, PEFT's on the CPU)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device

    import torch
    from transformers import AutoModelForSequenceClassification

    from adaptlab.adapters.registry import AdapterRegistry
    from adaptlab.core.system import machine_description
    from adaptlab.nli.artifacts import load_trained, merge_adapter
    from adaptlab.nli.models import fit_tokenizer, load_base_model

    torch.set_num_threads(args.threads)
    pairs = [PAIRS[i % len(PAIRS)] for i in range(args.items)]
    result: dict = {"model": args.model, "items": args.items, "repeats": args.repeats, "rank": args.rank,
                    "threads": args.threads, "machine": machine_description(), "device": args.device,
                    "lora_batching": args.lora_batching}
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_base:
            args.model = random_base(args.random_base, args.tokenizer, Path(tmp) / "base")
            result["model"] = f"{args.random_base} (random weights)"
        adapters = make_adapters(args.model, Path(tmp), args.rank)
        names = [f"task{i}" for i in range(len(adapters))]

        before = rss_bytes()
        registry = AdapterRegistry.from_base(args.model, device=args.device, batch_size=args.items,
                                             lora_batching=args.lora_batching)
        for name, folder in zip(names, adapters):
            registry.add(name, folder)
        result["registry_rss_growth_bytes"] = rss_bytes() - before
        result["registry_parameter_bytes"] = registry.parameter_bytes()
        mixed = [(names[i % len(names)], p, h) for i, (p, h) in enumerate(pairs)]
        single = [(names[0], p, h) for p, h in pairs]
        result["max_abs_diff_vs_alone"] = max_diff_vs_alone(registry, mixed, dict(zip(names, adapters)), args.device)
        result["registry_mixed_s"] = median_seconds(lambda: registry.classify(mixed), args.repeats)
        result["registry_single_s"] = median_seconds(lambda: registry.classify(single), args.repeats)

        before = rss_bytes()
        full_models = []
        for folder in adapters:
            model, tokenizer = load_trained(folder)
            full_models.append(model.merge_and_unload().eval().to(args.device))
        result["naive_rss_growth_bytes"] = rss_bytes() - before
        result["naive_parameter_bytes"] = sum(parameter_bytes(m) for m in full_models)
        encoded = [tokenizer([p for p, _ in pairs[i::4]], [h for _, h in pairs[i::4]], padding=True,
                             truncation=True, max_length=registry.max_length, return_tensors="pt")
                   .to(args.device) for i in range(len(full_models))]

        def naive_mixed():
            with torch.inference_mode():
                for model, batch in zip(full_models, encoded):
                    model(**batch).logits.softmax(-1)

        result["naive_mixed_s"] = median_seconds(naive_mixed, args.repeats)
        del full_models

        merged = AutoModelForSequenceClassification.from_pretrained(
            merge_adapter(adapters[0], Path(tmp) / "merged"), use_safetensors=True).eval().to(args.device)
        plain, _ = load_base_model(args.model, num_labels=LABEL_COUNTS[0], report_missing=False)
        plain.eval().to(args.device)
        fit_tokenizer(tokenizer, plain.config)
        batch = tokenizer([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True,
                          max_length=registry.max_length, return_tensors="pt").to(args.device)

        def forward(model):
            with torch.inference_mode():
                model(**batch)

        # interleaved rounds, so a background load on the shared machine hits both models alike
        merged_times, plain_times = [], []
        for _ in range(3):
            merged_times.append(median_seconds(lambda: forward(merged), args.repeats))
            plain_times.append(median_seconds(lambda: forward(plain), args.repeats))
        result["merged_batch_s"], result["plain_batch_s"] = min(merged_times), min(plain_times)

    table = format_table(result)
    print(table)
    if args.out:
        args.out.write_text(table + "\n\n```json\n" + json.dumps(result, indent=2) + "\n```\n")


def format_table(r: dict) -> str:
    n, mib = r["items"], 2 ** 20
    rows = [
        ("registry, 4-task mixed batch", n / r["registry_mixed_s"], r["registry_parameter_bytes"] / mib,
         r["registry_rss_growth_bytes"] / mib),
        ("registry, single-task batch", n / r["registry_single_s"], None, None),
        ("naive: 4 full models, each its rows", n / r["naive_mixed_s"], r["naive_parameter_bytes"] / mib,
         r["naive_rss_growth_bytes"] / mib),
    ]
    lines = [f"{r['model']}, {n} items per call (pairs), rank-{r['rank']} LoRA on query/value, "
             f"{r['threads']} torch thread(s), median of {r['repeats']}, lora_batching={r['lora_batching']}; "
             f"{r['machine']}", "",
             f"| setup | items/s | parameters (MiB) | {'CUDA memory' if 'cuda' in r['device'] else 'RSS'} growth "
             "while loading (MiB) |", "|---|---:|---:|---:|"]
    for name, speed, params, rss in rows:
        lines.append(f"| {name} | {speed:,.1f} | {'' if params is None else f'{params:,.1f}'} | "
                     f"{'' if rss is None else f'{rss:,.1f}'} |")
    ratio = r["registry_single_s"] / r["registry_mixed_s"]
    latency = r["merged_batch_s"] / r["plain_batch_s"]
    lines += ["", f"- mixed / single-task throughput: **{ratio:.2f}x** (target >= 0.7x)",
              f"- largest probability difference, mixed batch vs each adapter alone: {r['max_abs_diff_vs_alone']:.1e}",
              f"- merged single-task model vs plain base, batch of {n}: {r['merged_batch_s'] * 1e3:.1f} ms vs "
              f"{r['plain_batch_s'] * 1e3:.1f} ms = **{latency:.3f}x** (target within 5%)"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
