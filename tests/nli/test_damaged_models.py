"""Damaged model folders are one-line errors (exit 2), never a safetensors or transformers traceback."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from adaptlab.cli import main
from adaptlab.nli.artifacts import META_FILE, save_trained
from adaptlab.nli.methods import MethodConfig
from adaptlab.nli.models import build_model


@pytest.fixture(scope="module")
def saved_lora(tiny_bert_pretrained, tmp_path_factory):
    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = build_model(str(tiny_bert_pretrained), method)
    return save_trained(model, tokenizer, tmp_path_factory.mktemp("lora") / "model", method)


def _predict(folder, capsys) -> tuple[int, str]:
    code = main(["nli", "predict", str(folder), "--premise", "A man plays.", "--hypothesis", "Someone plays."])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("keep_bytes", [0, 7, 100])
def test_truncated_adapter_weights(saved_lora, tmp_path, keep_bytes, capsys):
    broken = shutil.copytree(saved_lora, tmp_path / "model")
    weights = broken / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:keep_bytes])
    code, err = _predict(broken, capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "adapter_model.safetensors is not a readable safetensors file" in err


def test_truncated_base_weights_for_train(tiny_bert_pretrained, tmp_path, capsys):
    base = shutil.copytree(tiny_bert_pretrained, tmp_path / "base")
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])
    code = main(["nli", "params", "--model", str(base)])  # the meta-device path reads no weights: still fine
    assert code == 0
    capsys.readouterr()
    code = main(["nli", "train", "--model", str(base), "--data", str(tmp_path / "none.csv"),
                 "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("key, value", [("id2label", {"0": "yes", "1": "no"}), ("labels", ["a", "b", "c", "d"])])
def test_label_names_that_disagree_with_the_head(saved_lora, tmp_path, key, value, capsys):
    broken = shutil.copytree(saved_lora, tmp_path / "model")
    meta = json.loads((broken / META_FILE).read_text())
    meta[key] = value
    (broken / META_FILE).write_text(json.dumps(meta))
    code, err = _predict(broken, capsys)
    assert code == 2 and "Traceback" not in err
    assert re.search(r"names \d label\(s\) but the model's head has \d outputs|does not fit the base", err), err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
