"""Two CPU processes under `accelerate launch` train one tiny model: ranks stay in sync on disjoint shards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_stay_in_sync_on_disjoint_shards(tmp_path):
    worker = Path(__file__).with_name("toy_nli.py")
    # --multi_gpu selects accelerate's torch.distributed launcher; with no GPU the loop asks for cpu=True,
    # which makes each process join a gloo process group.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(worker), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # identical weights on both ranks after 6 optimizer steps (DDP averaged the gradients)...
    assert ranks[0]["first_weights"] == ranks[1]["first_weights"]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    assert ranks[0]["abs_checksum"] == ranks[1]["abs_checksum"]
    # ...which moved away from the (shared) initial weights: they did train
    assert ranks[0]["initial_abs_checksum"] == ranks[1]["initial_abs_checksum"] != ranks[0]["abs_checksum"]
    # each rank trained on its own half: 48 rows / 4 per batch = 12 batches -> 6 per rank = 1 epoch
    seen = [set(r["seen"]) for r in ranks]
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 24
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(48))
    assert ranks[0]["train_samples"] == 48
    # both ranks computed the same (globally reduced) evaluation table
    assert ranks[0]["history"] == ranks[1]["history"] and [h["step"] for h in ranks[0]["history"]] == [3, 6]


def test_accelerate_launch_runs_the_train_command_on_two_processes(tmp_path, tiny_roberta_pretrained):
    import pandas as pd
    from safetensors.torch import load_file

    sentences = ["A man is playing a guitar on stage.", "The children are sleeping.", "Nobody is outside.",
                 "Someone plays music for a crowd."]
    labels = ["entailment", "neutral", "contradiction"]
    rows = [{"pairID": i, "sentence1": f"{sentences[i % 4]} {i}", "sentence2": sentences[(i // 4) % 4], "label": labels[i % 3]}
            for i in range(40)]
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)

    def launch(out: str, *extra: str) -> Path:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(_free_port()), "-m", "adaptlab", "nli", "train",
                   "--model", str(tiny_roberta_pretrained), "--method", "full", "--data", str(tmp_path / "pairs.csv"),
                   "--heldout-fraction", "0.2", "--batch-size", "4", "--max-steps", "4", "--save-every", "2",
                   "--eval-every", "2", "--out", str(tmp_path / out), "--quiet", *extra]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        runs = [p for p in (tmp_path / out).iterdir() if p.name != "checkpoints"]
        assert len(runs) == 1 and not runs[0].name.startswith(".")  # only the main process wrote a run folder
        return runs[0]

    run = launch("runs")
    metrics = json.loads((run / "metrics.json").read_text())
    # 40 pairs - 8 held out = 32 = 8 full batches of 4: 4 steps x 2 processes x 4 pairs
    assert metrics["train_pairs"] == 32 and metrics["eval_pairs"] == {"heldout": 8}
    assert metrics["train"]["num_processes"] == 2 and metrics["train"]["train_samples"] == 4 * 2 * 4
    # both ranks checkpointed into one folder: one RNG state per process next to the shared weights
    [checkpoints] = list((tmp_path / "runs" / "checkpoints").iterdir())
    step = checkpoints / "step-0000002"
    assert {p.name for p in step.iterdir()} == {
        "checkpoint.json", "trainer_state.json", "trainable.safetensors", "optimizer.safetensors", "optimizer.json",
        "scheduler.json", "rng-0.safetensors", "rng-1.safetensors"}

    # two processes resume from step 2 and end where the uninterrupted two-process run ended
    resumed = launch("resumed", "--resume", str(step))
    assert json.loads((resumed / "history.json").read_text()) == json.loads((run / "history.json").read_text())
    weights = [load_file(folder / "model" / "model.safetensors") for folder in (run, resumed)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
