"""The fraud MLP, its training loop, and saving/loading it in ecosystem formats.

:func:`train_mlp` takes plain arrays ``(X_train, y_train, X_val, y_val, config)`` so any training set
(original, or resampled by ADASYN) can be passed in; it knows nothing about splits or reports.

Default architecture: 30 inputs -> 64 -> 32 -> 1 logit, ReLU, dropout 0.2 (about 4.1k parameters).
Why: the 28 PCA components already decorrelate the inputs, so two small hidden layers are enough to
model the non-linear interactions that separate frauds (a linear model on these features is a known
strong baseline); with only ~300 frauds in the training split, a larger net mostly memorises them, and
a small one keeps a full-data epoch at about a second on 2 CPU cores.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaptlab.errors import AdaptlabError, first_line
from adaptlab.core.checks import is_int, is_number
from adaptlab.fraud.config import MAX_MLP_PARAMETERS, TrainConfig, mlp_parameters

EVAL_BATCH = 65536  # rows per forward pass when scoring: large and vectorised, bounded memory


class MLP(nn.Module):
    """Feed-forward net: ``[Linear -> ReLU -> Dropout] * len(hidden_sizes) -> Linear(., 1)`` (a logit)."""

    def __init__(self, n_inputs: int, hidden_sizes: list[int], dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def _feature_names(columns: np.ndarray, n_columns: int) -> str:
    from adaptlab.fraud.data import FEATURES

    names = [FEATURES[i] if n_columns == len(FEATURES) else f"column {i}" for i in columns]
    return ("feature " if len(names) == 1 else "features ") + ", ".join(names)


class Standardizer:
    """Per-feature ``(x - mean_) / scale_``; ``fit`` sees the training rows only (no information leak)."""

    def fit(self, X: np.ndarray) -> "Standardizer":
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
        # Values near the float64 limit overflow the mean or the variance: saving inf would silently turn the
        # feature into NaN for every row later, so refuse here, naming the feature.
        broken = np.flatnonzero(~(np.isfinite(self.mean_) & np.isfinite(std)))
        if broken.size:
            raise AdaptlabError(f"cannot standardise {_feature_names(broken, X.shape[1])}: its values are too "
                                "large (their mean or spread overflows 64-bit floats); check the data")
        self.scale_ = np.where(std > 0, std, 1.0)  # a constant feature stays constant instead of dividing by 0
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # overflow to inf is reported by unscorable_rows, not warned
            return ((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Standardizer":
        scaler = cls()
        scaler.mean_ = np.asarray(data["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(data["scale"], dtype=np.float64)
        return scaler


@dataclass
class TrainResult:
    model: MLP
    scaler: Standardizer
    history: list[dict]  # one dict per epoch: train/val loss, accuracy (at 0.5), average precision
    best_epoch: int  # 1-based epoch whose weights were restored
    stopped_early: bool
    seconds: float  # wall time of the fit

    def stopping_note(self) -> str:
        """How training ended, e.g. "stopped at epoch 15, kept epoch 9"."""
        if self.stopped_early:
            return f"stopped at epoch {len(self.history)}, kept epoch {self.best_epoch}"
        return f"ran all {len(self.history)} epochs, kept epoch {self.best_epoch}"


def resolve_pos_weight(pos_weight, y_train: np.ndarray) -> float | None:
    if pos_weight is None:
        return None
    if pos_weight == "balanced":
        positives = int(np.sum(y_train))
        return (len(y_train) - positives) / max(positives, 1)
    return float(pos_weight)


def train_mlp(X_train, y_train, X_val, y_val, config: TrainConfig, *, progress: bool = True,
              score_train: bool = True) -> TrainResult:
    """Fit an :class:`MLP` with Adam and ``BCEWithLogitsLoss``, early-stopped on validation AP.

    Inputs are standardised with statistics of ``X_train`` only. After each epoch the validation set (and,
    with ``score_train``, the whole training set, for learning curves) is scored; the weights of the epoch
    with the best validation average precision are restored at the end. Seeded: the same inputs and config
    give the same weights on CPU, with or without ``score_train``.
    """
    X_train, X_val = np.asarray(X_train), np.asarray(X_val)
    y_train, y_val = np.asarray(y_train).astype(np.float32), np.asarray(y_val).astype(np.float32)
    if len(np.unique(y_val)) < 2:
        raise AdaptlabError("the validation set needs both classes to early-stop on average precision")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:  # the thread count is process-wide: give callers theirs back
        return _fit(X_train, y_train, X_val, y_val, config, progress, score_train)
    finally:
        torch.set_num_threads(previous_threads)


def _fit(X_train, y_train, X_val, y_val, config: TrainConfig, progress: bool, score_train: bool) -> TrainResult:
    from sklearn.metrics import average_precision_score
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    scaler = Standardizer().fit(X_train)
    xt, yt = torch.from_numpy(scaler.transform(X_train)), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(scaler.transform(X_val)), torch.from_numpy(y_val)
    model = MLP(xt.shape[1], list(config.hidden_sizes), config.dropout)
    # foreach: one kernel per update stage for all six tensors instead of a Python loop over them; the same
    # arithmetic (bit-identical weights), a few percent of an epoch of ~1,300 tiny steps
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=True)
    pos_weight = resolve_pos_weight(config.pos_weight, y_train)
    criterion = nn.BCEWithLogitsLoss(pos_weight=None if pos_weight is None else torch.tensor(pos_weight))

    history: list[dict] = []
    best_ap, best_epoch, best_state, stale = -math.inf, 0, None, 0
    started = time.perf_counter()
    # the bar counts finished epochs (updated after each), so an early stop shows where training stopped
    bar = tqdm(total=config.epochs, desc="training", unit="epoch", disable=not progress)
    for epoch in range(1, config.epochs + 1):
        model.train()
        # one gather per epoch, then contiguous slices: the same batches as indexing per step, ~13% faster
        # an epoch because a 256-row gather per step costs more than its matmuls
        order = torch.randperm(len(xt), generator=generator)
        try:
            for x_batch, y_batch in zip(xt[order].split(config.batch_size), yt[order].split(config.batch_size)):
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(x_batch), y_batch)
                loss.backward()
                optimizer.step()
        except RuntimeError as exc:  # Adam refuses a step size that overflows float32 (lr ~1e38)
            if "overflow" not in str(exc):
                raise
            raise _diverged(epoch) from None

        # scoring the training set costs ~10% of an epoch; only learning curves need it
        scored = [("train", _logits(model, xt), yt)] if score_train else []
        scored.append(("val", _logits(model, xv), yv))
        losses = {name: criterion(logits, y) for name, logits, y in scored}
        # a huge lr or pos_weight drives the weights to inf/NaN; average_precision_score would then
        # fail with "Input contains NaN", which says nothing about the cause
        if not (torch.isfinite(loss) and all(torch.isfinite(logits).all() and torch.isfinite(losses[name])
                                              for name, logits, _ in scored)):
            raise _diverged(epoch)
        row = {"epoch": epoch}
        for name, logits, y in scored:
            row[f"{name}_loss"] = float(losses[name])
            row[f"{name}_accuracy"] = float(((logits >= 0).float() == y).float().mean())
            row[f"{name}_ap"] = float(average_precision_score(y.numpy(), logits.numpy()))
        history.append(row)
        bar.set_postfix(val_loss=f"{row['val_loss']:.4f}", val_ap=f"{row['val_ap']:.4f}", refresh=False)
        bar.update(1)

        if row["val_ap"] > best_ap:
            best_ap, best_epoch, stale = row["val_ap"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    stopped_early = len(history) < config.epochs
    result = TrainResult(model, scaler, history, best_epoch, stopped_early, time.perf_counter() - started)
    if progress:
        epochs = "epoch" if config.patience == 1 else "epochs"
        reason = f" (no better validation AP for {config.patience} {epochs})" if stopped_early else ""
        print(f"{result.stopping_note()}{reason}", file=sys.stderr, flush=True)
    return result


def _diverged(epoch: int) -> AdaptlabError:
    return AdaptlabError(f"training diverged at epoch {epoch} (non-finite loss); lower lr or pos_weight")


@torch.no_grad()
def _logits(model: MLP, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(chunk) for chunk in x.split(EVAL_BATCH)]) if len(x) else torch.empty(0)


def predict_proba(model: MLP, scaler: Standardizer, X) -> np.ndarray:
    """Fraud probability per row of raw (unstandardised) features, shape ``(n,)``, float64."""
    return predict_proba_standardised(model, scaler.transform(X))


def unscorable_rows(standardised: np.ndarray) -> np.ndarray:
    """Positions of rows whose standardised features (the model's float32 input) are not finite: rows the
    model cannot score, which must never be reported as "not fraud"."""
    return np.flatnonzero(~np.isfinite(standardised).all(axis=1))


def predict_proba_standardised(model: MLP, standardised: np.ndarray) -> np.ndarray:
    """:func:`predict_proba` for rows already passed through the model's :class:`Standardizer`."""
    x = torch.from_numpy(standardised)
    # sigmoid in float64: in float32 every logit above ~17 becomes exactly 1.0, and the ties erase the
    # ranking among the most suspicious rows (a pos_weight-trained MLP had 52 test rows tied at 1.0 and
    # lost 0.037 AUPRC to it); float64 keeps logits up to ~36 distinct
    return torch.sigmoid(_logits(model, x).double()).numpy()


# ---------------------------------------------------------------------------------------- persistence

WEIGHTS_FILE, SCALER_FILE, META_FILE = "model.safetensors", "scaler.json", "model.json"


def save_model(folder: Path, result: TrainResult, *, features: list[str], threshold: float,
               threshold_rule: str, config: TrainConfig, extra: dict | None = None) -> Path:
    """Weights (safetensors), scaler (JSON numbers) and metadata (features, threshold) in ``folder``.
    ``extra``: more metadata keys for model.json (how the training rows were made, a LEAKY warning...)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    (folder / SCALER_FILE).write_text(json.dumps({"features": features, **result.scaler.to_dict()}, indent=2) + "\n")
    meta = {
        "architecture": "MLP",
        "n_inputs": len(features),
        "hidden_sizes": list(config.hidden_sizes),
        "dropout": config.dropout,
        "features": features,
        "threshold": float(threshold),
        "threshold_rule": threshold_rule,
        "best_epoch": result.best_epoch,
        "train_config": asdict(config),
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def load_model(folder: Path) -> tuple[MLP, Standardizer, dict]:
    """Inverse of :func:`save_model`; raises :class:`AdaptlabError` (one line) if the folder is not a
    saved fraud model or any of its three files is damaged or does not fit the other two."""
    from adaptlab.fraud.data import FEATURES

    folder = Path(folder)
    paths = [folder / WEIGHTS_FILE, folder / SCALER_FILE, folder / META_FILE]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise AdaptlabError(f"{folder} is not a saved fraud model: missing {', '.join(missing)}")
    meta, scaler_data = _read_json_object(paths[2]), _read_json_object(paths[1])
    bad = f"{folder}: cannot load the saved model: {META_FILE}"
    if meta.get("features") != FEATURES:
        raise AdaptlabError(f"{bad} features are {meta.get('features')!r}, not the {len(FEATURES)} columns "
                            f"{', '.join(FEATURES)} in that order")
    if meta.get("n_inputs") != len(FEATURES):
        raise AdaptlabError(f"{bad} n_inputs is {meta.get('n_inputs')!r}, not {len(FEATURES)}")
    hidden = meta.get("hidden_sizes")
    if not (isinstance(hidden, list) and hidden and all(is_int(h) and h > 0 for h in hidden)):
        raise AdaptlabError(f"{bad} hidden_sizes must be a non-empty list of positive integers, not {hidden!r}")
    if mlp_parameters(hidden) > MAX_MLP_PARAMETERS:  # checked before torch allocates them
        raise AdaptlabError(f"{bad} hidden_sizes {hidden} give {mlp_parameters(hidden):,} parameters; a fraud "
                            f"model has at most {MAX_MLP_PARAMETERS:,}")
    for key, low, high in (("dropout", 0.0, 1.0), ("threshold", 0.0, 1.0)):
        value = meta.get(key)
        if not (is_number(value) and low <= value <= high):
            raise AdaptlabError(f"{bad} {key} must be a number in [{low:g}, {high:g}], not {value!r}")
    scaler_values = {}
    for key in ("mean", "scale"):
        values = scaler_data.get(key)
        if not (isinstance(values, list) and len(values) == len(FEATURES) and all(map(is_number, values))):
            raise AdaptlabError(f"{folder}: cannot load the saved model: {SCALER_FILE} {key} must be "
                                f"{len(FEATURES)} finite numbers (one per feature)")
        scaler_values[key] = values
    if not all(value > 0 for value in scaler_values["scale"]):
        raise AdaptlabError(f"{folder}: cannot load the saved model: {SCALER_FILE} scale must be positive for "
                            "every feature (a zero scale divides by zero)")
    scaler = Standardizer.from_dict(scaler_values)
    model = MLP(len(FEATURES), hidden, float(meta["dropout"]))
    model.load_state_dict(_read_weights(paths[0], model, hidden))
    model.eval()
    return model, scaler, meta


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AdaptlabError(f"{path}: cannot read the saved model file: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise AdaptlabError(f"{path}: a saved model file holds a JSON object, not a {type(data).__name__}")
    return data


def _read_weights(path: Path, model: MLP, hidden_sizes: list[int]) -> dict[str, torch.Tensor]:
    """The safetensors state dict, checked key by key and shape by shape against ``model``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdaptlabError(f"{path}: not a readable safetensors file: {first_line(exc)}") from None
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    problems += [f"{k} is {tuple(state[k].shape)}, expected {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems += [f"{k} holds NaN or infinite values" for k, v in state.items()
                 if k in expected and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if problems:
        raise AdaptlabError(f"{path}: the weights do not fit the MLP of {META_FILE} "
                            f"(hidden_sizes {hidden_sizes}): "
                            + "; ".join(problems))
    return state
