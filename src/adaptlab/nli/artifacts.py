"""Saved models in the ecosystem's own formats, written atomically.

- LoRA: a PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``, the trained head included
  through ``modules_to_save``) that plain PEFT loads::

      labels = json.loads((adapter_dir / "adaptlab_model.json").read_text())["id2label"]
      base = AutoModelForSequenceClassification.from_pretrained(base_model_name_or_path, id2label=labels)
      model = PeftModel.from_pretrained(base, adapter_dir)

- full / partial / merged LoRA: a transformers model folder (``config.json`` with the label names +
  ``model.safetensors``).

Every folder also holds the tokenizer and ``adaptlab_model.json`` (method, ``id2label``/``label2id``, base model
spec). ``base_model_name_or_path`` is portable: a hub id (also for the presets), or a local folder's absolute path.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel
from safetensors import safe_open
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from adaptlab.core.atomic import atomic_folder
from adaptlab.core.runs import check_output_root
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.fingerprint import base_fingerprint
from adaptlab.nli.methods import MethodConfig, is_lora, quiet_peft
from adaptlab.nli.models import check_safetensors, fit_tokenizer, load_base_model
from adaptlab.nli.structure import classifier_of

META_FILE = "adaptlab_model.json"
MODEL_FOLDER = "model"  # where a train run folder keeps its saved model


def trained_model_dir(path: str | Path) -> Path:
    """The saved model of a train run folder (``RUN/model``), or ``path`` itself when it is a model folder."""
    path = Path(path)
    if (path / MODEL_FOLDER).is_dir():
        return path / MODEL_FOLDER
    if path.is_dir() and ((path / "adapter_config.json").is_file() or (path / "config.json").is_file()):
        return path
    raise AdaptlabError(f"{path} is neither a run folder (with {MODEL_FOLDER}/) nor a saved model folder")


def save_trained(model: nn.Module, tokenizer, out_dir: Path, method: MethodConfig, *, task=None) -> Path:
    """Write ``model`` + ``tokenizer`` to ``out_dir`` (replacing an earlier adaptlab folder there). Returns it.

    ``task``: the :class:`~adaptlab.nli.tasks.TaskSpec` it was trained on, recorded as ``task`` (name, input kind,
    text fields); without one the key is left out, which readers take as MultiNLI.
    """
    out_dir = Path(out_dir)
    if (method.method == "lora") != is_lora(model):
        raise AdaptlabError(f"method {method.method!r} does not match the model ({type(model).__name__})")
    base = classifier_of(model)
    labels = [base.config.id2label[i] for i in range(base.config.num_labels)]
    meta = {
        "format": "peft-lora" if is_lora(model) else "transformers",
        "method": method.to_dict(),
        "labels": labels,
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
        "base_model": getattr(base, "adaptlab_model_spec", None) or base.config._name_or_path,
        "random_init": bool(getattr(base, "adaptlab_random_init", False)),
        **({"task": task.meta()} if task is not None else {}),
    }
    if is_lora(model):  # lets a registry refuse this adapter on a base with other weights
        meta["base_sha256"] = base_fingerprint(model)
    with _staging(out_dir) as staging:
        if is_lora(model):
            # adapter + head. The vocabulary is never resized here, so PEFT need not save whole embedding
            # matrices; its "auto" would look the base up on the hub at every save to find that out.
            model.save_pretrained(staging, save_embedding_layers=False)
        else:
            model.save_pretrained(staging)  # safetensors weights + config
        tokenizer.save_pretrained(staging)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir


@contextmanager
def _staging(out_dir: Path):
    """A temp folder that replaces ``out_dir`` only when the block finishes without error.

    Replacing is allowed only for an earlier adaptlab model folder (or an empty one): never a user's other data.
    """
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / META_FILE).is_file())):
        raise AdaptlabError(f"{out_dir} exists and is not an adaptlab model folder; choose another output path")
    with atomic_folder(out_dir, replace=True) as staging:
        yield staging


def read_meta(path: Path) -> dict:
    """``adaptlab_model.json`` of a saved folder (``{}`` for folders saved by other tools)."""
    meta_file = Path(path) / META_FILE
    if not meta_file.is_file():
        return {}
    return _read_json_object(meta_file)


def _read_json_object(path: Path) -> dict:
    """A JSON object from ``path``; anything else (not UTF-8, not JSON, a list) is a one-line AdaptlabError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON and bytes that are not UTF-8 alike
        raise AdaptlabError(f"{path} is unreadable: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise AdaptlabError(f"{path} must hold a JSON object, not a {type(data).__name__}")
    return data


def load_trained(path: Path):
    """``(model, tokenizer)`` from a folder written by :func:`save_trained` or :func:`merge_adapter`, in eval mode.

    LoRA folders rebuild their base from ``adaptlab_model.json`` (or PEFT's ``base_model_name_or_path``) and attach
    the adapter with ``PeftModel.from_pretrained``; other folders load with ``from_pretrained`` (safetensors only).
    """
    path = Path(path)
    if not path.is_dir():
        raise AdaptlabError(f"no saved model at {path}")
    meta = read_meta(path)
    check_safetensors(path)
    if (path / "adapter_config.json").is_file():
        model = _load_lora(path, meta)
    elif (path / "config.json").is_file():
        try:
            model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise AdaptlabError(f"cannot load the model in {path}: {first_line(exc)}") from None
    else:
        raise AdaptlabError(f"{path} holds neither a PEFT adapter (adapter_config.json) nor a model (config.json)")
    _check_label_names(path, meta, model.config.num_labels)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise AdaptlabError(f"cannot load the tokenizer saved in {path}: {first_line(exc)}") from None
    fit_tokenizer(tokenizer, model.config)  # as at training (a tokenizer taken from another model)
    return model.eval(), tokenizer


def _check_label_names(path: Path, meta: dict, num_labels: int | None) -> None:
    """The saved label names must agree with each other and with the head's output count (``None``: not known
    yet): a mismatch would mislabel every prediction."""
    for key in ("labels", "id2label", "label2id"):
        names = meta.get(key)
        if names is None:
            continue
        count = len(names) if isinstance(names, (list, dict)) else None
        if count is None or (num_labels is not None and count != num_labels):
            raise AdaptlabError(f"{path}/{META_FILE}: {key} names {count if count is not None else names!r} "
                                f"label(s) but the model's head has {num_labels} outputs")


def read_lora_config(path: Path, meta: dict):
    """The ``LoraConfig`` of the adapter folder ``path`` (``meta``: its adaptlab_model.json), after the checks every
    reader of an adapter needs: safetensors weights (never PEFT's pickled .bin), a base that can be rebuilt, a
    LoRA config PEFT can read. One-line AdaptlabError otherwise."""
    if not (path / "adapter_model.safetensors").is_file():  # never fall back to PEFT's pickled .bin
        raise AdaptlabError(f"{path} has no adapter_model.safetensors; only safetensors adapters are loaded, never "
                            "pickled .bin files")
    if meta.get("random_init"):
        raise AdaptlabError(
            f"{path} is a LoRA adapter trained on a randomly initialised base whose weights were not saved; "
            "it cannot be reloaded"
        )
    peft_type = _read_json_object(path / "adapter_config.json").get("peft_type")
    if peft_type != "LORA":  # PEFT would fail with a KeyError, or load an adapter kind we never save
        raise AdaptlabError(f"{path}/adapter_config.json: peft_type is {peft_type!r}, not 'LORA'; "
                            "only LoRA adapters saved by adaptlab or PEFT are loaded")
    try:
        return PeftConfig.from_pretrained(str(path))
    except (OSError, TypeError, ValueError, KeyError) as exc:
        raise AdaptlabError(f"{path}/adapter_config.json is not a valid LoRA config: {first_line(exc)}") from None


def _load_lora(path: Path, meta: dict) -> nn.Module:
    peft_config = read_lora_config(path, meta)
    spec = meta.get("base_model") or peft_config.base_model_name_or_path
    if not spec:
        raise AdaptlabError(f"{path}/adapter_config.json names no base model (base_model_name_or_path)")
    # The base checkpoint has no trained head: transformers would report it "newly initialized", but the adapter
    # restores it. Its report stays quiet, and only weights the adapter does not restore are named below.
    _check_label_names(path, meta, len(meta["labels"]) if isinstance(meta.get("labels"), list) else None)
    base, _ = load_base_model(spec, labels=meta.get("labels"), report_missing=False)
    try:
        with quiet_peft():
            model = PeftModel.from_pretrained(base, str(path))
    except RuntimeError as exc:  # torch's state-dict mismatch: its useful line is not the first
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), first_line(exc))
        raise AdaptlabError(f"{path}: the saved adapter does not fit the base built from {META_FILE} ({detail}); "
                            "its label names may disagree with the saved head") from None
    except (TypeError, ValueError, KeyError) as exc:  # a hand-edited adapter_config.json PEFT cannot apply
        raise AdaptlabError(f"{path}: PEFT cannot apply the adapter its adapter_config.json describes: "
                            f"{first_line(exc)}") from None
    unrestored = sorted(set(base.adaptlab_missing_keys) - _adapter_modules_keys(path))
    if unrestored:
        print(f"warning: {len(unrestored)} weights of the base model {spec} are neither in its checkpoint nor in "
              f"the adapter {path}, so they are random: {', '.join(unrestored[:4])}"
              + (" ..." if len(unrestored) > 4 else ""), file=sys.stderr)
    return model


