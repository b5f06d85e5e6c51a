"""Reading one saved LoRA adapter folder for the registry: checks first, then its LoRA and head tensors apart.

An adapter folder is what ``adaptlab nli train --method lora`` saves (``RUN/model``): ``adapter_config.json`` +
``adapter_model.safetensors`` (LoRA matrices and the whole trained head modules, ``modules_to_save``) +
``adaptlab_model.json`` (labels, task, base spec, ``base_sha256``) + the tokenizer. Nothing is ever unpickled: a
folder with only PEFT's ``adapter_model.bin`` is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.artifacts import read_lora_config, read_meta, trained_model_dir
from adaptlab.nli.models import check_safetensors

ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
PEFT_KEY_PREFIX = "base_model.model."  # PEFT's saved names: the classification model's own, behind this prefix
PEFT_HEAD_NAMES = ("classifier", "score")  # PEFT's SEQ_CLS task type always trains and saves these whole
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # a folder name and a PyTorch module key (no dots)
DEFAULT_TASK = {"name": "mnli", "input": "pair", "text_fields": ["premise", "hypothesis"]}


@dataclass
class AdapterFiles:
    """What the registry needs from one adapter folder, checked."""

    path: Path
    peft_config: object  # peft.LoraConfig as saved (modules_to_save, task_type SEQ_CLS)
    meta: dict
    labels: list[str]
    task: dict  # {"name", "input", "text_fields"}
    lora: dict[str, torch.Tensor] = field(repr=False)  # PEFT-saved LoRA tensors (PEFT_KEY_PREFIX names)
    heads: dict[str, dict[str, torch.Tensor]] = field(repr=False)  # head module name -> its state dict


def check_task_name(name: object) -> str:
    if not isinstance(name, str) or not TASK_NAME.match(name):
        raise AdaptlabError(f"task name {name!r} must be 1-64 letters, digits, '-' or '_' (starting with a letter "
                            "or digit)")
    return name


def read_adapter(adapter_dir: str | Path) -> AdapterFiles:
    """Read and check a LoRA adapter folder (or a run folder holding one in ``model/``); tensors on the CPU."""
    path = trained_model_dir(adapter_dir)
    if not (path / ADAPTER_CONFIG).is_file():
        raise AdaptlabError(f"{path} is not a LoRA adapter folder (no {ADAPTER_CONFIG}); the registry serves "
                            "adapters saved by `adaptlab nli train --method lora`")
    meta = read_meta(path)
    peft_config = read_lora_config(path, meta)
    check_safetensors(path)
    if peft_config.use_dora:
        raise AdaptlabError(f"{path} is a DoRA adapter, which PEFT cannot mix with other adapters in one batch; "
                            "merge it (`adaptlab nli merge`) and serve it as its own model")
    labels = _labels(path, meta)
    tensors = load_file(str(path / ADAPTER_WEIGHTS))
    lora = {key: t for key, t in tensors.items() if _is_lora_key(key)}
    if not lora:
        raise AdaptlabError(f"{path}/{ADAPTER_WEIGHTS} holds no LoRA weights")
    return AdapterFiles(path=path, peft_config=peft_config, meta=meta, labels=labels, task=task_of(meta, path),
                        lora=lora, heads=_head_tensors(path, tensors, peft_config))


def _is_lora_key(key: str) -> bool:
    return any(part.startswith("lora_") for part in key.split("."))


def _labels(path: Path, meta: dict) -> list[str]:
    labels = meta.get("labels")
    if labels is None and isinstance(meta.get("id2label"), dict):
        id2label = meta["id2label"]
        labels = [id2label.get(str(i)) for i in range(len(id2label))]
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels) \
            or len(set(labels)) != len(labels):
        raise AdaptlabError(f"{path}/adaptlab_model.json names no usable label list (need 2 or more distinct "
                            f"names, got {labels!r})")
    return labels


def task_of(meta: dict, where: Path | str) -> dict:
    """The saved task description; folders saved before tasks existed are MultiNLI pairs."""
    task = meta.get("task") or DEFAULT_TASK
    if not isinstance(task, dict) or task.get("input") not in ("single", "pair"):
        raise AdaptlabError(f"{where}/adaptlab_model.json: task must say input 'single' or 'pair', got {task!r}")
    fields = task.get("text_fields") or (["premise", "hypothesis"] if task["input"] == "pair" else ["text"])
    return {"name": str(task.get("name") or DEFAULT_TASK["name"]), "input": task["input"], "text_fields": list(fields)}


def _head_tensors(path: Path, tensors: dict[str, torch.Tensor], peft_config) -> dict[str, dict[str, torch.Tensor]]:
    """Non-LoRA tensors grouped by the ``modules_to_save`` module they belong to (``{"classifier": {"weight": ..}}``).

    PEFT matches ``modules_to_save`` entries as name suffixes; a saved tensor name is the module's full dotted name
    plus the parameter's, so the module is the longest name prefix that ends in one of the entries.
    """
    entries = set(peft_config.modules_to_save or ()) | set(PEFT_HEAD_NAMES)
    heads: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if _is_lora_key(key):
            continue
        name = key.removeprefix(PEFT_KEY_PREFIX)
        parts = name.split(".")
        module = next((".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)
                       if any(".".join(parts[:k]) == e or ".".join(parts[:k]).endswith("." + e) for e in entries)),
                      None)
        if module is None:
            raise AdaptlabError(f"{path}/{ADAPTER_WEIGHTS} holds {key}, which is neither a LoRA weight nor part of "
                                "a module the adapter saves whole (modules_to_save)")
        heads.setdefault(module, {})[name[len(module) + 1:]] = tensor
    if not heads:
        raise AdaptlabError(f"{path}/{ADAPTER_WEIGHTS} holds no classification head; save adapters with "
                            "`adaptlab nli train --method lora`, which keeps the trained head")
    return heads


def tokenizer_size(path: Path) -> int | None:
    """Number of tokens of the tokenizer saved in ``path`` (None when the folder holds no tokenizer)."""
    from transformers import AutoTokenizer

    if not any(path.glob("tokenizer*")) and not (path / "vocab.txt").is_file() and not (path / "vocab.json").is_file():
        return None
    try:
        return len(AutoTokenizer.from_pretrained(str(path)))
    except (OSError, ValueError) as exc:
        raise AdaptlabError(f"cannot load the tokenizer saved in {path}: {first_line(exc)}") from None
