"""nli train / evaluate / predict / compare end to end on tiny random RoBERTa models and a tiny CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adaptlab.cli import main
from adaptlab.nli.config import NLIRunConfig
from adaptlab.nli.study import run_predict, run_train

LABELS = ["entailment", "neutral", "contradiction"]
SENTENCES = ["A man is playing a guitar on stage.", "A woman reads a book in the park.",
             "Two dogs are running through the snow.", "The children are sleeping.", "Nobody is outside.",
             "Someone plays music for a crowd."]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory) -> Path:
    """60 labelled pairs + 2 without consensus ('-') in the MNLI CSV layout of ../shared/data/mnli."""
    rng = np.random.default_rng(0)
    rows = [{"pairID": f"p{i}", "sentence1": f"{SENTENCES[rng.integers(6)]} ({i})",  # unique premises: a pair-level split
             "sentence2": SENTENCES[rng.integers(6)],
             "label": LABELS[i % 3] if i < 60 else "-"} for i in range(62)]
    path = tmp_path_factory.mktemp("nli-data") / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _config(model: Path, data: Path, out: Path, **kw) -> NLIRunConfig:
    values = dict(model=str(model), data=str(data), heldout_fraction=0.25, max_steps=4, batch_size=8,
                  eval_every=2, lr=1e-3, output_dir=str(out), quiet=True, rank=4)
    values.update(kw)
    return NLIRunConfig(**values)


def test_train_writes_a_run_that_evaluate_and_predict_reproduce(tiny_roberta_pretrained, pairs_csv, tmp_path, capsys):
    run = run_train(_config(tiny_roberta_pretrained, pairs_csv, tmp_path, method="lora"))

    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.json", "history.json", "report.md", "report.html", "loss.png", "accuracy.png",
            "confusion.png", "predictions_heldout.csv", "model", "data.txt"} <= names
    assert (run / "model" / "adapter_config.json").is_file() and (run / "model" / "adapter_model.safetensors").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())  # the resolved config: applied defaults written out
    assert (saved["lr"], saved["alpha"], saved["eval_split"], saved["max_eval_samples"]) == (1e-3, 8, "heldout", 0)
    assert saved["output_dir"] == str(tmp_path) and saved["checkpoint_dir"] is None  # no checkpoints were asked for
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["trainable_parameters"] < metrics["total_parameters"]
    assert metrics["dropped"] == {"train+heldout": 2}
    assert metrics["train_pairs"] + metrics["eval_pairs"]["heldout"] == 60
    assert [r["step"] for r in json.loads((run / "history.json").read_text())] == [2, 4]
    heldout = metrics["evals"]["heldout"]
    assert heldout["n"] == 15 and sum(map(sum, heldout["confusion_matrix"])) == 15
    # accuracy recomputed independently from the saved predictions
    predictions = pd.read_csv(run / "predictions_heldout.csv")
    assert heldout["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())
    assert metrics["checkpoint_bytes"] == sum(p.stat().st_size for p in (run / "model").rglob("*") if p.is_file())
    weights = {p.name for p in (run / "model").iterdir() if p.suffix == ".safetensors"}
    assert weights and metrics["weights_bytes"] == sum((run / "model" / n).stat().st_size for n in weights)
    assert metrics["weights_bytes"] < metrics["checkpoint_bytes"]  # the tokenizer is not counted as weights

    # the saved adapter, reloaded, gives the probabilities the training run reported
    assert main(["nli", "evaluate", str(run), "--data", str(pairs_csv), "--heldout-fraction", "0.25",
                 "--out", str(tmp_path / "eval"), "--quiet"]) == 0
    evaluation = Path(capsys.readouterr().out.strip())  # --quiet prints the run folder alone
    again = json.loads((evaluation / "metrics.json").read_text())["evals"]["heldout"]
    assert again["accuracy"] == heldout["accuracy"] and again["confusion_matrix"] == heldout["confusion_matrix"]
    predicted = run_predict(run, predictions[["premise", "hypothesis"]])
    columns = [f"p_{name}" for name in LABELS]
    assert np.allclose(predicted[columns].to_numpy(), predictions[columns].to_numpy(), atol=1e-5)
    assert list(predicted["predicted"]) == list(predictions["predicted"])
    first = predictions.iloc[0]
    assert main(["nli", "predict", str(run), "--premise", first["premise"], "--hypothesis", first["hypothesis"]]) == 0
    words = capsys.readouterr().out.replace("(", " ").replace(")", " ").split()
    assert words[0] == first["predicted"] and words[1::2] == LABELS
    assert [float(w) for w in words[2::2]] == pytest.approx([first[c] for c in columns], abs=1e-4)


@pytest.mark.slow  # three training subprocesses: minutes on a busy 2-core machine
def test_compare_gives_one_sane_row_per_method(tiny_roberta_pretrained, pairs_csv, tmp_path):
    from adaptlab.nli.compare import run_compare

    config = _config(tiny_roberta_pretrained, pairs_csv, tmp_path, top_layers=1)
    folder = run_compare(config, ["lora", "full", "partial"], {"full": 5e-4})

    result = json.loads((folder / "metrics.json").read_text())
    rows = {row["method"]: row for row in result["rows"]}
    assert list(rows) == ["lora", "full", "partial"]
    assert [rows[m]["lr"] for m in rows] == [1e-3, 5e-4, 1e-3]  # per-method rate, else the shared one
    total = rows["full"]["total params"]
    assert rows["full"]["trainable params"] == total and rows["full"]["% of total"] == 100
    assert 0 < rows["lora"]["trainable params"] < rows["partial"]["trainable params"] < total
    for row in rows.values():
        assert row["total params"] == total and row["steps"] == 4
        assert row["% of total"] == pytest.approx(round(100 * row["trainable params"] / total, 3))
        assert row["train samples/s"] > 0 and row["peak memory (MiB)"] > 0 and row["saved weights (MB)"] > 0
        assert 0 <= row["accuracy heldout"] <= 1
        assert (folder / row["run"] / "model").is_dir()
    assert rows["lora"]["saved weights (MB)"] < rows["full"]["saved weights (MB)"]
    assert {"loss.png", "accuracy.png", "report.md", "report.html", "config.yaml"} <= {p.name for p in folder.iterdir()}
    assert "| lora |" in (folder / "report.md").read_text()
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert "lr" not in saved and saved["method_lr"] == {"lora": 1e-3, "full": 5e-4, "partial": 1e-3}


def test_resume_through_the_cli_matches_a_straight_run(tiny_roberta_pretrained, pairs_csv, tmp_path, capsys):
    common = ["nli", "train", "--model", str(tiny_roberta_pretrained), "--method", "partial", "--data", str(pairs_csv),
              "--heldout-fraction", "0.25", "--batch-size", "8", "--max-steps", "4", "--eval-every", "2",
              "--lr", "1e-3", "--quiet"]
    checkpoints = ["--save-every", "2", "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert main(common + checkpoints + ["--out", str(tmp_path / "a")]) == 0
    straight = Path(capsys.readouterr().out.strip())
    assert main(common + ["--resume", str(tmp_path / "ckpt" / "step-0000002"), "--out", str(tmp_path / "b")]) == 0
    resumed = Path(capsys.readouterr().out.strip())

    a, b = (json.loads((run / "history.json").read_text()) for run in (straight, resumed))
    assert [r["step"] for r in b] == [2, 4]
    for row_a, row_b in zip(a, b):
        assert row_b == pytest.approx(row_a, rel=1e-5, abs=1e-6)
    accuracy = [json.loads((run / "metrics.json").read_text())["evals"]["heldout"]["accuracy"]
                for run in (straight, resumed)]
    assert accuracy[0] == accuracy[1]
