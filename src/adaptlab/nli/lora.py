"""LoRA through PEFT: which linear layers it adapts (presets per architecture) and the LoraConfig we build.

Target presets, resolved from the model's own first encoder layer (so they work for BERT, RoBERTa, MPNet,
DistilBERT, DeBERTa, ... without a table per family):

- ``qv``: the attention query and value projections (the LoRA paper's and the reference study's choice);
- ``attn``: every linear layer of the attention block: q, k, v and the attention output projection;
- ``all-linear``: every linear layer of each encoder layer (attention + feed-forward).

Each preset becomes the shortest module-name suffixes that match exactly the wanted layers in the whole model
(PEFT matches ``target_modules`` by suffix), so ``qv`` on RoBERTa is ``query,value`` as in the reference study
and ``attn`` on BERT is ``query,key,value,attention.output.dense`` (a bare ``dense`` would hit the pooler too).
"""

from __future__ import annotations

from torch import nn

from adaptlab.errors import AdaptlabError
from adaptlab.nli.config import TARGET_PRESETS
from adaptlab.nli.structure import base_model_prefix, encoder_layers, head_path_module_names

_QUERY_NAMES, _VALUE_NAMES = {"q", "query"}, {"v", "value"}
PEFT_HEAD_NAMES = ("classifier", "score")  # what PEFT's SEQ_CLS task type always keeps trainable


def _linear_paths(layer: nn.Module) -> list[str]:
    return [name for name, module in layer.named_modules() if isinstance(module, nn.Linear)]


def _core(path: str) -> str:
    """``attention.self.query_proj`` -> ``query``; ``attn.q`` -> ``q``; ``q_lin`` -> ``q``."""
    return path.rsplit(".", 1)[-1].removesuffix("_proj").removesuffix("_lin")


def _is_attention(path: str) -> bool:
    return any("attention" in part or "attn" in part for part in path.split(".")[:-1])


def preset_paths(model: nn.Module, preset: str) -> list[str]:
    """Paths inside one encoder layer of the linear layers a preset adapts."""
    _, layers = encoder_layers(model)
    paths = _linear_paths(layers[0])
    if preset == "all-linear":
        chosen = paths
    elif preset == "attn":
        chosen = [p for p in paths if _is_attention(p)]
    else:
        query = [p for p in paths if _core(p) in _QUERY_NAMES]
        value = [p for p in paths if _core(p) in _VALUE_NAMES]
        chosen = query + value if len(query) == len(value) == 1 else []
    if not chosen:
        raise AdaptlabError(f"cannot find the {preset!r} layers in {type(model).__name__}'s encoder layer "
                            f"(linear layers: {', '.join(paths)}); pass module names with --targets instead")
    return chosen


def _matches(names: list[str], suffix: str) -> set[str]:
    return {n for n in names if n == suffix or n.endswith("." + suffix)}


def resolve_targets(model: nn.Module, targets: tuple[str, ...]) -> list[str]:
    """PEFT ``target_modules`` for ``targets`` (one preset, or module names checked against the model)."""
    names = [name for name, _ in model.named_modules()]
    if len(targets) == 1 and targets[0] in TARGET_PRESETS:
        layers_name, layers = encoder_layers(model)
        paths = preset_paths(model, targets[0])
        root = f"{base_model_prefix(model)}.{layers_name}"
        wanted = {f"{root}.{i}.{p}" for i in range(len(layers)) for p in paths}
        suffixes = []
        for path in paths:
            parts = path.split(".")
            suffix = next(".".join(parts[k:]) for k in range(len(parts) - 1, -1, -1)
                          if _matches(names, ".".join(parts[k:])) <= wanted)
            suffixes.append(suffix)
        return suffixes
    _check_names(model, targets)
    return list(targets)


def _check_names(model: nn.Module, targets: tuple[str, ...]) -> None:
    """Every explicit target must name layers of the base model (PEFT only fails when none match)."""
    linear_names = [name for name, module in model.base_model.named_modules()
                    if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d))]
    available = sorted({name.rsplit(".", 1)[-1] for name in linear_names})
    for target in targets:
        if not _matches(linear_names, target):
            raise AdaptlabError(
                f"LoRA target module {target!r} not found in {type(model).__name__}; layer names available: "
                f"{', '.join(available)} (or a preset: {', '.join(TARGET_PRESETS)})"
            )


def lora_config(model: nn.Module, method, also_train: tuple[str, ...] = ()):
    """PEFT ``LoraConfig`` for ``method`` (a lora MethodConfig) on ``model``.

    ``modules_to_save``: with ``head="full"`` everything between the encoder's last layer and the logits (BERT's
    pooler + classifier, RoBERTa's classifier.dense/out_proj, DistilBERT's pre_classifier + classifier);
    with ``head="peft"`` only what PEFT's SEQ_CLS task keeps by itself (``classifier``/``score``). Modules in
    ``also_train`` (randomly initialised base weights) train and are saved either way.
    """
    from peft import LoraConfig, TaskType

    target_modules = resolve_targets(model, method.targets)
    head = head_path_module_names(model) if method.head == "full" else []
    all_names = [name for name, _ in model.named_modules()]
    for target in target_modules:
        clash = [h for h in head if any(n == h or n.startswith(h + ".") for n in _matches(all_names, target))]
        if clash:
            raise AdaptlabError(f"LoRA target {target!r} also matches {', '.join(clash)}, which trains fully as "
                                "part of the head; name the encoder's layers more precisely")
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=method.rank,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=target_modules,
        use_rslora=method.use_rslora,
        use_dora=method.use_dora,
        init_lora_weights=True if method.init == "default" else method.init,
        # PEFT adds classifier/score itself; the rest by full dotted name (PEFT matches by suffix)
        modules_to_save=[name for name in dict.fromkeys(head + list(also_train))
                         if name not in PEFT_HEAD_NAMES] or None,
    )
