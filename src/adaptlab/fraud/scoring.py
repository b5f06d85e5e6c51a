"""``adaptlab fraud score``: a saved model's fraud probability and flag for each row of a CSV/parquet file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from adaptlab.core.atomic import atomic_path, check_output_file
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.model import META_FILE, load_model, predict_proba_standardised, unscorable_rows


SCORE_COLUMNS = ("row", "probability", "flag")


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


def score_file(run_dir: Path, data: Path, out: Path | None = None) -> pd.DataFrame:
    """Per-row fraud probability and flag (probability >= the saved threshold) for a CSV/parquet file.

    The output is the input file, every column kept in order (features, ``Class`` when present, an ID...),
    with ``row`` in front (0-based position in the file, pandas' own row numbering) and ``probability``
    and ``flag`` at the end. Only the feature columns are used for scoring.
    """
    from adaptlab.fraud.data import COLUMNS, read_table, validate_schema

    if out is not None:
        check_output_file(out)  # before reading and scoring a file that may be large
    model, scaler, meta = load_model(_model_dir(run_dir))
    raw = read_table(Path(data))
    clashing = [str(c) for c in raw.columns if str(c) in SCORE_COLUMNS]
    if clashing:
        raise AdaptlabError(f"{data}: column(s) {', '.join(clashing)} would clash with the output columns "
                            f"{', '.join(SCORE_COLUMNS)}; rename them")
    frame = validate_schema(raw[[c for c in raw.columns if str(c) in COLUMNS]], str(data), label_required=False)
    standardised = scaler.transform(frame[meta["features"]].to_numpy())  # once: checked, then scored
    unscorable = unscorable_rows(standardised)
    if unscorable.size:
        shown = ", ".join(map(str, unscorable[:10])) + (", ..." if unscorable.size > 10 else "")
        raise AdaptlabError(f"{data}: {unscorable.size:,} row(s) cannot be scored: their features are too large "
                            f"for the model after standardising (rows {shown}, 0-based); nothing was written")
    probability = predict_proba_standardised(model, standardised)
    result = raw.reset_index(drop=True)
    result.insert(0, "row", np.arange(len(result)))
    result["probability"] = probability
    result["flag"] = (probability >= meta["threshold"]).astype(int)
    if out is not None:
        _write_scores(result, Path(out))
    return result


def _write_scores(result: pd.DataFrame, out: Path) -> None:
    """CSV written atomically: a crash never leaves a half-written scores file, nor a temp file."""
    try:
        with atomic_path(out) as tmp:
            result.to_csv(tmp, index=False)
    except OSError as exc:
        raise AdaptlabError(f"cannot write the scores to {out}: {exc.strerror or exc}") from None
