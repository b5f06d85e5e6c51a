"""Tasks beyond MNLI: the task table, each task's local layouts (the real files under ../shared/data when present,
counted independently), custom tasks' labels and input kind, and one-line errors for layouts a task cannot use."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.batches import check_training_pairs, encode_pairs, fingerprint
from adaptlab.nli.data import load_eval_data, load_nli_data, resolve_task
from adaptlab.nli.readers import read_pairs, read_unlabelled_pairs
from adaptlab.nli.tasks import TASKS, get_task, saved_task

# ../shared/data next to the checkout, as the other real-data tests find it (a checkout elsewhere, e.g. a git
# worktree, can point ADAPTLAB_SHARED_DATA at it)
SHARED_DATA = Path(os.environ.get("ADAPTLAB_SHARED_DATA",
                                  Path(__file__).resolve().parents[2].parent / "shared" / "data"))


def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def _tsv_rows(path: Path, header: bool) -> list[list[str]]:
    """The file's rows with the csv module (no quoting, as GLUE files are written): an independent count."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[1:] if header else rows


# ---- the table ----------------------------------------------------------------------------------------

def test_built_in_tasks_have_their_hub_ids_inputs_and_labels():
    expected = {
        "mnli": ("pair", ("entailment", "neutral", "contradiction"), "nyu-mll/multi_nli", None),
        "snli": ("pair", ("entailment", "neutral", "contradiction"), "stanfordnlp/snli", None),
        "rte": ("pair", ("entailment", "not_entailment"), "nyu-mll/glue", "rte"),
        "sst2": ("single", ("negative", "positive"), "nyu-mll/glue", "sst2"),
        "agnews": ("single", ("World", "Sports", "Business", "Sci/Tech"), "fancyzhx/ag_news", None),
    }
    for name, (kind, labels, hub_id, config) in expected.items():
        task = get_task(name)
        assert (task.input, task.labels, task.hub_id, task.hub_config) == (kind, labels, hub_id, config)
        assert task.meta()["text_fields"] == (["text"] if kind == "single" else ["premise", "hypothesis"])
    assert get_task(None).name == "mnli" and get_task("SST2").name == "sst2"
    with pytest.raises(AdaptlabError, match="unknown task 'qqp'; choose one of mnli, snli, rte, sst2, agnews, custom"):
        get_task("qqp")


def test_task_and_data_flags_combine():
    assert resolve_task(None, None).name == "mnli"
    assert resolve_task(None, "snli").name == "snli"            # --data snli keeps meaning SNLI
    assert resolve_task("sst2", None).name == "sst2"            # its hub dataset
    assert resolve_task("sst2", "some/folder").name == "sst2"   # local files in its layout
    with pytest.raises(AdaptlabError, match="--data snli is task snli's hub dataset but the task is rte"):
        resolve_task("rte", "snli")


def test_saved_task_defaults_to_mnli_and_keeps_custom_labels():
    assert saved_task({}, ["entailment", "neutral", "contradiction"]).name == "mnli"
    assert saved_task({"task": {"name": "agnews", "input": "single", "text_fields": ["text"]}}, []) is TASKS["agnews"]
    mine = saved_task({"task": {"name": "custom", "input": "single", "text_fields": ["text"]}}, ["bad", "good"])
    assert (mine.input, mine.labels) == ("single", ("bad", "good"))
    with pytest.raises(AdaptlabError, match="task entry"):
        saved_task({"task": {"name": "x", "input": "triple"}}, [])


# ---- the real files, when present ---------------------------------------------------------------------

def test_sst2_files_read_whole_with_exact_counts():
    train_path, dev_path = _shared("sst2/train.tsv"), _shared("sst2/dev.tsv")
    task = get_task("sst2")
    for path, rows in ((train_path, 60_614), (dev_path, 6_735)):
        table, dropped = read_pairs(path, task)
        expected = _tsv_rows(path, header=True)
        assert (len(table), dropped, len(expected)) == (rows, 0, rows)
        assert list(table.columns[:2]) == ["text", "label"]
        assert table["label"].tolist() == [int(label) for _, label in expected]  # 0 negative, 1 positive
        assert table["text"].tolist() == [text for text, _ in expected]
    data = load_nli_data(str(train_path.parent), task="sst2")
    assert (len(data.train), list(data.evals), len(data.evals["validation"])) == (60_614, ["validation"], 6_735)


def test_rte_files_read_whole_with_exact_counts():
    task = get_task("rte")
    for name, rows in (("train.tsv", 1_244), ("dev.tsv", 139)):
        path = _shared(f"rte/{name}")
        table, dropped = read_pairs(path, task)
        expected = _tsv_rows(path, header=True)
        assert (len(table), dropped, len(expected)) == (rows, 0, rows)
        names = ["entailment", "not_entailment"]
        assert [names[i] for i in table["label"]] == [row[3] for row in expected]
        assert table["premise"].tolist() == [row[1] for row in expected]
        assert table["hypothesis"].tolist() == [row[2] for row in expected]


