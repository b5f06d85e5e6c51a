"""sha256 fingerprints of model weights at tensor level: the same weights give the same hex whatever file held them.

- :func:`tensors_sha256`: name, dtype, shape and bytes of each tensor, in the order given.
- :func:`base_fingerprint`: the frozen base an adapter is trained on, so a registry can refuse an adapter trained
  on other weights. It covers the base model's parameters below the head path (embeddings and encoder layers);
  LoRA matrices, the modules PEFT trains as whole copies (``modules_to_save``) and the head path (BERT's pooler,
  the classifier) are left out because they differ per task. Names are those of the plain transformers model
  (PEFT's ``base_layer`` wrapping is removed), so a PeftModel and the bare base it was built on agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn

from adaptlab.nli.structure import classifier_of, head_path_module_names

_PEFT_COPY_PARTS = ("modules_to_save", "original_module")  # a ModulesToSaveWrapper's two children


def tensors_sha256(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over ``(name, dtype, shape, bytes)`` of each tensor, in the order given."""
    digest = hashlib.sha256()
    for name, tensor in named_tensors:
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _inside(name: str, modules: set[str]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)


def base_fingerprint(model: nn.Module, exclude: Iterable[str] = ()) -> str:
    """sha256 of the frozen base weights of ``model`` (a PeftModel or a plain sequence classifier).

    ``exclude``: further dotted module names to leave out of a plain model, e.g. base modules its checkpoint
    lacked (randomly initialised at each load, so trained and saved by every adapter instead).
    """
    base = classifier_of(model)
    skipped = set(head_path_module_names(base)) | set(exclude)
    kept = []
    for name, param in base.named_parameters():
        parts = name.split(".")
        if any(part.startswith("lora_") or part in _PEFT_COPY_PARTS for part in parts):
            continue
        plain = ".".join(part for part in parts if part != "base_layer")
        if not _inside(plain, skipped):
            kept.append((plain, param))
    return tensors_sha256(kept)
