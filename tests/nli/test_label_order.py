"""evaluate/predict read the model's own id2label: a model whose classes are in another order (or upper case,
as in hub MNLI checkpoints) scores the same as the model it was permuted from."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from adaptlab.errors import AdaptlabError
from adaptlab.nli.artifacts import save_trained
from adaptlab.nli.data import LABELS
from adaptlab.nli.methods import MethodConfig
from adaptlab.nli.models import build_model
from adaptlab.nli.config import NLIEvaluateConfig
from adaptlab.nli.study import run_evaluate, run_predict

SENTENCES = ["A man is playing a guitar on stage.", "A woman reads a book in the park.",
             "Two dogs are running through the snow.", "The children are sleeping.", "Nobody is outside."]
PERMUTATION = [2, 0, 1]  # the permuted model's output i is the original model's output PERMUTATION[i]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tiny_bert_pretrained, tmp_path_factory) -> dict[str, Path]:
    """The same classifier saved three ways: LABELS order, permuted + upper case, generic LABEL_i names."""
    folder = tmp_path_factory.mktemp("label-order")
    method = MethodConfig(method="full")
    torch.manual_seed(0)
    model, tokenizer = build_model(str(tiny_bert_pretrained), method)
    with torch.no_grad():  # spread the classes apart so a wrong column order cannot go unnoticed
        model.classifier.weight.mul_(50)
    saved = {"ordered": save_trained(model.eval(), tokenizer, folder / "ordered", method)}
    permuted = copy.deepcopy(model)
    with torch.no_grad():
        permuted.classifier.weight.copy_(model.classifier.weight[PERMUTATION])
        permuted.classifier.bias.copy_(model.classifier.bias[PERMUTATION])
    permuted.config.id2label = {i: LABELS[j].upper() for i, j in enumerate(PERMUTATION)}
    permuted.config.label2id = {name: i for i, name in permuted.config.id2label.items()}
    saved["permuted"] = save_trained(permuted, tokenizer, folder / "permuted", method)
    generic = copy.deepcopy(model)
    generic.config.id2label = {i: f"LABEL_{i}" for i in range(3)}
    generic.config.label2id = {name: i for i, name in generic.config.id2label.items()}
    saved["generic"] = save_trained(generic, tokenizer, folder / "generic", method)
    return saved


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory) -> Path:
    rows = [{"sentence1": f"{SENTENCES[i % 5]} ({i})", "sentence2": SENTENCES[(i * 2) % 5], "label": LABELS[i % 3]}
            for i in range(40)]
    path = tmp_path_factory.mktemp("label-order-data") / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _evaluate(model_dir: Path, data: Path, out: Path) -> tuple[dict, pd.DataFrame]:
    config = NLIEvaluateConfig(data=str(data), heldout_fraction=0.5, output_dir=str(out), quiet=True)
    run = run_evaluate(model_dir, config)
    return json.loads((run / "metrics.json").read_text())["evals"], pd.read_csv(run / "predictions_heldout.csv")


def test_evaluate_maps_the_models_label_names_onto_the_data_labels(models, pairs_csv, tmp_path):
    ordered, ordered_predictions = _evaluate(models["ordered"], pairs_csv, tmp_path / "a")
    permuted, permuted_predictions = _evaluate(models["permuted"], pairs_csv, tmp_path / "b")
    columns = [f"p_{name}" for name in LABELS]
    assert list(permuted_predictions.columns[-3:]) == columns
    assert np.allclose(permuted_predictions[columns], ordered_predictions[columns], atol=1e-5)
    assert list(permuted_predictions["predicted"]) == list(ordered_predictions["predicted"])
    # the check can fail: each pair's class probabilities differ from each other
    assert (ordered_predictions[columns].max(axis=1) - ordered_predictions[columns].min(axis=1)).min() > 1e-3
    assert permuted["heldout"]["accuracy"] == ordered["heldout"]["accuracy"]
    assert permuted["heldout"]["confusion_matrix"] == ordered["heldout"]["confusion_matrix"]


def test_evaluate_refuses_a_model_whose_labels_are_not_the_nli_classes(models, pairs_csv, tmp_path):
    with pytest.raises(AdaptlabError) as info:
        run_evaluate(models["generic"], NLIEvaluateConfig(data=str(pairs_csv), heldout_fraction=0.5,
                                                       output_dir=str(tmp_path), quiet=True))
    message = str(info.value)
    assert "LABEL_0, LABEL_1, LABEL_2" in message and "entailment, neutral, contradiction" in message
    assert "\n" not in message and not any(tmp_path.iterdir())  # nothing half-written


def test_predict_reports_probabilities_in_the_nli_label_order(models):
    pairs = pd.DataFrame({"premise": SENTENCES[:3], "hypothesis": SENTENCES[2:5]})
    ordered, permuted = run_predict(models["ordered"], pairs), run_predict(models["permuted"], pairs)
    pd.testing.assert_frame_equal(ordered, permuted, atol=1e-5)
    assert list(ordered.columns) == ["premise", "hypothesis", "predicted", *[f"p_{name}" for name in LABELS]]
    generic = run_predict(models["generic"], pairs)  # no NLI names: the model's own names, in its own order
    assert list(generic.columns[-3:]) == ["p_LABEL_0", "p_LABEL_1", "p_LABEL_2"]
