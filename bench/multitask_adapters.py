"""Four real task adapters on one real base: accuracy alone vs served together, size on disk, memory.

Trains a LoRA adapter per task (MultiNLI, RTE, SST-2, AG News) on the same pretrained encoder with
`adaptlab nli train` (defaults except the budget below), then scores every task's eval examples three ways:

- alone: each adapter loaded by itself (`load_trained`, the plain PEFT model) on its own examples;
- together: one `AdapterRegistry` over one copy of the base holding all four, the examples of all tasks
  shuffled into mixed batches;
- over HTTP: `adaptlab serve --adapters REGISTRY` on a loopback port, the same mixed items posted in batches.

and reports per task the accuracy each way, the largest probability difference to "alone", the adapter's size
on disk against the full fine-tuned model's (the adapter merged into the base: what the naive way stores per task),
and the memory of the registry against four full models (parameter bytes, and the resident memory each setup
adds to a fresh process).

Data: the files under ../shared/data (MultiNLI dev_matched with a 0.1 held-out split by premise, RTE train/dev,
SST-2 train/dev, AG News with a 0.1 held-out split); hub users pass --data-root to their own copies.

Run:  .venv/bin/python bench/multitask_adapters.py [--model minilm] [--train-samples 16000] [--steps 1000]
      [--eval-samples 500] [--work DIR] [--update-doc]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from doc_blocks import replace_block  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results.md"
ADAPTLAB = [sys.executable, "-m", "adaptlab"]
TASK_DATA = {  # task -> its data under --data-root
    "mnli": "mnli/multinli_1.0_dev_matched.csv",
    "rte": "rte",
    "sst2": "sst2",
    "agnews": "agnews/train.tsv",
}


def train_adapters(args, runs_dir: Path) -> dict[str, Path]:
    runs = {}
    for task, relative in TASK_DATA.items():
        command = [*ADAPTLAB, "nli", "train", "--task", task, "--data", str(args.data_root / relative),
                   "--model", args.model, "--method", "lora", "--max-train-samples", str(args.train_samples),
                   "--max-steps", str(args.steps), "--max-eval-samples", str(args.eval_samples),
                   "--output-dir", str(runs_dir), "--quiet"]
        started = time.perf_counter()
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()
        runs[task] = Path(out[-1])
        print(f"trained {task} in {time.perf_counter() - started:.0f} s: {runs[task]}", flush=True)
    return runs


def eval_examples(run: Path) -> tuple[pd.DataFrame, list[str], str]:
    """The run's eval examples (texts + gold label) as its predictions file lists them, its labels and input."""
    meta = json.loads((run / "model" / "adaptlab_model.json").read_text())
    [predictions] = sorted(run.glob("predictions_*.csv"))
    frame = pd.read_csv(predictions, keep_default_na=False, dtype=str)  # texts back exactly, "NA" included
    return frame, list(meta["labels"]), meta["task"]["input"]


def texts_of(frame: pd.DataFrame, kind: str) -> list[tuple[str, str | None]]:
    if kind == "pair":
        return list(zip(frame["premise"], frame["hypothesis"]))
    return [(text, None) for text in frame["text"]]


def alone_probabilities(run: Path, frame: pd.DataFrame) -> np.ndarray:
    from adaptlab.nli.artifacts import load_trained
    from adaptlab.nli.inference import predict_proba

    model, tokenizer = load_trained(run / "model")
    return predict_proba(model, tokenizer, frame.drop(columns=["label"]))


def mixed_items(examples: dict, seed: int) -> list[tuple[str, int, str, str | None]]:
    """(task, row, text, text_pair) of every task's examples, shuffled into one mixed stream."""
    items = [(task, row, *pair) for task, (frame, _, kind) in examples.items()
             for row, pair in enumerate(texts_of(frame, kind))]
    random.Random(seed).shuffle(items)
    return items


