"""Resolved configs: a dataclass of plain values, filled from a YAML file, then CLI flags on top.

Validation happens once, in the dataclass's ``validate()``; the resolved config is what a run saves.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from adaptlab.errors import AdaptlabError

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
        raise AdaptlabError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise AdaptlabError(f"config file {path} must hold a mapping of keys to values")
    return data
