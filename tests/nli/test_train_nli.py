"""The NLI training loop on tiny random BERTs: it learns, prints the table, resumes exactly, freezes what is frozen."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from adaptlab.errors import AdaptlabError
from adaptlab.nli.batches import length_grouped_batches, shard
from adaptlab.nli.checkpoints import find_checkpoint
from adaptlab.nli.train import TrainConfig, train

_spec = importlib.util.spec_from_file_location("toy_nli", Path(__file__).with_name("toy_nli.py"))
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_loss_falls_on_a_learnable_task_and_the_table_is_printed(capsys):
    model, tokenizer = toy.tiny_bert(seed=0)
    config = TrainConfig(batch_size=16, max_steps=120, lr=3e-3, eval_every=40, quiet=False, seed=0)
    result = train(model, tokenizer, toy.toy_pairs(256), {"heldout": toy.toy_pairs(64, seed=1)}, config)

    assert [row["step"] for row in result.history] == [40, 80, 120]
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"] - 0.3
    assert last["heldout_loss"] < first["heldout_loss"] - 0.3
    assert last["heldout_accuracy"] >= 0.9  # chance is 1/3
    # 256 rows / 16 = 16 full batches per epoch, so every step saw exactly 16 pairs.
    assert result.train_samples == 120 * 16 and result.steps == 120
    assert result.samples_per_second == pytest.approx(result.train_samples / result.train_seconds)
    assert result.peak_memory_kind == "cpu_peak_rss" and result.peak_memory_bytes > 0
    probabilities = result.probabilities["heldout"]
    assert probabilities.shape == (64, 3) and np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
    assert float((probabilities.argmax(1) == toy.toy_pairs(64, seed=1)["label"]).mean()) == last["heldout_accuracy"]

    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0] == ["Step", "Training", "Loss", "Validation", "Loss", "Accuracy"]
    assert [int(line[0]) for line in lines[1:4]] == [40, 80, 120]
    assert float(lines[3][3]) == pytest.approx(last["heldout_accuracy"], abs=1e-4)


def test_resume_continues_exactly_like_a_straight_run(tmp_path):
    train_df, eval_dfs = toy.toy_pairs(64), {"heldout": toy.toy_pairs(16, seed=1)}

    def config(**kw):  # dropout stays on, so equality also needs the RNG state restored
        return TrainConfig(batch_size=8, max_steps=8, lr=2e-3, eval_every=2, save_every=4, quiet=True, seed=5, **kw)

    straight, tokenizer = toy.tiny_bert(seed=1)
    straight_result = train(straight, tokenizer, train_df, eval_dfs, config(checkpoint_dir=tmp_path / "a"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["step-0000004", "step-0000008"]

    resumed, tokenizer = toy.tiny_bert(seed=99)  # different init: everything must come from the checkpoint
    resumed_result = train(resumed, tokenizer, train_df, eval_dfs,
                           config(checkpoint_dir=tmp_path / "b", resume=tmp_path / "a" / "step-0000004"))

    assert [r["step"] for r in resumed_result.history] == [2, 4, 6, 8]
    for a, b in zip(straight_result.history, resumed_result.history):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), key
    after_straight, after_resumed = _weights(straight), _weights(resumed)
    for name, value in after_straight.items():
        assert torch.allclose(value, after_resumed[name], atol=1e-6), name
    assert resumed_result.train_samples == straight_result.train_samples == 8 * 8
    assert find_checkpoint(tmp_path / "b") == tmp_path / "b" / "step-0000008"


def test_resume_refuses_a_changed_run(tmp_path):
    model, tokenizer = toy.tiny_bert()
    train(model, tokenizer, toy.toy_pairs(32), {}, TrainConfig(batch_size=8, max_steps=2, save_every=2,
                                                                checkpoint_dir=tmp_path, quiet=True))
    with pytest.raises(AdaptlabError, match=r"cannot resume .*lr 0.0003 -> 0.001"):
        train(model, tokenizer, toy.toy_pairs(32), {}, TrainConfig(batch_size=8, max_steps=2, lr=1e-3,
                                                                    resume=tmp_path, quiet=True))
    with pytest.raises(AdaptlabError, match="no checkpoint to resume from"):
        find_checkpoint(tmp_path / "nothing-here")


def test_resume_refuses_damaged_checkpoints_in_one_line(tmp_path):
    import json
    import shutil

    model, tokenizer = toy.tiny_bert()
    train(model, tokenizer, toy.toy_pairs(32), {}, TrainConfig(batch_size=8, max_steps=2, save_every=2,
                                                                checkpoint_dir=tmp_path / "good", quiet=True))
    good = tmp_path / "good" / "step-0000002"
    assert find_checkpoint(good) == good

    def damaged(name: str) -> Path:
        folder = tmp_path / name / "step-0000002"
        shutil.copytree(good, folder)
        return folder

    damaged("empty-state").joinpath("trainer_state.json").write_text("{}")
    damaged("not-json").joinpath("trainer_state.json").write_text("{not json")
    state = json.loads((good / "trainer_state.json").read_text())
    del state["state"]["step"]
    damaged("no-step").joinpath("trainer_state.json").write_text(json.dumps(state))
    pickled = damaged("pickled-weights")  # a pickled file in place of ours is never a fallback
    (pickled / "trainable.safetensors").rename(pickled / "pytorch_model.bin")
    for name, message in [("empty-state", "lacks setup, state"), ("not-json", "is not valid JSON"),
                          ("no-step", "lacks state.step"), ("pickled-weights", "no trainable.safetensors")]:
        with pytest.raises(AdaptlabError, match=message) as info:
            train(model, tokenizer, toy.toy_pairs(32), {}, TrainConfig(batch_size=8, max_steps=2,
                                                                        resume=tmp_path / name, quiet=True))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("method", ["lora", "partial"])
def test_frozen_weights_never_move(method, tiny_roberta_dir):
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    torch.manual_seed(0)
    model, tokenizer = build_model(str(tiny_roberta_dir), MethodConfig(method=method, rank=4, top_layers=1),
                                   random_init=True)
    before = _weights(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    # weight decay is on and the rate is high: frozen weights must still not move by a single bit
    train(model, tokenizer, toy.toy_pairs(48), {}, TrainConfig(batch_size=8, max_steps=4, lr=1e-2,
                                                                weight_decay=0.1, quiet=True))
    after = _weights(model)
    frozen = set(before) - trainable
    assert frozen and trainable
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert all(not torch.equal(before[n], after[n]) for n in trainable)
    if method == "partial":
        assert any(".embeddings." in n for n in frozen) and not any(".embeddings." in n for n in trainable)


def test_length_grouped_batches_cover_each_row_once_and_shard_disjointly():
    lengths = np.random.default_rng(0).integers(5, 100, size=203)
    epoch0 = length_grouped_batches(lengths, 8, seed=1, epoch=0)
    assert sorted(i for b in epoch0 for i in b) == list(range(203))
    assert epoch0 == length_grouped_batches(lengths, 8, seed=1, epoch=0)
    assert epoch0 != length_grouped_batches(lengths, 8, seed=1, epoch=1)
    # grouping: the spread of lengths inside a batch is far smaller than across the data set
    spread = np.mean([np.ptp(lengths[b]) for b in epoch0 if len(b) == 8])
    assert spread < 0.2 * np.ptp(lengths)
    shards = [shard(epoch0, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [9, 9, 9]  # 26 batches padded to 27
    assert sum(len(b) for s in shards for b in s) == 203 + len(epoch0[0])


def test_bad_inputs_give_one_line_errors():
    model, tokenizer = toy.tiny_bert()
    good = toy.toy_pairs(12)
    with pytest.raises(AdaptlabError, match="lacks column"):
        train(model, tokenizer, good.drop(columns="hypothesis"), {}, TrainConfig(quiet=True))
    with pytest.raises(AdaptlabError, match="labels outside 0..2"):
        train(model, tokenizer, good.assign(label=5), {}, TrainConfig(quiet=True))
    with pytest.raises(AdaptlabError, match="has no rows"):
        train(model, tokenizer, good, {"heldout": good.iloc[:0]}, TrainConfig(quiet=True))
    with pytest.raises(AdaptlabError, match="needs a GPU"):
        train(model, tokenizer, good, {}, TrainConfig(mixed_precision="bf16", quiet=True))
    with pytest.raises(AdaptlabError, match="save_every needs a checkpoint_dir"):
        TrainConfig(save_every=3).validate()


def test_matched_and_mismatched_are_both_reported(capsys):
    model, tokenizer = toy.tiny_bert()
    evals = {"validation_matched": toy.toy_pairs(12, seed=1), "validation_mismatched": toy.toy_pairs(10, seed=2)}
    result = train(model, tokenizer, toy.toy_pairs(32), evals, TrainConfig(batch_size=8, max_steps=2, quiet=False))
    [row] = result.history
    assert set(row) == {"step", "epoch", "train_loss", "validation_matched_loss", "validation_matched_accuracy",
                        "validation_mismatched_loss", "validation_mismatched_accuracy"}
    assert {name: p.shape for name, p in result.probabilities.items()} == {"validation_matched": (12, 3),
                                                                          "validation_mismatched": (10, 3)}
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[:3] == ["Step", "Training", "Loss"] and "validation_mismatched" in header


def test_throughput_counts_training_time_only_and_evaluation_has_its_own_bar(monkeypatch, capsys):
    from adaptlab.nli import train as train_module

    pause = 0.4
    evaluate = train_module.evaluate

    def slow_evaluate(*args, **kwargs):  # evaluation that takes a known, long time
        import time

        time.sleep(pause)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", slow_evaluate)
    model, tokenizer = toy.tiny_bert(seed=0)
    config = TrainConfig(batch_size=8, max_steps=4, lr=1e-3, eval_every=1, quiet=False, seed=0)
    result = train(model, tokenizer, toy.toy_pairs(32), {"heldout": toy.toy_pairs(16, seed=1)}, config)

    assert result.wall_seconds - result.train_seconds >= 4 * pause  # four evaluations, none counted as training
    assert result.samples_per_second == pytest.approx(result.train_samples / result.train_seconds)
    assert result.samples_per_second > result.train_samples / result.wall_seconds
    err = capsys.readouterr().err
    assert "eval heldout" in err and "pairs_per_s=" in err  # the eval bar, and the train bar's own rate
