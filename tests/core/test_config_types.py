"""load_config checks and coerces every value to its field's type hint (YAML quirks become one-line errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adaptlab.core.config import load_config
from adaptlab.errors import AdaptlabError


@dataclass
class _Typed:
    lr: float = 0.1
    lr_or_none: float | None = None
    steps: int = 1
    steps_or_none: int | None = None
    flag: bool = False
    name: str = "x"
    folder: Path | None = None
    sizes: list[int] = field(default_factory=lambda: [4])
    names: tuple[str, ...] = ("a",)
    weight: float | str | None = None


def _load(tmp_path, text: str) -> _Typed:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(_Typed, path)


def test_yaml_strings_that_are_numbers_become_numbers(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-3 without a dot as the string '1e-3'
    config = _load(tmp_path, "lr: 1e-3\nlr_or_none: 2e-5\nsteps: '12'\nsteps_or_none: 7\nweight: 3e-1\n")
    assert config.lr == 0.001 and isinstance(config.lr, float)
    assert config.lr_or_none == 2e-5 and config.steps == 12 and config.steps_or_none == 7 and config.weight == 0.3


def test_ints_lists_paths_and_texts_keep_or_get_their_type(tmp_path):
    config = _load(tmp_path, "lr: 2\nfolder: runs/a\nsizes: [64, 32]\nnames: [q, v]\nweight: balanced\n"
                             "name: [query, value]\nflag: true\n")
    assert config.lr == 2 and config.folder == Path("runs/a") and config.sizes == [64, 32]
    assert config.names == ("q", "v") and config.weight == "balanced" and config.name == "query,value"
    assert config.flag is True


@pytest.mark.parametrize("text, message", [
    ("lr: abc\n", "config key lr: expected a number, got 'abc'"),
    ("steps: abc\n", "config key steps: expected an integer, got 'abc'"),
    ("steps_or_none: 2.5\n", "config key steps_or_none: expected an integer or empty, got 2.5"),
    ("steps: 3.0\n", "config key steps: expected an integer, got 3.0"),
    ("steps: true\n", "config key steps: expected an integer, got True"),
    ("lr: false\n", "config key lr: expected a number, got False"),
    ("flag: 1\n", "config key flag: expected true or false, got 1"),
    ("name: no\n", "config key name: expected a string, got False (YAML reads yes/no/on/off as booleans"),
    ("sizes: 64\n", "config key sizes: expected a list of integers, got 64"),
    ("sizes: [64, x]\n", "config key sizes: expected a list of integers, got [64, 'x']"),
    ("lr:\n", "config key lr: expected a number, got None"),
    ("weight: [1]\n", "config key weight: expected a number or a string or empty, got [1]"),
])
def test_wrong_types_are_one_line_errors_naming_key_and_type(tmp_path, text, message):
    with pytest.raises(AdaptlabError) as info:
        _load(tmp_path, text)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_flag_overrides_are_checked_too():
    with pytest.raises(AdaptlabError, match="config key steps: expected an integer, got 'x'"):
        load_config(_Typed, None, {"steps": "x"})
    assert load_config(_Typed, None, {"lr": "5e-4"}).lr == 5e-4


def test_a_config_file_that_is_not_text_is_one_line(tmp_path):
    from dataclasses import dataclass

    from adaptlab.core.config import load_config
    from adaptlab.errors import AdaptlabError

    @dataclass
    class Small:
        lr: float = 1.0

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"lr: 1\n\xf0\x28\x8c\x28\x00\xff")
    with pytest.raises(AdaptlabError, match="is not UTF-8 text") as info:
        load_config(Small, binary)
    assert "\n" not in str(info.value)
