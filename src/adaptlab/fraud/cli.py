"""`adaptlab fraud ...` sub-commands."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("fraud", help="the fraud study")
    parser.add_subparsers(dest="fraud_command", required=True, metavar="COMMAND")
