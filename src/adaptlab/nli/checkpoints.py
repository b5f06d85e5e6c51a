"""Training checkpoints in safetensors and JSON only: resuming never unpickles anything.

A checkpoint folder ``step-NNNNNNN`` holds

- ``trainable.safetensors``: the parameters that train (LoRA matrices and head, or the unfrozen layers), by name.
  Frozen weights are not stored: they are rebuilt from ``--model`` exactly as at the start, and their sha256
  (``checkpoint.json``) proves it on resume.
- ``optimizer.safetensors`` + ``optimizer.json``: per-parameter state tensors (``"<index>.exp_avg"`` ...) in the
  optimizer's parameter order, and the parameter groups' hyper-parameters.
- ``scheduler.json`` (and ``grad_scaler.json`` under fp16): plain numbers.
- ``rng-<rank>.safetensors``: one per process, its Python, NumPy, torch CPU and CUDA generator states as tensors,
  the scalar parts as JSON in the safetensors header.
- ``trainer_state.json``: the loop's own counters and history.

Loading reads only these files and checks every key, shape and type against the live model and optimizer before
anything is changed; whatever else lies in the folder (for example an accelerate ``save_state`` pickle) is never
opened. The folder is written as ``.incomplete-step-N`` (each file through :mod:`adaptlab.core.atomic`) and renamed
when every process has written its part, so a ``step-*`` folder is always complete.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from adaptlab.core.atomic import atomic_path, atomic_write_text
from adaptlab.core.checks import is_int, is_number
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.fingerprint import tensors_sha256

FORMAT = "adaptlab-checkpoint"
VERSION = 1
MANIFEST = "checkpoint.json"
TRAINER_STATE = "trainer_state.json"
TRAINABLE = "trainable.safetensors"
OPTIMIZER_TENSORS, OPTIMIZER_GROUPS = "optimizer.safetensors", "optimizer.json"
SCHEDULER, GRAD_SCALER = "scheduler.json", "grad_scaler.json"
ADAMW_STATE = {"step", "exp_avg", "exp_avg_sq"}  # plus max_exp_avg_sq with amsgrad
RNG_METADATA_KEY = "adaptlab_rng"


def rng_file(rank: int) -> str:
    return f"rng-{rank}.safetensors"


def required_files(num_processes: int) -> list[str]:
    return [MANIFEST, TRAINER_STATE, TRAINABLE, OPTIMIZER_TENSORS, OPTIMIZER_GROUPS, SCHEDULER,
            *(rng_file(rank) for rank in range(num_processes))]


# ---------------------------------------------------------------- saving

def save_checkpoint(accelerator, model, optimizer, scheduler, folder: Path, step: int, trainer_state: dict) -> Path:
    """Write checkpoint ``folder/step-NNNNNNN``: every process its RNG state, the main process everything else."""
    final, partial = Path(folder) / f"step-{step:07d}", Path(folder) / f".incomplete-step-{step:07d}"
    if accelerator.is_main_process:
        # a run killed while checkpointing leaves its .incomplete-step-* folder; steps only grow within a run, so
        # any such folder here is a leftover (this step's included) and never a checkpoint to resume from
        for leftover in Path(folder).glob(".incomplete-step-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _save_tensors(partial / rng_file(accelerator.process_index), *_rng_state())
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        _save_tensors(partial / TRAINABLE, _trainable(model))
        tensors, groups = _optimizer_state(optimizer)
        _save_tensors(partial / OPTIMIZER_TENSORS, tensors)
        _write_json(partial / OPTIMIZER_GROUPS, groups)
        _write_json(partial / SCHEDULER, scheduler.state_dict())
        if accelerator.scaler is not None:
            _write_json(partial / GRAD_SCALER, accelerator.scaler.state_dict())
        _write_json(partial / MANIFEST, {"format": FORMAT, "version": VERSION,
                                         "num_processes": accelerator.num_processes,
                                         "mixed_precision": accelerator.mixed_precision,
                                         "frozen_sha256": _frozen_fingerprint_once(model)})
        _write_json(partial / TRAINER_STATE, trainer_state)
    accelerator.wait_for_everyone()  # every process's RNG file is in place before the folder becomes final
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    accelerator.wait_for_everyone()
    return final


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=metadata)


def _write_json(path: Path, value) -> None:
    # float repr round-trips exactly, so learning rates and losses come back bit for bit
    atomic_write_text(path, json.dumps(value, indent=1) + "\n")


def _trainable(model) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def frozen_fingerprint(model) -> str:
    """sha256 of every frozen parameter (name, dtype, shape, bytes): what the checkpoint does not store."""
    return tensors_sha256((name, p) for name, p in model.named_parameters() if not p.requires_grad)


def _frozen_fingerprint_once(model) -> str:
    """:func:`frozen_fingerprint`, computed at the first checkpoint of a run and reused: frozen weights never
    change while training, and hashing them costs seconds per checkpoint on a large base (1.4 GB for
    roberta-large). Recomputed if the set of frozen parameters changes."""
    frozen = tuple(name for name, p in model.named_parameters() if not p.requires_grad)
    cached = getattr(model, "_adaptlab_frozen_sha256", None)
    if cached is None or cached[0] != frozen:
        cached = (frozen, frozen_fingerprint(model))
        model._adaptlab_frozen_sha256 = cached
    return cached[1]


def _optimizer_state(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if not torch.is_tensor(value):
                raise TypeError(f"optimizer state {key!r} is a {type(value).__name__}, not a tensor")
            tensors[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    version, mersenne, gauss_next = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    tensors = {"python": torch.tensor(mersenne, dtype=torch.int64),
               "numpy": torch.from_numpy(keys.astype(np.int64)),
               "torch_cpu": torch.get_rng_state()}
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    tensors.update({f"cuda_{device}": state for device, state in enumerate(cuda)})
    scalars = {"python_version": version, "python_gauss_next": gauss_next, "numpy_kind": kind,
               "numpy_position": int(position), "numpy_has_gauss": int(has_gauss),
               "numpy_cached_gaussian": float(cached_gaussian), "cuda_devices": len(cuda)}
    return tensors, {RNG_METADATA_KEY: json.dumps(scalars)}


# ---------------------------------------------------------------- finding and checking

def find_checkpoint(path: Path) -> Path:
    """``path`` itself if it is a checkpoint, else its latest ``step-*`` checkpoint; checked to be complete."""
    path = Path(path)
    if (path / TRAINER_STATE).is_file():
        read_trainer_state(path)
        return path
    steps = sorted(p for p in path.glob("step-*") if (p / TRAINER_STATE).is_file()) if path.is_dir() else []
    if not steps:
        raise AdaptlabError(f"no checkpoint to resume from in {path} (expected step-*/{TRAINER_STATE})")
    read_trainer_state(steps[-1])  # a damaged latest checkpoint is an error, not a silent step back
    return steps[-1]


def read_trainer_state(checkpoint: Path, required_state: tuple[str, ...] = ("step", "history")) -> dict:
    """``trainer_state.json`` of a checkpoint written by :func:`save_checkpoint`, after checking it is complete."""
    checkpoint = Path(checkpoint)
    _read_manifest(checkpoint)
    saved = _read_json(checkpoint, TRAINER_STATE)
    missing = [key for key in ("setup", "state") if not isinstance(saved, dict) or not isinstance(saved.get(key), dict)]
    if missing:
        raise AdaptlabError(f"cannot resume from {checkpoint}: {TRAINER_STATE} lacks {', '.join(missing)}")
    missing = [f"state.{key}" for key in required_state if key not in saved["state"]]
    if missing:
        raise AdaptlabError(f"cannot resume from {checkpoint}: {TRAINER_STATE} lacks {', '.join(missing)}")
    return saved


def _read_manifest(checkpoint: Path) -> dict:
    """``checkpoint.json``, checked, after making sure every file it implies is there."""
    if not (checkpoint / MANIFEST).is_file():
        raise AdaptlabError(f"cannot resume from {checkpoint}: no {MANIFEST}, so not a checkpoint written by adaptlab "
                            "(state is read only from safetensors and JSON; pickled files are never loaded)")
    manifest = _read_json(checkpoint, MANIFEST)
    if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT and manifest.get("version") == VERSION
            and is_int(manifest.get("num_processes")) and manifest["num_processes"] >= 1
            and isinstance(manifest.get("frozen_sha256"), str) and isinstance(manifest.get("mixed_precision"), str)):
        raise AdaptlabError(f"cannot resume from {checkpoint}: {MANIFEST} is not a {FORMAT} version {VERSION} manifest")
    missing = [name for name in required_files(manifest["num_processes"]) if not (checkpoint / name).is_file()]
    if missing:
        raise AdaptlabError(f"cannot resume from {checkpoint}: incomplete checkpoint, no {', '.join(missing)}")
    return manifest


def _read_json(checkpoint: Path, name: str):
    path = checkpoint / name
    if not path.is_file():
        raise AdaptlabError(f"cannot resume from {checkpoint}: no {name}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdaptlabError(f"cannot resume from {checkpoint}: {name} is not valid JSON ({first_line(exc)})") from None


def _read_tensors(checkpoint: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = checkpoint / name
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise AdaptlabError(f"cannot resume from {checkpoint}: {name} is not a readable safetensors file "
                            f"({first_line(exc)})") from None


def matches(saved, live) -> bool:
    """Whether JSON value ``saved`` has the structure and kinds of the live value (tuples read back as lists)."""
    if isinstance(live, bool) or live is None:
        return type(saved) is type(live)
    if is_int(live):
        return is_int(saved)
    if isinstance(live, float):
        return is_number(saved)
    if isinstance(live, str):
        return isinstance(saved, str)
    if isinstance(live, (list, tuple)):
        return isinstance(saved, list) and len(saved) == len(live) and all(map(matches, saved, live))
    if isinstance(live, dict):
        return (isinstance(saved, dict) and set(saved) == {str(k) for k in live}
                and all(matches(saved[str(k)], v) for k, v in live.items()))
    return False


def _like(saved, live):
    """``saved`` (already :func:`matches`) with the live value's tuples and int dict keys restored."""
    if isinstance(live, (list, tuple)):
        return type(live)(_like(s, v) for s, v in zip(saved, live))
    if isinstance(live, dict):
        return {k: _like(saved[str(k)], v) for k, v in live.items()}
    return saved


