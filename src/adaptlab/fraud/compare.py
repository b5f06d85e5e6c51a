"""``adaptlab fraud compare``: every way of handling the imbalance, on the same data, split and seeds.

Rows (``--methods``, default all of :data:`DEFAULT_METHODS`):

- ``none``: the MLP on the original training rows.
- ``class-weights``: the same MLP with ``pos_weight = n_normal / n_fraud`` of the training rows.
- ``random-over``, ``smote``, ``adasyn`` (ours, reference parameters), ``imblearn-adasyn``
  (``n_neighbors=5``): resample the training rows (safe protocol), then the MLP.
- ``adasyn-paper``: our ADASYN under the paper protocol: resample all rows, then split. LEAKY.
- ``lightgbm``: gradient-boosted trees on the original training rows (what users pick instead).

``--protocol paper`` adds the paper-protocol (LEAKY) twin ``<name>-paper`` of every selected resampling
row, so the inflation can be read per resampler; ``safe`` (the default) runs only what was selected.
Every part is checked by :func:`adaptlab.fraud.protocols.guard_scoring` before it is scored: a safe
row whose validation or test part held a synthetic row or a parent could not be scored at all.

k-NN resamplers (SMOTE, both ADASYNs) see *standardised* features (statistics of the rows they
resample): on raw features the Euclidean distance is Time (seconds, range ~172,800) and Amount (EUR)
and nothing else. Interpolation commutes with that affine map, so synthetic rows come back in raw units.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from adaptlab.core.metrics import best_f1_threshold
from adaptlab.errors import AdaptlabError
from adaptlab.core.checks import is_int, is_seed
from adaptlab.fraud.data import FEATURES, Split, split_indices, split_positions
from adaptlab.fraud.evaluation import evaluate_parts
from adaptlab.fraud.model import TrainConfig, predict_proba, train_mlp
from adaptlab.fraud.protocols import PAPER, SAFE, PreparedData, guard_scoring, mark_leaky, prepare

AMOUNT = FEATURES.index("Amount")
TIME = FEATURES.index("Time")
_TRAIN = TrainConfig()


# ------------------------------------------------------------------------------------------ the config

@dataclass
class CompareConfig:
    """Everything ``fraud compare`` depends on; saved as ``config.yaml`` in the run folder."""

    name: str = "fraud-compare"
    data: str | None = None
    split: str = "stratified"
    test_size: float = 0.2
    val_size: float = 0.25
    seeds: list[int] = field(default_factory=lambda: [_TRAIN.seed])  # each: split, sampler and model seed
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    protocol: str = SAFE
    hidden_sizes: list[int] = field(default_factory=lambda: list(_TRAIN.hidden_sizes))
    dropout: float = _TRAIN.dropout
    lr: float = _TRAIN.lr
    batch_size: int = _TRAIN.batch_size
    # Fewer than `fraud run` (40 / 6): oversampled training sets are ~2x larger (~2x the time per epoch)
    # and the MLP peaks within ~10 epochs on this data; 20 / 4 keeps 8 rows within a few minutes.
    epochs: int = 20
    patience: int = 4
    threads: int = _TRAIN.threads
    adasyn_ratio: float = 1.0
    adasyn_imb_threshold: float = 0.6
    adasyn_k: int = 5000
    imblearn_adasyn_neighbors: int = 5
    lightgbm_jobs: int = 1
    bootstrap: int = 200  # stratified bootstrap resamples of the test split for AUPRC intervals (0: none)

    def validate(self) -> None:
        from adaptlab.fraud.study import FraudConfig  # the shared keys are validated by the study's rules

        # protocol is compare's own key here (it adds paper twins); every other shared key, the ADASYN
        # parameters included, follows the study's rules
        shared = {f.name for f in dataclasses.fields(FraudConfig)} & {f.name for f in dataclasses.fields(self)}
        FraudConfig(**{key: getattr(self, key) for key in shared - {"protocol"}}).validate()
        problems = []
        if not (isinstance(self.seeds, list) and self.seeds and all(is_seed(s) for s in self.seeds)):
            problems.append(f"seeds must be a non-empty list of integers from 0 to 2**32 - 1, not {self.seeds!r}")
        elif len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds lists a seed twice: {self.seeds}")
        if self.protocol not in (SAFE, PAPER):
            problems.append(f"protocol must be safe or paper, not {self.protocol!r}")
        if not (isinstance(self.methods, list) and self.methods):
            problems.append(f"methods must be a non-empty list, not {self.methods!r}")
        else:
            unknown = [m for m in self.methods if m not in METHODS]
            if unknown:
                problems.append(f"unknown method(s) {', '.join(map(repr, unknown))}; choose from {', '.join(METHODS)}")
            elif len(set(self.methods)) != len(self.methods):
                problems.append(f"methods lists a method twice: {', '.join(self.methods)}")
        if not (is_int(self.lightgbm_jobs) and self.lightgbm_jobs > 0):
            problems.append(f"lightgbm_jobs must be a positive integer, not {self.lightgbm_jobs!r}")
        if not (is_int(self.bootstrap) and self.bootstrap >= 0):
            problems.append(f"bootstrap must be a non-negative integer, not {self.bootstrap!r}")
        if problems:
            raise AdaptlabError("invalid config: " + "; ".join(problems))

    def selected(self) -> list["Method"]:
        """The rows to run, in order: the chosen methods, plus paper twins under ``protocol: paper``."""
        names = list(self.methods)
        if self.protocol == PAPER:
            for name in self.methods:
                twin = f"{name}-paper"
                if name in RESAMPLERS and twin not in names:
                    names.insert(names.index(name) + 1, twin)
        return [METHODS[name] for name in names]

    def training(self, seed: int, pos_weight: str | None) -> TrainConfig:
        return TrainConfig(hidden_sizes=list(self.hidden_sizes), dropout=self.dropout, lr=self.lr,
                           batch_size=self.batch_size, epochs=self.epochs, patience=self.patience,
                           pos_weight=pos_weight, seed=seed, threads=self.threads)


# ----------------------------------------------------------------------------------------- the methods

def _random_over(config: CompareConfig, seed: int):
    from imblearn.over_sampling import RandomOverSampler
    return RandomOverSampler(random_state=seed)


def _smote(config: CompareConfig, seed: int):
    from imblearn.over_sampling import SMOTE
    return SMOTE(random_state=seed)  # k_neighbors=5, imbalanced-learn's default


def _our_adasyn(config: CompareConfig, seed: int):
    from adaptlab.fraud.resample import ADASYN
    return ADASYN(ratio=config.adasyn_ratio, imb_threshold=config.adasyn_imb_threshold, k=config.adasyn_k,
                  random_state=seed)


def _imblearn_adasyn(config: CompareConfig, seed: int):
    from imblearn.over_sampling import ADASYN
    return ADASYN(n_neighbors=config.imblearn_adasyn_neighbors, random_state=seed)


# name -> (what it is, factory(config, seed) -> an imbalanced-learn over-sampler); ``config`` is any
# config with the adasyn_* / imblearn_adasyn_neighbors keys (CompareConfig, the study's FraudConfig)
RESAMPLERS: dict[str, tuple[str, Callable]] = {
    "random-over": ("random over-sampling (imblearn RandomOverSampler)", _random_over),
    "smote": ("SMOTE (imblearn, k_neighbors=5)", _smote),
    "adasyn": ("our ADASYN (reference semantics)", _our_adasyn),
    "imblearn-adasyn": ("imblearn ADASYN (n_neighbors=5)", _imblearn_adasyn),
}


@dataclass(frozen=True)
class Method:
    """One row of the comparison."""

    name: str
    description: str
    protocol: str = SAFE
    make_sampler: Callable | None = None
    model: str = "mlp"  # "mlp" or "lightgbm"
    pos_weight: str | None = None  # the MLP's BCE pos_weight ("balanced" = n_normal / n_fraud on train)
    safe_twin: str | None = None  # for a paper row: the same resampler's safe row

    @property
    def leaky(self) -> bool:
        return self.protocol == PAPER

    @property
    def label(self) -> str:
        """The name every output shows: ``LEAKY: adasyn-paper`` for a paper row."""
        return mark_leaky(self.name, self.leaky)


def _methods() -> dict[str, Method]:
    methods = {"none": Method("none", "MLP, no resampling"),
               "class-weights": Method("class-weights", "MLP, pos_weight = n_normal / n_fraud (training rows)",
                                       pos_weight="balanced")}
    for name, (what, factory) in RESAMPLERS.items():
        methods[name] = Method(name, f"MLP on training rows resampled by {what}", make_sampler=factory)
    for name, (what, factory) in RESAMPLERS.items():
        methods[f"{name}-paper"] = Method(f"{name}-paper", f"MLP, {what} on ALL rows before the split (paper "
                                          "protocol)", PAPER, factory, safe_twin=name)
    methods["lightgbm"] = Method("lightgbm", "LightGBM gradient-boosted trees, no resampling", model="lightgbm")
    return methods


METHODS = _methods()
DEFAULT_METHODS = ("none", "class-weights", "random-over", "smote", "adasyn", "imblearn-adasyn", "adasyn-paper",
                   "lightgbm")


class Standardised:
    """Run an over-sampler on standardised features and give its rows back in raw units.

    The input rows are returned exactly as given; new rows are mapped back with the inverse scaling
    (copies of random over-sampling are taken from the raw rows, bit for bit). The sampler's provenance
    (``provenance_`` or ``sample_indices_``) is exposed unchanged for the leakage protocols.
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def fit_resample(self, X, y):
        from sklearn.preprocessing import StandardScaler

        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        scaler = StandardScaler().fit(X)
        scaled = scaler.transform(X)
        X_res, y_res = self.sampler.fit_resample(scaled, y)
        X_res, y_res = np.asarray(X_res), np.asarray(y_res)
        if not (np.array_equal(X_res[:len(X)], scaled) and np.array_equal(y_res[:len(y)], y)):
            raise AdaptlabError(f"{type(self.sampler).__name__} did not return its input rows first and unchanged")
        if hasattr(self.sampler, "sample_indices_"):
            self.sample_indices_ = np.asarray(self.sampler.sample_indices_)
            new = X[self.sample_indices_[len(X):]]
        else:
            new = scaler.inverse_transform(X_res[len(X):])
        if hasattr(self.sampler, "provenance_"):
            self.provenance_ = self.sampler.provenance_
        return np.vstack([X, new]), y_res


