"""nli.data for evaluation: what `nli evaluate --data` scores, and eval splits capped (and said so) for training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.data import load_eval_data, load_nli_data

_spec = importlib.util.spec_from_file_location("layouts", Path(__file__).with_name("test_data_layouts.py"))
layouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layouts)


def test_a_single_file_is_scored_whole(tmp_path):
    path = layouts.write_csv(tmp_path / "multinli_1.0_dev_matched.csv", layouts.ROWS)
    data = load_eval_data(str(path))
    assert list(data.evals) == ["validation_matched"]  # named after the file
    scored = data.evals["validation_matched"]
    assert len(scored) == len(layouts.LABELLED) and data.dropped == {"validation_matched": layouts.N_DROPPED}
    assert len(data.train) == 0 and "train:" not in data.describe()
    other = load_eval_data(str(layouts.write_csv(tmp_path / "pairs.csv", layouts.ROWS)))
    assert list(other.evals) == ["all"] and len(other.evals["all"]) == len(layouts.LABELLED)


def test_heldout_fraction_scores_exactly_what_training_held_out(tmp_path):
    path = str(layouts._big_csv(tmp_path / "pairs.csv"))
    trained_on = load_nli_data(path, heldout_fraction=0.2, seed=3)
    evaluated = load_eval_data(path, heldout_fraction=0.2, seed=3)
    assert list(evaluated.evals) == ["heldout"] and evaluated.evals["heldout"].equals(trained_on.evals["heldout"])
    assert len(load_eval_data(path).evals["all"]) == 300  # without the fraction: every labelled pair


def test_a_folder_of_eval_files_needs_no_train_file(tmp_path):
    layouts.write_jsonl(tmp_path / "multinli_1.0_dev_matched.jsonl")
    layouts.write_jsonl(tmp_path / "multinli_1.0_dev_mismatched.jsonl", layouts.ROWS[:5])
    data = load_eval_data(str(tmp_path))
    assert {name: len(frame) for name, frame in data.evals.items()} == {
        "validation_matched": len(layouts.LABELLED),
        "validation_mismatched": sum(r[0] != "-" for r in layouts.ROWS[:5])}
    only = load_eval_data(str(tmp_path), eval_split="dev_mismatched")
    assert list(only.evals) == ["validation_mismatched"]
    with pytest.raises(AdaptlabError, match="no train file"):
        load_nli_data(str(tmp_path))  # training still needs one


def test_a_folder_with_only_a_train_file_says_what_to_do(tmp_path):
    layouts.write_jsonl(tmp_path / "train.jsonl")
    with pytest.raises(AdaptlabError) as info:
        load_eval_data(str(tmp_path))
    assert "--heldout-fraction" in str(info.value) and "\n" not in str(info.value)
    assert "heldout" in load_eval_data(str(tmp_path), heldout_fraction=0.3).evals


def test_capped_eval_splits_are_announced(tmp_path):
    path = str(layouts._big_csv(tmp_path / "pairs.csv"))
    data = load_nli_data(path, heldout_fraction=0.5, max_train_samples=20, max_eval_samples=40, seed=0)
    heldout = data.evals["heldout"]
    assert len(heldout) == 40 and data.subsampled == {"heldout": 150}
    assert np.bincount(heldout["label"], minlength=3).tolist() == [20, 12, 8]  # stratified 150:90:60
    assert "heldout: 40 pairs" in data.describe() and "a seeded subset of 150" in data.describe()
    assert "--max-eval-samples 0" in data.describe()
    whole = load_nli_data(path, heldout_fraction=0.5, max_train_samples=20, max_eval_samples=0, seed=0)
    assert len(whole.evals["heldout"]) == 150 and whole.subsampled == {}
    assert "subset" not in whole.describe()
