"""Fixtures over :mod:`tiny_adapters` (tiny saved bases with three LoRA adapters each)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("tiny_adapters", Path(__file__).with_name("tiny_adapters.py"))
tiny_adapters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_adapters)


@pytest.fixture(scope="session")
def tiny():
    """The helper module: TASKS, make_family, make_adapter, random_items, alone, SENTENCES."""
    return tiny_adapters


@pytest.fixture(scope="session", params=["bert", "roberta"])
def family(request, tmp_path_factory):
    """``(family, base folder, {task: adapter folder})`` for each tiny architecture."""
    base, adapters = tiny_adapters.make_family(tmp_path_factory.mktemp(request.param), request.param)
    return request.param, base, adapters


one_torch_thread = tiny_adapters.nli_fixtures.one_torch_thread  # the NLI tests' fixture, shared
