"""Read text-classification files in the layouts people actually have, into one normalised table.

Layouts (chosen by file suffix):

- ``.jsonl``  original MultiNLI / SNLI releases: one JSON object per line with ``gold_label``,
  ``sentence1``, ``sentence2`` (+ ``genre``, ``pairID`` ...); any task's columns work the same way.
- ``.txt``    original MultiNLI / SNLI releases: tab-separated with a header, same columns.
- ``.tsv``    GLUE layouts: MNLI ``index, promptID, pairID, genre, ..., sentence1, sentence2, ..., gold_label``,
  RTE ``index, sentence1, sentence2, label``, SST-2 ``sentence, label`` (GLUE test files have no label column
  and are rejected for training/evaluation). A task with a headerless layout (AG News: ``text<TAB>label``)
  reads a file whose first row names none of its columns as data.
- ``.csv``    comma-separated with a header, e.g. ``pairID,sentence1,sentence2,label``.

``.txt`` and ``.tsv`` are read with quoting switched off (``csv.QUOTE_NONE``) because MultiNLI sentences
contain unbalanced double quotes that a quote-aware parser would glue across lines. ``.csv`` uses
standard CSV quoting, since that is how a CSV writer escapes commas inside sentences.

Which columns hold the texts and the label, and which label names are valid, is the task's business
(:mod:`adaptlab.nli.tasks`). Every reader returns the task's text columns (``premise`` + ``hypothesis``, or
``text``), ``label`` (int id in the task's label order), ``genre`` and ``pair_id`` (str or None). Texts are kept
exactly as in the file (MultiNLI has hypotheses with a trailing space): tokenizers ignore that whitespace, and
unmodified texts can be joined back to the source by value. Rows whose label is ``-`` (or ``-1`` in hub-style
data: annotators reached no consensus, or a GLUE test row) are dropped and counted.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.tasks import (NO_CONSENSUS, TaskSpec, get_task, input_of, label_text, missing_columns_message,
                                resolve_columns, with_labels_from)

LABELS = get_task("mnli").labels  # the NLI labels, ids 0, 1, 2 as in GLUE and nyu-mll/multi_nli
EXTRA_COLUMNS = ("genre", "pair_id")  # kept when a file has them (per-genre scores, joining back to the source)
SUFFIXES = (".jsonl", ".tsv", ".txt", ".csv")  # also the preference order when one split has several files

RowName = Callable[[int], str]  # 0-based data row -> where a person finds it in the file ("line 7")


@dataclass
class RawTable:
    """A file (or hub split) as read, before its columns and labels are interpreted."""

    frame: pd.DataFrame
    where: str        # names the data in error messages: a path, or a hub id and split
    row_name: RowName = lambda i: f"row {i + 1}"


def read_pairs(path: Path, task: TaskSpec | None = None) -> tuple[pd.DataFrame, int]:
    """Read one labelled file of ``task`` (default: mnli); return ``(table, dropped)`` with ``dropped`` = rows
    labelled ``-``/``-1``. A custom task's label names come from this file (see :func:`read_raw`)."""
    task = task or get_task(None)
    raw = read_raw(path, task)
    return normalise(raw, labels_of(raw, task))


