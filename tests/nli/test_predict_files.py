"""Pairs to predict on: the same layouts and parsing rules as training data, with the label column optional."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.readers import read_unlabelled_pairs

# texts that trip naive parsers: an opening quote never closed (MultiNLI has these), commas, quotes in quotes
PAIRS = [('"It\'s 5 o\'clock, he said.', "It's tea time."),
         ("Prices rose, then fell.", 'It said "closed", "shut".'),
         ("A dog sleeps.", "A dog runs. ")]


def _write(folder: Path, name: str, labelled: bool) -> Path:
    path = folder / name
    rows = [{"pairID": f"p{i}", "genre": "fiction", "sentence1": p, "sentence2": h,
             **({"gold_label": "neutral"} if labelled else {})} for i, (p, h) in enumerate(PAIRS)]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:  # .txt (original MultiNLI) and .tsv (GLUE): tab-separated, quotes are plain characters
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t", quoting=csv.QUOTE_NONE,
                                    escapechar=None, quotechar=None)
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.txt", "pairs.tsv", "pairs.csv"])
@pytest.mark.parametrize("labelled", [True, False])
def test_every_layout_reads_the_exact_texts_with_or_without_labels(name, labelled, tmp_path):
    pairs = read_unlabelled_pairs(_write(tmp_path, name, labelled))
    assert list(pairs.columns) == ["pair_id", "genre", "premise", "hypothesis"]
    assert list(zip(pairs["premise"], pairs["hypothesis"])) == PAIRS
    assert list(pairs["pair_id"]) == ["p0", "p1", "p2"]


@pytest.mark.parametrize("text, message", [
    ("premise\tother\nA dog.\tx\n", "lacks column(s) sentence2 or hypothesis or text_b for task mnli; found: premise, other"),
    ("sentence1\tsentence2\n", "has a header but no data rows"),
])
def test_unusable_files_are_one_line_errors(text, message, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(text)
    with pytest.raises(AdaptlabError) as info:
        read_unlabelled_pairs(path)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["pairs.tsv", "pairs.txt", "pairs.jsonl", "pairs.csv"])
def test_predict_file_reads_every_layout_like_training_data(name, tiny_bert_pretrained, tmp_path, capsys,
                                                            one_torch_thread):
    import torch

    from adaptlab.cli import main
    from adaptlab.nli.artifacts import save_trained
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model
    from adaptlab.nli.study import run_predict

    torch.manual_seed(0)
    model, tokenizer = build_model(str(tiny_bert_pretrained), MethodConfig(method="full"))
    model_dir = save_trained(model.eval(), tokenizer, tmp_path / "model", MethodConfig(method="full"))
    output = tmp_path / "predictions.csv"
    assert main(["nli", "predict", str(model_dir), "--file", str(_write(tmp_path, name, labelled=False)),
                 "--output", str(output)]) == 0
    predicted = pd.read_csv(output, keep_default_na=False)
    assert list(zip(predicted["premise"], predicted["hypothesis"])) == PAIRS
    assert list(predicted["pair_id"]) == ["p0", "p1", "p2"]
    expected = run_predict(model_dir, pd.DataFrame(PAIRS, columns=["premise", "hypothesis"]))
    assert list(predicted["predicted"]) == list(expected["predicted"])
