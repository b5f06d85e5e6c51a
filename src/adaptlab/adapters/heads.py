"""Per-task heads on one shared base: each row of a batch goes through its own task's copy of a head module.

PEFT keeps a trained head as a ``ModulesToSaveWrapper``, one active copy for the whole batch and of one shape,
so it can neither hold heads with different label counts nor give each row of a mixed batch its own head.
:class:`TaskRoutedModule` takes the place of one head module in the base (BERT's pooler, the classifier, ...):
before a forward pass :func:`routing` tells every routed module which task each row belongs to; the module runs
each task's copy on that task's rows and puts the results back in row order. Outputs of different widths (the
logits of tasks with different label counts) are right-padded with zeros to the widest; the caller keeps each
row's first ``len(labels)`` columns.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from adaptlab.errors import AdaptlabError


class TaskRoutedModule(nn.Module):
    """One head module of the base, per task: ``copies[task]`` for tasks with their own, else ``shared``."""

    def __init__(self, shared: nn.Module):
        super().__init__()
        self.shared = shared
        self.copies = nn.ModuleDict()
        self.row_tasks: Sequence[str] | None = None  # set by :func:`routing` for one forward pass

    def module_for(self, task: str) -> nn.Module:
        return self.copies[task] if task in self.copies else self.shared

    def forward(self, hidden: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.row_tasks is None or len(self.row_tasks) != hidden.shape[0]:
            raise RuntimeError("TaskRoutedModule called outside routing() or with another batch size")
        rows: dict[str, list[int]] = {}
        for row, task in enumerate(self.row_tasks):
            rows.setdefault(task, []).append(row)
        if len(rows) == 1:  # a single-task batch needs no gather/scatter
            return self.module_for(self.row_tasks[0])(hidden, *args, **kwargs)
        outputs = []
        for task, indices in rows.items():
            index = torch.tensor(indices, device=hidden.device)
            outputs.append((index, self.module_for(task)(hidden.index_select(0, index), *args, **kwargs)))
        width = max(out.shape[-1] for _, out in outputs)
        first = outputs[0][1]
        result = first.new_zeros((hidden.shape[0], *first.shape[1:-1], width))
        for index, out in outputs:
            result[index, ..., : out.shape[-1]] = out
        return result


def routed_modules(model: nn.Module) -> list[TaskRoutedModule]:
    return [module for module in model.modules() if isinstance(module, TaskRoutedModule)]


@contextmanager
def routing(model: nn.Module, row_tasks: Sequence[str]):
    """Within the block, every :class:`TaskRoutedModule` of ``model`` sends row ``i`` to ``row_tasks[i]``'s copy."""
    modules = routed_modules(model)
    for module in modules:
        module.row_tasks = list(row_tasks)
    try:
        yield
    finally:
        for module in modules:
            module.row_tasks = None


def route(model: nn.Module, name: str) -> TaskRoutedModule:
    """The :class:`TaskRoutedModule` at dotted ``name`` in ``model``, put in place of the module there if needed."""
    module = model.get_submodule(name)
    if isinstance(module, TaskRoutedModule):
        return module
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    routed = TaskRoutedModule(module)
    setattr(parent, child, routed)
    return routed


def build_head_copies(config, labels: list[str], weights: dict[str, dict[str, torch.Tensor]],
                      device: torch.device | str, where: str) -> dict[str, nn.Module]:
    """Modules named by ``weights`` (dotted name -> its state dict), shaped for ``labels``, holding those weights.

    Each is taken from a sequence classifier built from ``config`` with ``len(labels)`` outputs on the meta device
    (no memory, no random init), then materialised on ``device`` and filled; a missing or extra tensor, or one of
    another shape, is a one-line error naming ``where`` (the adapter).
    """
    config = copy.deepcopy(config)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(config)
    copies = {}
    for name, state in weights.items():
        try:
            module = skeleton.get_submodule(name)
        except AttributeError:
            raise AdaptlabError(f"{where}: the adapter holds weights for {name}, which "
                                f"{type(skeleton).__name__} has no module for") from None
        module = module.to_empty(device=device)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:300]
            raise AdaptlabError(f"{where}: the adapter's {name} weights do not fit the base ({detail})") from None
        copies[name] = module.eval().requires_grad_(False)
    return copies


def drop_task(model: nn.Module, task: str) -> None:
    """Forget ``task``'s head copies everywhere in ``model``."""
    for module in routed_modules(model):
        if task in module.copies:
            del module.copies[task]

