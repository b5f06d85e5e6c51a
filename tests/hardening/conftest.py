"""The malformed-input corpus: a harness that runs the real CLI in-process and checks the user-error promise, plus
the small valid things (a data frame, a saved fraud model, a saved tiny LoRA adapter) that cases break.

The promise, for every malformed input: exit code 2, exactly one stderr line (never a traceback), and no new file
anywhere under the workspace (the output folder and the current directory included).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from adaptlab.cli import main

TESTS = Path(__file__).parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the fixtures' builders live with the study tests; loaded by path (tests are not a package)
fraud_fixtures = _load("fraud_fixtures", TESTS / "conftest.py")  # make_frame lives at the top (serve uses it too)
nli_fixtures = _load("nli_fixtures", TESTS / "nli" / "conftest.py")


@dataclass
class Outcome:
    code: int | str
    stderr: str
    new_files: list[str]

    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()

    def check(self) -> None:
        """Exit 2, one stderr line without a traceback, nothing new on disk."""
        assert self.code == 2, f"exit {self.code}; stderr: {self.stderr[-800:]}"
        assert "Traceback" not in self.stderr, self.stderr[-2000:]
        assert len(self.lines()) == 1, f"{len(self.lines())} stderr lines:\n{self.stderr[-1500:]}"
        assert self.new_files == [], f"new files: {self.new_files[:5]}"


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(argv: list[str], workspace: Path) -> Outcome:
    """``adaptlab ARGV`` in-process (cwd = ``workspace``, which must hold every path the case writes to)."""
    before = _snapshot(workspace)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code: int | str = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return Outcome(code, err.getvalue(), sorted(_snapshot(workspace) - before))


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty current directory for one case; the output folder of every case lives inside it."""
    folder = tmp_path / "workspace"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def cli(workspace):
    """``cli(argv) -> Outcome``: the command run in the case's workspace."""
    return lambda argv: run_cli(argv, workspace)


@pytest.fixture(scope="session")
def good_frame() -> pd.DataFrame:
    """A valid ULB-shaped frame: 300 normal transactions, 30 frauds."""
    return fraud_fixtures._make_frame(300, 30, seed=1)


@pytest.fixture(scope="session")
def fraud_model(good_frame, tmp_path_factory) -> Path:
    """A saved fraud model folder (untrained MLP: these cases never get as far as its numbers)."""
    import torch

    from adaptlab.fraud.config import TrainConfig
    from adaptlab.fraud.data import FEATURES
    from adaptlab.fraud.model import MLP, Standardizer, TrainResult, save_model

    torch.manual_seed(0)
    config = TrainConfig(hidden_sizes=[8, 4])
    result = TrainResult(MLP(len(FEATURES), config.hidden_sizes, config.dropout),
                         Standardizer().fit(good_frame[FEATURES].to_numpy()), [], 1, False, 0.0)
    return save_model(tmp_path_factory.mktemp("fraud-run") / "model", result, features=FEATURES, threshold=0.5,
                      threshold_rule="fixed (test)", config=config)


@pytest.fixture(scope="session")
def lora_model(tmp_path_factory) -> Path:
    """A saved LoRA adapter (rank 2) on a tiny random BERT, as `nli train` saves it."""
    from adaptlab.nli.artifacts import save_trained
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    base = nli_fixtures.make_tiny_pretrained(tmp_path_factory.mktemp("tiny-bert"), "bert")
    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = build_model(str(base), method)
    return save_trained(model, tokenizer, tmp_path_factory.mktemp("lora") / "model", method)


@pytest.fixture(scope="session")
def no_library_progress_bars():
    """transformers draws a "Loading weights" bar on stderr before a late error; the promise is about errors."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    yield
    hf_logging.enable_progress_bar()
