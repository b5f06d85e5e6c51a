"""`adaptlab adapters add|remove|list|predict REGISTRY ...`: a registry folder of task adapters on one base.

Heavy imports (torch, transformers, peft) happen inside the handlers so ``--help`` stays fast. Every command that
changes the registry rewrites its folder in one rename and, with ``--quiet``, prints only the folder's path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  adaptlab adapters add REG mnli runs/...-nli-lora --base minilm   # first add creates REG over that base
  adaptlab adapters add REG sst2 runs/...-sst2-lora                # every adapter must be trained on that base
  adaptlab adapters list REG
  adaptlab adapters predict REG --task sst2 --text "A gripping, funny film."
  adaptlab adapters predict REG --task mnli --text "A man plays." --text-pair "Someone makes music."
  adaptlab adapters remove REG sst2
"""


def _open_or_create(folder: Path, base: str | None, adapter: Path):
    from adaptlab.adapters.adapter_files import read_adapter
    from adaptlab.adapters.registry import AdapterRegistry
    from adaptlab.adapters.store import is_registry

    if is_registry(folder):
        return AdapterRegistry.open(folder)
    if base is None:  # a new registry serves the base the first adapter was trained on
        files = read_adapter(adapter)
        base = files.meta.get("base_model") or files.peft_config.base_model_name_or_path
    return AdapterRegistry.from_base(base)


def _add(args: argparse.Namespace) -> int:
    from adaptlab.adapters.store import is_registry
    from adaptlab.errors import AdaptlabError
    from adaptlab.nli.cli import quiet_libraries

    if args.base is not None and is_registry(args.registry):
        from adaptlab.adapters.store import read_listing

        served = read_listing(args.registry)["base_model"]
        if served != args.base:
            raise AdaptlabError(f"{args.registry} already serves base {served}; --base {args.base} applies only "
                                "to a new registry")
    with quiet_libraries(args.quiet):
        registry = _open_or_create(args.registry, args.base, args.adapter)
        info = registry.add(args.name, args.adapter)
        registry.save(args.registry)
    print(args.registry if args.quiet else
          f"added {info.name} ({len(info.labels)} labels, {info.input} input) to {args.registry} "
          f"({len(registry.tasks())} task(s) on {registry.base_model})")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from adaptlab.adapters.registry import AdapterRegistry
    from adaptlab.nli.cli import quiet_libraries

    with quiet_libraries(args.quiet):
        registry = AdapterRegistry.open(args.registry)
        registry.remove(args.name)
        registry.save(args.registry)
    print(args.registry if args.quiet else f"removed {args.name} from {args.registry} "
          f"({len(registry.tasks())} task(s) left)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from adaptlab.adapters.store import read_listing

    listing = read_listing(args.registry)  # registry.json only: no weights are loaded
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"base: {listing['base_model']} (sha256 {listing['base_sha256'][:12]})")
    for task in listing["tasks"]:
        print(f"{task['name']}\t{task['input']}\t{len(task['labels'])} labels: {', '.join(task['labels'])}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from adaptlab.adapters.registry import AdapterRegistry
    from adaptlab.nli.cli import quiet_libraries

    with quiet_libraries(True):
        registry = AdapterRegistry.open(args.registry)
        prediction = registry.classify([(args.task, args.text, args.text_pair)])[0]
    if args.json:
        print(json.dumps({"task": prediction.task, "label": prediction.label,
                          "probabilities": prediction.probabilities}))
    else:
        shown = "  ".join(f"{label} {p:.4f}" for label, p in prediction.probabilities.items())
        print(f"{prediction.label}  ({shown})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "adapters", help="many task adapters (LoRA + own head + labels) on one frozen base model",
        description="A registry folder: one base model, one LoRA adapter per task, each with its own head and "
        "label names; batches may mix tasks.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="adapters_command", required=True, metavar="COMMAND")

    add = commands.add_parser("add", help="register a LoRA adapter as a task (creates the registry if needed)",
                              description="Check the adapter (safetensors, trained on the registry's base: same "
                              "weights by sha256, same tokenizer size) and add it under NAME.")
    add.add_argument("registry", type=Path, metavar="REGISTRY", help="registry folder (created on first add)")
    add.add_argument("name", metavar="NAME", help="task name: letters, digits, - and _")
    add.add_argument("adapter", type=Path, metavar="ADAPTER",
                     help="a LoRA run folder from `nli train`, or its model/ adapter folder")
    add.add_argument("--base", default=None, metavar="MODEL",
                     help="base model of a new registry (default: the one the adapter was trained on)")
    add.add_argument("--quiet", action="store_true", help="print only the registry path")
    add.set_defaults(handler=_add)

    remove = commands.add_parser("remove", help="remove a task from the registry")
    remove.add_argument("registry", type=Path, metavar="REGISTRY")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--quiet", action="store_true", help="print only the registry path")
    remove.set_defaults(handler=_remove)

    listing = commands.add_parser("list", help="the base and each task's input kind and labels (no weights loaded)")
    listing.add_argument("registry", type=Path, metavar="REGISTRY")
    listing.add_argument("--json", action="store_true", help="print registry.json")
    listing.set_defaults(handler=_list)

    predict = commands.add_parser("predict", help="label and class probabilities for one text or pair")
    predict.add_argument("registry", type=Path, metavar="REGISTRY")
    predict.add_argument("--task", required=True, metavar="NAME")
    predict.add_argument("--text", required=True)
    predict.add_argument("--text-pair", default=None, help="second text, for pair tasks")
    predict.add_argument("--json", action="store_true", help="print the prediction as JSON")
    predict.set_defaults(handler=_predict)
