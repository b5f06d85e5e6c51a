"""One frozen base model, many task adapters: each with its own LoRA weights, head and label names.

The base sequence classifier is loaded once. Each task's LoRA matrices live in one PeftModel under the task's
name; a batch may mix tasks, and each row gets its own LoRA weights in the encoder: on a GPU through
:mod:`adaptlab.adapters.gathered_lora` (every adapter's matrices stacked, one gathered matmul per layer), on the CPU
through PEFT's mixed-batch inference (``adapter_names``, one per row); ``lora_batching`` chooses. The heads (every module the adapter saved whole: the classifier, BERT's pooler)
cannot live in PEFT's ``ModulesToSaveWrapper`` (one shape, one active copy per batch), so
:mod:`adaptlab.adapters.heads` routes each row through its task's own copy, whatever its label count.

Every row's probabilities equal those of its adapter loaded alone (``load_trained``), whatever the mix and order
of the batch: the tests check it to 1e-5.
"""

from __future__ import annotations

import copy
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding

from adaptlab.adapters.adapter_files import (
    PEFT_KEY_PREFIX, AdapterFiles, check_task_name, read_adapter, tokenizer_size,
)
from adaptlab.adapters.gathered_lora import GatheredLoRA, supports
from adaptlab.adapters.heads import build_head_copies, drop_task, route, routing
from adaptlab.errors import AdaptlabError
from adaptlab.nli.fingerprint import base_fingerprint
from adaptlab.nli.inference import length_sorted_chunks
from adaptlab.nli.methods import quiet_peft
from adaptlab.nli.models import fit_tokenizer, load_base_model, load_tokenizer

DEFAULT_MAX_LENGTH = 128  # tokens per item (pair: both texts), as `nli train`/`nli predict` use by default
DEFAULT_BATCH_SIZE = 32
LORA_BATCHING = ("auto", "gathered", "peft")  # auto: gathered on GPUs, PEFT's adapter_names on the CPU


@dataclass(frozen=True)
class TaskInfo:
    name: str
    labels: list[str]
    input: str  # "single" | "pair"
    base_model: str
    text_fields: tuple[str, ...] = ()


@dataclass
class Prediction:
    task: str
    label: str
    probabilities: dict[str, float]


@dataclass
class _Task:
    info: TaskInfo
    adapter: AdapterFiles  # as read; its tensors are dropped once loaded (the model holds them)
    head_names: list[str]


