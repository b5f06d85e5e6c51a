"""Which rows a resampler may see, and the guard every evaluator runs before scoring a split.

Two protocols:

- ``safe`` (the default): split first, resample the *training* rows only. Validation and test rows are
  never shown to the resampler, so they can be neither synthetic nor parents of synthetic rows: no leakage
  by construction, and :func:`guard_scoring` checks it again from the recorded provenance.
- ``paper``: what the reference study's source paper did: resample the *whole* data set, then split the
  resampled rows (20% test, then 25% of the rest validation, stratified, seeded). Synthetic rows and
  their parents land in every part, so test scores are inflated. It runs only when asked for by name,
  and everything it produces carries ``leaky=True`` (use :func:`mark_leaky` on titles and table rows).

Provenance is kept in *original dataset row ids* (positions in the full X given to ``prepare_*``):
each prepared row has a ``row_id`` (``NO_ROW`` for a synthetic row) and two ``parent_ids`` (both
``NO_ROW`` for an original row). Samplers that record parents (our ADASYN's ``provenance_``, imblearn's
``sample_indices_``) give exact parents; for any other imbalanced-learn over-sampler the parents are
``UNKNOWN_PARENT`` and the guard assumes every row the sampler saw may have been a parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from adaptlab.errors import AdaptlabError, first_line
from adaptlab.fraud.data import TIME, split_positions
from adaptlab.fraud.samplers import make_sampler

SAFE, PAPER = "safe", "paper"
PROTOCOLS = (SAFE, PAPER)
NO_ROW = -1  # row_id of a synthetic row; parent_ids of an original row
UNKNOWN_PARENT = -2  # parent of a synthetic row whose sampler records no provenance
LEAKY = "LEAKY"


class LeakageError(AdaptlabError):
    """Refusal to score a split that shares information with the training rows."""


@dataclass(frozen=True)
class Part:
    """One prepared part (train, val or test): features, labels and where every row came from."""

    name: str
    X: np.ndarray
    y: np.ndarray
    row_ids: np.ndarray  # (n,) original dataset row id; NO_ROW for a synthetic row
    parent_ids: np.ndarray  # (n, 2) original ids of a synthetic row's parents; NO_ROW for an original row

    @property
    def synthetic(self) -> np.ndarray:
        """Boolean mask of synthetic rows."""
        return self.row_ids == NO_ROW

    def parents_of_synthetic(self) -> np.ndarray:
        """Sorted unique original ids that are parents of this part's synthetic rows (known ones only)."""
        parents = self.parent_ids[self.synthetic].ravel()
        return np.unique(parents[parents >= 0])


