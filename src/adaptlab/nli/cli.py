"""`adaptlab nli ...` sub-commands: each block parses flags and calls a function a Python user could call too.

Heavy imports (torch, transformers, peft) happen inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def quiet_libraries(quiet: bool):
    """With ``quiet``, silence transformers' and the hub's own output for the block, then restore it.

    ``--quiet`` must also hide what the libraries print: "Loading weights" / "Writing model shards" bars and
    the LOAD REPORT tables (logged as warnings). Their settings are process-wide, hence the restore.
    """
    if not quiet:
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    verbosity, bars, hub_bars_off = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(),
                                     are_progress_bars_disabled())
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if not hub_bars_off:
            enable_progress_bars()


def add_method_arguments(parser: argparse.ArgumentParser, *, allow_all: bool = False) -> None:
    """The flags that make a MethodConfig (shared by params, train and compare)."""
    choices = ["lora", "full", "partial"] + (["all"] if allow_all else [])
    parser.add_argument("--method", choices=choices, default="lora",
                        help="lora: PEFT LoRA + head; full: everything; partial: top layers + head"
                        + ("; all: the three" if allow_all else "") + " (default: lora)")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank r (default: 16)")
    parser.add_argument("--alpha", type=float, default=None,
                        help="LoRA alpha; scaling is alpha/r (default: 2 x rank, the LoRA paper's RoBERTa ratio)")
    parser.add_argument("--dropout", type=float, default=0.1, help="LoRA dropout (default: 0.1)")
    parser.add_argument("--targets", default="qv",
                        help="LoRA layers: preset qv (query+value), attn (q,k,v,o), all-linear, or comma-separated "
                        "module names (default: qv)")
    parser.add_argument("--use-rslora", action="store_true", default=False,
                        help="rank-stabilised LoRA: scale alpha/sqrt(r) instead of alpha/r")
    parser.add_argument("--use-dora", action="store_true", default=False, help="DoRA (weight-decomposed LoRA)")
    parser.add_argument("--init", default="default", choices=["default", "gaussian", "orthogonal"],
                        help="LoRA init_lora_weights (default: default = A Kaiming, B zero)")
    parser.add_argument("--lora-head", dest="head", default="full", choices=["full", "peft"],
                        help="full: pooler + classifier train with LoRA; peft: classifier only, PEFT's "
                        "SEQ_CLS default (default: full)")
    parser.add_argument("--top-layers", type=int, default=None, metavar="N",
                        help="partial: train the top N encoder layers + head (default: a quarter of the layers)")


def method_configs(args: argparse.Namespace):
    """MethodConfig(s) from parsed flags; ``--method all`` gives lora, full and partial."""
    from adaptlab.nli.methods import METHODS, MethodConfig

    names = METHODS if args.method == "all" else (args.method,)
    configs = [MethodConfig(method=name, rank=args.rank, alpha=args.alpha, dropout=args.dropout,
                            targets=args.targets, use_rslora=args.use_rslora, use_dora=args.use_dora,
                            init=args.init, head=args.head, top_layers=args.top_layers) for name in names]
    for config in configs:
        config.validate()
    return configs


def _params(args: argparse.Namespace) -> int:
    from adaptlab.nli.params import format_params, params_report

    report = params_report(args.model, method_configs(args), num_labels=args.num_labels)
    print(json.dumps(report, indent=2) if args.json else format_params(report))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from adaptlab.nli.artifacts import merge_adapter, read_meta
    from adaptlab.nli.study import trained_model_dir

    adapter = trained_model_dir(args.adapter)  # a train run folder (RUN/model) or the adapter folder itself
    with quiet_libraries(args.quiet):
        out = merge_adapter(adapter, args.out)
    if not args.quiet:
        diff = read_meta(out).get("merge_max_abs_logit_diff")
        print(f"merged {adapter} into {out} (max |logit difference| vs the adapter on a probe batch: {diff:.2e})")
    else:
        print(out)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("nli", help="the NLI study: LoRA vs full vs partial fine-tuning of encoders")
    nli = parser.add_subparsers(dest="nli_command", required=True, metavar="COMMAND")

    params = nli.add_parser(
        "params", help="trainable vs total parameters per method, from the config only (offline, no weights)",
        description="Build the model from its config on the meta device (no weights downloaded or allocated), "
        "apply the method and print trainable and total parameters. Total = the classification model being "
        "adapted (encoder + head); the LoRA line also explains PEFT's own 'all params' number.")
    params.add_argument("--model", default="roberta-large",
                        help="preset (roberta-large, roberta-base, minilm, mpnet-base), hub id, config.json or "
                        "model folder (default: roberta-large)")
    params.add_argument("--num-labels", type=int, default=3, help="classes of the head (default: 3)")
    add_method_arguments(params, allow_all=True)
    params.add_argument("--json", action="store_true", help="print the counts as JSON")
    params.set_defaults(handler=_params)

    merge = nli.add_parser(
        "merge", help="fold a saved LoRA adapter (and its head) into the base weights",
        description="Load ADAPTER (a LoRA run folder from `nli train`, or its model/ PEFT folder), merge LoRA into "
        "the base weights "
        "(merge_and_unload), check logits match the unmerged model on a probe batch (within 1e-4) and save a "
        "plain transformers model folder (safetensors + tokenizer) to OUT.")
    merge.add_argument("adapter", type=Path, metavar="ADAPTER",
                       help="a LoRA train run folder, or a folder with adapter_config.json")
    merge.add_argument("out", type=Path, metavar="OUT", help="output folder for the merged model")
    merge.add_argument("--quiet", action="store_true", help="print only the output path")
    merge.set_defaults(handler=_merge)

    from adaptlab.nli.study_cli import register_study_commands  # train / evaluate / predict / compare (owner N3)

    register_study_commands(nli)
