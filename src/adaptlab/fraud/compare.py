"""``adaptlab fraud compare``: every way of handling the imbalance, on the same data, split and seeds.

The rows are the methods of :mod:`adaptlab.fraud.methods` (``--methods``, default
:data:`~adaptlab.fraud.methods.DEFAULT_METHODS`). ``--protocol paper`` adds the paper-protocol (LEAKY)
twin ``<name>-paper`` of every selected resampling row, so the inflation can be read per resampler;
``safe`` (the default) runs only what was selected. Every part is checked by
:func:`adaptlab.fraud.protocols.guard_scoring` before it is scored: a safe row whose validation or test
part held a synthetic row or a parent could not be scored at all.
"""

from __future__ import annotations

import signal
import sys
import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from adaptlab.core.metrics import best_f1_threshold
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.config import CompareConfig
from adaptlab.fraud.data import AMOUNT, Split, split_indices
from adaptlab.fraud.evaluation import evaluate_parts
from adaptlab.fraud.methods import Method
from adaptlab.fraud.model import predict_proba, train_mlp
from adaptlab.fraud.protocols import PreparedData, guard_scoring, prepare_method


# ------------------------------------------------------------------------------------------- one row

def run_method(method: Method, config: CompareConfig, seed: int, X: np.ndarray, y: np.ndarray, split: Split,
               progress: bool = False) -> dict:
    """Prepare, guard, train, score val/test, evaluate at 0.5 and at the val-F1 threshold.

    Returns plain numbers plus the test labels/scores (``"_test"``, for plots and the bootstrap).
    Times in seconds: ``resample_seconds`` (protocol preparation incl. resampling), ``fit_seconds``
    (model training), ``train_seconds`` (both).
    """
    started = time.perf_counter()
    data = prepare_method(method, config, seed, X, y, split)
    resample_s = time.perf_counter() - started
    guards = {name: guard_scoring(data, name).to_dict() for name in ("val", "test")}  # raises on a safe leak
    for name in ("val", "test"):
        if len(np.unique(data.part(name).y)) < 2:
            raise AdaptlabError(f"{method.label}: the {name} part has only one class; provide more data")
    fitted = time.perf_counter()
    if method.model == "lightgbm":
        scorer, details = _fit_lightgbm(data, config, seed)
    else:
        result = train_mlp(data.train.X, data.train.y, data.val.X, data.val.y,
                           config.train_config(seed, method.pos_weight), progress=progress, score_train=False)
        scorer = lambda rows: predict_proba(result.model, result.scaler, rows)  # noqa: E731
        details = {"epochs_run": len(result.history), "best_epoch": result.best_epoch}
    fit_s = time.perf_counter() - fitted
    scores = {name: scorer(data.part(name).X) for name in ("val", "test")}
    threshold = best_f1_threshold(data.val.y, scores["val"])
    # amounts from the rows themselves: a synthetic row's Amount is its interpolated feature value
    metrics = evaluate_parts({name: (data.part(name).y, scores[name], data.part(name).X[:, AMOUNT])
                              for name in ("val", "test")}, threshold)
    return {"seed": seed, "protocol": method.protocol, "leaky": method.leaky,
            "parts": data.summary(), "guard": guards, "train_rows": int(len(data.train.y)),
            "train_frauds": int(data.train.y.sum()), "resample_seconds": resample_s, "fit_seconds": fit_s,
            "train_seconds": resample_s + fit_s, "val_f1_threshold": threshold, "model": details,
            "metrics": metrics, "_test": (data.test.y, scores["test"])}


def _fit_lightgbm(data: PreparedData, config: CompareConfig, seed: int):
    """LightGBM, seeded and deterministic, early-stopped on validation average precision."""
    import lightgbm

    model = lightgbm.LGBMClassifier(
        n_estimators=1000, learning_rate=0.05, num_leaves=31, min_child_samples=20, subsample=0.8,
        subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, metric="average_precision", random_state=seed,
        n_jobs=config.lightgbm_jobs, deterministic=True, force_row_wise=True, verbose=-1)
    with warnings.catch_warnings():  # lightgbm >= 4.6 prefers eval_X/eval_y; eval_set works on every 4.x
        warnings.filterwarnings("ignore", message=".*eval_set.*deprecated")
        model.fit(data.train.X, data.train.y, eval_set=[(data.val.X, data.val.y)],
                  callbacks=[lightgbm.early_stopping(50, verbose=False)])
    return (lambda rows: model.predict_proba(rows)[:, 1]), {"best_iteration": int(model.best_iteration_)}


