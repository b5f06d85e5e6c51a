"""Training on tasks beyond MNLI with tiny random models: a single-text 4-label task (AG News layout, headerless)
and a 2-label pair task (RTE layout), saved, reloaded, scored and predicted through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import AutoConfig

from adaptlab.cli import main
from adaptlab.nli.artifacts import read_meta
from adaptlab.nli.config import NLIRunConfig
from adaptlab.nli.study import run_predict, run_train
from adaptlab.nli.tasks import get_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WORDS = ["guitar", "stage", "book", "park", "dogs", "snow", "children", "music", "crowd", "outside"]


def _sentence(rng, i: int) -> str:
    return " ".join(rng.choice(WORDS, 5)) + f" {i}"


@pytest.fixture(scope="module")
def agnews_folder(tmp_path_factory) -> Path:
    """train.tsv and dev.tsv in AG News' headerless layout (text<TAB>class name), every class present."""
    rng = np.random.default_rng(0)
    labels = get_task("agnews").labels
    folder = tmp_path_factory.mktemp("agnews")
    for name, n in (("train.tsv", 40), ("dev.tsv", 12)):
        (folder / name).write_text("".join(f"{_sentence(rng, i)}\t{labels[i % 4]}\n" for i in range(n)))
    return folder


@pytest.fixture(scope="module")
def rte_file(tmp_path_factory) -> Path:
    """40 pairs in the GLUE RTE layout (index, sentence1, sentence2, label name)."""
    rng = np.random.default_rng(1)
    lines = ["index\tsentence1\tsentence2\tlabel"] + [
        f"{i}\t{_sentence(rng, i)}\t{_sentence(rng, i + 100)}\t{['entailment', 'not_entailment'][i % 2]}"
        for i in range(40)]
    path = tmp_path_factory.mktemp("rte") / "rte_train.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(model: Path, data: Path, out: Path, task: str, **kw) -> NLIRunConfig:
    values = dict(model=str(model), task=task, data=str(data), heldout_fraction=0.25, max_steps=3, batch_size=8,
                  lr=1e-3, output_dir=str(out), quiet=True, rank=4)
    return NLIRunConfig(**(values | kw))


def test_single_text_four_label_task_trains_saves_and_predicts(tiny_roberta_pretrained, agnews_folder, tmp_path,
                                                               capsys):
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    run = run_train(_config(tiny_roberta_pretrained, agnews_folder, tmp_path, "agnews", method="lora"))
    assert run.name.endswith("-agnews-lora")
    meta = read_meta(run / "model")
    assert meta["labels"] == labels and meta["id2label"] == {str(i): n for i, n in enumerate(labels)}
    assert meta["task"] == {"name": "agnews", "input": "single", "text_fields": ["text"]}
    metrics = json.loads((run / "metrics.json").read_text())
    validation = metrics["evals"]["validation"]
    assert validation["n"] == 12 and np.asarray(validation["confusion_matrix"]).shape == (4, 4)
    assert list(validation["per_class"]) == labels and "per_genre" not in validation
    assert metrics["task"]["labels"] == labels
    predictions = pd.read_csv(run / "predictions_validation.csv", keep_default_na=False)
    assert list(predictions.columns) == ["text", "label", "predicted", *[f"p_{n}" for n in labels]]
    assert validation["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())

    # reloaded from disk (base rebuilt + adapter), the probabilities are those the run reported
    again = run_predict(run, predictions[["text"]])
    columns = [f"p_{n}" for n in labels]
    assert np.allclose(again[columns].to_numpy(), predictions[columns].to_numpy(), atol=1e-5)

    # CLI: one text; a pair given to a single-text model is a one-line error
    text = predictions["text"].iloc[0]
    assert main(["nli", "predict", str(run), "--text", text]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(predictions["predicted"].iloc[0] + "  (") and "Sci/Tech" in printed
    assert main(["nli", "predict", str(run), "--premise", "a", "--hypothesis", "b"]) == 2
    assert "this model classifies single texts (task agnews); give one text" in capsys.readouterr().err

    # evaluate defaults to the model's own task and reads the folder in its layout
    assert main(["nli", "evaluate", str(run), "--data", str(agnews_folder), "--out", str(tmp_path / "e"),
                 "--quiet"]) == 0
    scored = json.loads((Path(capsys.readouterr().out.strip()) / "metrics.json").read_text())
    assert scored["evals"]["validation"]["confusion_matrix"] == validation["confusion_matrix"]
    assert scored["task"]["name"] == "agnews"


def test_pair_task_with_two_labels_trains_fully_and_reloads(tiny_bert_pretrained, rte_file, tmp_path, capsys):
    run = run_train(_config(tiny_bert_pretrained, rte_file, tmp_path, "rte", method="full"))
    model_dir = run / "model"
    config = AutoConfig.from_pretrained(model_dir)
    assert config.id2label == {0: "entailment", 1: "not_entailment"} and config.num_labels == 2
    assert read_meta(model_dir)["task"] == {"name": "rte", "input": "pair", "text_fields": ["premise", "hypothesis"]}
    predictions = pd.read_csv(run / "predictions_heldout.csv")
    again = run_predict(run, predictions[["premise", "hypothesis"]])
    assert list(again["predicted"]) == list(predictions["predicted"])
    assert set(again.columns) >= {"p_entailment", "p_not_entailment"}

    assert main(["nli", "predict", str(run), "--text", "just one"]) == 2
    assert "classifies text pairs (task rte); give a pair" in capsys.readouterr().err
    # an RTE model cannot be scored on MNLI's three labels: one line, before any data is read
    assert main(["nli", "evaluate", str(run), "--task", "mnli", "--data", str(rte_file)]) == 2
    assert "cannot be scored on task mnli" in capsys.readouterr().err


def test_custom_task_keeps_the_data_labels_through_save_and_evaluate(tiny_bert_pretrained, tmp_path, capsys):
    rng = np.random.default_rng(2)
    rows = [f"{_sentence(rng, i)},{['spam', 'ham', 'eggs'][i % 3]}" for i in range(36)]
    path = tmp_path / "mine.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    run = run_train(_config(tiny_bert_pretrained, path, tmp_path / "runs", "custom", method="partial"))
    meta = read_meta(run / "model")
    assert meta["labels"] == ["eggs", "ham", "spam"] and meta["task"]["name"] == "custom"
    assert main(["nli", "evaluate", str(run), "--data", str(path), "--heldout-fraction", "0.25",
                 "--out", str(tmp_path / "e"), "--quiet"]) == 0
    scored = json.loads((Path(capsys.readouterr().out.strip()) / "metrics.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())
    assert scored["evals"]["heldout"]["accuracy"] == trained["evals"]["heldout"]["accuracy"]
