"""Fine-tuning methods (LoRA, full, partial) applied to any Hugging Face sequence-classification encoder.

What trains under each method:

- ``lora``: LoRA matrices A, B (PEFT) on the ``targets`` linear layers of every encoder layer, plus everything
  between the encoder's last layer and the logits (BERT's pooler + classifier, RoBERTa's classifier.dense +
  out_proj, DistilBERT's pre_classifier + classifier), which PEFT keeps as trained copies (``modules_to_save``)
  so they are saved with the adapter. ``head="peft"`` keeps only what PEFT's SEQ_CLS default trains
  (``classifier``/``score``), e.g. leaving BERT's pooler frozen.
- ``full``: every parameter.
- ``partial``: the top ``top_layers`` encoder layers, whatever sits above the encoder inside the base model
  (BERT's pooler) and the head. Embeddings, the lower layers and encoder-wide shared tables (MPNet's relative
  attention bias, DeBERTa's relative embeddings) stay frozen.

The pieces are found from the model itself (:mod:`adaptlab.nli.structure`), not from family-specific names.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

from torch import nn

from adaptlab.errors import AdaptlabError
from adaptlab.nli.config import METHODS, NLIModelConfig, check_method_settings
from adaptlab.nli.lora import lora_config
from adaptlab.nli.structure import encoder_layers, head_module_names, modules_above_encoder


_MODEL = NLIModelConfig()  # the one definition of each default, documented field by field in nli/config.py


@dataclass
class MethodConfig:
    """How to adapt the encoder (the library-level view of :class:`adaptlab.nli.config.NLIModelConfig`).

    ``alpha`` defaults to 2 x ``rank`` (32 for r=16): the LoRA paper's RoBERTa-large GLUE runs use r=8 with
    alpha=16 (Hu et al. 2021, Table 9; microsoft/LoRA examples/NLU), i.e. PEFT's scaling alpha/r = 2; keeping the
    ratio keeps the adapter's effective learning rate when the rank changes.

    ``top_layers`` (partial) defaults to ``None`` = a quarter of the encoder layers, rounded up (6 of 24 for
    roberta-large, 3 of 12 for roberta-base, 2 of 6 for MiniLM-L6): Lee et al. 2019 ("What Would Elsa Do?
    Freezing Layers During Transformer Fine-Tuning") report that tuning the top quarter of BERT/RoBERTa keeps
    about 90% of full fine-tuning quality. ``0`` trains only the head (and pooler).
    """

    method: str = _MODEL.method
    rank: int = _MODEL.rank
    alpha: float | None = _MODEL.alpha  # None: 2 x rank; a whole number is stored as an int (what PEFT shows)
    dropout: float = _MODEL.dropout
    targets: tuple[str, ...] = (_MODEL.targets,)  # a preset (qv, attn, all-linear) or module names
    use_rslora: bool = _MODEL.use_rslora
    use_dora: bool = _MODEL.use_dora
    init: str = _MODEL.init
    head: str = _MODEL.head
    top_layers: int | None = _MODEL.top_layers

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            self.targets = tuple(t.strip() for t in self.targets.split(",") if t.strip())
        else:
            self.targets = tuple(self.targets)
        if self.alpha is None and isinstance(self.rank, int) and not isinstance(self.rank, bool):
            self.alpha = 2 * self.rank
        if isinstance(self.alpha, float) and self.alpha.is_integer():  # --alpha and YAML may give 16.0
            self.alpha = int(self.alpha)

    @classmethod
    def of(cls, settings) -> MethodConfig:
        """The method a settings object describes with the same field names (e.g. ``config.NLIRunConfig``); a
        field the object lacks keeps its default here."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)})

    def validate(self) -> None:
        """Raise :class:`AdaptlabError` on values that cannot describe a method."""
        check_method_settings(self)

    def describe(self) -> str:
        """One short human-readable line, e.g. ``r=16, alpha=32, dropout=0.1, targets=qv``."""
        if self.method == "lora":
            extras = [name for name in ("use_rslora", "use_dora") if getattr(self, name)]
            extras += [f"init={self.init}"] if self.init != "default" else []
            extras += ["head=peft (classifier only)"] if self.head == "peft" else []
            return ", ".join([f"r={self.rank}, alpha={self.alpha}, dropout={self.dropout}, "
                              f"targets={','.join(self.targets)}", *extras])
        if self.method == "partial":
            return f"top_layers={'quarter' if self.top_layers is None else self.top_layers}"
        return "all parameters"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data




def resolved_top_layers(method: MethodConfig, n_layers: int) -> int:
    """The number of top encoder layers ``partial`` trains (see :class:`MethodConfig`)."""
    top = math.ceil(n_layers / 4) if method.top_layers is None else method.top_layers
    if top > n_layers:
        raise AdaptlabError(f"--top-layers {top} exceeds the model's {n_layers} encoder layers")
    return top


def apply_method(model: nn.Module, method: MethodConfig, also_train: tuple[str, ...] = ()) -> nn.Module:
    """Set what trains in ``model`` according to ``method``; returns a PeftModel for LoRA, else ``model``.

    ``also_train``: dotted module names that must train under every method (e.g. base-model weights the
    checkpoint lacked, hence randomly initialised).
    """
    method.validate()
    if method.method == "lora":
        return _apply_lora(model, method, also_train)
    if method.method == "full":
        model.requires_grad_(True)
        return model
    _apply_partial(model, method, also_train)
    return model


def _apply_lora(model: nn.Module, method: MethodConfig, also_train: tuple[str, ...]) -> nn.Module:
    from peft import get_peft_model

    config = lora_config(model, method, also_train)
    with quiet_peft():
        return get_peft_model(model, config)


@contextmanager
def quiet_peft():
    """Silence the deprecation warning PEFT triggers in transformers v5: nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _apply_partial(model: nn.Module, method: MethodConfig, also_train: tuple[str, ...]) -> None:
    _, layers = encoder_layers(model)
    top = resolved_top_layers(method, len(layers))
    model.requires_grad_(False)
    for layer in list(layers)[len(layers) - top:]:
        layer.requires_grad_(True)
    for name in modules_above_encoder(model) + head_module_names(model) + list(also_train):
        model.get_submodule(name).requires_grad_(True)


def _adapter_parameter_ids(model: nn.Module) -> tuple[set[int], set[int]]:
    """Ids of (LoRA-style adapter parameters, trained copies kept by ``modules_to_save``) in a PeftModel."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import ModulesToSaveWrapper

    adapters: set[int] = set()
    copies: set[int] = set()
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            for attr in (*module.adapter_layer_names, *module.other_param_names):
                sub = getattr(module, attr, None)
                if isinstance(sub, nn.Module):
                    adapters.update(id(p) for p in sub.parameters())
                elif isinstance(sub, nn.Parameter):
                    adapters.add(id(sub))
        elif isinstance(module, ModulesToSaveWrapper):
            copies.update(id(p) for p in module.modules_to_save.parameters())
    return adapters, copies


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter counts of an adapted model, in number of scalar parameters.

    ``total`` is the classification model being adapted (base encoder + its head), whatever the method.
    ``adapters`` are the parameters a method adds (LoRA A/B); ``head_copies`` the trained copies of the head that
    PEFT's ``modules_to_save`` keeps next to the frozen original.
    """

    trainable: int
    total: int
    adapters: int = 0
    head_copies: int = 0

    @property
    def with_adapters(self) -> int:
        """Size of the model with adapters attached (what a merged-or-not deployment holds)."""
        return self.total + self.adapters

    @property
    def peft_all(self) -> int:
        """What PEFT's ``print_trainable_parameters`` calls "all params" (it counts the head twice)."""
        return self.total + self.adapters + self.head_copies

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0


def parameter_counts(model: nn.Module) -> ParameterCounts:
    """Count trainable and total parameters, keeping adapters and PEFT's head copies apart (meta device ok)."""
    adapters, copies = _adapter_parameter_ids(model)
    trainable = total = n_adapters = n_copies = 0
    for param in model.parameters():
        n = param.numel()
        if param.requires_grad:
            trainable += n
        if id(param) in adapters:
            n_adapters += n
        elif id(param) in copies:
            n_copies += n
        else:
            total += n
    return ParameterCounts(trainable=trainable, total=total, adapters=n_adapters, head_copies=n_copies)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """``(trainable, total)``: total = the classification model being adapted, without LoRA A/B or head copies."""
    counts = parameter_counts(module)
    return counts.trainable, counts.total


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that receive gradients, in model order."""
    return [name for name, param in model.named_parameters() if param.requires_grad]


def is_lora(model: nn.Module) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


__all__ = [
    "METHODS", "MethodConfig", "ParameterCounts", "apply_method", "count_parameters", "encoder_layers",
    "head_module_names", "is_lora", "parameter_counts", "resolved_top_layers", "trainable_names",
]
