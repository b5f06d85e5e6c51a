"""Checkpoints: safetensors + JSON only, only what trains, exact resume after SIGKILL, never a pickle loaded."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from adaptlab.errors import AdaptlabError
from adaptlab.nli.checkpoints import OPTIMIZER_TENSORS, TRAINABLE, find_checkpoint
from adaptlab.nli.methods import MethodConfig
from adaptlab.nli.models import build_model
from adaptlab.nli.train import TrainConfig, train

_spec = importlib.util.spec_from_file_location("toy_nli", Path(__file__).with_name("toy_nli.py"))
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN, EVAL = toy.toy_pairs(48), {"heldout": toy.toy_pairs(12, seed=1)}


def lora_model(base: Path, seed: int = 0):
    torch.manual_seed(seed)  # LoRA A and the new head are drawn here, as `nli train` seeds them
    return build_model(str(base), MethodConfig(method="lora", rank=4))


def trained_names(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def config(**kw) -> TrainConfig:
    """Checkpoints every 2 steps when given a checkpoint_dir."""
    return TrainConfig(**{"batch_size": 8, "max_steps": 4, "lr": 5e-3, "eval_every": 2,
                          "save_every": 2 if kw.get("checkpoint_dir") else 0, "quiet": True, "seed": 7, **kw})


def test_lora_resume_is_bit_identical_and_stores_only_what_trains(tiny_roberta_pretrained, tmp_path):
    straight, tokenizer = lora_model(tiny_roberta_pretrained)
    straight_result = train(straight, tokenizer, TRAIN, EVAL, config(checkpoint_dir=tmp_path / "a"))
    step2 = tmp_path / "a" / "step-0000002"
    assert set(load_file(step2 / TRAINABLE)) == trained_names(straight)
    # AdamW keeps step, exp_avg, exp_avg_sq for each trained parameter, in the optimizer's order
    optimizer_keys = set(load_file(step2 / OPTIMIZER_TENSORS))
    n = len(trained_names(straight))
    assert optimizer_keys == {f"{i}.{key}" for i in range(n) for key in ("step", "exp_avg", "exp_avg_sq")}

    resumed, tokenizer = lora_model(tiny_roberta_pretrained)
    resumed_result = train(resumed, tokenizer, TRAIN, EVAL, config(checkpoint_dir=tmp_path / "b", resume=step2))
    assert resumed_result.history == straight_result.history  # exact floats, not approximately
    final = dict(resumed.named_parameters())
    assert all(torch.equal(p, final[name]) for name, p in straight.named_parameters())
    assert resumed_result.train_samples == straight_result.train_samples == 4 * 8


def wide_roberta(tiny_roberta_dir: Path, folder: Path) -> Path:
    """The tiny fixture's tokenizer with a wider encoder (hidden 128), so the head no longer dwarfs the base."""
    from transformers import AutoConfig, AutoModel

    shutil.copytree(tiny_roberta_dir, folder)
    wide = AutoConfig.from_pretrained(folder)
    wide.update({"hidden_size": 128, "intermediate_size": 512, "num_attention_heads": 4, "num_hidden_layers": 2})
    wide.save_pretrained(folder)
    torch.manual_seed(0)
    AutoModel.from_config(wide).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("method", ["lora", "partial"])
def test_lora_and_partial_checkpoints_hold_the_trained_weights_and_their_adam_moments_only(method, tiny_roberta_dir,
                                                                                          tmp_path):
    base = wide_roberta(tiny_roberta_dir, tmp_path / "wide")
    torch.manual_seed(0)
    model, tokenizer = build_model(str(base), MethodConfig(method=method, rank=4, top_layers=1))
    trained = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    train(model, tokenizer, TRAIN, {}, config(max_steps=2, checkpoint_dir=tmp_path / "ckpt"))
    step = tmp_path / "ckpt" / "step-0000002"
    assert set(load_file(step / TRAINABLE)) == set(trained)

    def nbytes(name):
        return (step / name).stat().st_size

    # float32 weights + exp_avg + exp_avg_sq; headers and the small JSON/RNG files are a few kB
    expected = 3 * 4 * sum(trained.values())
    assert expected < nbytes(TRAINABLE) + nbytes(OPTIMIZER_TENSORS) < expected + 32_000
    checkpoint_bytes = sum(p.stat().st_size for p in step.iterdir())
    assert checkpoint_bytes < expected + 64_000
    base_bytes = (base / "model.safetensors").stat().st_size
    if method == "lora":
        assert checkpoint_bytes < base_bytes / 5, (checkpoint_bytes, base_bytes)
    else:  # top layer of two + head: well under the whole base even with two Adam moments per weight
        assert checkpoint_bytes < 2 * base_bytes


