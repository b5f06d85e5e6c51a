"""Property-based checks of the fraud data readers: any CSV text or bytes, and any frame, gives either a clean
table or an AdaptlabError, never another exception; a clean table holds exactly the values written."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import COLUMNS, FEATURES, LABEL, load_creditcard, validate_schema

READER_SETTINGS = settings(max_examples=60, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

numbers = st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr)
garbled = st.one_of(st.just(""), st.sampled_from(["nan", "inf", "-inf", "NA", "null", "1e400", "0x10", "1,5", "True",
                                                 '"', "'1'", " 2 ", "1_000", "\t"]),
                    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6))
cells = st.one_of(numbers, numbers, numbers, garbled)
labels = st.sampled_from(["0", "1", "0", "1", "2", "0.5", "", "-1", "yes"])


@st.composite
def csv_texts(draw):
    """A header (usually right, sometimes shuffled, short or renamed) and 1-8 rows of cells, some ragged."""
    header = list(COLUMNS)
    variant = draw(st.sampled_from(["right", "right", "right", "shuffled", "short", "renamed"]))
    if variant == "shuffled":
        header = draw(st.permutations(header))
    elif variant == "short":
        header = header[: draw(st.integers(0, len(header) - 1))]
    elif variant == "renamed":
        header[draw(st.integers(0, len(header) - 1))] = draw(st.text(max_size=5))
    rows = []
    mostly_valid = draw(st.booleans())  # else every cell may be garbled: then a clean table is rare
    for _ in range(draw(st.integers(1, 8))):
        if mostly_valid:
            row = [draw(numbers) for _ in FEATURES] + [draw(st.sampled_from(["0", "1"]))]
            if draw(st.integers(0, 3)) == 0:
                row[draw(st.integers(0, len(row) - 1))] = draw(st.one_of(garbled, labels))
        else:
            row = [draw(cells) for _ in FEATURES] + [draw(labels)]
        if draw(st.integers(0, 9)) == 0:  # a ragged row
            row = row[: draw(st.integers(0, len(row)))]
        rows.append(",".join(row))
    return "\n".join([",".join(header), *rows]) + draw(st.sampled_from(["\n", "", "\r\n"]))


def _check_clean(table: pd.DataFrame, rows: int | None = None) -> None:
    assert list(table.columns) == COLUMNS
    assert all(table[c].dtype == np.float64 for c in FEATURES) and table[LABEL].dtype == np.int64
    assert np.isfinite(table[FEATURES].to_numpy()).all() and set(table[LABEL]) <= {0, 1}
    assert rows is None or len(table) == rows


@READER_SETTINGS
@given(text=csv_texts())
def test_garbled_csv_rows_give_a_clean_table_or_one_line_error(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_text(text, encoding="utf-8")
    try:
        table = load_creditcard(path, label_required=False)
    except AdaptlabError as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("clean table")
    _check_clean(table)
    source = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in COLUMNS:  # each value is the number written in the file (an independent parse)
        written = [float(v) for v in source[column]]
        assert all(math.isclose(a, b, rel_tol=0, abs_tol=0) for a, b in zip(table[column], written))


@READER_SETTINGS
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_another_exception(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bytes")
    for name in ("data.csv", "data.parquet"):
        (folder / name).write_bytes(data)
        try:
            _check_clean(load_creditcard(folder / name, label_required=False))
        except AdaptlabError as exc:
            assert "\n" not in str(exc)


column_values = st.one_of(
    st.lists(st.floats(width=64), min_size=3, max_size=3),
    st.lists(st.integers(-2**70, 2**70), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.lists(st.text(max_size=4), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.floats(), st.text(max_size=3), st.integers()), min_size=3, max_size=3),
)


@READER_SETTINGS
@given(replaced=st.dictionaries(st.sampled_from(COLUMNS), column_values, max_size=3))
def test_frames_of_any_dtype_are_validated_or_refused_in_one_line(replaced):
    """A valid 3-row frame with up to 3 columns replaced by values of any kind (dtype object, bool, huge ints...)."""
    frame = pd.DataFrame({name: [0.5, -1.0, 2.0] for name in FEATURES} | {LABEL: [0, 1, 0]})
    for name, values in replaced.items():
        frame[name] = pd.Series(values, dtype=object if any(v is None for v in values) else None)
    try:
        table = validate_schema(frame, "frame")
    except AdaptlabError as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("clean table")
    _check_clean(table, rows=3)
