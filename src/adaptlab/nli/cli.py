"""`adaptlab nli ...`: flags generated from the settings dataclasses in :mod:`adaptlab.nli.config`, then one call
to a study function a Python user could make too.

Imports of torch, transformers, peft and the study modules happen inside the handlers: ``adaptlab --help`` and
every ``--help`` below it then load none of them. That is the only reason any import here is inside a function.

Flags given on the command line override ``--config FILE`` (YAML, keys = field names), which overrides the
defaults. Every command that writes a run folder ends its output with ``run folder: PATH``; with ``--quiet`` it
prints the path alone, so scripts can pick it up. ``accelerate launch -m adaptlab nli train ...`` runs the same
command on several GPUs or machines.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from adaptlab.core.config import add_config_flags, config_overrides, load_config
from adaptlab.nli.config import (METHODS, NLICompareConfig, NLIEvaluateConfig, NLIModelConfig, NLIPredictConfig,
                                 NLIRunConfig)

TRAIN_EPILOG = """examples:
  adaptlab nli train --method lora --data mnli                    # RoBERTa-large, reference settings (GPU)
  adaptlab nli train --task sst2 --data ../shared/data/sst2 --model minilm --method lora   # another task
  adaptlab nli train --model minilm --data PATH.csv --max-train-samples 2000 --eval-every 50   # 2 CPU cores
  adaptlab nli train --model_name_or_path minilm --learning_rate 3e-3 --num_train_epochs 1   # Trainer spellings
  accelerate launch -m adaptlab nli train --method full --data mnli   # several GPUs / machines
"""


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


def print_run_folder(path: Path | None, quiet: bool) -> None:
    """The last line of every command that writes a run folder (nothing on non-main processes)."""
    if path is not None:
        print(path if quiet else f"run folder: {path}")


def _resolve(cls, args: argparse.Namespace):
    """The command's config: defaults < ``--config`` YAML < the flags actually given; validated once here."""
    return load_config(cls, getattr(args, "config", None), config_overrides(args, cls))


# ---------------------------------------------------------------------------------------------- handlers
def _params(args: argparse.Namespace) -> int:
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.params import format_params, params_report

    settings = load_config(NLIModelConfig, None, {**config_overrides(args, NLIModelConfig), "method": "lora"})
    names = METHODS if args.methods_to_count == "all" else (args.methods_to_count,)
    methods = [MethodConfig.of(replace(settings, method=name)) for name in names]
    report = params_report(settings.model, methods, num_labels=args.num_labels)
    print(json.dumps(report, indent=2) if args.json else format_params(report))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from adaptlab.nli.artifacts import merge_adapter, read_meta, trained_model_dir

    adapter = trained_model_dir(args.adapter)  # a train run folder (RUN/model) or the adapter folder itself
    with quiet_libraries(args.quiet):
        out = merge_adapter(adapter, args.out, overwrite=args.overwrite)
    if not args.quiet:
        diff = read_meta(out).get("merge_max_abs_logit_diff")
        print(f"merged {adapter} into {out} (max |logit difference| vs the adapter on a probe batch: {diff:.2e})")
    else:
        print(out)
    return 0


def _train(args: argparse.Namespace) -> int:
    from adaptlab.nli.study import run_train

    config = _resolve(NLIRunConfig, args)
    with quiet_libraries(config.quiet):
        path = run_train(config)
    print_run_folder(path, config.quiet)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from adaptlab.nli.compare import run_compare

    config = _resolve(NLICompareConfig, args)
    with quiet_libraries(config.quiet):
        path = run_compare(config.run_config(), config.method_names(), config.compared_lrs(), config.swept())
    print_run_folder(path, config.quiet)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from adaptlab.nli.study import run_evaluate

    config = _resolve(NLIEvaluateConfig, args)
    with quiet_libraries(config.quiet):
        path = run_evaluate(args.model_path, config)
    print_run_folder(path, config.quiet)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from adaptlab.core.atomic import check_output_file
    from adaptlab.nli.study import examples_to_predict, run_predict, write_predictions

    config = _resolve(NLIPredictConfig, args)
    if config.file and config.output:
        check_output_file(Path(config.output))  # before loading the model and predicting the whole file
    examples = examples_to_predict(args.model_path, config)
    predictions = run_predict(args.model_path, examples, max_length=config.max_length, batch_size=config.batch_size)
    if config.file is None:
        row = predictions.iloc[0]
        probabilities = "  ".join(f"{c[2:]} {row[c]:.4f}" for c in predictions.columns if c.startswith("p_"))
        print(f"{row['predicted']}  ({probabilities})")
    elif config.output:
        write_predictions(predictions, Path(config.output))
        print(f"{len(predictions):,} predictions written to {config.output}")
    else:
        predictions.to_csv(sys.stdout, index=False)
    return 0


