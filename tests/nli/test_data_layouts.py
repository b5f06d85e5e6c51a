"""NLI data from local files: every layout, label mapping, '-' dropping, folders, held-out split, subsampling, bad input.

Fixtures are written in code in the layouts of the original releases (MultiNLI/SNLI .jsonl and .txt), GLUE .tsv
and the pairID,sentence1,sentence2,label CSV. Expected values are computed from ROWS, never hard-coded.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.data import LABELS, load_nli_data
from adaptlab.nli.readers import read_pairs, split_of

# (gold_label, sentence1, sentence2, genre, pairID); texts carry what trips naive parsers: an unbalanced double
# quote, commas, quotes inside quotes, a trailing space (kept: MultiNLI has them), a text reading "NaN".
ROWS = [
    ("entailment", 'He said "no way and left.', "He left.", "fiction", "1e"),
    ("neutral", "Prices rose, then fell, then rose again.", "Prices are volatile ", "slate", "2n"),
    ("contradiction", 'The sign read "Open".', 'It said "closed", "shut".', "travel", "3c"),
    ("-", "Nobody agreed on this one.", "Annotators disagreed.", "government", "4x"),
    ("entailment", "NaN", "N/A", "telephone", "5e"),
    ("contradiction", "A dog sleeps.", "A dog runs.", "fiction", "6c"),
    ("neutral", '"It\'s 5 o\'clock, he said.', "It's tea time.", "slate", "7n"),  # opening quote never closed
    ("-", "Unclear case.", "Still unclear.", "travel", "8x"),
    ("entailment", "Two men talk.", "People talk.", "telephone", "9e"),
]
LABELLED = [r for r in ROWS if r[0] != "-"]
N_DROPPED = len(ROWS) - len(LABELLED)
GLUE_COLUMNS = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
TXT_COLUMNS = ["gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
               "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre", "label1"]


def write_jsonl(path: Path, rows=ROWS) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        for gold, s1, s2, genre, pair in rows:
            record = {"annotator_labels": [gold], "genre": genre, "gold_label": gold, "pairID": pair,
                      "promptID": 7, "sentence1": s1, "sentence1_binary_parse": "( x )", "sentence2": s2}
            out.write(json.dumps(record) + "\n")
    return path


def write_txt(path: Path, rows=ROWS) -> Path:
    """Original MultiNLI .txt: tab-separated, header, no quoting at all."""
    lines = ["\t".join(TXT_COLUMNS)]
    lines += ["\t".join([g, "( x )", "( y )", "(ROOT x)", "(ROOT y)", s1, s2, "7", p, genre, g])
              for g, s1, s2, genre, p in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_glue_tsv(path: Path, rows=ROWS, labelled: bool = True) -> Path:
    columns = GLUE_COLUMNS if labelled else GLUE_COLUMNS[:-2]
    lines = ["\t".join(columns)]
    for i, (g, s1, s2, genre, p) in enumerate(rows):
        fields = [str(i), "7", p, genre, "( x )", "( y )", "(ROOT x)", "(ROOT y)", s1, s2]
        lines.append("\t".join(fields + ([g, g] if labelled else [])))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, rows=ROWS, header=("pairID", "sentence1", "sentence2", "label")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for g, s1, s2, _genre, p in rows:
            writer.writerow([p, s1, s2, g])
    return path


WRITERS = {"jsonl": write_jsonl, "txt": write_txt, "tsv": write_glue_tsv, "csv": write_csv}


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_every_layout_reads_the_same_pairs(tmp_path, layout):
    path = WRITERS[layout](tmp_path / f"pairs.{layout}")
    pairs, dropped = read_pairs(path)
    assert dropped == N_DROPPED
    assert list(pairs.columns) == ["premise", "hypothesis", "label", "genre", "pair_id"]
    assert pairs["premise"].tolist() == [r[1] for r in LABELLED]  # byte-identical: quotes, trailing space, "NaN"
    assert pairs["hypothesis"].tolist() == [r[2] for r in LABELLED]
    assert pairs["label"].tolist() == [LABELS.index(r[0]) for r in LABELLED]
    assert pairs["pair_id"].tolist() == [r[4] for r in LABELLED]
    expected_genre = [None] * len(LABELLED) if layout == "csv" else [r[3] for r in LABELLED]
    assert pairs["genre"].tolist() == expected_genre
    assert pairs["label"].dtype == np.int64


def test_label_names_and_hub_ints_map_to_glue_ids(tmp_path):
    rows = [("Entailment ", "a", "b"), ("NEUTRAL", "c", "d"), ("contradiction", "e", "f"),
            ("0", "g", "h"), ("1", "i", "j"), ("2", "k", "l"), ("-1", "m", "n"), ("-", "o", "p")]
    path = tmp_path / "mixed.csv"
    with open(path, "w", newline="") as out:
        csv.writer(out).writerows([("premise", "hypothesis", "label"), *[(s1, s2, g) for g, s1, s2 in rows]])
    pairs, dropped = read_pairs(path)
    assert pairs["label"].tolist() == [0, 1, 2, 0, 1, 2]
    assert dropped == 2
    assert pairs["pair_id"].tolist() == [None] * 6  # no pairID column


def test_jsonl_with_integer_labels(tmp_path):
    path = tmp_path / "hubstyle.jsonl"
    path.write_text("\n".join(json.dumps({"premise": f"p{i}", "hypothesis": f"h{i}", "label": lab})
                              for i, lab in enumerate([2, 0, -1, 1, 1])) + "\n\n")
    pairs, dropped = read_pairs(path)
    assert (pairs["label"].tolist(), dropped) == ([2, 0, 1, 1], 1)


# ---- bad input: one-line AdaptlabErrors that name the file and the problem -------------------------------

def _error(call) -> str:
    with pytest.raises(AdaptlabError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_columns_are_named(tmp_path):
    path = write_csv(tmp_path / "few.csv", header=("pairID", "sentence1", "text", "label"))
    message = _error(lambda: read_pairs(path))
    assert "few.csv" in message and "sentence2 or hypothesis" in message and "premise" not in message.split(";")[0]


def test_unknown_label_names_file_row_and_value(tmp_path):
    rows = list(ROWS[:4]) + [("maybe", "x", "y", "slate", "99")]
    message = _error(lambda: read_pairs(write_csv(tmp_path / "odd.csv", rows)))
    assert "odd.csv" in message and "data row 5" in message and "'maybe'" in message
    message = _error(lambda: read_pairs(write_jsonl(tmp_path / "odd.jsonl", rows)))
    assert "odd.jsonl line 5" in message and "'maybe'" in message
    message = _error(lambda: read_pairs(write_glue_tsv(tmp_path / "odd.tsv", rows)))
    assert "odd.tsv line 6" in message  # header is line 1


@pytest.mark.parametrize("content", ["", "\n\n", "pairID,sentence1,sentence2,label\n"])
def test_empty_files(tmp_path, content):
    for suffix in (".csv", ".jsonl"):
        if suffix == ".jsonl" and "," in content:
            continue
        path = tmp_path / f"empty{suffix}"
        path.write_text(content)
        message = _error(lambda: read_pairs(path))
        assert "empty" in message or "no data rows" in message


def test_unlabelled_glue_test_file_is_rejected(tmp_path):
    path = write_glue_tsv(tmp_path / "test_matched.tsv", labelled=False)
    message = _error(lambda: load_nli_data(str(path)))
    assert "test_matched.tsv" in message and "gold_label or label" in message and "unlabelled" in message


def test_other_bad_inputs(tmp_path):
    assert "no such file or folder" in _error(lambda: load_nli_data(str(tmp_path / "missing.csv")))
    (tmp_path / "pairs.parquet").write_bytes(b"PAR1")
    assert "unsupported file type .parquet" in _error(lambda: load_nli_data(str(tmp_path / "pairs.parquet")))
    all_dashes = [r for r in ROWS if r[0] == "-"]
    assert "no labelled pairs" in _error(lambda: read_pairs(write_csv(tmp_path / "dash.csv", all_dashes)))
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}\n{oops\n')
    assert "bad.jsonl line 2: invalid JSON" in _error(lambda: read_pairs(bad_json))
    ragged = write_glue_tsv(tmp_path / "ragged.tsv")
    ragged.write_text(ragged.read_text() + "\t".join(["x"] * (len(GLUE_COLUMNS) + 2)) + "\n")
    assert "ragged.tsv: cannot parse" in _error(lambda: read_pairs(ragged))
    for kwargs in ({"max_train_samples": 0}, {"max_eval_samples": 2.5}, {"heldout_fraction": 1.0}):
        _error(lambda: load_nli_data(str(write_csv(tmp_path / "ok.csv")), **kwargs))


# ---- folders -------------------------------------------------------------------------------------------

def test_split_names_from_file_names():
    assert split_of("multinli_1.0_dev_matched.jsonl") == "validation_matched"
    assert split_of("dev_mismatched.tsv") == "validation_mismatched"
    assert split_of("validation_matched") == "validation_matched"
    assert split_of("snli_1.0_train_subset.jsonl") == "train"
    assert split_of("snli_1.0_test.jsonl") == "test"
    assert split_of("test_mismatched.tsv") == "test_mismatched"
    assert split_of("latest.csv") is None and split_of("README.txt") is None


def test_multinli_release_folder(tmp_path):
    write_jsonl(tmp_path / "multinli_1.0_train.jsonl")
    write_txt(tmp_path / "multinli_1.0_train.txt", ROWS[:3])  # same split twice: the .jsonl wins
    write_jsonl(tmp_path / "multinli_1.0_dev_matched.jsonl", ROWS[:4])
    write_txt(tmp_path / "multinli_1.0_dev_mismatched.txt", ROWS[4:])
    (tmp_path / "README.txt").write_text("not data")
    data = load_nli_data(str(tmp_path))
    assert len(data.train) == len(LABELLED)
    assert list(data.evals) == ["validation_matched", "validation_mismatched"]
    assert len(data.evals["validation_matched"]) == 3 and len(data.evals["validation_mismatched"]) == 4
    assert data.dropped == {"train": 2, "validation_matched": 1, "validation_mismatched": 1}
    assert "train=multinli_1.0_train.jsonl" in data.source
    assert data.train["genre"].tolist() == [r[3] for r in LABELLED]


def test_glue_folder_skips_unlabelled_test_files_unless_asked(tmp_path):
    write_glue_tsv(tmp_path / "train.tsv")
    write_glue_tsv(tmp_path / "dev_matched.tsv", ROWS[:5])
    write_glue_tsv(tmp_path / "dev_mismatched.tsv", ROWS[5:])
    write_glue_tsv(tmp_path / "test_matched.tsv", labelled=False)
    data = load_nli_data(str(tmp_path))
    assert sorted(data.evals) == ["validation_matched", "validation_mismatched"]
    assert "unlabelled, not used: test_matched.tsv" in data.source
    only = load_nli_data(str(tmp_path), eval_split="dev_mismatched")
    assert list(only.evals) == ["validation_mismatched"] and len(only.evals["validation_mismatched"]) == 3
    assert "gold_label or label" in _error(lambda: load_nli_data(str(tmp_path), eval_split="test_matched"))
    message = _error(lambda: load_nli_data(str(tmp_path), eval_split="dev"))
    assert "eval split validation not found" in message and "validation_matched" in message


def test_snli_release_folder_and_bad_folders(tmp_path):
    snli = tmp_path / "snli"
    snli.mkdir()
    write_jsonl(snli / "snli_1.0_train.jsonl")
    write_jsonl(snli / "snli_1.0_dev.jsonl", ROWS[:4])
    write_jsonl(snli / "snli_1.0_test.jsonl", ROWS[3:])
    data = load_nli_data(str(snli))
    assert sorted(data.evals) == ["test", "validation"]
    assert data.dropped == {"train": 2, "validation": 1, "test": 2}
    empty = tmp_path / "nothing"
    empty.mkdir()
    write_csv(empty / "pairs.csv")
    assert "no train file" in _error(lambda: load_nli_data(str(empty)))
    write_csv(empty / "train_a.csv")
    write_csv(empty / "train_b.csv")
    assert "several train files" in _error(lambda: load_nli_data(str(empty)))


def test_folder_with_only_train_gets_a_heldout_split(tmp_path):
    write_csv(tmp_path / "train.csv", ROWS * 3)
    data = load_nli_data(str(tmp_path), heldout_fraction=0.25)
    assert list(data.evals) == ["heldout"]
    assert len(data.train) + len(data.evals["heldout"]) == 3 * len(LABELLED)


# ---- held-out split and subsampling -------------------------------------------------------------------

def _big_csv(path: Path, counts=(150, 90, 60), n_dashes=7) -> Path:
    rows = [(LABELS[label], f"premise {label}-{i}", f"hypothesis {i}", "g", f"{label}-{i}")
            for label, n in enumerate(counts) for i in range(n)]
    rows += [("-", f"nc {i}", "x", "g", f"x{i}") for i in range(n_dashes)]
    order = np.random.default_rng(123).permutation(len(rows))  # interleave classes and dashes like real files
    return write_csv(path, [rows[i] for i in order])


def test_single_file_heldout_is_stratified_disjoint_and_seeded(tmp_path):
    path = str(_big_csv(tmp_path / "pairs.csv"))
    data = load_nli_data(path, heldout_fraction=0.2, seed=3)
    heldout = data.evals["heldout"]
    assert len(heldout) == 60 and len(data.train) == 240
    assert np.bincount(heldout["label"], minlength=3).tolist() == [30, 18, 12]  # 0.2 of 150/90/60
    assert data.dropped == {"train+heldout": 7}
    assert set(heldout["pair_id"]).isdisjoint(data.train["pair_id"])
    again = load_nli_data(path, heldout_fraction=0.2, seed=3)
    assert heldout.equals(again.evals["heldout"]) and data.train.equals(again.train)
    other = load_nli_data(path, heldout_fraction=0.2, seed=4)
    assert set(other.evals["heldout"]["pair_id"]) != set(heldout["pair_id"])
    assert "heldout" in load_nli_data(path, eval_split="heldout").evals
    assert "not found" in _error(lambda: load_nli_data(path, eval_split="validation_matched"))


def test_max_samples_are_stratified_seeded_and_leave_the_eval_split_alone(tmp_path):
    path = str(_big_csv(tmp_path / "pairs.csv"))
    full = load_nli_data(path, heldout_fraction=0.2, seed=0)
    small = load_nli_data(path, heldout_fraction=0.2, seed=0, max_train_samples=48, max_eval_samples=20)
    assert small.evals["heldout"]["pair_id"].isin(full.evals["heldout"]["pair_id"]).all()
    assert len(small.train) == 48 and len(small.evals["heldout"]) == 20
    assert np.bincount(small.train["label"], minlength=3).tolist() == [24, 14, 10]  # 48 * (150, 90, 60) / 300
    assert small.train["pair_id"].isin(full.train["pair_id"]).all()
    positions = full.train.reset_index().set_index("pair_id").loc[small.train["pair_id"], "index"]
    assert positions.is_monotonic_increasing  # file order kept
    budget = load_nli_data(path, heldout_fraction=0.2, seed=0, max_train_samples=10)
    assert budget.evals["heldout"].equals(full.evals["heldout"])  # train budget never moves the eval set
    assert small.train.equals(load_nli_data(path, heldout_fraction=0.2, seed=0, max_train_samples=48).train)
    assert len(load_nli_data(path, max_train_samples=10**6).train) == len(load_nli_data(path).train)


def test_describe_counts_each_split(tmp_path):
    data = load_nli_data(str(write_csv(tmp_path / "train.csv", ROWS * 4)), heldout_fraction=0.25)
    text = data.describe()
    counts = np.bincount(data.train["label"], minlength=3)
    assert f"train: {len(data.train)} pairs (entailment {counts[0]}, neutral {counts[1]}" in text
    assert f"train+heldout {4 * N_DROPPED}" in text


def test_data_flags_reach_load_nli_data(tmp_path):
    from adaptlab.cli import build_parser
    from adaptlab.nli.cli import _resolve
    from adaptlab.nli.config import NLIRunConfig

    path = str(_big_csv(tmp_path / "pairs.csv"))
    args = build_parser().parse_args(["nli", "train", "--data", path, "--max-train-samples", "30",
                                      "--max-eval-samples", "9", "--heldout-fraction", "0.2", "--eval-split", "heldout",
                                      "--seed", "1"])
    config = _resolve(NLIRunConfig, args)
    data = load_nli_data(config.data, eval_split=config.eval_split, max_train_samples=config.max_train_samples,
                         max_eval_samples=config.max_eval_samples, heldout_fraction=config.heldout_fraction,
                         seed=config.seed)
    assert (len(data.train), len(data.evals["heldout"])) == (30, 9)
    default = _resolve(NLIRunConfig, build_parser().parse_args(["nli", "train"]))
    assert (default.task, default.data) == (None, None)  # None, None: the mnli task's hub dataset


def test_heldout_split_keeps_every_premise_on_one_side(tmp_path):
    # MultiNLI's layout: one premise, three hypotheses (one per label)
    rows = [(LABELS[label], f"premise {p}", f"hypothesis {p}-{label}", "g", f"{p}{label}")
            for p in range(100) for label in range(3)]
    path = str(write_csv(tmp_path / "pairs.csv", rows))
    data = load_nli_data(path, heldout_fraction=0.1, seed=5)
    heldout = data.evals["heldout"]
    assert set(heldout["premise"]).isdisjoint(data.train["premise"])
    assert len(heldout) == 30 and len(data.train) == 270  # 10 whole premises of 3 pairs
    assert np.bincount(heldout["label"], minlength=3).tolist() == [10, 10, 10]
    assert heldout.equals(load_nli_data(path, heldout_fraction=0.1, seed=5).evals["heldout"])
    assert not heldout.equals(load_nli_data(path, heldout_fraction=0.1, seed=6).evals["heldout"])
    one_premise = [(LABELS[i % 3], "same premise", f"h{i}", "g", str(i)) for i in range(9)]
    message = _error(lambda: load_nli_data(str(write_csv(tmp_path / "one.csv", one_premise))))
    assert "only 1 distinct premises" in message
