"""`adaptlab fraud ...` sub-commands: analyze, run, compare, score. Parsing only; the work is elsewhere."""

from __future__ import annotations

import argparse
import math
import sys
from functools import partial
from pathlib import Path

from adaptlab.errors import AdaptlabError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fraud", help="the fraud study: an MLP on the ULB credit-card data",
        description="Learn from very rare events: analyse the ULB credit-card data, train an MLP, evaluate it "
                    "with metrics that do not lie on imbalanced data, and score new transactions.")
    sub = parser.add_subparsers(dest="fraud_command", required=True, metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="class counts, imbalance ratio and distribution plots",
                             description="Write a run folder with class counts, the imbalance ratio, a class "
                                         "histogram and per-class Amount/Time distributions.")
    _add_common(analyze, default_name="fraud-analyze")
    analyze.set_defaults(handler=_analyze)

    run = sub.add_parser("run", help="analyze + train + evaluate + report (reference configuration by default)",
                         description="The whole study. Settings come from the embedded reference configuration, "
                                     "then --config FILE, then the flags below (each overrides the previous).")
    run.add_argument("--config", type=Path, default=None, help="YAML file of settings (see fraud/reference.yaml)")
    _add_common(run, default_name=None)
    run.add_argument("--split", choices=["stratified", "time"], default=None,
                     help="stratified (20%% test, 25%% of the rest validation) or time (oldest 60/20/20; both follow "
                          "test_size / val_size of --config)")
    run.add_argument("--seed", type=int, default=None, help="seed for the split, weights and batch order")
    run.add_argument("--epochs", type=int, default=None, help="maximum epochs (early stopping may end sooner)")
    run.add_argument("--batch-size", type=int, default=None, help="rows per training step")
    run.add_argument("--hidden", type=partial(_int_list, minimum=1), default=None, metavar="SIZES",
                     help="hidden layer sizes, comma separated, e.g. 64,32")
    run.add_argument("--pos-weight", type=_pos_weight, default=None, metavar="W",
                     help="BCEWithLogitsLoss pos_weight: a number or 'balanced' (cost-sensitive variant)")
    run.add_argument("--patience", type=int, default=None, help="epochs without a better validation AP before stopping")
    run.add_argument("--resampler", default=None, metavar="NAME",
                     help="over-sample the training rows first: none (default), adasyn (ours, reference "
                          "parameters), smote, random-over or imblearn-adasyn")
    run.add_argument("--protocol", choices=["safe", "paper"], default=None,
                     help="safe (default): resample the training split only, val/test untouched and guard-checked; "
                          "paper: resample ALL rows, then split (needs --resampler; every output marked LEAKY)")
    run.add_argument("--adasyn-ratio", type=float, default=None, help="ADASYN ratio (default 1.0)")
    run.add_argument("--adasyn-imb-threshold", type=float, default=None,
                     help="ADASYN: oversample a class only if its size / majority size <= this (default 0.6)")
    run.add_argument("--adasyn-k", type=int, default=None, help="ADASYN neighbours (default 5000)")
    run.set_defaults(handler=_run)

    compare = sub.add_parser(
        "compare", help="no resampling vs class weights vs over-samplers vs LightGBM, safe vs paper protocol",
        description="Train every selected row on the same data, split and seeds and write one run folder: a table "
                    "(AUPRC, ROC-AUC, precision/recall/F1 and fraud amount caught at 0.5 and at the validation "
                    "threshold, train time incl. resampling, training rows), PR curves, confusion matrices, how "
                    "much the paper protocol (resample before splitting, LEAKY) inflates each metric, and whether "
                    "ADASYN helps under the safe protocol. Settings: defaults < --config FILE < flags.")
    compare.add_argument("--config", type=Path, default=None, help="YAML file of CompareConfig settings")
    _add_common(compare, default_name=None)
    compare.add_argument("--methods", type=_name_list, default=None, metavar="A,B,...",
                         help="rows to run, comma separated (default: none, class-weights, random-over, smote, "
                              "adasyn, imblearn-adasyn, adasyn-paper, lightgbm; also random-over-paper, "
                              "smote-paper, imblearn-adasyn-paper)")
    compare.add_argument("--protocol", choices=["safe", "paper"], default=None,
                         help="safe (default): resampling rows resample the training split only; paper: also run "
                              "each selected resampling row under the paper protocol (resample all rows, then "
                              "split), marked LEAKY, next to its safe row")
    compare.add_argument("--split", choices=["stratified", "time"], default=None,
                         help="stratified (default) or time; the paper rows then split their resampled rows by time")
    compare.add_argument("--seeds", type=_int_list, default=None, metavar="S,S,...",
                         help="seeds (each sets split, resampler and model); several give mean ± std (default 42)")
    compare.add_argument("--epochs", type=int, default=None, help="MLP maximum epochs (default 20)")
    compare.add_argument("--patience", type=int, default=None, help="MLP early-stopping patience (default 4)")
    compare.add_argument("--bootstrap", type=int, default=None,
                         help="test-split bootstrap resamples for AUPRC intervals (default 200; 0 = none)")
    compare.set_defaults(handler=_compare)

    score = sub.add_parser("score", help="score transactions with a saved model",
                           description="Print (or write with --out) each row's fraud probability and flag "
                                       "(probability >= the run's validation threshold). FILE is CSV or parquet "
                                       "with the 30 feature columns Time, V1..V28, Amount; Class is optional; "
                                       "other columns (an ID...) are ignored for scoring and passed through.")
    score.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder written by `adaptlab fraud run`")
    score.add_argument("file", type=Path, metavar="FILE", help="transactions to score (CSV or parquet)")
    score.add_argument("--out", type=Path, default=None, help="write the scores to this CSV instead of stdout")
    score.add_argument("--quiet", action="store_true", help="no summary line")
    score.set_defaults(handler=_score)