def make_sampler(name: str, config, seed: int) -> Standardised:
    """The over-sampler ``name`` (a key of :data:`RESAMPLERS`) built from ``config``'s settings, seeded,
    running on standardised features (see the module docstring)."""
    if name not in RESAMPLERS:
        raise AdaptlabError(f"unknown resampler {name!r}; choose from {', '.join(RESAMPLERS)}")
    return Standardised(RESAMPLERS[name][1](config, seed))


def prepare_protocol(protocol: str, sampler, split_method: str, seed: int, X: np.ndarray, y: np.ndarray,
                     split: Split, test_size: float = 0.2, val_size: float = 0.25) -> PreparedData:
    """Train/val/test parts under ``protocol`` (safe: resample ``split``'s training rows; paper: resample
    all rows, then re-split them with the same :func:`split_positions` and sizes as the data's split;
    a time re-split orders rows by their Time feature: a synthetic row carries its interpolated Time)."""
    def resplit(X_res: np.ndarray, y_res: np.ndarray, seed: int):
        return split_positions(y_res, split_method, seed, test_size, val_size, times=X_res[:, TIME])

    return prepare(X, y, protocol=protocol, split=split, sampler=sampler, seed=seed, splitter=resplit)


def prepare_method(method: Method, config: CompareConfig, seed: int, X: np.ndarray, y: np.ndarray,
                   split: Split) -> PreparedData:
    """The train/val/test parts of one row under its protocol (safe: ``split``; paper: resample, re-split)."""
    sampler = Standardised(method.make_sampler(config, seed)) if method.make_sampler else None
    return prepare_protocol(method.protocol, sampler, config.split, seed, X, y, split, config.test_size,
                            config.val_size)


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
                           config.training(seed, method.pos_weight), progress=progress)
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
    """``{seed: {"split": Split, "rows": {method name: run_method result}}}`` for every seed and row."""
    methods = config.selected()
    results = {}
    total, done = len(methods) * len(config.seeds), 0
    for seed in config.seeds:
        split = split_indices(frame, config.split, seed, config.test_size, config.val_size)
        rows = {}
        for method in methods:
            done += 1
            if not quiet:
                print(f"[{done}/{total}] seed {seed}: {method.label} — {method.description}", file=sys.stderr,
                      flush=True)
            rows[method.name] = run_method(method, config, seed, X, y, split, progress=not quiet)
            if not quiet:
                test = rows[method.name]["metrics"]["test"]["at_0.5"]
                print(f"    test AUPRC {test['average_precision']:.4f}, {rows[method.name]['train_rows']:,} "
                      f"training rows, {rows[method.name]['train_seconds']:.1f} s", file=sys.stderr, flush=True)
        results[seed] = {"split": split, "rows": rows}
    return results

