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
from dataclasses import asdict, dataclass, field

from torch import nn

from adaptlab.errors import AdaptlabError
from adaptlab.nli.lora import INIT_CHOICES, TARGET_PRESETS, check_init, lora_config
from adaptlab.nli.structure import encoder_layers, head_module_names, modules_above_encoder

METHODS = ("lora", "full", "partial")
HEAD_CHOICES = ("full", "peft")


@dataclass
class MethodConfig:
    """How to adapt the encoder.

    ``alpha`` defaults to 2 x ``rank`` (32 for r=16): the LoRA paper's RoBERTa-large GLUE runs use r=8 with
    alpha=16 (Hu et al. 2021, Table 9; microsoft/LoRA examples/NLU), i.e. PEFT's scaling alpha/r = 2; keeping the
    ratio keeps the adapter's effective learning rate when the rank changes.

    ``top_layers`` (partial) defaults to ``None`` = a quarter of the encoder layers, rounded up (6 of 24 for
    roberta-large, 3 of 12 for roberta-base, 2 of 6 for MiniLM-L6): Lee et al. 2019 ("What Would Elsa Do?
    Freezing Layers During Transformer Fine-Tuning") report that tuning the top quarter of BERT/RoBERTa keeps
    about 90% of full fine-tuning quality. ``0`` trains only the head (and pooler).
    """

    method: str = field(default="lora", metadata={
        "help": "lora: PEFT LoRA + head; full: everything; partial: top layers + head", "choices": list(METHODS)})
    rank: int = field(default=16, metadata={"help": "LoRA rank r", "flags": ["--r", "--lora-r"]})
    # a whole number is stored as an int (32, not 32.0: what PEFT and reports show)
    alpha: float | None = field(default=None, metadata={
        "help": "LoRA alpha; scaling is alpha/r, or alpha/sqrt(r) with use_rslora (default: 2 x rank)",
        "flags": ["--lora-alpha"]})
    dropout: float = field(default=0.1, metadata={"help": "LoRA dropout", "flags": ["--lora-dropout"]})
    targets: tuple[str, ...] = field(default=("qv",), metadata={
        "help": f"layers LoRA adapts: a preset ({', '.join(TARGET_PRESETS)}: query+value, q/k/v/o, every linear "
        "layer of each encoder layer) or comma-separated module names", "flags": ["--target-modules"]})
    use_rslora: bool = field(default=False, metadata={
        "help": "rank-stabilised LoRA: scale by alpha/sqrt(r) instead of alpha/r (PEFT use_rslora)"})
    use_dora: bool = field(default=False, metadata={
        "help": "DoRA: weight-decomposed LoRA, a trained magnitude per output (PEFT use_dora)"})
    init: str = field(default="default", metadata={
        "help": "LoRA initialisation (PEFT init_lora_weights): default = A Kaiming-uniform, B zero",
        "choices": list(INIT_CHOICES), "flags": ["--init-lora-weights"]})
    head: str = field(default="full", metadata={
        "help": "LoRA: full = train everything between the last encoder layer and the logits (pooler + "
        "classifier); peft = only classifier/score, PEFT's SEQ_CLS default", "choices": list(HEAD_CHOICES),
        "flags": ["--lora-head"]})
    top_layers: int | None = field(default=None, metadata={
        "help": "partial: train the top N encoder layers + head (default: a quarter of the layers)",
        "metavar": "N"})

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            self.targets = tuple(t.strip() for t in self.targets.split(",") if t.strip())
        else:
            self.targets = tuple(self.targets)
        if self.alpha is None and isinstance(self.rank, int) and not isinstance(self.rank, bool):
            self.alpha = 2 * self.rank
        if isinstance(self.alpha, float) and self.alpha.is_integer():  # --alpha and YAML may give 16.0
            self.alpha = int(self.alpha)

    def validate(self) -> None:
        """Raise :class:`AdaptlabError` on values that cannot describe a method."""
        if self.method not in METHODS:
            raise AdaptlabError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method == "lora":
            if not _is_positive_int(self.rank):
                raise AdaptlabError(f"LoRA rank must be a positive integer, got {self.rank!r}")
            if not isinstance(self.alpha, (int, float)) or isinstance(self.alpha, bool) or not self.alpha > 0 \
                    or not math.isfinite(self.alpha):
                raise AdaptlabError(f"LoRA alpha must be a positive number, got {self.alpha!r}")
            if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                    or not 0.0 <= self.dropout < 1.0:
                raise AdaptlabError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
            if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
                raise AdaptlabError("LoRA needs at least one target module name or preset, e.g. --targets qv")
            presets = [t for t in self.targets if t in TARGET_PRESETS]
            if presets and len(self.targets) > 1:
                raise AdaptlabError(f"the target preset {presets[0]!r} cannot be combined with other targets")
            for name in ("use_rslora", "use_dora"):
                if not isinstance(getattr(self, name), bool):
                    raise AdaptlabError(f"{name} must be true or false, got {getattr(self, name)!r}")
            check_init(self.init, self.rank)
            if self.head not in HEAD_CHOICES:
                raise AdaptlabError(f"LoRA head must be one of {', '.join(HEAD_CHOICES)}, got {self.head!r}")
        if self.method == "partial" and self.top_layers is not None:
            if isinstance(self.top_layers, bool) or not isinstance(self.top_layers, int) or self.top_layers < 0:
                raise AdaptlabError(f"--top-layers must be an integer >= 0, got {self.top_layers!r}")

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


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


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
