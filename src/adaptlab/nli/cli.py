"""`adaptlab nli ...` sub-commands."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("nli", help="the nli study")
    parser.add_subparsers(dest="nli_command", required=True, metavar="COMMAND")