# ---------------------------------------------------------------- loading

def load_checkpoint(accelerator, model, optimizer, scheduler, checkpoint: Path) -> None:
    """Restore weights, optimizer, schedule, grad scaler and this process's RNG from ``checkpoint``.

    Everything is read and checked first; the live objects change only when every file is consistent.
    """
    checkpoint = Path(checkpoint)
    model = accelerator.unwrap_model(model)
    manifest = _read_manifest(checkpoint)
    if manifest["num_processes"] != accelerator.num_processes:
        raise AdaptlabError(f"cannot resume from {checkpoint}: saved by {manifest['num_processes']} processes, "
                            f"resumed by {accelerator.num_processes}")
    if manifest["mixed_precision"] != accelerator.mixed_precision:  # fp16 carries a loss scale, bf16 does not
        raise AdaptlabError(f"cannot resume from {checkpoint}: trained with mixed precision "
                            f"{manifest['mixed_precision']!r}, resumed with {accelerator.mixed_precision!r}")
    if manifest["frozen_sha256"] != frozen_fingerprint(model):
        raise AdaptlabError(f"cannot resume from {checkpoint}: the frozen weights differ from the ones it was "
                            "trained on (use the same --model, method and seed)")
    weights = _checked_weights(checkpoint, _trainable(model))
    optimizer_state = _checked_optimizer_state(checkpoint, optimizer)
    schedule = _checked_json(checkpoint, SCHEDULER, scheduler.state_dict())
    scaler = accelerator.scaler
    scaler_state = _checked_json(checkpoint, GRAD_SCALER, scaler.state_dict()) if scaler is not None else None
    rng = _checked_rng(checkpoint, accelerator.process_index)

    with torch.no_grad():
        for name, param in _trainable(model).items():
            param.copy_(weights[name])
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(schedule)
    if scaler is not None:
        scaler.load_state_dict(scaler_state)
    _set_rng_state(*rng)


