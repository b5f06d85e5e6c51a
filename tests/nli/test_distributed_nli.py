"""Two CPU processes under `accelerate launch` train one tiny model: ranks stay in sync on disjoint shards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path



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
