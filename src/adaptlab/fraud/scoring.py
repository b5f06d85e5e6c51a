"""``adaptlab fraud score``: a saved model's fraud probability and flag for each row of a CSV/parquet file.

Files are streamed in chunks of :data:`CHUNK_ROWS` rows: memory stays bounded by the chunk, not the file, so a
file far larger than memory is scored (see ``bench/bench_fraud_score.py``). Each chunk is validated, scored and
written before the next is read. A file output (``--output``) is written to a temporary file and renamed into
place only when every row was scored: an error in the last chunk still leaves nothing behind. Scores on standard
output are streamed as they are computed, so there an error after the first chunk ends a partial table (exit 2).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from adaptlab.core.atomic import atomic_path, check_output_file
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.fraud.data import check_csv_fields
from adaptlab.fraud.model import META_FILE, MLP, Standardizer, load_model, predict_proba_standardised, unscorable_rows

SCORE_COLUMNS = ("row", "probability", "flag")
# 200k rows x ~31 float64 columns is ~50 MB per copy: large enough that per-chunk overhead (parsing setup, a
# forward pass, a write call) is noise, small enough that peak memory stays a few hundred MB for any file size.
CHUNK_ROWS = 200_000
PARQUET_SUFFIXES = {".parquet", ".pq"}


def _model_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir / "model" if (run_dir / "model").is_dir() else run_dir


def saved_model_warning(run_dir: Path) -> str | None:
    """The warning a saved model carries (a paper-protocol, LEAKY model), or None."""
    meta_path = _model_dir(run_dir) / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None  # scoring itself reports a missing or unreadable model in one line
    if not isinstance(meta, dict):
        return None  # likewise a damaged one
    return meta.get("warning") if meta.get("leaky") else None


@dataclass
class FraudScorer:
    """A saved fraud model ready to score feature rows: the MLP, its scaler and its metadata (threshold...)."""

    model: MLP
    scaler: Standardizer
    meta: dict

    @classmethod
    def load(cls, run_dir: Path) -> FraudScorer:
        """From a ``fraud run`` folder (or its ``model/``); damaged or missing files are one-line errors."""
        return cls(*load_model(_model_dir(run_dir)))

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    @property
    def leaky(self) -> bool:
        return bool(self.meta.get("leaky"))

    def standardise(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's input for raw feature rows, and the positions of rows it cannot score (features so large
        that standardising overflows): those must be refused, never reported as "not fraud"."""
        standardised = self.scaler.transform(features)  # once: checked, then scored
        return standardised, unscorable_rows(standardised)

    def score_standardised(self, standardised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(probability, flag)`` (probability >= the saved threshold) for rows from :meth:`standardise`."""
        probability = predict_proba_standardised(self.model, standardised)
        return probability, (probability >= self.threshold).astype(np.int64)

    def score(self, features: np.ndarray, what: str = "data", first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(probability, flag)`` for rows of ``features`` (finite floats, in :attr:`features` order).

        Rows the model cannot score are an error naming them (0-based, counted from ``first_row``).
        """
        standardised, unscorable = self.standardise(features)
        if unscorable.size:
            shown = ", ".join(str(first_row + i) for i in unscorable[:10]) + (", ..." if unscorable.size > 10 else "")
            raise AdaptlabError(f"{what}: {unscorable.size:,} row(s) cannot be scored: their features are too "
                                f"large for the model after standardising (rows {shown}, 0-based); "
                                "nothing was written")
        return self.score_standardised(standardised)


@dataclass
class ScoreSummary:
    rows: int = 0
    flagged: int = 0


def score_file(run_dir: Path, data: Path, out: Path | None = None, *, chunk_rows: int = CHUNK_ROWS,
               stdout=None) -> ScoreSummary:
    """Score every row of a CSV/parquet file; write the scores to ``out`` (CSV, or parquet by suffix) or stdout.

    The output is the input file, every column kept in order (features, ``Class`` when present, an ID...),
    with ``row`` in front (0-based position in the file) and ``probability`` and ``flag`` (probability >= the
    saved threshold) at the end. Only the feature columns are used for scoring.
    """
    scorer = FraudScorer.load(run_dir)
    data = Path(data)
    summary = ScoreSummary()
    if out is not None:
        check_output_file(out)  # before reading and scoring a file that may be large
    with _sink(out, stdout or sys.stdout) as write:
        for raw in read_chunks(data, chunk_rows):
            result = score_chunk(scorer, raw, str(data), first_row=summary.rows)
            write(result)
            summary.rows += len(result)
            summary.flagged += int(result["flag"].sum())
        if summary.rows == 0:  # a parquet file with a schema and no rows yields no chunk at all
            raise AdaptlabError(f"{data}: has no rows")
    return summary


def score_chunk(scorer: FraudScorer, raw: pd.DataFrame, what: str, first_row: int = 0) -> pd.DataFrame:
    """One chunk of a file, scored: ``row`` + its columns + ``probability`` + ``flag``."""
    from adaptlab.fraud.data import COLUMNS, validate_schema

    clashing = [str(c) for c in raw.columns if str(c) in SCORE_COLUMNS]
    if clashing:
        raise AdaptlabError(f"{what}: column(s) {', '.join(clashing)} would clash with the output columns "
                            f"{', '.join(SCORE_COLUMNS)}; rename them")
    frame = validate_schema(raw[[c for c in raw.columns if str(c) in COLUMNS]], what, label_required=False,
                            first_row=first_row + 1)
    probability, flag = scorer.score(frame[scorer.features].to_numpy(), what, first_row)
    result = raw.reset_index(drop=True)
    result.insert(0, "row", np.arange(first_row, first_row + len(result)))
    result["probability"] = probability
    result["flag"] = flag
    return result


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A CSV or parquet file as consecutive DataFrames of at most ``chunk_rows`` rows; unreadable files (at
    any point, not only the first chunk) are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise AdaptlabError(f"data file not found: {path}")
    is_parquet = path.suffix.lower() in PARQUET_SUFFIXES
    kind = "parquet" if is_parquet else "CSV"
    try:
        if is_parquet:
            import pyarrow.parquet as pq

            # pre_buffer=False: with pyarrow's default read-ahead, every column chunk read stays cached until the
            # file is closed, so memory grew with the file (3.4 GB RSS for 10M rows); without it, it stays flat
            batches = pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=chunk_rows)
            chunks = (batch.to_pandas() for batch in batches)
        else:
            chunks = (check_csv_fields(chunk, path) for chunk in pd.read_csv(path, chunksize=chunk_rows,
                                                                                  low_memory=False))
        yield from chunks
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise AdaptlabError(f"{path}: cannot read as {kind}: {first_line(exc)}") from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid is a ValueError; others are not)
        if type(exc).__module__.startswith("pyarrow"):
            raise AdaptlabError(f"{path}: cannot read as {kind}: {first_line(exc)}") from None
        raise


