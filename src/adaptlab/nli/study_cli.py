"""`adaptlab nli train | evaluate | predict | compare`: flags -> NLIRunConfig -> study functions.

Run flags default to ``None`` so that only the flags actually given override ``--config FILE`` (YAML), which
overrides the dataclass defaults (core.config.load_config). ``accelerate launch -m adaptlab nli train ...``
runs the same command on several GPUs or machines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adaptlab.nli.cli import quiet_libraries

TRAIN_EPILOG = """examples:
  adaptlab nli train --method lora --data mnli                    # RoBERTa-large, reference settings (GPU)
  adaptlab nli train --model minilm --data PATH.csv --max-train-samples 2000 --eval-every 50   # 2 CPU cores
  accelerate launch -m adaptlab nli train --method full --data mnli   # several GPUs / machines
"""


def _run_arguments(parser: argparse.ArgumentParser, *, compare: bool = False) -> None:
    """Flags of NLIRunConfig. compare: no --method (it has --methods) and --lr may name one rate per method."""
    from adaptlab.nli.cli import add_method_arguments
    from adaptlab.nli.data import add_data_arguments
    from adaptlab.nli.defaults import describe_defaults
    from adaptlab.nli.study import DEFAULT_MODEL

    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML file of run settings (keys = these flags with _); flags given override it")
    parser.add_argument("--model", help="hub id, local folder, or preset roberta-large | roberta-base | minilm | "
                        f"mpnet-base (default: {DEFAULT_MODEL})")
    if not compare:
        add_method_arguments(parser)
    else:  # the LoRA/partial knobs without --method
        add_method_arguments(probe := argparse.ArgumentParser(add_help=False))
        for action in probe._actions:
            if action.dest != "method":
                parser._add_action(action)
    parser.add_argument("--random-init", action="store_true", default=None,
                        help="random weights from the model's config (speed/memory benchmarks)")
    add_data_arguments(parser)
    group = parser.add_argument_group("training")
    group.add_argument("--max-length", type=int, help="tokens per premise+hypothesis pair (default: 128)")
    group.add_argument("--batch-size", type=int, help="pairs per process per micro-batch (default: 16)")
    group.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step (default: 1)")
    group.add_argument("--lr", type=str if compare else float, metavar="LR" + ("|METHOD=LR,..." if compare else ""),
                       help="peak learning rate (default per model and method: " + describe_defaults()
                       + "; other models: roberta-large's)"
                       + ("; one for all methods, or one per method: lora=2e-3,full=1e-4" if compare else ""))
    group.add_argument("--weight-decay", type=float, help="AdamW weight decay on matrices (default: 0.01)")
    group.add_argument("--warmup-ratio", type=float, help="share of steps warming up linearly (default: 0.06)")
    group.add_argument("--epochs", type=float, help="passes over the training pairs (default: 1)")
    group.add_argument("--max-steps", type=int, help="optimizer steps in total; overrides --epochs")
    group.add_argument("--eval-every", type=int, metavar="N",
                       help="evaluate every N optimizer steps (default: at the end only)")
    group.add_argument("--save-every", type=int, metavar="N",
                       help="checkpoint every N optimizer steps (default: never)")
    group.add_argument("--checkpoint-dir", help="where checkpoints go (default: OUT/checkpoints/<run name>)")
    group.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"],
                       help="auto: bf16 (else fp16) on GPU, none on CPU (default: auto)")
    group.add_argument("--gradient-checkpointing", action="store_true", default=None,
                       help="GPU: recompute activations in backward to save memory")
    group.add_argument("--seed", type=int, help="seed for data order, subsets, LoRA/head init, dropout (default: 0)")
    parser.add_argument("--out", help="root folder for run folders (default: runs)")
    parser.add_argument("--quiet", action="store_true", default=None,
                        help="no progress bar or tables; print only the run folder")
    _given_flags_only(parser)


def _given_flags_only(parser: argparse.ArgumentParser) -> None:
    """Make every run flag default to None (= not given), keeping the real default in its help text."""
    from adaptlab.nli.study import CONFIG_KEYS

    for action in parser._actions:
        if action.dest in CONFIG_KEYS and action.default is not None:
            if action.help and "%(default)" in action.help:
                action.help = action.help.replace("%(default)s", str(action.default))
            action.default = None


def _resolve(args: argparse.Namespace, **fixed):
    from adaptlab.core.config import load_config
    from adaptlab.nli.study import CONFIG_KEYS, NLIRunConfig

    overrides = {key: getattr(args, key, None) for key in CONFIG_KEYS}
    overrides.update(fixed)
    return load_config(NLIRunConfig, args.config, overrides)  # a YAML list for targets is joined with commas


def _train(args: argparse.Namespace) -> int:
    from adaptlab.nli.study import run_train

    config = _resolve(args)
    with quiet_libraries(config.quiet):
        path = run_train(config)
    _print_if_quiet(config.quiet, path)
    return 0


def _print_if_quiet(quiet: bool, path) -> None:
    """Quiet runs still print their run folder (alone), so scripts can pick it up; non-main ranks print nothing."""
    if quiet and path is not None:
        print(path)


def _compare(args: argparse.Namespace) -> int:
    from adaptlab.nli.compare import run_compare

    from adaptlab.errors import AdaptlabError
    from adaptlab.nli.sweep import Sweep

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    lrs = _method_lrs(args.lr)
    args.lr = lrs.pop("*", None)
    if args.sweep and args.learning_curve:
        raise AdaptlabError("--learning-curve is a sweep of max_train_samples: give it or --sweep, not both")
    text = args.sweep or (f"max_train_samples={args.learning_curve}" if args.learning_curve else None)
    sweep = Sweep.parse(text) if text else None
    config = _resolve(args)
    with quiet_libraries(config.quiet):
        path = run_compare(config, methods, lrs, sweep)
    _print_if_quiet(config.quiet, path)
    return 0


def _method_lrs(text: str | None) -> dict[str, float]:
    """``3e-4`` (every method) or ``lora=2e-3,full=1e-4`` -> {"*": 3e-4} / {"lora": 2e-3, "full": 1e-4}."""
    from adaptlab.errors import AdaptlabError

    if text is None:
        return {}
    lrs = {}
    for part in text.split(","):
        method, _, value = part.rpartition("=")
        try:
            lrs[method.strip() or "*"] = float(value)
        except ValueError:
            raise AdaptlabError(f"--lr: {part!r} is not a number or METHOD=NUMBER") from None
    if any(v <= 0 for v in lrs.values()):
        raise AdaptlabError("--lr values must be positive")
    return lrs


def _evaluate(args: argparse.Namespace) -> int:
    from adaptlab.nli.study import run_evaluate

    with quiet_libraries(args.quiet):
        path = run_evaluate(args.model_path, args.data, eval_split=args.eval_split,
                            max_eval_samples=args.max_eval_samples, heldout_fraction=args.heldout_fraction,
                            seed=args.seed, max_length=args.max_length, batch_size=args.batch_size, out=args.out,
                            quiet=args.quiet)
    _print_if_quiet(args.quiet, path)
    return 0


def _predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from adaptlab.errors import AdaptlabError
    from adaptlab.nli.readers import read_unlabelled_pairs
    from adaptlab.nli.study import run_predict

    if args.file is None and (args.premise is None or args.hypothesis is None):
        raise AdaptlabError("give --premise and --hypothesis, or --file")
    if args.file is not None and (args.premise is not None or args.hypothesis is not None):
        raise AdaptlabError("give either --file or --premise/--hypothesis, not both")
    pairs = read_unlabelled_pairs(args.file) if args.file else pd.DataFrame(
        {"premise": [args.premise], "hypothesis": [args.hypothesis]})
    predictions = run_predict(args.model_path, pairs, max_length=args.max_length)
    if args.file is None:
        row = predictions.iloc[0]
        probabilities = "  ".join(f"{c[2:]} {row[c]:.4f}" for c in predictions.columns if c.startswith("p_"))
        print(f"{row['predicted']}  ({probabilities})")
    elif args.output:
        predictions.to_csv(args.output, index=False)
        print(f"{len(predictions):,} predictions written to {args.output}")
    else:
        predictions.to_csv(sys.stdout, index=False)
    return 0


def register_study_commands(nli) -> None:
    """Add train / evaluate / predict / compare to the ``adaptlab nli`` sub-parsers."""
    train = nli.add_parser(
        "train", help="fine-tune an encoder on NLI with LoRA, full or partial fine-tuning",
        description="Train one method, evaluating every N steps (Step | Training Loss | Validation Loss | Accuracy), "
        "and write a run folder: config, metrics.json, history, saved model (PEFT adapter for LoRA), confusion "
        "matrices, curves, report.md/html.", epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _run_arguments(train)
    train.add_argument("--resume", help="continue from a checkpoint folder (or the latest in a checkpoint dir)")
    train.set_defaults(handler=_train)

    compare = nli.add_parser(
        "compare", help="LoRA vs full vs partial on the same data, seeds and budget: one table",
        description="Run `nli train` once per method (each in its own process, so peak memory is per method) and "
        "write one table: trainable params, %% of total, wall time, train samples/s, peak memory, saved model "
        "size, accuracy per eval split; plus loss/accuracy curves and report.md/html.")
    compare.add_argument("--methods", default="lora,full,partial", help="comma-separated (default: lora,full,partial)")
    compare.add_argument("--sweep", metavar="KEY=V1,V2,...",
                         help="run every method once per value of one setting, e.g. rank=1,4,16,64, "
                         "targets=qv,attn,all-linear, lr=1e-4,1e-3 (LoRA-only settings run full/partial once)")
    compare.add_argument("--learning-curve", metavar="N1,N2,...",
                         help="accuracy by training-set size: the same as --sweep max_train_samples=N1,N2,... "
                         "(all = every pair), with a plot")
    _run_arguments(compare, compare=True)
    compare.set_defaults(handler=_compare)

    evaluate = nli.add_parser(
        "evaluate", help="score a trained model (run folder or model folder) on NLI eval splits",
        description="Accuracy per eval split (and per genre when known), per-class precision/recall/F1, "
        "confusion matrices; writes a run folder.")
    evaluate.add_argument("model_path", metavar="RUN_OR_MODEL", help="a train run folder or a saved model folder")
    from adaptlab.nli.data import add_data_arguments

    add_data_arguments(evaluate)
    evaluate.add_argument("--max-length", type=int, default=128, help="tokens per pair (default: 128)")
    evaluate.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass (default: 32)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed for subsets / held-out split (default: 0)")
    evaluate.add_argument("--out", default="runs", help="root folder for run folders (default: runs)")
    evaluate.add_argument("--quiet", action="store_true", help="print only the run folder")
    evaluate.set_defaults(handler=_evaluate)

    predict = nli.add_parser(
        "predict", help="label and class probabilities for one pair or a file of pairs",
        description="Print the predicted label and the probability of each class.")
    predict.add_argument("model_path", metavar="RUN_OR_MODEL", help="a train run folder or a saved model folder")
    predict.add_argument("--premise", help="the premise sentence")
    predict.add_argument("--hypothesis", help="the hypothesis sentence")
    predict.add_argument("--file", type=Path,
                         help="pairs in any training-data layout (.jsonl, MultiNLI .txt, GLUE .tsv, .csv) with "
                         "sentence1/sentence2 (or premise/hypothesis) columns; a label column is optional")
    predict.add_argument("--output", type=Path, help="with --file: write the CSV here instead of stdout")
    predict.add_argument("--max-length", type=int, default=128, help="tokens per pair (default: 128)")
    predict.set_defaults(handler=_predict)
