"""Prediction throughput: ``adaptlab.nli.inference.predict_proba`` (what ``nli evaluate`` / ``nli predict`` use)
against a plain ``transformers.pipeline("text-classification")`` on the same saved model and the same pairs.

The model is the MiniLM preset with a LoRA adapter merged into it (``merge_and_unload``) and saved as a plain
transformers folder, which both sides load with ``from_pretrained``; the pipeline gets ``top_k=None`` (all class
probabilities), the same ``batch_size``, truncation to the same ``max_length``. Both run in one process, alternated
round by round after a warm-up, with the same torch threads; the two outputs are compared.

    python bench/bench_nli_predict.py --pairs 500 --batch-size 32 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nli_bench_common import load_average, machine_line, mnli_pairs, set_threads  # noqa: E402


def saved_merged_model(folder: Path, model: str) -> None:
    from accelerate.utils import set_seed

    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    set_seed(0)
    peft_model, tokenizer = build_model(model, MethodConfig(method="lora"), num_labels=3)
    peft_model.merge_and_unload().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from adaptlab.nli.inference import predict_proba

    set_threads(args.threads)
    frame = mnli_pairs(args.pairs)
    with tempfile.TemporaryDirectory() as folder:
        saved_merged_model(Path(folder), args.model)
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1, top_k=None)
    inputs = [{"text": p, "text_pair": h} for p, h in zip(frame["premise"], frame["hypothesis"])]
    label_order = [model.config.id2label[i] for i in range(model.config.num_labels)]

    def ours():
        return predict_proba(model, tokenizer, frame, max_length=args.max_length, batch_size=args.batch_size)

    def theirs():
        with torch.inference_mode():
            outputs = classify(inputs, batch_size=args.batch_size, truncation=True, max_length=args.max_length)
        return np.array([[{d["label"]: d["score"] for d in row}[name] for name in label_order] for row in outputs])

    runs = {"predict_proba": ours, "pipeline": theirs}
    for fn in runs.values():  # warm-up: first-call allocations and lazy imports
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    loads, outputs = [], {}
    for r in range(args.rounds):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            loads.append(load_average())
            started = time.perf_counter()
            outputs[name] = runs[name]()
            seconds[name].append(time.perf_counter() - started)
            print(f"round {r + 1} {name}: {args.pairs / seconds[name][-1]:.1f} pairs/s", file=sys.stderr, flush=True)

    rates = {name: [args.pairs / s for s in values] for name, values in seconds.items()}
    ours_rate = statistics.median(rates["predict_proba"])
    print("| setup | pairs/s | predict_proba / it |\n|---|---:|---:|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}] | "
              f"{ours_rate / statistics.median(values):.2f}x |")
    difference = np.abs(outputs["predict_proba"] - outputs["pipeline"]).max()
    print(f"\n{args.pairs} MNLI dev-matched pairs, batch {args.batch_size}, max_length {args.max_length}, "
          f"{args.threads} torch thread(s), medians of {args.rounds} alternated rounds [min-max]; largest "
          f"probability difference between the two: {difference:.2e}. 1-minute load average during the runs "
          f"{min(loads):.1f}-{max(loads):.1f}. Machine: {machine_line()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
