"""Where the parts of a Hugging Face sequence classifier are, found from the model itself, not from family names.

- the *layer list*: the ``nn.ModuleList`` of ``config.num_hidden_layers`` blocks inside the base model;
- the *head*: every top-level child of the classification model other than its base model
  (RoBERTa/MPNet: ``classifier`` = dense + out_proj; BERT: ``classifier``; DistilBERT: ``pre_classifier`` +
  ``classifier``);
- *above the encoder*: children of the base model registered after the one holding the layer list (BERT's
  ``pooler``): they read the top layer's output, so together with the head they are everything between the
  encoder's last layer and the logits.
"""

from __future__ import annotations

from torch import nn

from adaptlab.errors import AdaptlabError


def classifier_of(model: nn.Module) -> nn.Module:
    """The transformers sequence classifier itself: the model inside a PeftModel, or ``model``."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``(dotted name inside the base model, layers)`` of the transformer block list."""
    n_layers = model.config.num_hidden_layers
    found = [(name, module) for name, module in model.base_model.named_modules()
             if isinstance(module, nn.ModuleList) and len(module) == n_layers]
    if len(found) != 1:
        raise AdaptlabError(
            f"cannot find the list of {n_layers} encoder layers in {type(model).__name__} "
            f"(found {len(found)} candidate lists); this method needs a standard encoder"
        )
    return found[0]


def base_model_prefix(model: nn.Module) -> str:
    """The attribute name of the base model inside the classification model (``bert``, ``roberta``, ...)."""
    base = model.base_model
    for name, child in model.named_children():
        if child is base:
            return name
    raise AdaptlabError(f"{type(model).__name__} does not hold its base model as a direct child")


def head_module_names(model: nn.Module) -> list[str]:
    """Top-level children of the classification model, outside its base model, that hold parameters.

    These are freshly initialised for a new task, so every method trains them.
    """
    base = model.base_model
    names = [name for name, child in model.named_children()
             if child is not base and any(True for _ in child.parameters())]
    if not names:
        raise AdaptlabError(f"{type(model).__name__} has no classification head outside its base model")
    return names


def modules_above_encoder(model: nn.Module) -> list[str]:
    """Dotted names (from the classification model) of base-model children after the encoder that hold weights."""
    layers_name, _ = encoder_layers(model)
    encoder_child = layers_name.split(".", 1)[0]
    prefix = base_model_prefix(model)
    names, after_encoder = [], False
    for name, child in model.base_model.named_children():
        if after_encoder and any(True for _ in child.parameters()):
            names.append(f"{prefix}.{name}")
        after_encoder = after_encoder or name == encoder_child
    return names


def head_path_module_names(model: nn.Module) -> list[str]:
    """Everything between the encoder's last layer and the logits: modules above the encoder, then the head."""
    return modules_above_encoder(model) + head_module_names(model)


def module_parameter_count(model: nn.Module, names: list[str]) -> int:
    return sum(p.numel() for name in names for p in model.get_submodule(name).parameters())
