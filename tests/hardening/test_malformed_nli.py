"""Malformed inputs to `adaptlab nli ...`: flag values, settings files, damaged saved models. Every case fails
before any training (a tiny random LoRA adapter is the only model): exit 2, one stderr line, no new file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("no_library_progress_bars")

PAIR = ["--premise", "A man plays a guitar.", "--hypothesis", "Someone makes music."]


@pytest.fixture
def pairs_csv(workspace) -> str:
    pd.DataFrame({"premise": [f"A man plays song {i}." for i in range(30)],
                  "hypothesis": ["Someone makes music."] * 30,
                  "label": ["entailment", "neutral", "contradiction"] * 10}).to_csv(workspace / "pairs.csv", index=False)
    return "pairs.csv"


PREDICT_FLAGS = {"max length zero": ["--max-length", "0"], "max length negative": ["--max-length", "-3"],
                 "batch size zero": ["--batch-size", "0"], "max length text": ["--max-length", "abc"],
                 "premise without hypothesis": ["--premise", "x"], "file missing": ["--file", "nope.csv"]}


@pytest.mark.parametrize("flags", list(PREDICT_FLAGS.values()), ids=list(PREDICT_FLAGS))
def test_bad_predict_flag(flags, cli, lora_model):
    argv = ["nli", "predict", str(lora_model), *flags]
    cli(argv if "--premise" in flags or "--file" in flags else argv + PAIR).check()


@pytest.mark.parametrize("output", ["a-folder", "a-file/predictions.csv", "p" * 300 + ".csv"],
                         ids=["a folder", "below a file", "name too long"])
def test_predict_output_that_cannot_be_written(output, cli, workspace, lora_model):
    (workspace / "a-folder").mkdir()
    (workspace / "a-file").write_text("x")
    (workspace / "pairs.csv").write_text("premise,hypothesis\nA man plays.,Someone plays.\n")
    cli(["nli", "predict", str(lora_model), "--file", "pairs.csv", "--output", output]).check()


def _edit_json(name: str, content):
    return lambda folder: (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


BROKEN_ADAPTERS = {
    "adaptlab_model.json not JSON": _edit_json("adaptlab_model.json", "{{"),
    "adaptlab_model.json not UTF-8": lambda folder: (folder / "adaptlab_model.json").write_bytes(b"\xff\x00"),
    "adaptlab_model.json a list": _edit_json("adaptlab_model.json", []),
    "labels disagree with the head": lambda folder: _edit_json(
        "adaptlab_model.json", {**json.loads((folder / "adaptlab_model.json").read_text()), "labels": ["a", "b"]})(folder),
    "adapter_config.json not JSON": _edit_json("adapter_config.json", "nope"),
    "adapter_config.json empty object": _edit_json("adapter_config.json", {}),
    "adapter_config.json unusable target_modules": lambda folder: _edit_json(
        "adapter_config.json", {**json.loads((folder / "adapter_config.json").read_text()), "target_modules": 5})(folder),
    "adapter weights random bytes": lambda folder: (folder / "adapter_model.safetensors").write_bytes(os.urandom(400)),
    "adapter weights truncated": lambda folder: (folder / "adapter_model.safetensors").write_bytes(
        (folder / "adapter_model.safetensors").read_bytes()[:64]),
    "adapter weights missing": lambda folder: (folder / "adapter_model.safetensors").unlink(),
    "tokenizer not JSON": _edit_json("tokenizer.json", "{"),
    "base model missing": lambda folder: _edit_json(
        "adaptlab_model.json", {**json.loads((folder / "adaptlab_model.json").read_text()),
                                "base_model": str(folder.parent / "no-base")})(folder),
}


@pytest.mark.parametrize("case", list(BROKEN_ADAPTERS))
def test_broken_saved_adapter(case, cli, workspace, lora_model):
    model = shutil.copytree(lora_model, workspace / "model")
    BROKEN_ADAPTERS[case](model)
    cli(["nli", "predict", "model", *PAIR]).check()


@pytest.mark.parametrize("model", ["missing", "a file", "an empty folder"])
def test_not_a_model_folder(model, cli, workspace):
    (workspace / "a file").write_text("x")
    (workspace / "an empty folder").mkdir()
    cli(["nli", "predict", model, *PAIR]).check()
    cli(["nli", "merge", model, "merged", "--quiet"]).check()


EVALUATE_FLAGS = {"batch size zero": ["--batch-size", "0"], "max length zero": ["--max-length", "0"],
                  "held-out fraction two": ["--heldout-fraction", "2"], "negative sample cap": ["--max-eval-samples", "-1"],
                  "seed negative": ["--seed", "-4"], "output dir is a file": ["--output-dir", "pairs.csv"],
                  "output dir name too long": ["--output-dir", "q" * 300], "data missing": ["--data", "nope.csv"],
                  "data not UTF-8": ["--data", "binary.csv"]}


@pytest.mark.parametrize("flags", list(EVALUATE_FLAGS.values()), ids=list(EVALUATE_FLAGS))
def test_bad_evaluate_flag(flags, cli, workspace, lora_model, pairs_csv):
    (workspace / "binary.csv").write_bytes(b"premise,hypothesis,label\n\xff\xfe,\x00,1\n")
    cli(["nli", "evaluate", str(lora_model), "--data", pairs_csv, "--output-dir", "out", "--quiet", *flags]).check()


TRAIN_FLAGS = {"max length zero": ["--max-length", "0"], "max length negative": ["--max-length", "-1"],
               "epochs inf": ["--epochs", "inf"], "epochs zero": ["--epochs", "0"], "lr NaN": ["--lr", "nan"],
               "batch size zero": ["--batch-size", "0"], "rank zero": ["--rank", "0"],
               "method unknown": ["--method", "adapterx"], "eval every negative": ["--eval-every", "-1"],
               "train sample cap zero": ["--max-train-samples", "0"], "seed negative": ["--seed", "-1"],
               "output dir is a file": ["--output-dir", "pairs.csv"],
               "output dir below a file": ["--output-dir", "pairs.csv/runs"],
               "settings file missing": ["--config", "nope.yaml"]}


@pytest.mark.parametrize("flags", list(TRAIN_FLAGS.values()), ids=list(TRAIN_FLAGS))
def test_bad_train_flag(flags, cli, pairs_csv):
    cli(["nli", "train", "--model", "minilm", "--data", pairs_csv, "--output-dir", "out", "--quiet", *flags]).check()


BAD_TRAIN_CONFIGS = {"lr negative": "lr: -1", "epochs inf": "epochs: .inf", "max_length zero": "max_length: 0",
                     "unknown key": "bogus: 1", "method a list": "method: [a]", "rank exponent": "rank: 1e9",
                     "batch_size bool": "batch_size: true", "not UTF-8": b"\xff\xfe lr: 1"}


@pytest.mark.parametrize("text", list(BAD_TRAIN_CONFIGS.values()), ids=list(BAD_TRAIN_CONFIGS))
def test_bad_train_settings_file(text, cli, workspace, pairs_csv):
    (workspace / "n.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    cli(["nli", "train", "--model", "minilm", "--data", pairs_csv, "--output-dir", "out", "--quiet",
         "--config", "n.yaml"]).check()


def test_merge_into_the_adapter_itself(cli, lora_model):
    cli(["nli", "merge", str(lora_model), str(lora_model), "--quiet"]).check()
