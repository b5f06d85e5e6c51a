"""The optional extras: the fraud study runs without the NLI stack, and a missing extra is a one-line error."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from adaptlab.cli import EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[2]
# Makes the listed top-level modules unimportable, as if their extra were not installed.
BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""


def _run(blocked: set[str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=blocked) + code],
                          capture_output=True, text=True, timeout=120)


def test_extras_declare_the_modules_the_cli_names():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRA_MODULES) <= set(extras)
    nli = " ".join(extras["nli"])
    assert all(package in nli for package in ("transformers", "peft", "datasets", "accelerate"))
    assert all(package in " ".join(extras["fraud"]) for package in ("imbalanced-learn", "lightgbm"))


def test_fraud_study_imports_without_the_nli_stack():
    done = _run(set(EXTRA_MODULES["nli"]),
                "import adaptlab.fraud.study, adaptlab.fraud.compare, adaptlab.fraud.scoring\n"
                "from adaptlab.cli import main\nraise SystemExit(main(['fraud', 'run', '--help']))")
    assert done.returncode == 0, done.stderr
    assert "--seed" in done.stdout


@pytest.mark.parametrize("argv", [["nli", "params", "--model", "roberta-large"]])
def test_missing_nli_extra_is_one_line(argv):
    done = _run(set(EXTRA_MODULES["nli"]), f"from adaptlab.cli import main\nraise SystemExit(main({argv!r}))")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "adaptlab[nli]" in lines[0] and "Traceback" not in done.stderr