@pytest.mark.slow  # three `nli train` processes: about a minute on an idle 2-core machine
def test_a_real_sigkill_then_resume_gives_the_uninterrupted_run_bit_for_bit(tiny_roberta_pretrained, tmp_path):
    rows = [{"pairID": i, "sentence1": f"{toy.WORDS[i % 7]} {toy.WORDS[i % 11]} {i}",
             "sentence2": f"{toy.MARKERS[i % 3]} {toy.WORDS[i % 5]}", "label": ["entailment", "neutral",
                                                                             "contradiction"][i % 3]}
            for i in range(60)]
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)
    steps = 120  # ~10x the time to the first checkpoint (step 10): the run is still going when it appears

    def command(name: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "adaptlab", "nli", "train", "--model", str(tiny_roberta_pretrained),
                "--method", "lora", "--rank", "4", "--data", str(tmp_path / "pairs.csv"), "--heldout-fraction",
                "0.2", "--batch-size", "4", "--max-steps", str(steps), "--eval-every", "40", "--save-every", "10",
                "--lr", "3e-3", "--seed", "3", "--checkpoint-dir", str(tmp_path / f"ckpt-{name}"),
                "--out", str(tmp_path / f"out-{name}"), "--quiet", *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    straight = subprocess.run(command("straight"), env=env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]

    victim = subprocess.Popen(command("killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "ckpt-killed").glob("step-*")) and victim.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, victim.stderr.read()[-3000:]
    victim.stderr.close()
    saved = sorted(p.name for p in (tmp_path / "ckpt-killed").glob("step-*"))
    assert saved and f"step-{steps:07d}" not in saved
    # the output root is created (and checked) before training; the killed run finished no run folder in it
    assert not [p for p in (tmp_path / "out-killed").glob("*") if not p.name.startswith(".")]

    resumed = subprocess.run(command("killed", "--resume", str(tmp_path / "ckpt-killed")), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    [run_a] = [p for p in (tmp_path / "out-straight").iterdir() if p.name.startswith("2")]
    [run_b] = [p for p in (tmp_path / "out-killed").iterdir() if p.name.startswith("2")]
    assert json.loads((run_b / "history.json").read_text()) == json.loads((run_a / "history.json").read_text())
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (run_a, run_b)]
    assert metrics[0]["evals"] == metrics[1]["evals"] and metrics[1]["train"]["steps"] == steps
    assert metrics[0]["train"]["train_samples"] == metrics[1]["train"]["train_samples"]
    assert (run_a / "predictions_heldout.csv").read_bytes() == (run_b / "predictions_heldout.csv").read_bytes()
    weights = [load_file(run / "model" / "adapter_model.safetensors") for run in (run_a, run_b)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


class _CreatesFile:
    """Unpickling this opens ``path`` for writing, creating it: stands in for any code a pickle could run."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


PICKLES = ("custom_checkpoint_0.pkl", "optimizer.bin", "random_states_0.pkl", "pytorch_model.bin", "scaler.pt")


def test_pickles_in_a_checkpoint_folder_are_never_loaded(tmp_path):
    model, tokenizer = toy.tiny_bert()
    train(model, tokenizer, TRAIN, {}, config(max_steps=2, checkpoint_dir=tmp_path / "good"))
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesFile(marker))
    # the payload is live: this test's own unpickling (of its own bytes) creates the file
    pickle.loads(payload).close()
    assert marker.exists()
    marker.unlink()

    ours_plus_pickles = tmp_path / "mixed" / "step-0000002"
    shutil.copytree(tmp_path / "good" / "step-0000002", ours_plus_pickles)
    accelerate_style = tmp_path / "accelerate" / "step-0000002"  # trainer_state.json and pickles only
    accelerate_style.mkdir(parents=True)
    shutil.copy(ours_plus_pickles / "trainer_state.json", accelerate_style)
    for folder in (ours_plus_pickles, accelerate_style):
        for name in PICKLES:
            (folder / name).write_bytes(payload)

    resumed, tokenizer = toy.tiny_bert(seed=5)
    result = train(resumed, tokenizer, TRAIN, {}, config(max_steps=2, resume=ours_plus_pickles.parent))
    assert result.steps == 2 and not marker.exists()
    assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in resumed.named_parameters())

    with pytest.raises(AdaptlabError, match="not a checkpoint written by adaptlab.*pickled files are never loaded"
                       ) as info:
        train(resumed, tokenizer, TRAIN, {}, config(max_steps=2, resume=accelerate_style))
    assert "\n" not in str(info.value) and not marker.exists()


def _rewrite(path: Path, change) -> None:
    tensors = load_file(path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors, metadata = change(tensors, metadata)
    save_file(tensors, str(path), metadata=metadata)


def _edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


DAMAGE = {  # name -> (how the copy is damaged, the one-line message)
    "truncated-weights": (lambda f: (f / TRAINABLE).write_bytes((f / TRAINABLE).read_bytes()[:100]),
                          "trainable.safetensors is not a readable safetensors file"),
    "wrong-shape": (lambda f: _rewrite(f / TRAINABLE, lambda t, m: ({k: v.reshape(-1) for k, v in t.items()}, m)),
                    r"is torch.float32 \(\d+,\), the model's is torch.float32 \(\d+, \d+\)"),
    "missing-weight": (lambda f: _rewrite(f / TRAINABLE, lambda t, m: (dict(list(t.items())[1:]), m)),
                       "lacks 1 trained parameters"),
    "optimizer-hyperparameter": (lambda f: _edit_json(f / "optimizer.json",
                                                      lambda v: v["param_groups"][0].update(lr="0.1")),
                                 "optimizer.json does not match the optimizer's parameter groups"),
    "optimizer-foreign-key": (lambda f: _rewrite(f / OPTIMIZER_TENSORS,
                                                 lambda t, m: ({**t, "999.exp_avg": torch.zeros(3)}, m)),
                              "holds '999.exp_avg', which is no parameter"),
    "optimizer-moment-missing": (lambda f: _rewrite(f / OPTIMIZER_TENSORS, lambda t, m: (
        {k: v for k, v in t.items() if k != "0.exp_avg_sq"}, m)), "of parameter 0 has exp_avg, step; expected"),
    "scheduler-key": (lambda f: _edit_json(f / "scheduler.json", lambda v: v.pop("last_epoch")),
                      "scheduler.json does not have the keys and kinds"),
    "rng-header": (lambda f: _rewrite(f / "rng-0.safetensors", lambda t, m: (t, {})),
                   "rng-0.safetensors lacks a valid 'adaptlab_rng' header"),
    "rng-torch-state": (lambda f: _rewrite(f / "rng-0.safetensors",
                                           lambda t, m: ({**t, "torch_cpu": t["torch_cpu"][:10]}, m)),
                        "rng-0.safetensors holds an invalid generator state"),
    "process-count": (lambda f: _edit_json(f / "checkpoint.json", lambda v: v.update(num_processes=2)),
                      "incomplete checkpoint, no rng-1.safetensors"),
    "manifest": (lambda f: (f / "checkpoint.json").write_text("[]"), "not a adaptlab-checkpoint version 1"),
    "precision": (lambda f: _edit_json(f / "checkpoint.json", lambda v: v.update(mixed_precision="fp16")),
                  "trained with mixed precision 'fp16', resumed with 'no'"),
    "optimizer-int-moment": (lambda f: _rewrite(f / OPTIMIZER_TENSORS, lambda t, m: (
        {**t, "0.exp_avg": t["0.exp_avg"].to(torch.int64)}, m)), "optimizer state 0.exp_avg is torch.int64"),
}


def test_damaged_or_mismatched_checkpoints_are_refused_in_one_line_before_anything_changes(tmp_path):
    model, tokenizer = toy.tiny_bert()
    train(model, tokenizer, TRAIN, {}, config(max_steps=2, checkpoint_dir=tmp_path / "good"))
    good = tmp_path / "good" / "step-0000002"
    assert find_checkpoint(tmp_path / "good") == good
    fresh, tokenizer = toy.tiny_bert(seed=3)
    before = {name: p.detach().clone() for name, p in fresh.named_parameters()}
    for name, (damage, message) in DAMAGE.items():
        folder = tmp_path / name / "step-0000002"
        shutil.copytree(good, folder)
        damage(folder)
        with pytest.raises(AdaptlabError, match=message) as info:
            train(fresh, tokenizer, TRAIN, {}, config(max_steps=2, resume=folder))
        assert "\n" not in str(info.value), name
        assert all(torch.equal(p, before[n]) for n, p in fresh.named_parameters()), name


def test_resuming_on_different_frozen_weights_is_refused(tiny_roberta_pretrained, tmp_path):
    model, tokenizer = lora_model(tiny_roberta_pretrained)
    train(model, tokenizer, TRAIN, {}, config(max_steps=2, checkpoint_dir=tmp_path))
    other, tokenizer = lora_model(tiny_roberta_pretrained)
    frozen = next(p for p in other.parameters() if not p.requires_grad)
    with torch.no_grad():
        frozen.add_(1e-3)
    with pytest.raises(AdaptlabError, match="the frozen weights differ from the ones it was trained on"):
        train(other, tokenizer, TRAIN, {}, config(max_steps=2, resume=tmp_path))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gpu_resume_restores_cuda_generators_and_the_fp16_loss_scale(precision, tmp_path):
    straight, tokenizer = toy.tiny_bert()
    straight_result = train(straight, tokenizer, TRAIN, EVAL, config(checkpoint_dir=tmp_path / "a",
                                                                     mixed_precision=precision))
    step2 = tmp_path / "a" / "step-0000002"
    assert "cuda_0" in load_file(step2 / "rng-0.safetensors")
    assert (step2 / "grad_scaler.json").is_file() == (precision == "fp16")
    resumed, tokenizer = toy.tiny_bert(seed=4)
    resumed_result = train(resumed, tokenizer, TRAIN, EVAL, config(resume=step2, mixed_precision=precision))
    # CUDA's embedding backward adds with atomics, so two runs may differ in the last bits; a dropout mask
    # drawn from an unrestored generator or a reset loss scale would differ by far more
    for a, b in zip(straight_result.history, resumed_result.history, strict=True):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5)
    final = dict(resumed.named_parameters())
    assert all(torch.allclose(p, final[n], atol=1e-5) for n, p in straight.named_parameters())


def test_leftover_incomplete_checkpoints_are_swept_and_the_frozen_base_is_hashed_once(tiny_roberta_pretrained,
                                                                                     tmp_path, monkeypatch):
    """A run killed while checkpointing leaves `.incomplete-step-*`: the next checkpoint in that folder removes
    every such leftover (never resumed from). The frozen weights are hashed at the first checkpoint only."""
    import adaptlab.nli.checkpoints as checkpoints

    folder = tmp_path / "ckpt"
    for step in (3, 9):  # leftovers of an earlier, killed run: one before and one after this run's steps
        (folder / f".incomplete-step-{step:07d}").mkdir(parents=True)
        (folder / f".incomplete-step-{step:07d}" / TRAINABLE).write_bytes(b"half")
    hashed = []
    real = checkpoints.frozen_fingerprint
    monkeypatch.setattr(checkpoints, "frozen_fingerprint", lambda model: hashed.append(1) or real(model))
    model, tokenizer = lora_model(tiny_roberta_pretrained)
    train(model, tokenizer, TRAIN, EVAL, config(checkpoint_dir=folder))  # checkpoints at steps 2 and 4
    assert sorted(p.name for p in folder.iterdir()) == ["step-0000002", "step-0000004"]
    assert len(hashed) == 1
    manifests = {json.loads((folder / name / "checkpoint.json").read_text())["frozen_sha256"]
                 for name in ("step-0000002", "step-0000004")}
    assert manifests == {real(model)}
    assert find_checkpoint(folder) == folder / "step-0000004"
