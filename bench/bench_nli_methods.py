"""Training-step speed and peak memory of LoRA vs full vs partial fine-tuning at a fixed sequence length.

Each method runs in its own process (so peak memory is its own): the model is built from its config with random
weights (speed and memory do not depend on the weight values), then ``--warmup`` and ``--steps`` timed optimizer
steps (forward, backward, AdamW step) run on batches of ``--batch-size`` sequences of exactly ``--length`` random
tokens. GPU: bf16 autocast, peak = ``torch.cuda.max_memory_allocated``; CPU: fp32, peak = the process's peak RSS.

    python bench/bench_nli_methods.py --model roberta-large --length 128 --batch-size 32   # on a GPU host
    python bench/bench_nli_methods.py --model minilm --device cpu --batch-size 16 --steps 10

The table (markdown) goes to stdout and, with --out, to a file together with the raw JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one_method(args: argparse.Namespace) -> dict:
    import torch

    from adaptlab.core.system import peak_rss_bytes
    from adaptlab.nli.methods import MethodConfig, apply_method, count_parameters
    from adaptlab.nli.models import load_base_model

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    base, also_train = load_base_model(args.model, num_labels=3, random_init=True)
    model = apply_method(base, MethodConfig(method=args.one), also_train).to(device)
    trainable, total = count_parameters(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randint(5, vocab, (args.batch_size, args.length), generator=generator),
                torch.randint(0, 3, (args.batch_size,), generator=generator)) for _ in range(4)]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    model.train()

    def step(i: int) -> None:
        ids, labels = (t.to(device, non_blocking=True) for t in batches[i % len(batches)])
        with autocast:
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else peak_rss_bytes()
    return {"method": args.one, "model": args.model, "device": torch.cuda.get_device_name() if device.type == "cuda"
            else "cpu", "trainable": trainable, "total": total, "batch_size": args.batch_size, "length": args.length,
            "steps": args.steps, "seconds": seconds, "samples_per_second": args.steps * args.batch_size / seconds,
            "peak_memory_bytes": int(peak), "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda"
            else "cpu_peak_rss", "torch": torch.__version__}


def table(rows: list[dict]) -> str:
    lora = next((r for r in rows if r["method"] == "lora"), None)
    lines = ["| method | trainable | % of total | samples/s | peak memory (GiB) | samples/s vs LoRA | memory vs LoRA |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = (f"{r['samples_per_second'] / lora['samples_per_second']:.2f}x",
                 f"{r['peak_memory_bytes'] / lora['peak_memory_bytes']:.2f}x") if lora else ("", "")
        lines.append(f"| {r['method']} | {r['trainable']:,} | {100 * r['trainable'] / r['total']:.2f}% | "
                     f"{r['samples_per_second']:.1f} | {r['peak_memory_bytes'] / 2**30:.2f} | {ratio[0]} | {ratio[1]} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="roberta-large", help="preset, config.json or model folder")
    parser.add_argument("--methods", default="lora,full,partial")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--out", help="also write the table and raw JSON to this markdown file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_method(args)))
        return 0
    rows = []
    for method in args.methods.split(","):
        argv = [sys.executable, __file__, "--one", method, "--model", args.model, "--batch-size",
                str(args.batch_size), "--length", str(args.length), "--steps", str(args.steps), "--warmup",
                str(args.warmup), "--device", args.device]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{method}: {rows[-1]['samples_per_second']:.1f} samples/s, "
              f"{rows[-1]['peak_memory_bytes'] / 2**30:.2f} GiB", file=sys.stderr, flush=True)
    text = (f"{args.model}, batch {args.batch_size} x length {args.length}, {args.steps} timed steps after "
            f"{args.warmup} warm-up, device {rows[0]['device']}, torch {rows[0]['torch']}, "
            f"{time.strftime('%Y-%m-%d')}\n\n{table(rows)}\n")
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n```json\n" + json.dumps(rows, indent=1) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
