"""`adaptlab fraud ...` sub-commands: analyze, run, compare, score, config. Parsing only; the work is elsewhere.

The flags of ``run`` and ``compare`` are generated from the fields of their config dataclasses
(:mod:`adaptlab.fraud.config`). Study modules (torch, scikit-learn, matplotlib) are imported inside the
handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adaptlab.core.config import add_config_flags, config_overrides
from adaptlab.errors import AdaptlabError
from adaptlab.fraud.config import REFERENCE_CONFIG, CompareConfig, FraudConfig

OUTPUT_DIR_HELP = "where run folders go (default: runs)"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fraud", help="the fraud study: an MLP on the ULB credit-card data",
        description="Learn from very rare events: analyse the ULB credit-card data, train an MLP, evaluate it "
                    "with metrics that do not lie on imbalanced data, and score new transactions.")
    sub = parser.add_subparsers(dest="fraud_command", required=True, metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="class counts, imbalance ratio and distribution plots",
                             description="Print the class counts, fraud share, imbalance ratio and never-fraud "
                                         "accuracy, and write a run folder with them and per-class Amount/Time "
                                         "distributions.")
    analyze.add_argument("--data", type=Path, default=None, metavar="FILE",
                         help="CSV or parquet file to use instead of the cached ULB data")
    analyze.add_argument("--name", default="fraud-analyze", help="run name: the folder is <time>-<name>")
    _add_output(analyze)
    analyze.set_defaults(handler=_analyze)

    run = sub.add_parser("run", help="analyze + train + evaluate + report (reference configuration by default)",
                         description="The whole study. Settings: the reference configuration (fraud/reference.yaml, "
                                     "printed by `adaptlab fraud config`), then --config FILE, then the flags "
                                     "below (each overrides the previous). Defaults shown are the reference's.")
    run.add_argument("--config", type=Path, default=None, metavar="FILE",
                     help="YAML file of settings (start from `adaptlab fraud config`)")
    _add_output(run)
    add_config_flags(run, FraudConfig, defaults=_reference_values())
    run.set_defaults(handler=_run)

    compare = sub.add_parser(
        "compare", help="no resampling vs class weights vs over-samplers vs LightGBM, safe vs paper protocol",
        description="Train every selected row on the same data, split and seeds and write one run folder: a table "
                    "(AUPRC, ROC-AUC, precision/recall/F1 and fraud amount caught at 0.5 and at the validation "
                    "threshold, train time incl. resampling, training rows), PR curves, confusion matrices, how "
                    "much the paper protocol (resample before splitting, LEAKY) inflates each metric, and whether "
                    "ADASYN helps under the safe protocol. Settings: defaults < --config FILE < flags.")
    compare.add_argument("--config", type=Path, default=None, metavar="FILE",
                         help="YAML file of settings (start from `adaptlab fraud config --compare`)")
    _add_output(compare)
    add_config_flags(compare, CompareConfig)
    compare.set_defaults(handler=_compare)

    score = sub.add_parser("score", help="score transactions with a saved model",
                           description="Print (or write with --output) each row's fraud probability and flag "
                                       "(probability >= the run's validation threshold). FILE is CSV or parquet "
                                       "with the 30 feature columns Time, V1..V28, Amount; every column of FILE "
                                       "(Class, an ID...) is kept in the output, after `row` (0-based, the "
                                       "file's own row order). The file is streamed in chunks of 200,000 rows, "
                                       "so memory stays bounded whatever its size.")
    score.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder written by `adaptlab fraud run`")
    score.add_argument("file", type=Path, metavar="FILE", help="transactions to score (CSV or parquet)")
    score.add_argument("--output", type=Path, default=None, metavar="FILE",
                       help="write the scores to this file instead of stdout: parquet for a .parquet/.pq "
                       "name, else CSV; it appears only once every row is scored")
    score.add_argument("--out", dest="output", type=Path, help=argparse.SUPPRESS)
    score.add_argument("--quiet", action="store_true", help="no summary line")
    score.set_defaults(handler=_score)

    config = sub.add_parser("config", help="print the reference configuration as commented YAML",
                            description="Print the settings of `fraud run` (or, with --compare, of `fraud "
                                        "compare`) as YAML with a comment per key: save it, edit it, pass it "
                                        "with --config.")
    config.add_argument("--compare", action="store_true", help="the settings of `fraud compare` instead")
    config.set_defaults(handler=_config)


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", type=Path, default=Path("runs"),
                        metavar="DIR", help=OUTPUT_DIR_HELP)
    parser.add_argument("--runs-dir", dest="output_dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or messages; print only the run folder's path")


def _reference_values() -> dict:
    import yaml

    return yaml.safe_load(REFERENCE_CONFIG.read_text())


def _analyze(args: argparse.Namespace) -> int:
    import json

    from adaptlab.core.runs import print_run_folder
    from adaptlab.fraud.analysis import analyze_study, findings

    path = analyze_study(args.data, args.output_dir, args.name, quiet=args.quiet)
    if not args.quiet:
        print("\n".join(findings(json.loads((path / "metrics.json").read_text())["classes"])))
    print_run_folder(path, args.quiet)
    return 0


def _run(args: argparse.Namespace) -> int:
    from adaptlab.core.config import load_config
    from adaptlab.core.runs import print_run_folder
    from adaptlab.fraud.study import run_study

    config = load_config(FraudConfig, args.config or REFERENCE_CONFIG, config_overrides(args, FraudConfig))
    path = run_study(config, args.output_dir, quiet=args.quiet)
    if not args.quiet:
        print(_headline(path))
    print_run_folder(path, args.quiet)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from adaptlab.core.config import load_config
    from adaptlab.core.runs import print_run_folder
    from adaptlab.fraud.compare_report import compare_study

    config = load_config(CompareConfig, args.config, config_overrides(args, CompareConfig))
    print_run_folder(compare_study(config, args.output_dir, quiet=args.quiet), args.quiet)
    return 0


def _config(args: argparse.Namespace) -> int:
    from adaptlab.core.config import commented_yaml, load_config

    if args.compare:
        print(commented_yaml(CompareConfig(), "Settings of `adaptlab fraud compare` (its defaults).\n"
                                              "Use: adaptlab fraud compare --config THIS_FILE; flags override it."),
              end="")
    else:
        print(commented_yaml(load_config(FraudConfig, REFERENCE_CONFIG),
                             "The reference fraud study: what `adaptlab fraud run` does with no --config.\n"
                             "Use: adaptlab fraud run --config THIS_FILE; flags override it."), end="")
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
    summary = score_file(args.run_dir, args.file, args.output)
    if args.output is not None and not args.quiet:
        print(f"wrote {summary.rows:,} scores ({summary.flagged:,} flagged) to {args.output}")
    return 0
