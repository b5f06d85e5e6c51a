"""A registry folder on disk: ``registry.json`` plus one ordinary adapter folder per task.

::

    REGISTRY/
      registry.json            {"format", "version", "base_model", "base_sha256", "max_length", "tasks": [...]}
      <task>/                  adapter_config.json + adapter_model.safetensors (LoRA + head, PEFT's names)
                               + adaptlab_model.json (labels, task, base, base_sha256) + the base's tokenizer

Each task folder is the adapter as ``nli train`` saves it, so ``adaptlab nli predict``/``load_trained`` and plain
PEFT read it too. Safetensors and JSON only; the whole folder is replaced in one rename.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from adaptlab.adapters.adapter_files import ADAPTER_WEIGHTS, check_task_name
from adaptlab.core.atomic import atomic_folder
from adaptlab.errors import AdaptlabError
from adaptlab.nli.artifacts import META_FILE

REGISTRY_FILE = "registry.json"
FORMAT, VERSION = "adaptlab-adapter-registry", 1


def is_registry(folder: str | Path) -> bool:
    return (Path(folder) / REGISTRY_FILE).is_file()


def save_registry(registry, folder: str | Path) -> Path:
    """Write ``registry`` to ``folder`` (new, empty, or an earlier registry folder, which is replaced whole)."""
    folder = Path(folder)
    if folder.exists() and not (folder.is_dir() and (is_registry(folder) or not any(folder.iterdir()))):
        raise AdaptlabError(f"{folder} exists and is not an adapter registry folder; choose another path")
    listing = {"format": FORMAT, "version": VERSION, "base_model": registry.base_model,
               "base_sha256": registry.base_sha256, "max_length": registry.max_length,
               "tasks": [{"name": t.name, "labels": t.labels, "input": t.input, "text_fields": list(t.text_fields)}
                         for t in registry.tasks()]}
    with atomic_folder(folder, replace=True) as staging:
        for info in registry.tasks():
            record = registry.adapter_record(info.name)
            task_dir = staging / info.name
            task_dir.mkdir()
            tensors = {**registry.lora_state(info.name), **registry.head_state(info.name)}
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(task_dir / ADAPTER_WEIGHTS),
                      metadata={"format": "pt"})
            record.peft_config.save_pretrained(str(task_dir))
            registry.tokenizer.save_pretrained(str(task_dir))
            (task_dir / META_FILE).write_text(json.dumps(record.meta, indent=2) + "\n")
        (staging / REGISTRY_FILE).write_text(json.dumps(listing, indent=2) + "\n")
    return folder


def read_listing(folder: str | Path) -> dict:
    """``registry.json`` of ``folder``, checked."""
    path = Path(folder) / REGISTRY_FILE
    if not path.is_file():
        raise AdaptlabError(f"{folder} is not an adapter registry folder (no {REGISTRY_FILE})")
    try:
        listing = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdaptlabError(f"{path} is unreadable: {exc}") from None
    if not isinstance(listing, dict) or listing.get("format") != FORMAT or listing.get("version") != VERSION:
        raise AdaptlabError(f"{path} is not a version-{VERSION} {FORMAT} file")
    tasks = listing.get("tasks")
    if not isinstance(listing.get("base_model"), str) or not isinstance(listing.get("base_sha256"), str) \
            or not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise AdaptlabError(f"{path} lacks base_model, base_sha256 or a tasks list")
    for task in tasks:
        check_task_name(task.get("name"))
    return listing


def open_registry(cls, folder: str | Path, device: str = "cpu"):
    """Rebuild a registry saved by :func:`save_registry`: the base once, then every task's adapter folder."""
    folder = Path(folder)
    listing = read_listing(folder)
    settings = {"max_length": listing["max_length"]} if "max_length" in listing else {}
    registry = cls.from_base(listing["base_model"], device, **settings)
    if registry.base_sha256 != listing["base_sha256"]:
        raise AdaptlabError(f"{folder} was saved for base {listing['base_model']} (sha {listing['base_sha256'][:12]}), "
                            f"but that base now loads other weights (sha {registry.base_sha256[:12]})")
    for task in listing["tasks"]:
        registry.add(task["name"], folder / task["name"])
    return registry