def test_agnews_headerless_file_reads_every_row_with_its_class():
    path = _shared("agnews/train.tsv")
    table, dropped = read_pairs(path, get_task("agnews"))
    expected = _tsv_rows(path, header=False)  # no header: the first line is a news item
    assert (len(table), dropped, len(expected)) == (10_001, 0, 10_001)
    assert table["text"].iloc[0] == expected[0][0]
    counts = Counter(TASKS["agnews"].labels[i] for i in table["label"])
    assert counts == {"World": 2_509, "Sports": 2_458, "Business": 2_496, "Sci/Tech": 2_538}
    assert counts == Counter(label for _, label in expected)
    data = load_nli_data(str(path), task="agnews", heldout_fraction=0.1, seed=0)
    assert len(data.train) + len(data.evals["heldout"]) == 10_001
    assert set(data.train["text"]).isdisjoint(data.evals["heldout"]["text"])  # same text: same side
    assert "World" in data.describe() and "texts" in data.describe()


# ---- local files of every kind ------------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_agnews_label_ids_and_a_header_work_too(tmp_path):
    rows = "".join(f"news item {i}\t{i % 4}\n" for i in range(8))
    table, _ = read_pairs(_write(tmp_path / "train.tsv", "text\tlabel\n" + rows), get_task("agnews"))
    assert table["label"].tolist() == [i % 4 for i in range(8)] and table["text"].iloc[0] == "news item 0"


def test_custom_single_task_takes_sorted_labels_from_the_training_file(tmp_path):
    lines = ["sentence,label"] + [f"text {i},{['pos', 'neg', 'meh'][i % 3]}" for i in range(30)]
    data = load_nli_data(str(_write(tmp_path / "mine.csv", "\n".join(lines) + "\n")), task="custom")
    assert (data.task.input, data.labels) == ("single", ["meh", "neg", "pos"])
    assert data.task.text_fields == ("text",)
    every = pd.concat([data.train, *data.evals.values()])
    assert sorted(Counter(every["label"]).items()) == [(0, 10), (1, 10), (2, 10)]


def test_custom_pair_task_with_numeric_labels_sorts_them_as_numbers(tmp_path):
    lines = ["premise\thypothesis\tlabel"] + [f"a {i}\tb {i}\t{[2, 10, 7][i % 3]}" for i in range(30)]
    data = load_nli_data(str(_write(tmp_path / "pairs.tsv", "\n".join(lines) + "\n")), task="custom")
    assert (data.task.input, data.labels) == ("pair", ["2", "7", "10"])
    table, _ = read_pairs(tmp_path / "pairs.tsv", data.task)
    assert table["label"].tolist()[:3] == [0, 2, 1]  # 2 -> 0, 10 -> 2, 7 -> 1


