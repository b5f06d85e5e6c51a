"""Text-classification tasks: what the input is (one text or a pair), the label names, where the data lives.

A task is a :class:`TaskSpec`. Built-in tasks (:data:`TASKS`):

==========  ======  ==========================================  =================================================
name        input   labels (id order)                           hub dataset (config) / local files
==========  ======  ==========================================  =================================================
``mnli``    pair    entailment, neutral, contradiction          ``nyu-mll/multi_nli``; .jsonl/.txt/GLUE .tsv/.csv
``snli``    pair    entailment, neutral, contradiction          ``stanfordnlp/snli`` (else its PyPI mirror); same
``rte``     pair    entailment, not_entailment                  ``nyu-mll/glue`` (rte); GLUE .tsv
                                                                ``index, sentence1, sentence2, label``
``sst2``    single  negative, positive                          ``nyu-mll/glue`` (sst2); GLUE .tsv
                                                                ``sentence, label`` (label 0/1)
``agnews``  single  World, Sports, Business, Sci/Tech           ``fancyzhx/ag_news``; .tsv ``text, label`` with or
                                                                without a header (label: class name or 0..3)
``custom``  either  the names found in the training data,      local files only (``--data PATH``)
                    sorted (numbers numerically)
==========  ======  ==========================================  =================================================

Every task reads the same file layouts (:mod:`adaptlab.nli.readers`); columns are found by name:

- a pair: ``sentence1`` / ``premise`` / ``text_a`` and ``sentence2`` / ``hypothesis`` / ``text_b``;
- a single text: ``text`` / ``sentence``;
- the label: ``gold_label`` / ``label``, a class name (any case) or its id; ``-`` / ``-1`` (no consensus, or a
  GLUE test split) rows are dropped and counted.

``custom`` takes a pair when the file has both pair columns, else a single text. Whatever the task, the loaded
table names its texts ``premise`` + ``hypothesis`` (pair) or ``text`` (single): the task's ``text_fields``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from adaptlab.errors import AdaptlabError

PAIR_FIELDS = ("premise", "hypothesis")
SINGLE_FIELDS = ("text",)
INPUTS = ("pair", "single")
NO_CONSENSUS = frozenset({"-", "-1"})  # MultiNLI/SNLI "no gold label"; the hub's -1 also marks GLUE test rows
DEFAULT_TASK = "mnli"
CUSTOM = "custom"

# canonical column -> accepted source names, first match wins (GLUE rows carry label1..label5 next to
# gold_label; the consensus label is gold_label).
COLUMN_ALIASES = {
    "premise": ("sentence1", "premise", "text_a"),
    "hypothesis": ("sentence2", "hypothesis", "text_b"),
    "text": ("text", "sentence"),
    "label": ("gold_label", "label"),
    "genre": ("genre",),
    "pair_id": ("pairID", "pair_id"),
}


@dataclass(frozen=True)
class TaskSpec:
    """One text-classification task.

    ``input``: ``"pair"`` or ``"single"`` (``None``: decided by a custom task's file columns). ``labels``: class
    names in id order (``None``: taken from a custom task's data). ``hub_id`` / ``hub_config`` / ``hub_splits``:
    the Hugging Face dataset for it and its labelled splits, renamed to our split names (``{hub: ours}``).
    ``headerless``: canonical columns of a local file with no header row (AG News releases have none).
    """

    name: str
    input: str | None
    labels: tuple[str, ...] | None
    hub_id: str | None = None
    hub_config: str | None = None
    hub_splits: tuple[tuple[str, str], ...] = ()
    headerless: tuple[str, ...] = ()
    description: str = ""

    @property
    def text_fields(self) -> tuple[str, ...]:
        """The table's text columns: premise + hypothesis for a pair, text for a single text."""
        if self.input is None:
            raise AdaptlabError(f"task {self.name}: input kind not known yet (read its data first)")
        return PAIR_FIELDS if self.input == "pair" else SINGLE_FIELDS

    @property
    def unit(self) -> str:
        """What one example is called in messages and reports."""
        return "texts" if self.input == "single" else "pairs"

    def hub_source(self) -> str:
        return f"{self.hub_id}" + (f" ({self.hub_config})" if self.hub_config else "")

    def label_ids(self) -> dict[str, int]:
        """Label text (lower case) -> id: every name, and the ids themselves as text (a name wins a clash)."""
        if self.labels is None:
            raise AdaptlabError(f"task {self.name}: label names not known yet (read its training data first)")
        return {str(i): i for i in range(len(self.labels))} | {n.lower(): i for i, n in enumerate(self.labels)}

    def meta(self) -> dict:
        """What a saved model records about its task (``adaptlab_model.json`` key ``task``)."""
        return {"name": self.name, "input": self.input, "text_fields": list(self.text_fields)}


_NLI_LABELS = ("entailment", "neutral", "contradiction")  # ids 0, 1, 2 as in GLUE and nyu-mll/multi_nli
TASKS = {task.name: task for task in (
    TaskSpec("mnli", "pair", _NLI_LABELS, "nyu-mll/multi_nli", None,
             (("train", "train"), ("validation_matched", "validation_matched"),
              ("validation_mismatched", "validation_mismatched")), description="MultiNLI: entailment of pairs"),
    TaskSpec("snli", "pair", _NLI_LABELS, "stanfordnlp/snli", None,
             (("train", "train"), ("validation", "validation"), ("test", "test")),
             description="SNLI: entailment of caption pairs"),
    TaskSpec("rte", "pair", ("entailment", "not_entailment"), "nyu-mll/glue", "rte",
             (("train", "train"), ("validation", "validation")), description="GLUE RTE: two-way entailment"),
    TaskSpec("sst2", "single", ("negative", "positive"), "nyu-mll/glue", "sst2",
             (("train", "train"), ("validation", "validation")), description="GLUE SST-2: sentence sentiment"),
    TaskSpec("agnews", "single", ("World", "Sports", "Business", "Sci/Tech"), "fancyzhx/ag_news", None,
             (("train", "train"), ("test", "test")), headerless=("text", "label"),
             description="AG News: news topic"),
    TaskSpec(CUSTOM, None, None, description="your own files: single texts or pairs, labels from the data"),
)}


def get_task(name: str | None) -> TaskSpec:
    """The built-in task called ``name`` (any case; ``None``: the default, mnli), or a one-line error."""
    key = (name or DEFAULT_TASK).strip().lower()
    if key not in TASKS:
        raise AdaptlabError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[key]


def saved_task(meta: dict, labels: list[str]) -> TaskSpec:
    """The task of a saved model from its ``adaptlab_model.json`` (``meta``) and its label names.

    Folders without a ``task`` entry (saved before tasks existed, or by other tools) are MultiNLI. A built-in
    task keeps its own spec; a custom task gets the input kind and labels the model was trained with.
    """
    recorded = meta.get("task") or {"name": DEFAULT_TASK, "input": "pair"}
    if not isinstance(recorded, dict) or recorded.get("input") not in INPUTS:
        raise AdaptlabError(f"adaptlab_model.json: task entry {recorded!r} is not "
                            "{'name': ..., 'input': 'pair' or 'single', 'text_fields': [...]}")
    name = str(recorded.get("name") or CUSTOM)
    if name.lower() in TASKS and name.lower() != CUSTOM:
        return TASKS[name.lower()]
    return replace(TASKS[CUSTOM], name=name, input=recorded["input"], labels=tuple(labels))


# ---- columns and labels of a raw table -----------------------------------------------------------------

def resolve_columns(names: list[str], task: TaskSpec) -> dict[str, str]:
    """Canonical column -> source column, for the columns of ``names`` the task can use (texts, label, extras).

    A custom task without an input kind takes a pair when both pair columns exist, else a single text.
    """
    present = set(names)
    found = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        match = next((alias for alias in aliases if alias in present), None)
        if match is not None:
            found[canonical] = match
    kind = task.input or ("pair" if all(f in found for f in PAIR_FIELDS) else "single")
    unused = SINGLE_FIELDS if kind == "pair" else PAIR_FIELDS
    return {k: v for k, v in found.items() if k not in unused}


def input_of(names: list[str], task: TaskSpec) -> TaskSpec:
    """``task`` with its input kind decided from a file's columns (custom tasks), else unchanged."""
    if task.input is not None:
        return task
    return replace(task, input="pair" if all(f in resolve_columns(names, task) for f in PAIR_FIELDS) else "single")


def missing_columns_message(where: str, names: list[str], task: TaskSpec, missing: tuple[str, ...]) -> str:
    """A one-line error naming the canonical columns ``where`` lacks (``missing``) and what it has."""
    wanted = ", ".join(" or ".join(COLUMN_ALIASES[c]) for c in missing)
    hint = ""
    if missing == ("label",):
        hint = " (an unlabelled file, such as a GLUE test split, cannot be used for training or evaluation)"
    elif task.name == CUSTOM:
        hint = (" (a custom task needs a header naming text or sentence for single texts, or sentence1+sentence2 / "
                "premise+hypothesis for pairs, and label)")
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"{where} lacks column(s) {wanted} for task {task.name}{hint}; found: {shown or 'no columns'}"


def label_text(value) -> str:
    """A raw label as comparable text: stripped, lower case; floats that are whole numbers as ints."""
    if isinstance(value, bool) or value is None:
        return repr(value)  # never a valid label; keeps True from passing as 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # hub labels can arrive as floats after a pandas round trip
    return str(value).strip().lower()


def with_labels_from(task: TaskSpec, values: Iterable, where: str) -> TaskSpec:
    """``task`` with label names taken from ``values`` (a custom task's training labels), else unchanged.

    Names are the distinct stripped values except the no-consensus marks, sorted (numerically when every name
    is a whole number, so 2 comes before 10). Two spellings of one name in different case are an error.
    """
    if task.labels is not None:
        return task
    names = sorted({str(v).strip() for v in values if label_text(v) not in NO_CONSENSUS and str(v).strip()})
    if all(re.fullmatch(r"-?\d+", n) for n in names):
        names.sort(key=int)
    lowered = [n.lower() for n in names]
    clash = next((n for n in names if lowered.count(n.lower()) > 1), None)
    if clash is not None:
        raise AdaptlabError(f"{where}: label {clash!r} is spelled in several cases; use one spelling per class")
    if len(names) < 2:
        raise AdaptlabError(f"{where}: found {len(names)} label name(s) ({', '.join(names) or 'none'}); "
                            "a classifier needs at least two")
    return replace(task, labels=tuple(names))
