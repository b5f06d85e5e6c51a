"""Every schema error gives one clear line naming the column and row; valid files load canonically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import COLUMNS, FEATURES, load_creditcard, validate_schema


def _write(frame: pd.DataFrame, path, kind="csv"):
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _error(path) -> str:
    with pytest.raises(AdaptlabError) as info:
        load_creditcard(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_valid_file_loads_in_canonical_order_and_types(make_frame, tmp_path, kind):
    frame = make_frame(30, 3)
    shuffled = frame[list(reversed(COLUMNS))]
    loaded = load_creditcard(_write(shuffled, tmp_path / f"d.{kind}", kind))
    assert list(loaded.columns) == COLUMNS
    assert loaded["Class"].dtype == np.int64 and all(loaded[c].dtype == np.float64 for c in FEATURES)
    np.testing.assert_allclose(loaded[FEATURES].to_numpy(), frame[FEATURES].to_numpy())
    assert loaded["Class"].tolist() == frame["Class"].tolist()


def test_missing_column(make_frame, tmp_path):
    message = _error(_write(make_frame(10, 2).drop(columns=["V7"]), tmp_path / "d.csv"))
    assert "missing column(s) V7" in message and "expected exactly Time, V1" in message


def test_unexpected_column(make_frame, tmp_path):
    frame = make_frame(10, 2).assign(Extra=1.0)
    assert "unexpected column(s) Extra" in _error(_write(frame, tmp_path / "d.csv"))


def test_non_numeric_value_names_column_and_row(make_frame, tmp_path):
    frame = make_frame(10, 2).astype({"V3": object})
    frame.loc[4, "V3"] = "abc"
    assert _error(_write(frame, tmp_path / "d.csv")).endswith("column V3, row 5: value 'abc' is not a number")


def test_missing_value(make_frame, tmp_path):
    frame = make_frame(10, 2)
    frame.loc[7, "Amount"] = np.nan
    assert "column Amount, row 8: value is missing" in _error(_write(frame, tmp_path / "d.csv"))


def test_infinite_value(make_frame, tmp_path):
    frame = make_frame(10, 2)
    frame.loc[2, "V28"] = np.inf
    assert "column V28, row 3: value is not finite (inf)" in _error(_write(frame, tmp_path / "d.parquet", "parquet"))


def test_class_outside_0_1(make_frame, tmp_path):
    frame = make_frame(10, 2)
    frame.loc[6, "Class"] = 2
    assert "column Class, row 7: value 2 is not 0 or 1" in _error(_write(frame, tmp_path / "d.csv"))


@pytest.mark.parametrize(("n_normal", "n_fraud", "missing"), [(10, 0, "fraud (Class 1)"), (0, 4, "normal (Class 0)")])
def test_each_class_needs_a_row(make_frame, tmp_path, n_normal, n_fraud, missing):
    message = _error(_write(make_frame(n_normal, n_fraud), tmp_path / "d.csv"))
    assert f"no {missing} rows" in message


def test_no_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(",".join(COLUMNS) + "\n")
    assert _error(path).endswith("has no rows")


def test_missing_file_and_unreadable_parquet(tmp_path):
    assert _error(tmp_path / "absent.csv") == f"data file not found: {tmp_path / 'absent.csv'}"
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 but not really")
    assert "cannot read as parquet" in _error(broken)


def test_class_optional_for_scoring_but_checked_when_present(make_frame):
    features = make_frame(5, 1)[FEATURES]
    assert list(validate_schema(features, "x", label_required=False).columns) == FEATURES
    with pytest.raises(AdaptlabError, match="missing column"):
        validate_schema(features, "x")
    all_normal = make_frame(5, 1).assign(Class=0)  # new transactions may all be normal
    assert validate_schema(all_normal, "x", label_required=False)["Class"].tolist() == [0] * 6
    wrong = make_frame(5, 1).assign(Class=[0, 0, 0, 0, 0, 5])
    with pytest.raises(AdaptlabError, match="not 0 or 1"):
        validate_schema(wrong, "x", label_required=False)


@pytest.mark.parametrize("convert", [lambda t: pd.to_datetime(t, unit="s"), lambda t: pd.to_timedelta(t, unit="s"),
                                     lambda t: pd.to_datetime(t, unit="s").dt.tz_localize("UTC")])
def test_datetime_or_timedelta_time_column_is_refused(make_frame, tmp_path, convert):
    frame = make_frame(95, 5)
    frame["Time"] = convert(frame["Time"])
    path = tmp_path / "dated.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(AdaptlabError, match=r"dated.parquet: column Time holds (datetime|timedelta)64.* not numbers"):
        load_creditcard(path)


def test_a_column_name_with_a_newline_is_quoted_in_a_one_line_error(tmp_path):
    from adaptlab.errors import AdaptlabError
    from adaptlab.fraud.data import load_creditcard

    path = tmp_path / "garbled.csv"
    path.write_text('"Ti\nme",V1\n1,2\n')  # a quoted header field holding a line break
    with pytest.raises(AdaptlabError) as caught:
        load_creditcard(path, label_required=False)
    message = str(caught.value)
    assert "\n" not in message and "unexpected column(s) 'Ti\\nme'" in message