class AdapterRegistry:
    """Task adapters over one base; see the module docstring. Build with :meth:`from_base` or :meth:`open`."""

    def __init__(self, base_model: str, base, tokenizer, base_sha256: str, *, device: str = "cpu",
                 max_length: int = DEFAULT_MAX_LENGTH, batch_size: int = DEFAULT_BATCH_SIZE,
                 lora_batching: str = "auto"):
        self.base_model = base_model
        self.base_sha256 = base_sha256
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_length = max_length
        self.batch_size = batch_size
        self._base = base  # the transformers model; its head modules become TaskRoutedModules
        self._peft = None  # the PeftModel around it, made with the first adapter
        self._tasks: dict[str, _Task] = {}
        self._collate = DataCollatorWithPadding(tokenizer)
        self._lock = threading.Lock()  # the LoRA row routing and the head routing are per forward pass
        self._gathered: GatheredLoRA | None = None  # stacked LoRA matrices, rebuilt after add/remove
        self.lora_batching = lora_batching

    @classmethod
    def from_base(cls, base_spec: str, device: str = "cpu", *, max_length: int = DEFAULT_MAX_LENGTH,
                  batch_size: int = DEFAULT_BATCH_SIZE, lora_batching: str = "auto") -> AdapterRegistry:
        """An empty registry over ``base_spec`` (a preset such as ``minilm``, a model folder or a hub id).

        ``max_length``: tokens per item (a pair's two texts together, truncated longest first), at most the
        tokenizer's ``model_max_length``. ``batch_size``: items per forward pass. ``lora_batching``: how a mixed
        batch gets each row's LoRA update (see :attr:`lora_batching`).
        """
        if not (isinstance(max_length, int) and max_length >= 1 and isinstance(batch_size, int) and batch_size >= 1):
            raise AdaptlabError(f"max_length and batch_size must be positive integers, got {max_length!r}, "
                                f"{batch_size!r}")
        tokenizer = load_tokenizer(base_spec)
        # never past what the model's position table holds (the tokenizer knows it; huge values mean "unset")
        if isinstance(tokenizer.model_max_length, int) and tokenizer.model_max_length < 1_000_000:
            max_length = min(max_length, tokenizer.model_max_length)
        base, random_modules = load_base_model(base_spec, report_missing=False)
        base.eval().requires_grad_(False).to(device)
        fit_tokenizer(tokenizer, base.config)  # as at training (a tokenizer taken from another model)
        # modules the checkpoint lacks are random at every load (every adapter saves its own): not part of the base
        sha = base_fingerprint(base, exclude=random_modules)
        return cls(base.adaptlab_model_spec, base, tokenizer, sha, device=device, max_length=max_length,
                   batch_size=batch_size, lora_batching=lora_batching)

    @classmethod
    def open(cls, folder: str | Path, device: str = "cpu") -> AdapterRegistry:
        """A registry saved by :meth:`save`."""
        from adaptlab.adapters.store import open_registry

        return open_registry(cls, folder, device)

    def save(self, folder: str | Path) -> Path:
        """Write the registry folder (``registry.json`` + one adapter folder per task), replacing it atomically."""
        from adaptlab.adapters.store import save_registry

        return save_registry(self, folder)

    @property
    def lora_batching(self) -> str:
        """``gathered`` (:mod:`~adaptlab.adapters.gathered_lora`), ``peft`` (PEFT's ``adapter_names``) or ``auto``:
        gathered on GPUs, where PEFT's per-adapter loop is launch-bound (a 4-task batch of 32 on roberta-large ran
        at 0.60x a single-task batch), PEFT's on the CPU, where the loop costs little next to the matmuls.
        Models the gathered path does not cover (DoRA, LoRA biases, ...) always take PEFT's."""
        return self._lora_batching

    @lora_batching.setter
    def lora_batching(self, value: str) -> None:
        if value not in LORA_BATCHING:
            raise AdaptlabError(f"lora_batching must be one of {', '.join(LORA_BATCHING)}, got {value!r}")
        self._lora_batching = value

    # ------------------------------------------------------------------------------------------ tasks
    def tasks(self) -> list[TaskInfo]:
        return [task.info for task in self._tasks.values()]

    def task(self, name: str) -> TaskInfo:
        if name not in self._tasks:
            known = ", ".join(self._tasks) or "none"
            raise AdaptlabError(f"unknown task {name!r} (registered: {known})")
        return self._tasks[name].info

    def add(self, name: str, adapter_dir: str | Path) -> TaskInfo:
        """Register the LoRA adapter in ``adapter_dir`` (a run folder or its ``model/``) as task ``name``.

        Refused (one-line AdaptlabError, registry unchanged): a taken name, a folder that is not a safetensors
        LoRA adapter, an adapter trained on other base weights, a tokenizer of another vocabulary size.
        """
        check_task_name(name)
        if name in self._tasks:
            raise AdaptlabError(f"task {name!r} is already registered; remove it first or choose another name")
        adapter = read_adapter(adapter_dir)
        self._check_base(name, adapter)
        size = tokenizer_size(adapter.path)
        if size is not None and size != len(self.tokenizer):
            raise AdaptlabError(f"adapter {name} ({adapter.path}) has a tokenizer of {size} tokens; this registry's "
                                f"base {self.base_model} has {len(self.tokenizer)}")
        heads = build_head_copies(self._base.config, adapter.labels, adapter.heads, self.device, str(adapter.path))
        self._add_lora(name, adapter)
        for module_name, module in heads.items():
            route(self._base, module_name).copies[name] = module
        info = TaskInfo(name=name, labels=list(adapter.labels), input=adapter.task["input"],
                        base_model=self.base_model, text_fields=tuple(adapter.task["text_fields"]))
        adapter.lora, adapter.heads = {}, {}  # the model holds them now; save() reads them back from it
        self._tasks[name] = _Task(info=info, adapter=adapter, head_names=sorted(heads))
        self._gathered = None
        return info

    def _check_base(self, name: str, adapter: AdapterFiles) -> None:
        spec = adapter.meta.get("base_model") or adapter.peft_config.base_model_name_or_path
        sha = adapter.meta.get("base_sha256")
        if sha is None:
            print(f"warning: adapter {name} ({adapter.path}) records no base_sha256 (saved by an older adaptlab); "
                  f"only its base name is checked", file=sys.stderr)
            if spec in (self.base_model, self._base.name_or_path):
                return
        elif sha == self.base_sha256:
            return  # the same weights, wherever they were read from
        raise AdaptlabError(f"adapter {name} was trained on base {spec} (sha {str(sha)[:12] if sha else 'unknown'}), "
                            f"this registry serves {self.base_model} (sha {self.base_sha256[:12]})")

    def _add_lora(self, name: str, adapter: AdapterFiles) -> None:
        from peft import PeftModel, set_peft_model_state_dict

        config = copy.deepcopy(adapter.peft_config)
        # LoRA only (heads are routed, see heads.py); init_lora_weights=True: other inits (PiSSA, OLoRA, ...)
        # rewrite the shared base weights, and the saved matrices replace the initial ones anyway
        config.modules_to_save, config.task_type, config.init_lora_weights = None, None, True
        config.inference_mode = True
        with quiet_peft():
            if self._peft is None:
                self._peft = PeftModel(self._base, config, adapter_name=name)
            else:
                self._peft.add_adapter(name, config)
        result = set_peft_model_state_dict(self._peft, adapter.lora, adapter_name=name)
        missing = [k for k in result.missing_keys if f".{name}." in k and "lora_" in k]
        if result.unexpected_keys or missing:
            if self._tasks:
                self._peft.delete_adapter(name)
            else:
                self._drop_peft()
            keys = (result.unexpected_keys or missing)[:3]
            raise AdaptlabError(f"adapter {name} ({adapter.path}): its LoRA weights do not fit the base "
                                f"({'unexpected' if result.unexpected_keys else 'missing'}: {', '.join(keys)})")
        self._peft.eval().requires_grad_(False)

    def _drop_peft(self) -> None:
        with quiet_peft():
            self._base = self._peft.unload()  # the base without LoRA layers (the routed heads stay)
        self._peft = None

    def remove(self, name: str) -> None:
        """Forget task ``name`` (its LoRA weights and heads); :meth:`save` then leaves its folder out."""
        self.task(name)
        if len(self._tasks) == 1:
            self._drop_peft()
        else:
            self._peft.delete_adapter(name)
        drop_task(self._base, name)
        del self._tasks[name]
        self._gathered = None

    def lora_state(self, name: str) -> dict[str, torch.Tensor]:
        """Task ``name``'s LoRA tensors under PEFT's saved names (as in ``adapter_model.safetensors``)."""
        from peft import get_peft_model_state_dict

        # the vocabulary is never resized: no embedding matrices to save, and no hub lookup to find that out
        return get_peft_model_state_dict(self._peft, adapter_name=self.task(name).name, save_embedding_layers=False)

    def head_state(self, name: str) -> dict[str, torch.Tensor]:
        """Task ``name``'s head tensors under PEFT's saved names (``base_model.model.classifier.weight`` ...)."""
        state = {}
        for module_name in self._tasks[name].head_names:
            module = route(self._base, module_name).copies[name]
            for key, tensor in module.state_dict().items():
                state[f"{PEFT_KEY_PREFIX}{module_name}.{key}"] = tensor
        return state

    def adapter_record(self, name: str) -> AdapterFiles:
        return self._tasks[name].adapter

    # ------------------------------------------------------------------------------------------ inference
    def predict(self, task: str, inputs: list) -> list[Prediction]:
        """Predictions for one task; ``inputs``: texts (single-input tasks) or ``(text, text_pair)`` tuples."""
        info = self.task(task)
        if info.input == "pair":
            items = [(task, *_pair(x, task)) for x in inputs]
        else:
            items = [(task, x, None) for x in inputs]
        return self.classify(items)

    def classify(self, items: list[tuple]) -> list[Prediction]:
        """Predictions for ``(task, text, text_pair or None)`` items of any tasks, in the order given."""
        checked = [self._checked_item(i, item) for i, item in enumerate(items)]
        if not checked:
            return []
        features = self._encode(checked)
        results: list[Prediction | None] = [None] * len(checked)
        for indices in length_sorted_chunks(features, self.batch_size):
            indices = [int(i) for i in indices]
            names = [checked[i][0] for i in indices]
            batch = self._collate([features[i] for i in indices]).to(self.device)
            with self._lock, torch.inference_mode(), routing(self._base, names):
                logits = self._lora_forward(batch, names).logits.float()
            for row, i in enumerate(indices):
                labels = self._tasks[names[row]].info.labels
                probabilities = logits[row, : len(labels)].softmax(-1).tolist()
                best = max(range(len(labels)), key=probabilities.__getitem__)
                results[i] = Prediction(task=names[row], label=labels[best],
                                        probabilities=dict(zip(labels, probabilities)))
        return results

    def _lora_forward(self, batch, names: list[str]):
        """The PeftModel's output on ``batch``, row ``i`` with task ``names[i]``'s LoRA weights."""
        gathered = self._gathered_lora()
        if gathered is None:
            return self._peft(**batch, adapter_names=names)
        with gathered.rows(names, self.device):
            return self._peft(**batch)

    def _gathered_lora(self) -> GatheredLoRA | None:
        """The stacked LoRA matrices of every task when the gathered path is chosen and covers the model."""
        wanted = self._lora_batching == "gathered" or (self._lora_batching == "auto" and self.device.type != "cpu")
        if self._gathered is None and wanted and supports(self._peft, list(self._tasks)):
            self._gathered = GatheredLoRA(self._peft, list(self._tasks))
        return self._gathered if wanted else None

    def _checked_item(self, position: int, item) -> tuple[str, str, str | None]:
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise AdaptlabError(f"item {position} must be (task, text) or (task, text, text_pair), got {item!r:.80}")
        task, text, pair = (*item, None) if len(item) == 2 else item
        info = self.task(task)
        if not isinstance(text, str) or (pair is not None and not isinstance(pair, str)):
            raise AdaptlabError(f"item {position} ({task}): texts must be strings")
        if info.input == "pair" and pair is None:
            raise AdaptlabError(f"item {position}: task {task} classifies text pairs; give two texts")
        if info.input == "single" and pair is not None:
            raise AdaptlabError(f"item {position}: task {task} classifies single texts; give one text")
        return task, text, pair

    def _encode(self, items: list[tuple[str, str, str | None]]) -> list[dict]:
        """Token ids per item, unpadded (pairs: longest-first truncation of both texts to ``max_length``)."""
        features: list[dict | None] = [None] * len(items)
        for paired in (False, True):
            positions = [i for i, item in enumerate(items) if (item[2] is not None) == paired]
            if not positions:
                continue
            texts = [items[i][1] for i in positions]
            pairs = [items[i][2] for i in positions] if paired else None
            encoded = self.tokenizer(texts, pairs, truncation=True, max_length=self.max_length)
            for row, i in enumerate(positions):
                features[i] = {key: values[row] for key, values in encoded.items()}
        return features

    def parameter_bytes(self) -> int:
        """Bytes of every parameter the registry holds (base, LoRA matrices, every task's head copies)."""
        model = self._peft if self._peft is not None else self._base
        return sum(p.numel() * p.element_size() for p in model.parameters())


def _pair(value, task: str) -> tuple[str, str]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise AdaptlabError(f"task {task} classifies text pairs: give (text, text_pair), got {value!r:.80}")
    return value[0], value[1]