# ---------------------------------------------------------------------------------------------- parsers
def _add_run_folder_flags(parser: argparse.ArgumentParser, cls, exclude=()) -> None:
    """``--config FILE`` and the fields of ``cls`` as flags."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML file of settings (keys = these flags with _); flags given override it")
    add_config_flags(parser, cls, exclude=exclude)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "nli", help="text classification (NLI by default): LoRA vs full vs partial fine-tuning of encoders",
        description="Fine-tune encoders for text classification: MultiNLI by default, or --task snli | rte | sst2 | "
        "agnews | custom (single texts or pairs, any label set).")
    nli = parser.add_subparsers(dest="nli_command", required=True, metavar="COMMAND")

    params = nli.add_parser(
        "params", help="trainable vs total parameters per method, from the config only (offline, no weights)",
        description="Build the model from its config on the meta device (no weights downloaded or allocated), "
        "apply the method and print trainable and total parameters. Total = the classification model being "
        "adapted (encoder + head); the LoRA line also explains PEFT's own 'all params' number.")
    params.add_argument("--method", dest="methods_to_count", choices=[*METHODS, "all"], default="lora",
                        help="a method, or all: the three side by side (default: lora)")
    add_config_flags(params, NLIModelConfig, exclude=("method", "random_init"))
    params.add_argument("--num-labels", type=int, default=3, help="classes of the head (default: 3)")
    params.add_argument("--json", action="store_true", help="print the counts as JSON")
    params.set_defaults(handler=_params)

    train = nli.add_parser(
        "train", help="fine-tune an encoder on a task (NLI by default) with LoRA, full or partial fine-tuning",
        description="Train one method, evaluating every N steps (Step | Training Loss | Validation Loss | Accuracy), "
        "and write a run folder: config, metrics.json, history, saved model (PEFT adapter for LoRA), confusion "
        "matrices, curves, report.md/html.", epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_folder_flags(train, NLIRunConfig)
    train.set_defaults(handler=_train)

    compare = nli.add_parser(
        "compare", help="LoRA vs full vs partial on the same data, seeds and budget: one table",
        description="Run `nli train` once per method (each in its own process, so peak memory is per method) and "
        "write one table: trainable params, %% of total, wall time, train samples/s, peak memory, saved model "
        "size, accuracy per eval split; plus loss/accuracy curves and report.md/html.")
    _add_run_folder_flags(compare, NLICompareConfig, exclude=("method", "resume"))
    compare.set_defaults(handler=_compare)

    evaluate = nli.add_parser(
        "evaluate", help="score a trained model (run folder or model folder) on labelled examples of its task",
        description="Accuracy per eval split (and per genre when known), per-class precision/recall/F1, "
        "confusion matrices; writes a run folder. A single file is scored whole; --heldout-fraction F scores only "
        "the part a training run on that file held out.")
    evaluate.add_argument("model_path", metavar="RUN_OR_MODEL", help="a train run folder or a saved model folder")
    _add_run_folder_flags(evaluate, NLIEvaluateConfig)
    evaluate.set_defaults(handler=_evaluate)

    predict = nli.add_parser(
        "predict", help="label and class probabilities for one text or pair, or a file of them",
        description="Print the predicted label and the probability of each class (a CSV for --file). A model of a "
        "single-text task takes --text, a pair task --premise and --hypothesis.")
    predict.add_argument("model_path", metavar="RUN_OR_MODEL", help="a train run folder or a saved model folder")
    add_config_flags(predict, NLIPredictConfig)
    predict.set_defaults(handler=_predict)

    merge = nli.add_parser(
        "merge", help="fold a saved LoRA adapter (and its head) into the base weights",
        description="Load ADAPTER (a LoRA run folder from `nli train`, or its model/ PEFT folder), merge LoRA into "
        "the base weights (merge_and_unload), check logits match the unmerged model on a probe batch (within "
        "1e-4) and save a plain transformers model folder (safetensors + tokenizer) to OUT.")
    merge.add_argument("adapter", type=Path, metavar="ADAPTER",
                       help="a LoRA train run folder, or a folder with adapter_config.json")
    merge.add_argument("out", type=Path, metavar="OUT", help="output folder for the merged model")
    merge.add_argument("--overwrite", action="store_true",
                       help="replace an existing non-empty OUT (never the adapter or run folder being merged)")
    merge.add_argument("--quiet", action="store_true", help="print only the output path")
    merge.set_defaults(handler=_merge)