LIGHTGBM_PARAMS = ("1000 rounds at most, learning rate 0.05, 31 leaves, min 20 rows per leaf, row and column "
                   "subsampling 0.8, L2 1.0, early stopping after 50 rounds without a better validation AUPRC, "
                   "deterministic, row-wise, seeded")


def run_all(config: CompareConfig, X: np.ndarray, y: np.ndarray, frame, quiet: bool = False) -> dict:
    """``{seed: {"split": Split, "rows": {method name: run_method result}}}`` for every seed and row.

    With more than one worker (:meth:`CompareConfig.resolved_workers`) the rows run in worker processes;
    every row seeds its own resampler and model, so the numbers are those of a run one row at a time.
    """
    methods = config.selected()
    splits = {seed: split_indices(frame, config.split, seed, config.test_size, config.val_size)
              for seed in config.seeds}
    jobs = [(seed, method) for seed in config.seeds for method in methods]
    workers = config.resolved_workers()
    finished: dict[tuple[int, str], dict] = {}

    def say(line: str) -> None:
        if not quiet:  # tqdm.write: the line goes above any progress bar instead of through it
            tqdm.write(line, file=sys.stderr)

    def report(done: int, seed: int, method: Method, row: dict) -> None:
        finished[seed, method.name] = row
        test = row["metrics"]["test"]["at_0.5"]
        say(f"[{done}/{len(jobs)}] seed {seed}: {method.label}: test AUPRC {test['average_precision']:.4f}, "
            f"{row['train_rows']:,} training rows, {row['train_seconds']:.1f} s")

    if workers == 1:
        for done, (seed, method) in enumerate(jobs, 1):
            say(f"[{done}/{len(jobs)}] seed {seed}: {method.label} — {method.description}")
            report(done, seed, method, run_method(method, config, seed, X, y, splits[seed], progress=not quiet))
    else:
        say(f"running {len(jobs)} rows in {workers} worker processes")
        # the workers print nothing: one bar counts finished rows, each row's line is written above it
        with tqdm(total=len(jobs), desc="rows", unit="row", disable=quiet) as bar:
            for done, (seed, method, row) in enumerate(_run_in_workers(jobs, workers, config, X, y, splits), 1):
                report(done, seed, method, row)
                bar.update(1)
    return {seed: {"split": splits[seed], "rows": {m.name: finished[seed, m.name] for m in methods}}
            for seed in config.seeds}


# The arrays a worker process receives once, when it starts (not once per row).
_WORKER_DATA: dict = {}


def _start_worker(X: np.ndarray, y: np.ndarray, splits: dict) -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent alone reports it and stops the
    # pool, instead of each worker printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_DATA.update(X=X, y=y, splits=splits)


def _run_job(job: tuple[int, Method, CompareConfig]) -> tuple[int, Method, dict]:
    seed, method, config = job
    data = _WORKER_DATA
    return seed, method, run_method(method, config, seed, data["X"], data["y"], data["splits"][seed])


def _run_in_workers(jobs: list, workers: int, config: CompareConfig, X, y, splits: dict):
    """Yield ``(seed, method, result)`` as rows finish, longest rows first so the last to start are short.
    "spawn" processes: forking a parent whose torch/OpenMP threads already ran can deadlock the child."""
    import multiprocessing

    # paper rows resample all rows, resampled rows train on about twice the rows of the others, LightGBM
    # takes about two MLP fits: that order keeps both workers busy to the end (sorted() is stable)
    ordered = sorted(jobs, key=lambda job: (not job[1].leaky, job[1].resampler is None, job[1].model != "lightgbm"))
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(workers, initializer=_start_worker, initargs=(X, y, splits))
    try:
        yield from pool.imap_unordered(_run_job, [(seed, method, config) for seed, method in ordered])
    except BaseException:  # an error, Ctrl-C or the caller giving up: stop the rows still running
        pool.terminate()
        raise
    else:
        pool.close()  # let the workers exit on their own: a killed worker leaks its semaphores
    finally:
        pool.join()
