"""Learning-rate sweep behind the per-model defaults in ``adaptlab.nli.defaults``, scored on a validation split.

The MNLI file is split by premise into train / held-out exactly as ``nli train`` splits it (seed 0). Only the
train part is written out here; ``nli compare --sweep lr=...`` then splits *that* file by premise again (seed 0,
10%) into sweep-train and validation, so the held-out pairs never influence the chosen rates.

Run:  .venv/bin/python bench/nli_lr_sweep.py --model minilm --pairs 1000 --eval-pairs 500 \\
          --lr lora=1e-3,3e-3,1e-2 --lr full=3e-5,1e-4 --lr partial=3e-4,1e-3 [--data CSV] [--out runs/lr-sweep]
Prints each compare's run folder; its report.md / metrics.json hold the table (validation accuracy per rate).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNLI = REPO.parent / "shared" / "data" / "mnli" / "multinli_1.0_dev_matched.csv"


def write_train_part(data: str, out: Path, seed: int) -> Path:
    """The train part of the by-premise split of ``data``, as a CSV that ``nli`` reads like the original."""
    from adaptlab.nli.data import load_nli_data

    split = load_nli_data(data, seed=seed, quiet=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mnli-train-part.csv"
    split.train.to_csv(path, index=False)
    print(f"{split.describe()}\nsweep data: {path} ({len(split.train):,} pairs; its own 10% by premise validates)")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default=str(SHARED_MNLI))
    parser.add_argument("--pairs", type=int, default=1000, help="training pairs per sweep run")
    parser.add_argument("--eval-pairs", type=int, default=500, help="validation pairs scored per run")
    parser.add_argument("--lr", action="append", required=True, metavar="METHOD=LR1,LR2,...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/lr-sweep"))
    args = parser.parse_args()
    train_part = write_train_part(args.data, args.out, args.seed)
    for spec in args.lr:
        method, _, rates = spec.partition("=")
        command = [sys.executable, "-m", "adaptlab", "nli", "compare", "--methods", method, "--sweep", f"lr={rates}",
                   "--model", args.model, "--data", str(train_part), "--max-train-samples", str(args.pairs),
                   "--max-eval-samples", str(args.eval_pairs), "--batch-size", "16", "--epochs", "1",
                   "--seed", str(args.seed), "--out", str(args.out / args.model), "--quiet"]
        print("$", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