def test_custom_eval_files_are_read_with_the_training_labels(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    _write(folder / "train.csv", "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(20)))
    _write(folder / "dev.csv", "text,label\nx,b\ny,b\n")  # one class only: names still come from train
    data = load_nli_data(str(folder), task="custom")
    assert data.labels == ["a", "b"] and data.evals["validation"]["label"].tolist() == [1, 1]
    _write(folder / "dev.csv", "text,label\nx,c\n")
    with pytest.raises(AdaptlabError,
                       match=r"dev.csv data row 1: unknown label 'c' for task custom \(expected one of a, b"):
        load_nli_data(str(folder), task="custom")


@pytest.mark.parametrize("task, text, message", [
    ("custom", "words,label\nhello,a\n", "lacks column(s) text or sentence for task custom (a custom task needs"),
    ("sst2", "sentence\tlabel\nfine\tgreat\n", "line 2: unknown label 'great' for task sst2 (expected one of "
                                                "negative, positive, 0..1"),
    ("rte", "index\tsentence1\tlabel\n0\tA.\tentailment\n", "lacks column(s) sentence2 or hypothesis or text_b"),
    ("sst2", "sentence\nfine\n", "lacks column(s) gold_label or label for task sst2 (an unlabelled file"),
    ("custom", "text,label\nx,Good\ny,good\n", "label 'Good' is spelled in several cases"),
    ("custom", "text,label\nx,good\ny,good\n", "found 1 label name(s) (good); a classifier needs at least two"),
])
def test_layouts_a_task_cannot_use_are_one_line_errors(tmp_path, task, text, message):
    path = _write(tmp_path / ("data.csv" if "," in text else "data.tsv"), text)
    with pytest.raises(AdaptlabError) as info:
        load_nli_data(str(path), task=task)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_empty_single_texts_are_refused_naming_rows(tmp_path):
    lines = ["sentence\tlabel"] + [f"{'' if i in (3, 7) else f'text {i}'}\t{i % 2}" for i in range(20)]
    table, _ = read_pairs(_write(tmp_path / "train.tsv", "\n".join(lines) + "\n"), get_task("sst2"))
    with pytest.raises(AdaptlabError,
                       match=r"^training data: 2 example\(s\) have an empty text \(rows 3, 7, 0-based\)$"):
        check_training_pairs(table, num_labels=2)


def test_files_to_predict_on_use_the_task_columns(tmp_path):
    path = _write(tmp_path / "new.tsv", "sentence\nA fine film.\nDull.\n")
    assert read_unlabelled_pairs(path, get_task("sst2")).to_dict("list") == {"text": ["A fine film.", "Dull."]}
    with pytest.raises(AdaptlabError, match=r"lacks column\(s\) sentence1 or premise or text_a, sentence2"):
        read_unlabelled_pairs(path, get_task("rte"))


def test_single_texts_encode_without_a_second_segment_and_fingerprint_stably(tiny_bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    single = pd.DataFrame({"text": ["A man is playing a guitar on stage."], "label": [1]})
    pair = pd.DataFrame({"premise": ["A man is playing a guitar on stage."], "hypothesis": ["Nobody is outside."],
                         "label": [1]})
    (one,), (two,) = encode_pairs(tokenizer, single, 64), encode_pairs(tokenizer, pair, 64)
    assert one["input_ids"] == tokenizer("A man is playing a guitar on stage.")["input_ids"]
    assert set(one["token_type_ids"]) == {0} and set(two["token_type_ids"]) == {0, 1}
    # pairs keep the fingerprint they always had, so old checkpoints still resume
    import hashlib
    old = hashlib.sha256("A man is playing a guitar on stage.\x1fNobody is outside.\x1f1\x1e".encode()).hexdigest()
    assert fingerprint(pair) == old and fingerprint(single) != old


def test_eval_only_custom_data_needs_the_model_labels(tmp_path):
    path = _write(tmp_path / "dev.csv", "text,label\nx,a\ny,b\n")
    with pytest.raises(AdaptlabError, match="scoring needs the label names"):
        load_eval_data(str(path), task="custom")


def test_reading_local_files_never_imports_datasets(tmp_path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"t {i}\t{i % 2}\n" for i in range(20)))
    code = ("import sys, json; from adaptlab.nli.data import load_nli_data; "
            f"d = load_nli_data({str(path)!r}, task='sst2'); "
            "print(json.dumps(['datasets' in sys.modules, len(d.train) + len(d.evals['heldout'])]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [False, 20]


def test_glue_tasks_load_their_hub_config_and_skip_the_unlabelled_test_split(monkeypatch):
    """The hub simulated (no test waits on a network): sst2 asks nyu-mll/glue for config sst2; GLUE's test split
    (labels -1) is not an eval split; AG News' integer labels map to its class names."""
    import datasets

    from adaptlab.nli import hub as nli_hub

    asked = []

    def fake_load_dataset(hub_id, config_name=None, **kwargs):
        asked.append((hub_id, config_name))
        if hub_id == "nyu-mll/glue":
            split = lambda labels: datasets.Dataset.from_dict(  # noqa: E731
                {"sentence": [f"s{i}" for i in range(len(labels))], "label": labels, "idx": list(range(len(labels)))})
            return datasets.DatasetDict({"train": split([0, 1] * 10), "validation": split([1, 0, 1]),
                                         "test": split([-1, -1])})
        news = {"text": ["a", "b", "c", "d"], "label": [3, 2, 1, 0]}
        return datasets.DatasetDict({name: datasets.Dataset.from_dict(news) for name in ("train", "test")})

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(nli_hub, "hub_unreachable_reason", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_nli_data(task="sst2", quiet=True)
    assert asked == [("nyu-mll/glue", "sst2")] and data.source == "Hugging Face hub nyu-mll/glue (sst2)"
    assert (len(data.train), list(data.evals)) == (20, ["validation"])
    assert data.evals["validation"]["label"].tolist() == [1, 0, 1]
    with pytest.raises(AdaptlabError, match=r"split test not found in nyu-mll/glue \(sst2\); available: validation"):
        load_nli_data("sst2", eval_split="test", quiet=True)
    news = load_eval_data("agnews", quiet=True)
    assert asked[-1] == ("fancyzhx/ag_news", None) and list(news.evals) == ["test"]
    assert [news.labels[i] for i in news.evals["test"]["label"]] == ["Sci/Tech", "Business", "Sports", "World"]
