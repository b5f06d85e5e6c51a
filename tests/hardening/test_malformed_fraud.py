"""Malformed inputs to `adaptlab fraud ...` and `adaptlab data ...`: settings files, data files, saved models and
flags. Each case builds its bad input in an empty workspace and returns the command line; every one must end in
exit 2 with one stderr line and no new file (see conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptlab.fraud.data import COLUMNS, FEATURES

OUT = ["--output-dir", "out", "--quiet"]

# ------------------------------------------------------------------------------------------- settings files
# `fraud run --config c.yaml` with `data: good.csv` in the file unless the case sets data (a flag would override).
BAD_CONFIGS = {
    "lr negative": "lr: -1", "lr nan": "lr: .nan", "lr inf": "lr: .inf", "lr text": "lr: fast",
    "epochs zero": "epochs: 0", "epochs float": "epochs: 1.5", "epochs bool": "epochs: yes",
    "epochs exponent text": "epochs: 1e12", "batch_size negative": "batch_size: -5",
    "hidden_sizes scalar": "hidden_sizes: 64", "hidden_sizes zero": "hidden_sizes: [64, 0]",
    "hidden_sizes empty": "hidden_sizes: []", "hidden_sizes huge": "hidden_sizes: [100000000, 100000000]",
    "dropout one": "dropout: 1", "test_size zero": "test_size: 0", "val_size nan": "val_size: .nan",
    "seed negative": "seed: -1", "seed huge": "seed: 99999999999999999999", "threads huge": "threads: 100000",
    "pos_weight zero": "pos_weight: 0", "pos_weight word": "pos_weight: heavy", "resampler unknown": "resampler: magic",
    "protocol paper without resampler": "protocol: paper", "adasyn_k zero": "adasyn_k: 0",
    "adasyn_ratio inf": "adasyn_ratio: .inf", "adasyn_imb_threshold above one": "adasyn_imb_threshold: 1.5",
    "unknown key": "learning_rate_typo: 0.1", "name empty": "name: ''", "name slash": "name: a/b",
    "name NUL": 'name: "a\\0b"', "name too long": "name: " + "n" * 300, "data NUL": 'data: "a\\0b.csv"',
    "not a mapping": "- lr\n- epochs", "invalid YAML": "lr: [", "split unknown": "split: random",
    "adasyn_k larger than the data": "resampler: adasyn\nadasyn_k: 1000000",
}
BINARY_CONFIGS = {"config not UTF-8": bytes(range(256)), "config NUL bytes": b"\x00" * 64}


def _write(workspace: Path, name: str, content: str | bytes) -> str:
    path = workspace / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return name


@pytest.mark.parametrize("text", [*BAD_CONFIGS.values(), *BINARY_CONFIGS.values()],
                         ids=[*BAD_CONFIGS, *BINARY_CONFIGS])
def test_bad_settings_file(text, cli, workspace, good_frame):
    good_frame.to_csv(workspace / "good.csv", index=False)
    if isinstance(text, str) and not text.startswith(("data:", "-")):
        text = "data: good.csv\n" + text
    _write(workspace, "c.yaml", text)
    cli(["fraud", "run", "--config", "c.yaml", *OUT]).check()


def test_settings_file_that_is_missing_or_a_folder(cli, workspace):
    (workspace / "folder.yaml").mkdir()
    for path in ("missing.yaml", "folder.yaml"):
        cli(["fraud", "run", "--config", path, *OUT]).check()
    cli(["fraud", "compare", "--config", "missing.yaml", *OUT]).check()


# ----------------------------------------------------------------------------------------------- data files
def _frame_cases(frame: pd.DataFrame) -> dict:
    """name -> CSV text (str) or raw bytes, each a broken version of ``frame``."""
    text = frame.to_csv(index=False)
    header = text.splitlines()[0]

    def cell(column, value, row=0):
        changed = frame.copy()
        changed[column] = changed[column].astype(object)
        changed.iloc[row, changed.columns.get_loc(column)] = value
        return changed.to_csv(index=False)

    return {
        "empty file": "", "header only": header + "\n", "no header": "\n".join(text.splitlines()[1:]) + "\n",
        "missing column": frame.drop(columns=["V7"]).to_csv(index=False),
        "no Class column": frame[FEATURES].to_csv(index=False),
        "extra column": frame.assign(merchant=1).to_csv(index=False),
        "duplicate column": header + ",Amount\n" + "\n".join(line + ",1" for line in text.splitlines()[1:]) + "\n",
        "text in a feature": cell("V3", "abc"), "empty cell": cell("Amount", ""), "NaN cell": cell("V1", "nan"),
        "inf cell": cell("V2", "inf"), "-inf cell": cell("Time", "-inf"), "complex number": cell("V4", "(1+1j)"),
        "Class 2": cell("Class", 2), "Class 0.5": cell("Class", 0.5), "Class text": cell("Class", "fraud"),
        "Class negative": cell("Class", -1), "only normal rows": frame.assign(Class=0).to_csv(index=False),
        "only fraud rows": frame.assign(Class=1).to_csv(index=False),
        "true/false feature": frame.assign(V9=True).to_csv(index=False),
        "too few frauds to split": pd.concat([frame[frame.Class == 0], frame[frame.Class == 1].head(2)])
                                     .to_csv(index=False),
        "truncated mid-row": text[: len(text) // 2 + 11],
        "row with too many fields": text + ",".join(["1"] * 40) + "\n",
        "every row one field more than the header": header + "\n" + "\n".join(
            "7," + line for line in text.splitlines()[1:]) + "\n",
        "unterminated quote": header + '\n"1,2,3\n',
        "semicolon separated": frame.to_csv(index=False, sep=";"),
        "overflowing Amount": cell("Amount", 1e308),
        "Latin-1 bytes": ("Time,V1\n" + "\xe9\xff\n").encode("latin-1"),
        "random bytes": np.random.default_rng(0).bytes(4096),
        "NUL bytes": b"\x00" * 512,
    }


DATA_CASE_NAMES = list(_frame_cases(pd.DataFrame({c: [0.0, 1.0] for c in COLUMNS})))


@pytest.mark.parametrize("case", DATA_CASE_NAMES)
def test_bad_training_data(case, cli, workspace, good_frame):
    _write(workspace, "data.csv", _frame_cases(good_frame)[case])
    cli(["fraud", "run", "--data", "data.csv", "--epochs", "1", *OUT]).check()


def _parquet_cases(frame: pd.DataFrame, workspace: Path) -> dict:
    frame.to_parquet(workspace / "good.parquet")
    whole = (workspace / "good.parquet").read_bytes()
    (workspace / "good.parquet").unlink()
    return {"truncated parquet": whole[: len(whole) // 2], "empty parquet": b"",
            "CSV named .parquet": frame.to_csv(index=False).encode(), "random bytes parquet": os.urandom(2048)}


@pytest.mark.parametrize("case", ["truncated parquet", "empty parquet", "CSV named .parquet", "random bytes parquet",
                                  "zero-row parquet", "datetime Time parquet", "list cells parquet"])
def test_bad_parquet(case, cli, workspace, good_frame):
    path = workspace / "data.parquet"
    if case == "zero-row parquet":
        good_frame.head(0).to_parquet(path)
    elif case == "datetime Time parquet":
        good_frame.assign(Time=pd.to_datetime(good_frame.Time, unit="s")).to_parquet(path)
    elif case == "list cells parquet":
        good_frame.assign(V1=[[1.0]] * len(good_frame)).to_parquet(path)
    else:
        path.write_bytes(_parquet_cases(good_frame, workspace)[case])
    cli(["fraud", "run", "--data", "data.parquet", "--epochs", "1", *OUT]).check()


@pytest.mark.parametrize("case", ["empty file", "missing column", "text in a feature", "inf cell", "Class 2",
                                  "truncated mid-row", "overflowing Amount", "random bytes"])
def test_bad_data_to_score(case, cli, workspace, good_frame, fraud_model):
    _write(workspace, "data.csv", _frame_cases(good_frame)[case])
    cli(["fraud", "score", str(fraud_model), "data.csv", "--output", "scores.csv"]).check()


@pytest.mark.parametrize("case", ["empty file", "only normal rows", "Latin-1 bytes"])
def test_bad_data_to_analyze_and_fetch(case, cli, workspace, good_frame):
    _write(workspace, "data.csv", _frame_cases(good_frame)[case])
    cli(["fraud", "analyze", "--data", "data.csv", *OUT]).check()
    cli(["data", "fetch", "creditcard", "--data", "data.csv", "--quiet"]).check()