def _adapter_modules_keys(path: Path) -> set[str]:
    """Base-model parameter names whose full weights the adapter file carries (the head, modules_to_save)."""
    with safe_open(str(path / "adapter_model.safetensors"), "pt") as weights:
        return {key.removeprefix("base_model.model.") for key in weights.keys()}


PROBE_PAIRS = [("A man is playing a guitar on stage.", "A person makes music."),
               ("Two dogs run through the snow.", "The animals are asleep indoors.")]
MERGE_TOLERANCE = 1e-4


def merge_adapter(adapter_dir: Path, out_dir: Path, *, overwrite: bool = False) -> Path:
    """Fold a LoRA adapter (and its trained head) into the base weights; save a plain safetensors model folder.

    Before saving, logits of the merged model on a small probe batch must equal the unmerged model's within
    ``MERGE_TOLERANCE``; the measured maximum difference is recorded as ``merge_max_abs_logit_diff``.
    ``out_dir`` must not exist or be empty unless ``overwrite``, and is never the adapter folder, a folder
    inside it or one that contains it (replacing those would destroy what is being merged). It appears in
    one rename when complete.
    """
    target = Path(out_dir)
    adapter, out = Path(adapter_dir).resolve(), target.resolve()
    if out == adapter or out in adapter.parents or adapter in out.parents:
        raise AdaptlabError(f"cannot merge into {target}: it is, contains or lies inside the adapter folder "
                            f"{adapter_dir}; choose an output folder outside it")
    empty_folder = target.is_dir() and not target.is_symlink() and not any(target.iterdir())
    if (target.exists() or target.is_symlink()) and not empty_folder and not overwrite:
        raise AdaptlabError(f"{target} already exists and is not an empty folder; pass --overwrite to replace it")
    check_output_root(target.parent)  # an unwritable place fails now, not after loading and merging
    model, tokenizer = load_trained(adapter_dir)
    if not is_lora(model):
        raise AdaptlabError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
    meta = read_meta(adapter_dir)
    probe = tokenizer([p for p, _ in PROBE_PAIRS], [h for _, h in PROBE_PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**probe).logits
        merged = model.merge_and_unload()
        after = merged(**probe).logits
    diff = float((before - after).abs().max())
    if not diff <= MERGE_TOLERANCE:
        raise AdaptlabError(f"merged model differs from the adapter by {diff:.2e} > {MERGE_TOLERANCE:g}; not saved")
    meta.update(format="transformers", merged_from=str(Path(adapter_dir).resolve()), merge_max_abs_logit_diff=diff)
    with atomic_folder(target, replace=True) as staging:  # replacing was allowed above
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return target
