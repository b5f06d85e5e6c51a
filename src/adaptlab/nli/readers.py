"""Read NLI pair files in the layouts people actually have, into one normalised table.

Layouts (chosen by file suffix):

- ``.jsonl``  original MultiNLI / SNLI releases: one JSON object per line with ``gold_label``,
  ``sentence1``, ``sentence2`` (+ ``genre``, ``pairID`` ...).
- ``.txt``    original MultiNLI / SNLI releases: tab-separated with a header, same columns.
- ``.tsv``    GLUE MNLI layout: ``index, promptID, pairID, genre, ..., sentence1, sentence2, ..., gold_label``
  (GLUE test files have no label column and are rejected for training/evaluation).
- ``.csv``    comma-separated with a header, e.g. ``pairID,sentence1,sentence2,label``.

``.txt`` and ``.tsv`` are read with quoting switched off (``csv.QUOTE_NONE``) because MultiNLI sentences
contain unbalanced double quotes that a quote-aware parser would glue across lines. ``.csv`` uses
standard CSV quoting, since that is how a CSV writer escapes commas inside sentences.

Every reader returns the same columns: ``premise`` (str), ``hypothesis`` (str), ``label`` (int,
0/1/2 in :data:`LABELS` order), ``genre`` (str or None), ``pair_id`` (str or None). Texts are kept
exactly as in the file (MultiNLI has hypotheses with a trailing space): tokenizers ignore that
whitespace, and unmodified texts can be joined back to the source by value. Rows whose label is
``-`` (or ``-1`` in hub-style data: annotators reached no consensus) are dropped and counted.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Callable

import pandas as pd

from adaptlab.errors import AdaptlabError, first_line

LABELS = ("entailment", "neutral", "contradiction")  # ids 0, 1, 2 as in GLUE and nyu-mll/multi_nli
COLUMNS = ["premise", "hypothesis", "label", "genre", "pair_id"]
SUFFIXES = (".jsonl", ".tsv", ".txt", ".csv")  # also the preference order when one split has several files

# canonical column -> accepted source names, first match wins (GLUE rows carry label1..label5 next to
# gold_label; the consensus label is gold_label).
_ALIASES = {
    "premise": ("sentence1", "premise"),
    "hypothesis": ("sentence2", "hypothesis"),
    "label": ("gold_label", "label"),
    "genre": ("genre",),
    "pair_id": ("pairID", "pair_id"),
}
_REQUIRED = ("premise", "hypothesis", "label")
_TEXTS = ("premise", "hypothesis")  # all an unlabelled file (pairs to predict on) needs
_LABEL_IDS = {name: i for i, name in enumerate(LABELS)} | {str(i): i for i in range(len(LABELS))}
_NO_CONSENSUS = {"-", "-1"}

RowName = Callable[[int], str]  # 0-based data row -> where a person finds it in the file ("line 7")


def read_pairs(path: Path) -> tuple[pd.DataFrame, int]:
    """Read one pair file; return ``(pairs, dropped)`` with ``dropped`` = rows labelled ``-``/``-1``."""
    raw, row_name = _read_raw(path)
    return normalise(raw, str(path), row_name)


def read_unlabelled_pairs(path: Path) -> pd.DataFrame:
    """Pairs to predict on, from any layout :func:`read_pairs` reads, with the label column optional (ignored).

    Returns ``premise`` and ``hypothesis`` (texts exactly as in the file), plus ``genre`` / ``pair_id`` when the
    file has them, one row per data row (no row is dropped: unlabelled files have no consensus marker).
    """
    path = Path(path)
    raw, row_name = _read_raw(path, required=_TEXTS)
    columns = _resolve_columns([str(c) for c in raw.columns], str(path), required=_TEXTS)
    if len(raw) == 0:
        raise AdaptlabError(f"{path} has a header but no data rows")
    _check_texts(raw, columns, str(path), row_name)
    return pd.DataFrame({canonical: raw[columns[canonical]].to_numpy(dtype=object)
                         for canonical in ("pair_id", "genre", "premise", "hypothesis") if canonical in columns})


def has_labels(path: Path) -> bool:
    """Whether the file has a label column (GLUE test files do not); reads only the header/first line."""
    return "label" in _resolve_columns(_header(path))


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


def _read_raw(path: Path, required: tuple[str, ...] = _REQUIRED) -> tuple[pd.DataFrame, RowName]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise AdaptlabError(f"{path}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise AdaptlabError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AdaptlabError(f"{path} is empty")
    if suffix == ".jsonl":
        return _read_jsonl(path, required)
    return _read_delimited(path, sep="," if suffix == ".csv" else "\t")


def _read_delimited(path: Path, sep: str) -> tuple[pd.DataFrame, RowName]:
    quoting = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    try:
        # dtype=str + no NA parsing: a hypothesis reading "NaN" or "N/A" stays that text.
        frame = pd.read_csv(path, sep=sep, quoting=quoting, dtype=str, keep_default_na=False,
                            na_filter=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise AdaptlabError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise AdaptlabError(f"{path}: cannot parse as {'CSV' if sep == ',' else 'tab-separated'} text: "
                            f"{first_line(exc)}") from None
    if sep == ",":  # quoted CSV fields may span lines, so count data rows rather than lines
        return frame, lambda i: f"data row {i + 1}"
    return frame, lambda i: f"line {i + 2}"  # QUOTE_NONE: one row per line, after the header


def _read_jsonl(path: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, RowName]:
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
    columns = _resolve_columns(list(records[0]), path, required)
    table = {}
    for canonical, source in columns.items():
        try:
            table[source] = [record[source] for record in records]
        except KeyError:
            row = next(i for i, record in enumerate(records) if source not in record)
            raise AdaptlabError(f"{path} line {line_numbers[row]}: missing key {source!r}") from None
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


def _resolve_columns(names: list[str], path: Path | str | None = None,
                     required: tuple[str, ...] = _REQUIRED) -> dict[str, str]:
    """Map canonical column -> source column. With ``path``, a missing ``required`` column is an error."""
    present = set(names)
    found = {}
    for canonical, aliases in _ALIASES.items():
        match = next((alias for alias in aliases if alias in present), None)
        if match is not None:
            found[canonical] = match
    missing = [c for c in required if c not in found]
    if missing and path is not None:
        wanted = ", ".join(" or ".join(_ALIASES[c]) for c in missing)
        hint = ""
        if missing == ["label"]:
            hint = " (an unlabelled file, such as a GLUE test split, cannot be used for training or evaluation)"
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise AdaptlabError(f"{path} lacks column(s) {wanted}{hint}; found: {shown or 'no columns'}")
    return found


def normalise(raw: pd.DataFrame, where: str, row_name: RowName = lambda i: f"row {i + 1}") -> tuple[pd.DataFrame, int]:
    """Turn a raw table (any accepted column names) into the canonical pair table; drop no-consensus rows.

    ``where`` names the data in error messages (a path, or a hub id and split). Returns ``(pairs, dropped)``.
    """
    columns = _resolve_columns([str(c) for c in raw.columns], where)
    if len(raw) == 0:
        raise AdaptlabError(f"{where} has a header but no data rows")
    labels_text = raw[columns["label"]].map(_label_text)
    no_consensus = labels_text.isin(_NO_CONSENSUS).to_numpy()
    label_ids = labels_text.map(_LABEL_IDS)
    unknown = label_ids.isna().to_numpy() & ~no_consensus
    if unknown.any():
        i = int(unknown.argmax())
        value = raw[columns["label"]].iloc[i]
        raise AdaptlabError(f"{where} {row_name(i)}: unknown label {value!r} (expected one of "
                            f"{', '.join(LABELS)}, 0/1/2, or '-'/-1 for no consensus)")
    _check_texts(raw, columns, where, row_name)
    keep = ~no_consensus
    if not keep.any():
        raise AdaptlabError(f"{where} has no labelled pairs: all {len(raw)} rows have label '-' (no consensus)")
    pairs = pd.DataFrame({
        "premise": raw[columns["premise"]].to_numpy()[keep],
        "hypothesis": raw[columns["hypothesis"]].to_numpy()[keep],
        "label": label_ids.to_numpy()[keep].astype("int64"),
        # object dtype: pandas would otherwise turn None into NaN in a string column
        "genre": pd.Series(_optional_text(raw, columns.get("genre"))[keep], dtype=object),
        "pair_id": pd.Series(_optional_text(raw, columns.get("pair_id"))[keep], dtype=object),
    }, columns=COLUMNS)
    return pairs, int(no_consensus.sum())


def _check_texts(raw: pd.DataFrame, columns: dict[str, str], where: str, row_name: RowName) -> None:
    for canonical in _TEXTS:
        text_ok = raw[columns[canonical]].map(lambda v: isinstance(v, str)).to_numpy()
        if not text_ok.all():
            i = int((~text_ok).argmax())
            raise AdaptlabError(f"{where} {row_name(i)}: {columns[canonical]} is missing or not text")


def _label_text(value) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)  # never a valid label; keeps True from passing as 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # hub labels can arrive as floats after a pandas round trip
    return str(value).strip().lower()


def _optional_text(raw: pd.DataFrame, column: str | None):
    if column is None:
        return pd.Series([None] * len(raw), dtype=object).to_numpy()
    return raw[column].map(lambda v: None if v is None or v == "" else str(v)).to_numpy(dtype=object)