def _add_common(parser: argparse.ArgumentParser, default_name: str | None) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help="CSV or parquet file to use instead of the cached ULB data")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go (default: runs)")
    parser.add_argument("--name", default=default_name, help="run name (the folder is <time>-<name>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages; print only the run folder")


def _int_list(text: str, minimum: int | None = None) -> list[int]:
    """Comma-separated integers, each >= ``minimum`` when given (argparse ``type=``)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if minimum is not None and min(values) < minimum:
        raise argparse.ArgumentTypeError(f"expected integers >= {minimum}, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated method names, got {text!r}")
    return names


def _pos_weight(text: str) -> float | str:
    if text == "balanced":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'balanced', got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'balanced', got {text!r}")
    return value


def _analyze(args: argparse.Namespace) -> int:
    from adaptlab.fraud.study import analyze_study

    print(analyze_study(args.data, args.runs_dir, args.name, quiet=args.quiet))
    return 0


def _run(args: argparse.Namespace) -> int:
    from adaptlab.core.config import load_config
    from adaptlab.fraud.study import REFERENCE_CONFIG, FraudConfig, run_study

    overrides = {"data": None if args.data is None else str(args.data), "name": args.name, "split": args.split,
                 "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size,
                 "hidden_sizes": args.hidden, "pos_weight": args.pos_weight, "patience": args.patience,
                 "resampler": args.resampler, "protocol": args.protocol, "adasyn_ratio": args.adasyn_ratio,
                 "adasyn_imb_threshold": args.adasyn_imb_threshold, "adasyn_k": args.adasyn_k}
    config = load_config(FraudConfig, args.config or REFERENCE_CONFIG, overrides)
    path = run_study(config, args.runs_dir, quiet=args.quiet)
    if not args.quiet:
        print(_headline(path))
    print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from adaptlab.core.config import load_config
    from adaptlab.fraud.compare import CompareConfig
    from adaptlab.fraud.compare_report import compare_study

    overrides = {"data": None if args.data is None else str(args.data), "name": args.name, "split": args.split,
                 "seeds": args.seeds, "methods": args.methods, "protocol": args.protocol, "epochs": args.epochs,
                 "patience": args.patience, "bootstrap": args.bootstrap}
    config = load_config(CompareConfig, args.config, overrides)
    print(compare_study(config, args.runs_dir, quiet=args.quiet))
    return 0


def _headline(run_dir: Path) -> str:
    import json

    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["metrics"]["test"]
    parts = [f"test AUPRC {test['at_0.5']['average_precision']:.4f}, ROC-AUC {test['at_0.5']['roc_auc']:.4f}"]
    for key, label in (("at_0.5", "0.5"), ("at_val_threshold", f"{metrics['val_f1_threshold']:.4f} (val F1)")):
        m = test[key]
        parts.append(f"at {label}: precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}")
    return "; ".join(parts)


def _score(args: argparse.Namespace) -> int:
    from adaptlab.fraud.scoring import saved_model_warning, score_file

    if not args.run_dir.exists():
        raise AdaptlabError(f"run folder not found: {args.run_dir}")
    warning = saved_model_warning(args.run_dir)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    result = score_file(args.run_dir, args.file, args.out)
    if args.out is None:
        result.to_csv(sys.stdout, index=False)
    elif not args.quiet:
        print(f"wrote {len(result):,} scores ({int(result['flag'].sum()):,} flagged) to {args.out}")
    return 0
