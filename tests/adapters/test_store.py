"""Registry folders: save/open round trip gives equal outputs, remove drops a task, folders are plain adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptlab.adapters.registry import AdapterRegistry
from adaptlab.errors import AdaptlabError


def test_save_open_round_trip_remove(family, tiny, tmp_path):
    _, base, adapters = family
    registry = AdapterRegistry.from_base(str(base), batch_size=4)
    for name, folder in adapters.items():
        registry.add(name, folder)
    items = tiny.random_items(np.random.default_rng(7), 15)
    before = registry.classify(items)

    saved = registry.save(tmp_path / "registry")
    listing = json.loads((saved / "registry.json").read_text())
    assert listing["base_model"] == str(base) and listing["base_sha256"] == registry.base_sha256
    assert [t["name"] for t in listing["tasks"]] == list(tiny.TASKS)
    assert [len(t["labels"]) for t in listing["tasks"]] == [3, 2, 4]
    for name in tiny.TASKS:
        files = {p.name for p in (saved / name).iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors", "adaptlab_model.json"} <= files
        assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry"]  # no staging left behind

    reopened = AdapterRegistry.open(saved)
    after = reopened.classify(items)
    for a, b in zip(before, after):
        assert a.label == b.label and np.allclose(list(a.probabilities.values()), list(b.probabilities.values()),
                                                  atol=1e-6, rtol=0)
    # each task folder is an ordinary adapter: loaded alone it gives the same answers
    for item, prediction in zip(items, after):
        expected = tiny.alone(saved / item[0], item, reopened.max_length)
        assert np.allclose(list(prediction.probabilities.values()), expected, atol=1e-5, rtol=0)

    reopened.remove("sent2")
    assert [t.name for t in reopened.tasks()] == ["nli3", "topic4"]
    with pytest.raises(AdaptlabError, match="unknown task 'sent2'"):
        reopened.predict("sent2", ["Nobody is outside."])
    kept = [item for item in items if item[0] != "sent2"]
    for a, b in zip(reopened.classify(kept), [p for p, item in zip(after, items) if item[0] != "sent2"]):
        assert np.allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-6, rtol=0)
    reopened.save(saved)
    assert sorted(p.name for p in saved.iterdir()) == ["nli3", "registry.json", "topic4"]
    assert [t.name for t in AdapterRegistry.open(saved).tasks()] == ["nli3", "topic4"]

    for name in ("nli3", "topic4"):  # removing the last task leaves an empty registry that takes adapters again
        reopened.remove(name)
    assert reopened.tasks() == []
    reopened.add("again", adapters["topic4"])
    assert len(reopened.predict("again", [("Nobody is outside.", "The children are sleeping.")])[0].probabilities) == 4


def test_save_refuses_a_folder_that_is_not_a_registry(family, tmp_path):
    _, base, adapters = family
    registry = AdapterRegistry.from_base(str(base))
    registry.add("nli3", adapters["nli3"])
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(AdaptlabError, match="not an adapter registry folder"):
        registry.save(other)
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(AdaptlabError, match="not an adapter registry folder"):
        AdapterRegistry.open(other)