def _checked_weights(checkpoint: Path, live: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    saved, _ = _read_tensors(checkpoint, TRAINABLE)
    missing, unknown = sorted(set(live) - set(saved)), sorted(set(saved) - set(live))
    if missing or unknown:
        parts = ([f"lacks {len(missing)} trained parameters (e.g. {missing[0]})"] if missing else []) + \
                ([f"holds {len(unknown)} the model does not train (e.g. {unknown[0]})"] if unknown else [])
        raise AdaptlabError(f"cannot resume from {checkpoint}: {TRAINABLE} {' and '.join(parts)}")
    for name, param in live.items():
        if saved[name].shape != param.shape or saved[name].dtype != param.dtype:
            raise AdaptlabError(f"cannot resume from {checkpoint}: {name} is {saved[name].dtype} "
                                f"{tuple(saved[name].shape)}, the model's is {param.dtype} {tuple(param.shape)}")
    return saved


def _checked_optimizer_state(checkpoint: Path, optimizer) -> dict:
    live = optimizer.state_dict()
    saved_groups = _read_json(checkpoint, OPTIMIZER_GROUPS)
    groups = saved_groups.get("param_groups") if isinstance(saved_groups, dict) else None
    if not matches(groups, live["param_groups"]) or any(
            saved["params"] != group["params"] for saved, group in zip(groups, live["param_groups"])):
        raise AdaptlabError(f"cannot resume from {checkpoint}: {OPTIMIZER_GROUPS} does not match the optimizer's "
                            "parameter groups")
    groups = _like(groups, live["param_groups"])
    params = {index: param for group, optimizer_group in zip(groups, optimizer.param_groups)
              for index, param in zip(group["params"], optimizer_group["params"])}
    amsgrad = {index: group.get("amsgrad", False) for group in groups for index in group["params"]}
    tensors, _ = _read_tensors(checkpoint, OPTIMIZER_TENSORS)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        index, _, key = name.partition(".")
        if not index.isdigit() or int(index) not in params:
            raise AdaptlabError(f"cannot resume from {checkpoint}: {OPTIMIZER_TENSORS} holds {name!r}, "
                                "which is no parameter of the optimizer")
        param = params[int(index)]
        if not tensor.is_floating_point():
            raise AdaptlabError(f"cannot resume from {checkpoint}: optimizer state {name} is {tensor.dtype}, "
                                "not floating point")
        if tensor.shape != (() if key == "step" else param.shape):
            raise AdaptlabError(f"cannot resume from {checkpoint}: optimizer state {name} has shape "
                                f"{tuple(tensor.shape)}, expected {tuple(param.shape) if key != 'step' else ()}")
        state.setdefault(int(index), {})[key] = tensor
    for index, values in state.items():
        expected = ADAMW_STATE | ({"max_exp_avg_sq"} if amsgrad[index] else set())
        if set(values) != expected:
            raise AdaptlabError(f"cannot resume from {checkpoint}: optimizer state of parameter {index} has "
                                f"{', '.join(sorted(values))}; expected {', '.join(sorted(expected))}")
    return {"state": state, "param_groups": groups}


def _checked_json(checkpoint: Path, name: str, live: dict) -> dict:
    saved = _read_json(checkpoint, name)
    if not matches(saved, live):
        raise AdaptlabError(f"cannot resume from {checkpoint}: {name} does not have the keys and kinds of "
                            f"this run's state ({', '.join(sorted(map(str, live)))})")
    return _like(saved, live)


def _checked_rng(checkpoint: Path, rank: int) -> tuple[dict[str, torch.Tensor], dict]:
    """This process's saved generator states, each tried on a throwaway generator before any global one is set."""
    name = rng_file(rank)
    tensors, metadata = _read_tensors(checkpoint, name)
    try:
        scalars = json.loads(metadata.get(RNG_METADATA_KEY, ""))
    except json.JSONDecodeError:
        scalars = None
    kinds = {"python_version": is_int, "python_gauss_next": lambda v: v is None or is_number(v),
             "numpy_kind": lambda v: v == "MT19937", "numpy_position": is_int, "numpy_has_gauss": is_int,
             "numpy_cached_gaussian": is_number, "cuda_devices": lambda v: is_int(v) and v >= 0}
    if not isinstance(scalars, dict) or set(scalars) != set(kinds) or not all(kinds[k](v) for k, v in scalars.items()):
        raise AdaptlabError(f"cannot resume from {checkpoint}: {name} lacks a valid {RNG_METADATA_KEY!r} header")
    live_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if live_cuda and scalars["cuda_devices"] != live_cuda:
        raise AdaptlabError(f"cannot resume from {checkpoint}: saved with {scalars['cuda_devices']} CUDA devices, "
                            f"this process sees {live_cuda}")
    # a run without CUDA never draws from CUDA generators, so their saved states are not needed there
    cuda = [f"cuda_{device}" for device in range(live_cuda)]
    python, numpy_keys = tensors.get("python"), tensors.get("numpy")
    try:
        if any(tensors.get(key) is None or tensors[key].dtype != torch.uint8 for key in ["torch_cpu", *cuda]):
            raise ValueError("a torch generator state is missing or not uint8")
        if any(tensors[key].shape != torch.cuda.get_rng_state(d).shape for d, key in enumerate(cuda)):
            raise ValueError("a CUDA generator state has the wrong size")
        if python is None or numpy_keys is None or python.dtype != torch.int64 or numpy_keys.dtype != torch.int64:
            raise ValueError("the Python or NumPy generator state is missing or not int64")
        if numpy_keys.numel() and not (0 <= int(numpy_keys.min()) and int(numpy_keys.max()) < 2**32):
            raise ValueError("NumPy generator words outside 32 bits")
        random.Random().setstate((scalars["python_version"], tuple(python.tolist()), scalars["python_gauss_next"]))
        np.random.RandomState().set_state(_numpy_state(numpy_keys, scalars))
        torch.Generator().set_state(tensors["torch_cpu"])
    except (ValueError, TypeError, OverflowError, RuntimeError) as exc:
        raise AdaptlabError(f"cannot resume from {checkpoint}: {name} holds an invalid generator state "
                            f"({first_line(exc)})") from None
    return {key: tensors[key] for key in ["python", "numpy", "torch_cpu", *cuda]}, scalars


def _numpy_state(keys: torch.Tensor, scalars: dict) -> tuple:
    return (scalars["numpy_kind"], keys.numpy().astype(np.uint32), scalars["numpy_position"],
            scalars["numpy_has_gauss"], scalars["numpy_cached_gaussian"])


def _set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict) -> None:
    random.setstate((scalars["python_version"], tuple(tensors["python"].tolist()), scalars["python_gauss_next"]))
    np.random.set_state(_numpy_state(tensors["numpy"], scalars))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[f"cuda_{device}"] for device in range(sum(key.startswith("cuda_") for key in tensors))]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
