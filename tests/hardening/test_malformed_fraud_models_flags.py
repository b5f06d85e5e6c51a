"""Malformed saved fraud models (for `fraud score`), output paths and flag values: exit 2, one stderr line, no new
file (see conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file


def _edit_json(name: str, key: str, value):
    def edit(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        data[key] = value
        (folder / name).write_text(json.dumps(data))
    return edit


def _edit_weights(change):
    def edit(folder: Path) -> None:
        state = load_file(str(folder / "model.safetensors"))
        save_file(change(state), str(folder / "model.safetensors"))
    return edit


def _replace(name: str, content: bytes):
    return lambda folder: (folder / name).write_bytes(content)


BROKEN_MODELS = {
    "no files": lambda folder: [p.unlink() for p in folder.iterdir()],
    "weights missing": lambda folder: (folder / "model.safetensors").unlink(),
    "weights truncated": lambda folder: (folder / "model.safetensors").write_bytes(
        (folder / "model.safetensors").read_bytes()[:100]),
    "weights empty": _replace("model.safetensors", b""),
    "weights random bytes": _replace("model.safetensors", os.urandom(512)),
    "weights header length huge": _replace("model.safetensors", (2**62).to_bytes(8, "little") + b"{}"),
    "weights a folder": lambda folder: ((folder / "model.safetensors").unlink(), (folder / "model.safetensors").mkdir()),
    "weights NaN": _edit_weights(lambda state: {k: v * float("nan") for k, v in state.items()}),
    "weights wrong shape": _edit_weights(lambda state: {k: v[:2] for k, v in state.items()}),
    "weights a tensor missing": _edit_weights(lambda state: dict(list(state.items())[1:])),
    "model.json not JSON": _replace("model.json", b"{"),
    "model.json not UTF-8": _replace("model.json", b"\xff\xfe\x00"),
    "model.json a list": _replace("model.json", b"[]"),
    "threshold NaN": _edit_json("model.json", "threshold", float("nan")),
    "threshold text": _edit_json("model.json", "threshold", "0.5"),
    "threshold above one": _edit_json("model.json", "threshold", 2),
    "hidden_sizes huge": _edit_json("model.json", "hidden_sizes", [10**8, 10**8]),
    "hidden_sizes other": _edit_json("model.json", "hidden_sizes", [16]),
    "hidden_sizes bool": _edit_json("model.json", "hidden_sizes", [True]),
    "features renamed": _edit_json("model.json", "features", ["Time"]),
    "dropout negative": _edit_json("model.json", "dropout", -1),
    "scaler.json a list": _replace("scaler.json", b"[1]"),
    "scale zero": _edit_json("scaler.json", "scale", [0.0] * 30),
    "scale negative": _edit_json("scaler.json", "scale", [-1.0] * 30),
    "scale infinite": _edit_json("scaler.json", "scale", [float("inf")] * 30),
    "scale subnormal": _edit_json("scaler.json", "scale", [1e-320] * 30),  # every row overflows: refused, named
    "mean too short": _edit_json("scaler.json", "mean", [0.0] * 3),
    "mean text": _edit_json("scaler.json", "mean", ["0"] * 30),
}


@pytest.mark.parametrize("case", list(BROKEN_MODELS))
def test_broken_saved_model(case, cli, workspace, good_frame, fraud_model):
    model = shutil.copytree(fraud_model, workspace / "model")
    BROKEN_MODELS[case](model)
    good_frame.to_csv(workspace / "new.csv", index=False)
    cli(["fraud", "score", "model", "new.csv", "--output", "scores.csv"]).check()


@pytest.mark.parametrize("case", ["run folder missing", "run folder is a file", "data missing", "output is a folder",
                                  "output below a file", "output name too long", "column named like an output"])
def test_bad_score_paths(case, cli, workspace, good_frame, fraud_model):
    good_frame.to_csv(workspace / "new.csv", index=False)
    (workspace / "a-file").write_text("x")
    (workspace / "folder").mkdir()
    run, data, output = str(fraud_model), "new.csv", "scores.csv"
    if case == "run folder missing":
        run = "nope"
    elif case == "run folder is a file":
        run = "a-file"
    elif case == "data missing":
        data = "nope.csv"
    elif case == "output is a folder":
        output = "folder"
    elif case == "output below a file":
        output = "a-file/scores.csv"
    elif case == "output name too long":
        output = "s" * 300 + ".csv"
    else:
        good_frame.rename(columns={"V1": "probability"}).to_csv(workspace / "new.csv", index=False)
    cli(["fraud", "score", run, data, "--output", output]).check()


RUN_FLAGS = {
    "epochs zero": ["--epochs", "0"], "epochs text": ["--epochs", "abc"], "epochs inf": ["--epochs", "inf"],
    "lr NaN": ["--lr", "nan"], "lr negative": ["--learning_rate", "-1"], "batch size negative": ["--batch-size", "-5"],
    "hidden not numbers": ["--hidden", "a,b"], "hidden empty list": ["--hidden", ","],
    "hidden huge": ["--hidden", "100000000,100000000"], "seed float": ["--seed", "1.5"],
    "dropout one": ["--dropout", "1"], "threads zero": ["--threads", "0"], "split unknown": ["--split", "x"],
    "resampler unknown": ["--resampler", "adasin"], "test size NaN": ["--test-size", "nan"],
    "pos weight inf": ["--pos-weight", "inf"], "name empty": ["--name", ""], "name slash": ["--name", "a/b"],
    "name too long": ["--name", "x" * 300], "unknown flag": ["--no-such-flag"],
    "output dir is a file": ["--output-dir", "a-file"], "output dir below a file": ["--output-dir", "a-file/runs"],
    "output dir name too long": ["--output-dir", "y" * 300],
}


@pytest.mark.parametrize("flags", list(RUN_FLAGS.values()), ids=list(RUN_FLAGS))
def test_bad_run_flag(flags, cli, workspace, good_frame):
    good_frame.to_csv(workspace / "good.csv", index=False)
    (workspace / "a-file").write_text("x")
    cli(["fraud", "run", "--data", "good.csv", "--output-dir", "out", "--quiet", *flags]).check()


COMPARE_FLAGS = {
    "method unknown": ["--methods", "foo"], "method twice": ["--methods", "none,none"], "seed twice": ["--seeds", "1,1"],
    "seed negative": ["--seeds", "-1"], "seeds empty": ["--seeds", ""], "bootstrap negative": ["--bootstrap", "-1"],
    "lightgbm jobs zero": ["--lightgbm-jobs", "0"],
}


@pytest.mark.parametrize("flags", list(COMPARE_FLAGS.values()), ids=list(COMPARE_FLAGS))
def test_bad_compare_flag(flags, cli, workspace, good_frame):
    good_frame.to_csv(workspace / "good.csv", index=False)
    cli(["fraud", "compare", "--data", "good.csv", "--output-dir", "out", "--quiet", *flags]).check()


@pytest.mark.parametrize("argv", [[], ["fraud"], ["fraud", "score"], ["data", "fetch", "nope"], ["nli", "train", "--x"]],
                         ids=["no command", "no fraud command", "score without arguments", "unknown dataset",
                              "unknown nli flag"])
def test_incomplete_command_lines(argv, cli):
    cli(argv).check()