@dataclass(frozen=True)
class PreparedData:
    """The three parts of one protocol run. ``parent_pool``: original ids the resampler saw."""

    protocol: str
    leaky: bool
    train: Part
    val: Part
    test: Part
    parent_pool: np.ndarray

    def parts(self) -> tuple[Part, Part, Part]:
        return self.train, self.val, self.test

    def part(self, name: str) -> Part:
        for part in self.parts():
            if part.name == name:
                return part
        raise AdaptlabError(f"no part named {name!r}; parts are train, val, test")

    def summary(self) -> dict:
        """Per part: rows, synthetic rows, and rows that are parents of synthetic training rows."""
        parents = _training_parents(self)
        return {"protocol": self.protocol, "leaky": self.leaky, **{
            part.name: {"rows": int(len(part.y)), "synthetic_rows": int(part.synthetic.sum()),
                        "parents_of_training_synthetic_rows": int(np.isin(part.row_ids, parents).sum())}
            for part in self.parts()}}


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`guard_scoring` found in one scored part (all counts are rows of that part)."""

    part: str
    protocol: str
    synthetic_rows: int  # synthetic rows in the scored part
    parent_rows: int  # original rows whose id was (or, with unknown provenance, may have been) a parent
    training_rows: int  # original rows that are also training rows
    leaky: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def prepare(X, y, *, protocol: str = SAFE, split=None, sampler=None, seed: int = 0,
            splitter: Callable | None = None, test_size: float = 0.2, val_size: float = 0.25) -> PreparedData:
    """Dispatch on ``protocol``: :func:`prepare_safe` (needs ``split``) or :func:`prepare_paper`
    (``splitter``, ``test_size`` and ``val_size`` are its re-split of the resampled rows)."""
    if protocol == SAFE:
        if split is None:
            raise AdaptlabError("the safe protocol needs the train/val/test split of the original rows")
        return prepare_safe(X, y, split, sampler)
    if protocol == PAPER:
        return prepare_paper(X, y, sampler, seed, splitter=splitter, test_size=test_size, val_size=val_size)
    raise AdaptlabError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def prepare_safe(X, y, split, sampler=None) -> PreparedData:
    """Resample the training rows only (``sampler=None``: no resampling).

    ``split``: an object with ``train``, ``val``, ``test`` integer position arrays into X (such as
    ``adaptlab.fraud.data.Split``) or a (train, val, test) tuple; they must be disjoint.
    """
    X, y = _as_arrays(X, y)
    train, val, test = _check_split(split, len(y))
    parts = [_original_part("val", X, y, val), _original_part("test", X, y, test)]
    if sampler is None:
        train_part = _original_part("train", X, y, train)
    else:
        train_part = _resampled_part("train", sampler, X[train], y[train], train)
    return PreparedData(SAFE, False, train_part, *parts, parent_pool=np.sort(train))


def prepare_paper(X, y, sampler, seed: int, *, splitter: Callable | None = None, test_size: float = 0.2,
                  val_size: float = 0.25) -> PreparedData:
    """LEAKY by design: resample every row, then split the resampled rows.

    ``splitter(X_resampled, y_resampled, seed) -> (train, val, test)`` positions into the resampled rows
    (e.g. a time split over the resampled Time column); default: the stratified
    :func:`adaptlab.fraud.data.split_positions` (``test_size`` test, then ``val_size`` of the rest validation).
    """
    if sampler is None:
        raise AdaptlabError("the paper protocol is about resampling before splitting: give it a sampler")
    X, y = _as_arrays(X, y)
    everything = _resampled_part("all", sampler, X, y, np.arange(len(y)))
    if splitter is None:
        positions = split_positions(everything.y, "stratified", seed, test_size, val_size)
    else:
        positions = _check_split(splitter(everything.X, everything.y, seed), len(everything.y))
    train, val, test = (_subset(everything, name, pos) for name, pos in zip(("train", "val", "test"), positions))
    return PreparedData(PAPER, True, train, val, test, parent_pool=np.arange(len(y)))


def prepare_protocol(protocol: str, sampler, split_method: str, seed: int, X: np.ndarray, y: np.ndarray,
                     split, test_size: float = 0.2, val_size: float = 0.25) -> PreparedData:
    """Train/val/test parts of the credit-card rows under ``protocol`` (safe: resample ``split``'s training
    rows; paper: resample all rows, then re-split them with the same :func:`split_positions` and sizes as
    the data's split; a time re-split orders rows by their Time feature: a synthetic row carries its
    interpolated Time)."""
    def resplit(X_res: np.ndarray, y_res: np.ndarray, seed: int):
        return split_positions(y_res, split_method, seed, test_size, val_size, times=X_res[:, TIME])

    return prepare(X, y, protocol=protocol, split=split, sampler=sampler, seed=seed, splitter=resplit)


def prepare_method(method, config, seed: int, X: np.ndarray, y: np.ndarray, split) -> PreparedData:
    """The parts of one comparison row (``method.protocol``, ``method.resampler``) under ``config``'s split
    settings; the row's sampler is built here, once, seeded with ``seed``."""
    sampler = make_sampler(method.resampler, config, seed) if method.resampler else None
    return prepare_protocol(method.protocol, sampler, config.split, seed, X, y, split, config.test_size,
                            config.val_size)


def guard_scoring(data: PreparedData, part_name: str) -> LeakageReport:
    """Check a part before scoring it. Under ``safe`` any synthetic row, any row that was (or, with
    unknown provenance, could have been) a parent of a synthetic training row, or any training row in it
    raises :class:`LeakageError`. Under ``paper`` the same findings are returned with ``leaky=True``."""
    part = data.part(part_name)
    if part_name == "train":
        raise LeakageError("refusing to score the training part: scores must come from held-out rows")
    originals = part.row_ids[~part.synthetic]
    parents = _training_parents(data)
    unknown = (data.train.parent_ids[data.train.synthetic] == UNKNOWN_PARENT).any()
    possible_parents = np.union1d(parents, data.parent_pool) if unknown else parents
    report = LeakageReport(
        part=part_name, protocol=data.protocol, synthetic_rows=int(part.synthetic.sum()),
        parent_rows=int(np.isin(originals, possible_parents).sum()),
        training_rows=int(np.isin(originals, data.train.row_ids[~data.train.synthetic]).sum()),
        leaky=data.leaky)
    found = report.synthetic_rows or report.parent_rows or report.training_rows
    if found and not data.leaky:
        raise LeakageError(
            f"refusing to score the {part_name} part: it holds {report.synthetic_rows} synthetic row(s), "
            f"{report.parent_rows} parent(s) of synthetic training rows and {report.training_rows} training "
            "row(s); only the explicit paper protocol may score such a split (and it is marked LEAKY)")
    return report


