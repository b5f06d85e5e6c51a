"""What the NLI speed benchmarks share: the MNLI pairs, one measurement per child process, medians and load.

Every measurement runs in a fresh process (no warm caches, no accelerate/Trainer state carried from the previous
setup), and the compared setups are interleaved round by round with a rotating order, so a load spike from other
jobs on a shared machine hits every setup alike rather than one of them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNLI_CSV = REPO.parent / "shared" / "data" / "mnli" / "multinli_1.0_dev_matched.csv"
if not MNLI_CSV.exists():  # a git worktree under /work/wt/NAME: the shared data sits next to the main checkout
    MNLI_CSV = Path("/work/shared/data/mnli/multinli_1.0_dev_matched.csv")


def mnli_pairs(count: int, path: Path = MNLI_CSV):
    """The first ``count`` labelled pairs of the MNLI dev-matched CSV, read the way ``adaptlab nli`` reads it."""
    from adaptlab.nli.readers import read_pairs

    frame, _ = read_pairs(Path(path))
    if len(frame) < count:
        raise SystemExit(f"{path} has only {len(frame)} labelled pairs; asked for {count}")
    return frame.iloc[:count].reset_index(drop=True)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def load_average() -> float:
    return os.getloadavg()[0]


def run_child(script: Path, argv: list[str]) -> dict:
    """Run ``script --one ...`` in a fresh interpreter; its last stdout line is the measurement as JSON."""
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{script.name} {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(names: list[str], rounds: int, measure) -> tuple[dict[str, list[dict]], list[float]]:
    """``measure(name)`` for every name, ``rounds`` times, the order rotated each round; also the 1-minute load
    average seen before each measurement."""
    results: dict[str, list[dict]] = {name: [] for name in names}
    loads = []
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            loads.append(load_average())
            results[name].append(measure(name))
            print(f"round {r + 1}/{rounds} {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    return results, loads


def median_of(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def spread(rows: list[dict], key: str, digits: int = 1) -> str:
    values = [row[key] for row in rows]
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def machine_line() -> str:
    """:func:`adaptlab.core.system.machine_description` plus the transformers and PEFT versions."""
    import transformers

    from adaptlab.core.system import machine_description

    try:
        import peft
        peft_version = peft.__version__
    except ImportError:
        peft_version = "-"
    return f"{machine_description()}, transformers {transformers.__version__}, peft {peft_version}"