def over_http(registry_dir: Path, items: list, batch: int) -> list[dict]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([*ADAPTLAB, "serve", "--adapters", str(registry_dir), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"adaptlab serve exited: {server.stderr.read()}")
                time.sleep(0.2)
        results = []
        for start in range(0, len(items), batch):
            body = {"items": [{"task": task, "text": text, **({"text_pair": pair} if pair is not None else {})}
                              for task, _, text, pair in items[start:start + batch]]}
            request = urllib.request.Request(f"{base}/v1/classify", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            results += json.loads(urllib.request.urlopen(request, timeout=300).read())["results"]
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def resident_bytes(what: str, paths: list[str]) -> int:
    """RSS a fresh process adds by loading ``what`` (the registry folder, or the full models) and running one
    forward pass through every task (safetensors weights are memory-mapped: only a forward makes them resident),
    the libraries' own memory excluded."""
    code = f"""
import gc, json, sys, psutil, torch, transformers, peft
from adaptlab.adapters.registry import AdapterRegistry
from transformers import AutoModelForSequenceClassification, AutoTokenizer
torch.set_num_threads(1); gc.collect()
before = psutil.Process().memory_info().rss
paths = json.loads(sys.argv[1])
with torch.inference_mode():
    if {what!r} == "registry":
        registry = AdapterRegistry.open(paths[0])
        registry.classify([(t.name, "A short text.", "Another." if t.input == "pair" else None)
                           for t in registry.tasks()])
    else:
        models = [AutoModelForSequenceClassification.from_pretrained(p, use_safetensors=True) for p in paths]
        for path, model in zip(paths, models):
            model(**AutoTokenizer.from_pretrained(path)("A short text.", return_tensors="pt"))
gc.collect()
print(psutil.Process().memory_info().rss - before)
"""
    out = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--train-samples", type=int, default=16000, help="at most this many training examples")
    parser.add_argument("--steps", type=int, default=1000,
                        help="optimizer steps per task (batch 16): the same budget for every task, so RTE's 1,244 "
                        "pairs are seen ~13 times and MultiNLI's ~8,800 about twice")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--runs", type=Path, default=None, help="reuse the train runs in this folder")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    from adaptlab.adapters.registry import AdapterRegistry
    from adaptlab.nli.artifacts import merge_adapter

    work = Path(args.work or tempfile.mkdtemp(prefix="multitask-"))
    if args.runs:
        runs = {}
        for path in sorted(args.runs.iterdir()):
            meta_file = path / "model" / "adaptlab_model.json"
            if meta_file.is_file():
                runs[json.loads(meta_file.read_text())["task"]["name"]] = path
    else:
        runs = train_adapters(args, work / "runs")
    examples = {task: eval_examples(runs[task]) for task in TASK_DATA}
    alone = {task: alone_probabilities(runs[task], examples[task][0]) for task in TASK_DATA}

    registry = AdapterRegistry.from_base(args.model)
    for task in TASK_DATA:
        registry.add(task, runs[task])
    registry_dir = registry.save(work / "registry")
    items = mixed_items(examples, args.seed)
    together = registry.classify([(task, text, pair) for task, _, text, pair in items])
    http = over_http(registry_dir, items, batch=32)

    rows, merged_dirs = [], []
    for task in TASK_DATA:
        frame, labels, kind = examples[task]
        gold = np.array([labels.index(label) for label in frame["label"]])
        positions = [i for i, item in enumerate(items) if item[0] == task]
        order = [items[i][1] for i in positions]
        served = np.zeros_like(alone[task])
        over = np.zeros_like(alone[task])
        for i, row in zip(positions, order):
            served[row] = [together[i].probabilities[label] for label in labels]
            over[row] = [http[i]["probabilities"][label] for label in labels]
        merged = merge_adapter(runs[task] / "model", work / "merged" / task)
        merged_dirs.append(str(merged))
        trained = json.loads((runs[task] / "metrics.json").read_text())
        rows.append({
            "task": task, "input": kind, "labels": len(labels), "train examples": trained["train_pairs"],
            "steps": trained["train"]["steps"], "eval examples": len(frame),
            "accuracy alone": float((alone[task].argmax(1) == gold).mean()),
            "accuracy together": float((served.argmax(1) == gold).mean()),
            "accuracy over HTTP": float((over.argmax(1) == gold).mean()),
            "max |p diff| together": float(np.abs(served - alone[task]).max()),
            "max |p diff| HTTP": float(np.abs(over - alone[task]).max()),
            "adapter MB": (runs[task] / "model" / "adapter_model.safetensors").stat().st_size / 1e6,
            "full model MB": (merged / "model.safetensors").stat().st_size / 1e6,
        })
    memory = {
        "registry parameter MiB": registry.parameter_bytes() / 2**20,
        "four full models parameter MiB": sum(
            sum(p.numel() * p.element_size() for p in _load_full(d).parameters()) for d in merged_dirs) / 2**20,
        "registry RSS MiB": resident_bytes("registry", [str(registry_dir)]) / 2**20,
        "four full models RSS MiB": resident_bytes("full", merged_dirs) / 2**20,
    }
    print(pd.DataFrame(rows).to_string(index=False))
    print(json.dumps(memory, indent=1))
    (work / "multitask.json").write_text(json.dumps({"tasks": rows, "memory": memory, "runs": {
        k: str(v) for k, v in runs.items()}}, indent=2))
    if args.update_doc:
        write_doc(args, rows, memory)


def _load_full(folder: str):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)


def write_doc(args, rows: list[dict], memory: dict) -> None:
    from adaptlab.core.system import machine_description

    machine = machine_description()
    lines = [f"Measured {dt.date.today()} on {machine} with `python bench/multitask_adapters.py --model {args.model} "
             f"{'--runs RUNS' if args.runs else f'--train-samples {args.train_samples} --steps {args.steps}'} "
             "--update-doc`: one LoRA adapter per task (`adaptlab nli train --task T --data FILES --model "
             f"{args.model} --method lora`, default settings otherwise; training examples and optimizer steps (batch "
             "16) in the table), each scored alone on its eval examples, then all four served together from one base "
             "(every task's examples shuffled into mixed batches), in-process and over HTTP (`adaptlab serve`).", "",
             "| task | input | labels | train examples | steps | eval examples | accuracy alone | together | "
             "over HTTP | max abs prob. diff together / HTTP | adapter on disk | full model on disk |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['input']} | {r['labels']} | {r['train examples']:,} | {r['steps']:,} | "
                     f"{r['eval examples']:,} | "
                     f"{r['accuracy alone']:.3f} | {r['accuracy together']:.3f} | {r['accuracy over HTTP']:.3f} | "
                     f"{r['max |p diff| together']:.1e} / {r['max |p diff| HTTP']:.1e} | "
                     f"{r['adapter MB']:.2f} MB | {r['full model MB']:.1f} MB |")
    lines += ["", f"Memory: the registry (one base + four adapters and heads) holds "
              f"{memory['registry parameter MiB']:.1f} MiB of parameters against "
              f"{memory['four full models parameter MiB']:.1f} MiB for four full fine-tuned models (each adapter merged "
              "into its own copy of the base). Loading it and classifying one item per task adds "
              f"{memory['registry RSS MiB']:.0f} MiB to a fresh process; the same for the four full models adds "
              f"{memory['four full models RSS MiB']:.0f} MiB (safetensors weights are memory-mapped and only the "
              "pages a forward touches count: the word-embedding rows of tokens not yet seen stay on disk, so the "
              "parameter bytes are what a long-running server ends up holding)."]
    replace_block(DOC, "multitask_adapters", "\n".join(lines),
                  "## Four task adapters on one base (MNLI, RTE, SST-2, AG News)")


if __name__ == "__main__":
    main()