def mark_leaky(text: str, leaky: bool) -> str:
    """``text`` prefixed with ``LEAKY:`` when it describes a leaky run (titles, headings, table rows)."""
    return f"{LEAKY}: {text}" if leaky else text


def _training_parents(data: PreparedData) -> np.ndarray:
    return data.train.parents_of_synthetic()


def _as_arrays(X, y) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise AdaptlabError(f"expected X of shape (n, features) and y of shape (n,); got {X.shape} and {y.shape}")
    return X, y


def _check_split(split, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = (split.train, split.val, split.test) if hasattr(split, "train") else tuple(split)
    if len(parts) != 3:
        raise AdaptlabError("a split is three position arrays: train, val, test")
    arrays = []
    for name, positions in zip(("train", "val", "test"), parts):
        positions = np.asarray(positions)
        if positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
            raise AdaptlabError(f"split part {name} must be a 1-d array of integer row positions")
        if len(positions) and (positions.min() < 0 or positions.max() >= n_rows):
            raise AdaptlabError(f"split part {name} has positions outside 0..{n_rows - 1}")
        if len(np.unique(positions)) != len(positions):
            raise AdaptlabError(f"split part {name} lists a row twice")
        arrays.append(positions.astype(np.int64))
    for a, b, names in ((0, 1, "train and val"), (0, 2, "train and test"), (1, 2, "val and test")):
        shared = np.intersect1d(arrays[a], arrays[b])
        if len(shared):
            raise AdaptlabError(f"split parts {names} share {len(shared)} row(s) (first: {shared[0]})")
    return tuple(arrays)


def _original_part(name: str, X: np.ndarray, y: np.ndarray, positions: np.ndarray) -> Part:
    return Part(name, X[positions], y[positions], positions.copy(), np.full((len(positions), 2), NO_ROW))


def _subset(part: Part, name: str, positions: np.ndarray) -> Part:
    return Part(name, part.X[positions], part.y[positions], part.row_ids[positions], part.parent_ids[positions])


def _resampled_part(name: str, sampler, X: np.ndarray, y: np.ndarray, row_ids: np.ndarray) -> Part:
    """Run an imbalanced-learn over-sampler and express its output rows in original ids."""
    try:
        X_res, y_res = sampler.fit_resample(X, y)
    except AdaptlabError:
        raise
    except ValueError as exc:  # e.g. SMOTE's k_neighbors=5 needs at least 6 minority rows
        what = type(getattr(sampler, "sampler", sampler)).__name__  # the sampler inside a Standardised wrapper
        counts = ", ".join(f"{int(np.sum(y == label)):,} of class {label}" for label in np.unique(y))
        raise AdaptlabError(f"{what} cannot resample the {name} rows ({counts}): "
                            f"{first_line(exc)}") from None
    X_res, y_res = np.asarray(X_res), np.asarray(y_res)
    n_in, n_new = len(y), len(y_res) - len(y)
    if n_new < 0 or not (np.array_equal(X_res[:n_in], X) and np.array_equal(y_res[:n_in], y)):
        raise AdaptlabError(f"{type(sampler).__name__} did not return its input rows first and unchanged; "
                            "only over-samplers that append new rows can be tracked")
    if hasattr(sampler, "provenance_"):  # our ADASYN: both parents, as input positions
        parents = row_ids[np.asarray(sampler.provenance_, dtype=np.int64)]
    elif hasattr(sampler, "sample_indices_"):  # random over-sampling: a new row is a copy of one row
        source = row_ids[np.asarray(sampler.sample_indices_, dtype=np.int64)[n_in:]]
        parents = np.column_stack([source, source])
    else:
        parents = np.full((n_new, 2), UNKNOWN_PARENT)
    if parents.shape != (n_new, 2):
        raise AdaptlabError(f"{type(sampler).__name__} recorded provenance for {len(parents)} of {n_new} new rows")
    ids = np.concatenate([row_ids, np.full(n_new, NO_ROW)])
    parent_ids = np.vstack([np.full((n_in, 2), NO_ROW), parents])
    return Part(name, X_res, y_res, ids.astype(np.int64), parent_ids.astype(np.int64))
