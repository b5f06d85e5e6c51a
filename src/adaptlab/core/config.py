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
        data = yaml.safe_load(path.read_text()) or {}
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