def _csv_bytes(frame: pd.DataFrame, header: bool) -> bytes:
    """``frame`` as CSV through pyarrow's writer: ~10x faster than ``DataFrame.to_csv`` on float columns (2.6 s
    against 27 s for 200,000 ULB rows here), which would otherwise dominate scoring a CSV file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buffer = pa.BufferOutputStream()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buffer,
                    pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    body = buffer.getvalue().to_pybytes()
    if not header:
        return body
    line = io.StringIO()  # pyarrow quotes every header name; the csv module only those that need it, as pandas
    csv.writer(line, lineterminator="\n").writerow([str(c) for c in frame.columns])
    return line.getvalue().encode() + body


class _CsvChunks:
    """``write(frame)`` for consecutive chunks of one CSV table: the header goes before the first chunk only."""

    def __init__(self, emit):
        self.emit, self.started = emit, False

    def __call__(self, frame: pd.DataFrame) -> None:
        self.emit(_csv_bytes(frame, header=not self.started))
        self.started = True


class _ParquetChunks:
    """``write(frame)`` for consecutive chunks of one parquet file; the schema is the first chunk's."""

    def __init__(self, path: Path):
        self.path, self.writer = path, None

    def __call__(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            # dictionary-encoding float columns of distinct values is wasted work (7x the write time of
            # 200,000 ULB rows here); IDs and other text columns keep it
            categorical = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
            self.writer = pq.ParquetWriter(self.path, table.schema, use_dictionary=categorical)
        elif table.schema != self.writer.schema:  # a column typed differently in a later chunk
            table = table.cast(self.writer.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextmanager
def _sink(out: Path | None, stdout):
    """A ``write(frame)`` callable: CSV chunks on stdout, or a CSV/parquet file that appears only when complete."""
    if out is None:
        yield _CsvChunks(lambda data: stdout.write(data.decode()))
        return
    out = Path(out)
    try:
        with atomic_path(out) as tmp:
            if out.suffix.lower() in PARQUET_SUFFIXES:
                writer = _ParquetChunks(tmp)
                try:
                    yield writer
                finally:
                    writer.close()
            else:
                with open(tmp, "wb") as handle:
                    yield _CsvChunks(handle.write)
    except OSError as exc:
        raise AdaptlabError(f"cannot write the scores to {out}: {exc.strerror or exc}") from None