def read_raw(path: Path, task: TaskSpec | None = None, *, labelled: bool = True) -> RawTable:
    """A file as read, with a custom task's input kind decided; one-line errors for a layout ``task`` cannot use.

    ``labelled=False``: the label column is optional (files to predict on).
    """
    task = task or get_task(None)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise AdaptlabError(f"{path}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise AdaptlabError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AdaptlabError(f"{path} is empty")
    if suffix == ".jsonl":
        frame, row_name = _read_jsonl(path)
    else:
        frame, row_name = _read_delimited(path, sep="," if suffix == ".csv" else "\t", task=task)
    raw = RawTable(frame, str(path), row_name)
    _check_columns(raw, input_of(list(map(str, frame.columns)), task), labelled)
    return raw


def labels_of(raw: RawTable, task: TaskSpec) -> TaskSpec:
    """``task`` with input kind and label names known: a custom task takes both from ``raw`` (training data)."""
    task = input_of(list(map(str, raw.frame.columns)), task)
    if task.labels is not None:
        return task
    columns = _check_columns(raw, task, labelled=True)
    return with_labels_from(task, raw.frame[columns["label"]], raw.where)


def read_unlabelled_pairs(path: Path, task: TaskSpec | None = None) -> pd.DataFrame:
    """Examples to predict on, from any layout :func:`read_pairs` reads, with the label column optional (ignored).

    Returns the task's text columns (texts exactly as in the file), plus ``genre`` / ``pair_id`` when the file has
    them, one row per data row (no row is dropped: unlabelled files have no consensus marker).
    """
    task = task or get_task(None)
    raw = read_raw(path, task, labelled=False)
    columns = _check_columns(raw, task, labelled=False)
    if len(raw.frame) == 0:
        raise AdaptlabError(f"{path} has a header but no data rows")
    _check_texts(raw, columns, task)
    return pd.DataFrame({canonical: raw.frame[columns[canonical]].to_numpy(dtype=object)
                         for canonical in ("pair_id", "genre", *task.text_fields) if canonical in columns})


def has_labels(path: Path, task: TaskSpec | None = None) -> bool:
    """Whether the file has a label column (GLUE test files do not); reads only the header/first line."""
    task = task or get_task(None)
    names = _header(path)
    if task.headerless and not _names_any_text(names, task):
        return "label" in task.headerless
    return "label" in resolve_columns(names, task)


def split_of(name: str) -> str | None:
    """Split name from a file name or user-given name, or None when it names no split.

    ``multinli_1.0_dev_matched.jsonl`` -> validation_matched, ``test_mismatched.tsv`` -> test_mismatched,
    ``snli_1.0_train_subset.jsonl`` -> train, ``heldout`` -> heldout, ``README.txt`` -> None.
    Whole words only, so "latest.csv" is not a test file.
    """
    words = re.split(r"[^a-z0-9]+", Path(name).stem.lower() if Path(name).suffix.lower() in SUFFIXES else name.lower())
    if "train" in words:
        return "train"
    if "heldout" in words:
        return "heldout"
    if {"dev", "validation", "valid", "val"} & set(words):
        kind = "validation"
    elif "test" in words:
        kind = "test"
    else:
        return None
    if "mismatched" in words:
        return f"{kind}_mismatched"
    return f"{kind}_matched" if "matched" in words else kind


def _names_any_text(names: list[str], task: TaskSpec) -> bool:
    columns = resolve_columns(names, task)
    return any(field in columns for field in task.text_fields)


def _read_delimited(path: Path, sep: str, task: TaskSpec) -> tuple[pd.DataFrame, RowName]:
    headerless = bool(task.headerless) and not _names_any_text(_header(path), task)
    quoting = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    try:
        # dtype=str + no NA parsing: a hypothesis reading "NaN" or "N/A" stays that text.
        frame = pd.read_csv(path, sep=sep, quoting=quoting, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig", header=None if headerless else "infer",
                            names=list(task.headerless) if headerless else None)
    except pd.errors.EmptyDataError:
        raise AdaptlabError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise AdaptlabError(f"{path}: cannot parse as {'CSV' if sep == ',' else 'tab-separated'} text: "
                            f"{first_line(exc)}") from None
    if sep == ",":  # quoted CSV fields may span lines, so count data rows rather than lines
        return frame, lambda i: f"data row {i + 1}"
    first_data_line = 1 if headerless else 2
    return frame, lambda i: f"line {i + first_data_line}"  # QUOTE_NONE: one row per line


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, RowName]:
    records, line_numbers = [], []
    with open(path, encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AdaptlabError(f"{path} line {line_number}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise AdaptlabError(f"{path} line {line_number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
            line_numbers.append(line_number)
    if not records:
        raise AdaptlabError(f"{path} is empty")
    table = {}
    for key in records[0]:  # the first record's keys are the columns; every record must carry them
        try:
            table[key] = [record[key] for record in records]
        except KeyError:
            row = next(i for i, record in enumerate(records) if key not in record)
            raise AdaptlabError(f"{path} line {line_numbers[row]}: missing key {key!r}") from None
    return pd.DataFrame(table), lambda i: f"line {line_numbers[i]}"


def _header(path: Path) -> list[str]:
    raw_path = Path(path)
    if raw_path.suffix.lower() == ".jsonl":
        with open(raw_path, encoding="utf-8-sig") as handle:
            first = next((line for line in handle if line.strip()), "")
        try:
            record = json.loads(first) if first else {}
        except json.JSONDecodeError:
            raise AdaptlabError(f"{path}: first line is not valid JSON") from None
        return list(record) if isinstance(record, dict) else []
    sep = "," if raw_path.suffix.lower() == ".csv" else "\t"
    with open(raw_path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=sep), [])


def _check_columns(raw: RawTable, task: TaskSpec, labelled: bool) -> dict[str, str]:
    """Canonical -> source column of ``raw`` for ``task``; a missing text (or label) column is a one-line error."""
    names = [str(c) for c in raw.frame.columns]
    task = input_of(names, task)
    columns = resolve_columns(names, task)
    required = task.text_fields + (("label",) if labelled else ())
    missing = tuple(c for c in required if c not in columns)
    if missing:
        raise AdaptlabError(missing_columns_message(raw.where, names, task, missing))
    return columns


def normalise(raw: RawTable, task: TaskSpec) -> tuple[pd.DataFrame, int]:
    """Turn a raw table (any accepted column names) into the task's canonical table; drop no-consensus rows.

    ``task`` must know its input kind and labels (:func:`labels_of`). Returns ``(table, dropped)``.
    """
    columns = _check_columns(raw, task, labelled=True)
    where, row_name, frame = raw.where, raw.row_name, raw.frame
    if len(frame) == 0:
        raise AdaptlabError(f"{where} has a header but no data rows")
    labels_text = frame[columns["label"]].map(label_text)
    no_consensus = labels_text.isin(NO_CONSENSUS).to_numpy()
    label_ids = labels_text.map(task.label_ids())
    unknown = label_ids.isna().to_numpy() & ~no_consensus
    if unknown.any():
        i = int(unknown.argmax())
        value = frame[columns["label"]].iloc[i]
        raise AdaptlabError(f"{where} {row_name(i)}: unknown label {value!r} for task {task.name} (expected one of "
                            f"{', '.join(task.labels)}, 0..{len(task.labels) - 1}, or '-'/-1 for no consensus)")
    _check_texts(raw, columns, task)
    keep = ~no_consensus
    if not keep.any():
        raise AdaptlabError(f"{where} has no labelled {task.unit}: all {len(frame)} rows have label '-'/-1 "
                            "(no consensus, or an unlabelled test split)")
    table = {field: frame[columns[field]].to_numpy()[keep] for field in task.text_fields}
    table["label"] = label_ids.to_numpy()[keep].astype("int64")
    for extra in EXTRA_COLUMNS:  # object dtype: pandas would otherwise turn None into NaN in a string column
        table[extra] = pd.Series(_optional_text(frame, columns.get(extra))[keep], dtype=object)
    return pd.DataFrame(table, columns=[*task.text_fields, "label", *EXTRA_COLUMNS]), int(no_consensus.sum())


def _check_texts(raw: RawTable, columns: dict[str, str], task: TaskSpec) -> None:
    for canonical in input_of(list(map(str, raw.frame.columns)), task).text_fields:
        text_ok = raw.frame[columns[canonical]].map(lambda v: isinstance(v, str)).to_numpy()
        if not text_ok.all():
            i = int((~text_ok).argmax())
            raise AdaptlabError(f"{raw.where} {raw.row_name(i)}: {columns[canonical]} is missing or not text")


def _optional_text(raw: pd.DataFrame, column: str | None):
    if column is None:
        return pd.Series([None] * len(raw), dtype=object).to_numpy()
    return raw[column].map(lambda v: None if v is None or v == "" else str(v)).to_numpy(dtype=object)
