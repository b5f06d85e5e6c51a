"""Resolved configs: a dataclass of plain values, filled from a YAML file, then CLI flags on top.

Every value is first checked against (and coerced to) its field's type hint, so a YAML quirk such as ``lr: 1e-3``
(PyYAML reads it as a string) or a typo such as ``max_steps: abc`` is a one-line error, not a TypeError deep in a
run. Rules: an int is a valid float; a float is never an int; bools are neither; a number written as a string
becomes that number; a YAML list given for a ``str`` field is joined with commas (the CLI's list syntax).
Semantic checks happen once, in the dataclass's ``validate()``; the resolved config is what a run saves.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from adaptlab.errors import AdaptlabError, first_line

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Build ``cls`` from defaults < YAML file < ``overrides`` (``None`` values mean "not given")."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_yaml(Path(path)))
    unknown = sorted(set(values) - names)
    if unknown:
        raise AdaptlabError(
            f"unknown config key(s) {', '.join(unknown)} in {path}; valid keys: {', '.join(sorted(names))}"
        )
    for key, value in (overrides or {}).items():
        if value is not None:
            if key not in names:
                raise AdaptlabError(f"unknown config key {key!r}")
            values[key] = value
    hints = typing.get_type_hints(cls)
    values = {key: coerce_value(key, value, hints.get(key, Any)) for key, value in values.items()}
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise AdaptlabError(f"invalid config: {exc}") from None
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise AdaptlabError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AdaptlabError(f"config file {path} is not UTF-8 text (a YAML file of settings is expected)") from None
    except OSError as exc:
        raise AdaptlabError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AdaptlabError(f"config file {path} is not valid YAML: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise AdaptlabError(f"config file {path} must hold a mapping of keys to values")
    return data


_INT_TEXT = re.compile(r"^[+-]?\d+$")


class _Mismatch(Exception):
    """The value does not fit the type (turned into one AdaptlabError naming the key and the whole type)."""


def coerce_value(key: str, value: Any, hint: Any) -> Any:
    """``value`` converted to the type ``hint`` (see the module docstring for the rules), else AdaptlabError."""
    try:
        return _coerce(value, hint)
    except _Mismatch:
        hint_text = " (YAML reads yes/no/on/off as booleans: quote it)" if isinstance(value, bool) else ""
        raise AdaptlabError(f"config key {key}: expected {_describe(hint)}, got {value!r}{hint_text}") from None


def _coerce(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if value is None:
        if hint is type(None) or type(None) in args:
            return None
        raise _Mismatch
    if origin in (Union, types.UnionType):
        for option in args:  # declared order: ``float | str`` reads "0.5" as a number, "balanced" as text
            if option is not type(None):
                try:
                    return _coerce(value, option)
                except _Mismatch:
                    pass
        raise _Mismatch
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        item = args[0] if args else Any
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            return tuple(_coerce(v, t) for v, t in zip(value, args))
        return origin(_coerce(v, item) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT_TEXT.match(value.strip()):
            return int(value)
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value  # an int stays an int: 2 is a valid float and prints as written
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        raise _Mismatch
    if hint is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Mismatch
    return value  # other types (nested dataclasses, dicts): left to the dataclass and its validate()


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return f"{text} or empty" if type(None) in args else text
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path",
             type(None): "empty"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


# ------------------------------------------------------------------------------- flags from dataclass fields
# A config dataclass documents each field the way PEFT's LoraConfig does:
#     lr: float = field(default=1e-3, metadata={"help": "peak learning rate", "flags": ["--learning_rate"]})
# Metadata keys: "help"; "flags" (extra spellings, e.g. Hugging Face Trainer names); "hidden_flags" (accepted,
# not shown: old spellings); "choices"; "metavar"; "cli": False (no flag). The flag itself is --field-name.
# Every flag defaults to "not given" (absent from the namespace), so only the flags a user typed override the
# YAML file, which overrides the dataclass defaults: one definition of each setting, one precedence rule.


def add_config_flags(parser, cls: type, *, exclude: tuple[str, ...] = (), defaults: dict[str, Any] | None = None,
                     rename: dict[str, str] | None = None) -> None:
    """Add one ``--flag`` per field of dataclass ``cls`` to ``parser`` (or an argument group).

    ``defaults``: what the help text shows as the default where it differs from the field's own (e.g. the values
    of a shipped reference YAML). ``rename``: field name -> flag to use instead of ``--field-name``.
    Values are parsed and type-checked as they are read, so ``--lr abc`` is argparse's one-line usage error.
    """
    import argparse

    hints = typing.get_type_hints(cls)
    shown = defaults or {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.name in exclude or meta.get("cli") is False:
            continue
        flag = (rename or {}).get(f.name, "--" + f.name.replace("_", "-"))
        names = [flag, *[n for n in meta.get("flags", ()) if n != flag]]
        default = shown[f.name] if f.name in shown else _field_default(f)
        help_text = meta.get("help", "").replace("%", "%%")
        if default is not dataclasses.MISSING and not meta.get("no_default_in_help"):
            help_text = f"{help_text} (default: {_show(default)})" if help_text else f"default: {_show(default)}"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        hint = hints.get(f.name, Any)
        if _is_bool(hint):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _flag_parser(f.name, hint)
            if "choices" in meta:
                kwargs["choices"] = list(meta["choices"])
            kwargs["metavar"] = meta.get("metavar") or (None if "choices" in meta else _metavar(f.name, hint))
        parser.add_argument(*names, **kwargs)
        for hidden in meta.get("hidden_flags", ()):
            parser.add_argument(hidden, **{**kwargs, "help": argparse.SUPPRESS})


def config_overrides(args, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` that were given as flags in ``args`` (an argparse namespace)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def field_help(cls: type, name: str) -> str:
    """The documented meaning of field ``name`` of ``cls`` (its ``metadata["help"]``), or ''."""
    return next((f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name), "")


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


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_bool(hint: Any) -> bool:
    return hint is bool or (typing.get_origin(hint) in (Union, types.UnionType)
                            and set(typing.get_args(hint)) == {bool, type(None)})


def _list_hint(hint: Any) -> Any:
    """The list/tuple type inside ``hint`` (``list[int] | None`` -> ``list[int]``), else None."""
    if typing.get_origin(hint) in (list, tuple):
        return hint
    if typing.get_origin(hint) in (Union, types.UnionType):
        return next((a for a in typing.get_args(hint) if typing.get_origin(a) in (list, tuple)), None)
    return None


def _flag_parser(name: str, hint: Any):
    """argparse ``type=``: text -> a value of ``hint`` (lists comma-separated), via the same rules as YAML."""
    import argparse

    def parse(text: str) -> Any:
        value: Any = text
        if _list_hint(hint) is not None:
            value = [part.strip() for part in text.split(",") if part.strip()]
            if not value:
                raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        try:
            return coerce_value(name, value, hint)
        except AdaptlabError:
            raise argparse.ArgumentTypeError(f"expected {_describe(hint)}, got {text!r}") from None

    parse.__name__ = _describe(hint)  # argparse names the type in some messages
    return parse


def _metavar(name: str, hint: Any) -> str:
    if _list_hint(hint) is not None:
        return "A,B,..."
    for simple, text in ((int, "N"), (float, "X"), (Path, "PATH")):
        if hint is simple or simple in typing.get_args(hint):
            return text
    return name.upper()
