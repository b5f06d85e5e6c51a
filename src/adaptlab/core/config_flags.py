"""Command-line flags and a commented YAML file generated from a config dataclass's fields.

Each field documents itself in ``metadata``: ``help`` (required), ``flags`` (extra spellings such as the
Hugging Face Trainer names, e.g. ``["--learning_rate"]``), ``choices`` (shown in --help) and ``metavar``. Flags default to
"not given", so :func:`config_overrides` returns only what the user typed and ``load_config`` layers it
over the YAML file; values stay text here and are coerced (and validated) there, once.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import typing
from typing import Any

import yaml


def add_config_flags(parser: argparse.ArgumentParser, cls: type, exclude: typing.Iterable[str] = (),
                     help_defaults: dict[str, Any] | None = None) -> None:
    """Add ``--field-name`` (plus the field's extra ``flags``) for every field of ``cls`` not in ``exclude``.
    Lists are comma separated, bools get ``--x`` / ``--no-x``; help ends with ``(default: X)``, X from
    ``help_defaults`` when given (e.g. a reference YAML's values), else the field's default."""
    hints = typing.get_type_hints(cls)
    shown = {**field_defaults(cls), **(help_defaults or {})}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        meta = field.metadata
        flags = [f"--{field.name.replace('_', '-')}", *meta.get("flags", ())]
        help_text = f"{meta.get('help', '')} (default: {format_flag_value(shown.get(field.name))})"
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS,
                                  "help": help_text.replace("%", "%%")}
        hint = hints.get(field.name)
        if hint is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if typing.get_origin(hint) in (list, tuple):
            kwargs["type"] = _comma_list
        # choices are shown, not enforced here: the config's validate() checks every value once, whether
        # it came from a flag or the YAML file, and reports it in one line
        choices = "{" + ",".join(map(str, meta["choices"])) + "}" if "choices" in meta else None
        kwargs["metavar"] = meta.get("metavar", choices or field.name.upper())
        parser.add_argument(*flags, **kwargs)


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The config fields the user gave on the command line, as ``{field: value}`` for ``load_config``."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def field_defaults(cls: type) -> dict[str, Any]:
    """``{field: default}`` of a dataclass (default factories called)."""
    out = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            out[field.name] = field.default_factory()
    return out


def format_flag_value(value: Any) -> str:
    """A value as the user would type it on the command line (lists comma separated, None as "empty")."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def commented_yaml(config: Any, header: str = "", width: int = 100) -> str:
    """``config`` (a dataclass instance) as YAML, each key preceded by its field's help as a comment; the
    text loads back (``load_config``) to an equal config."""
    lines = [f"# {line}" for line in header.splitlines()] + ([""] if header else [])
    for field in dataclasses.fields(config):
        help_text = field.metadata.get("help")
        if help_text:
            lines += textwrap.wrap(help_text, width - 2, initial_indent="# ", subsequent_indent="# ")
        value = getattr(config, field.name)
        value = list(value) if isinstance(value, tuple) else value
        # lists inline ("hidden_sizes: [64, 32]"), everything else as a plain "key: value" line
        lines.append(yaml.safe_dump({field.name: value}, default_flow_style=None if isinstance(value, list) else False,
                                    sort_keys=False).rstrip())
    return "\n".join(lines) + "\n"


def _comma_list(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items
