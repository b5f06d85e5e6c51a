"""AdapterRegistry: mixed-task batches equal each adapter alone, any label counts, wrong bases refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptlab.adapters.registry import AdapterRegistry, Prediction
from adaptlab.errors import AdaptlabError
from adaptlab.nli.artifacts import read_meta
from adaptlab.nli.fingerprint import base_fingerprint
from adaptlab.nli.models import load_base_model


def full_registry(base, adapters, **settings) -> AdapterRegistry:
    registry = AdapterRegistry.from_base(str(base), **settings)
    for name, folder in adapters.items():
        registry.add(name, folder)
    return registry


def assert_equal_alone(tiny, registry, adapters, items, predictions, atol=1e-5):
    assert len(predictions) == len(items)
    for item, prediction in zip(items, predictions):
        labels = tiny.TASKS[item[0]][0]
        expected = tiny.alone(adapters[item[0]], item, registry.max_length)
        assert isinstance(prediction, Prediction) and prediction.task == item[0]
        assert list(prediction.probabilities) == labels  # the task's own label names, in output order
        got = list(prediction.probabilities.values())
        assert np.allclose(got, expected, atol=atol, rtol=0), (item, got, expected)
        assert prediction.label == labels[int(np.argmax(got))]


@pytest.mark.parametrize("lora_batching", ["peft", "gathered"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_mixes_and_orders_equal_each_adapter_alone(family, tiny, seed, lora_batching, one_torch_thread):
    _, base, adapters = family
    registry = full_registry(base, adapters, batch_size=5, lora_batching=lora_batching)  # chunks mixing tasks
    assert [(t.name, len(t.labels), t.input) for t in registry.tasks()] == \
        [("nli3", 3, "pair"), ("sent2", 2, "single"), ("topic4", 4, "pair")]
    items = tiny.random_items(np.random.default_rng(seed), 23)
    assert len({task for task, *_ in items}) == 3
    # PEFT's path runs each row through the same ops as the adapter alone; the gathered path sums the LoRA
    # products in another order (float32 rounding). test_gathered_lora checks the two agree to 1e-6 in float64.
    atol = 1e-5
    predictions = registry.classify(items)
    assert_equal_alone(tiny, registry, adapters, items, predictions, atol)
    # the same items in reverse order: same answers, in the new order
    assert_equal_alone(tiny, registry, adapters, items[::-1], registry.classify(items[::-1]), atol)


def test_adapters_differ_so_routing_matters(family, tiny):
    """Each task's answer depends on its own adapter: sending one text to every task gives different outputs,
    and a pair task's adapter applied to another task's rows would not reproduce that task alone."""
    _, base, adapters = family
    registry = full_registry(base, adapters)
    item_a, item_b = ("nli3", "Nobody is outside.", "The children are sleeping."), \
        ("topic4", "Nobody is outside.", "The children are sleeping.")
    a, b = registry.classify([item_a, item_b])
    assert len(a.probabilities) == 3 and len(b.probabilities) == 4
    first_three_of_b = torch.tensor(list(b.probabilities.values())[:3])
    assert not torch.allclose(torch.tensor(list(a.probabilities.values())), first_three_of_b, atol=1e-3)
    assert max(a.probabilities.values()) > 0.4  # perturbed adapters are far from uniform


@pytest.mark.parametrize("lora_batching", ["peft", "gathered"])
def test_predict_for_one_task_and_input_kinds(family, tiny, lora_batching):
    _, base, adapters = family
    registry = full_registry(base, adapters, lora_batching=lora_batching)
    texts = ["A woman reads a book in the park.", "Nobody is outside."]
    single = registry.predict("sent2", texts)
    assert_equal_alone(tiny, registry, adapters, [("sent2", t, None) for t in texts], single)
    pairs = [("A man is playing a guitar on stage.", "Someone plays music for a crowd.")]
    assert_equal_alone(tiny, registry, adapters, [("nli3", *pairs[0])], registry.predict("nli3", pairs))
    with pytest.raises(AdaptlabError, match="text pairs"):
        registry.predict("nli3", texts)
    with pytest.raises(AdaptlabError, match="single texts"):
        registry.classify([("sent2", "a", "b")])
    with pytest.raises(AdaptlabError, match="unknown task 'nope'"):
        registry.classify([("nope", "a", None)])
    assert registry.classify([]) == []


def test_wrong_base_is_one_line_error_and_registry_unchanged(family, tiny, tmp_path):
    name, base, adapters = family
    other_base = tiny.nli_fixtures.make_tiny_pretrained(tmp_path / "other-base", name, seed=1)
    foreign = tiny.make_adapter(other_base, tmp_path / "foreign", ["a", "b"], "single", seed=3)
    registry = full_registry(base, {"nli3": adapters["nli3"]})
    before = registry.classify([("nli3", "Nobody is outside.", "The children are sleeping.")])
    with pytest.raises(AdaptlabError) as error:
        registry.add("foreign", foreign)
    message = str(error.value)
    assert "\n" not in message and message.startswith("adapter foreign was trained on base ")
    assert str(other_base) in message and f"this registry serves {base}" in message
    assert read_meta(foreign)["base_sha256"][:12] in message and registry.base_sha256[:12] in message
    assert [t.name for t in registry.tasks()] == ["nli3"]
    assert registry.classify([("nli3", "Nobody is outside.", "The children are sleeping.")]) == before


def test_same_weights_elsewhere_are_the_same_base(family, tmp_path):
    """The fingerprint is of the weights, not of where they were read from."""
    _, base, adapters = family
    import shutil

    copy = shutil.copytree(base, tmp_path / "moved-base")
    registry = AdapterRegistry.from_base(str(copy))
    registry.add("nli3", adapters["nli3"])
    assert registry.base_sha256 == read_meta(adapters["nli3"])["base_sha256"]


def test_fingerprint_ignores_lora_and_heads_but_not_encoder_weights(family):
    _, base, adapters = family
    from adaptlab.nli.artifacts import load_trained

    plain, random_modules = load_base_model(str(base), report_missing=False)
    assert random_modules == ()
    expected = base_fingerprint(plain)
    for folder in adapters.values():  # head="full" and head="peft", other label counts, LoRA trained
        model, _ = load_trained(folder)
        assert base_fingerprint(model) == expected == read_meta(folder)["base_sha256"]
    with torch.no_grad():
        next(p for n, p in plain.named_parameters() if "encoder" in n and n.endswith("weight"))[0, 0] += 1e-3
    assert base_fingerprint(plain) != expected


def test_add_refusals(family, tiny, tmp_path, capsys):
    import json
    import shutil

    _, base, adapters = family
    registry = full_registry(base, {"nli3": adapters["nli3"]})
    with pytest.raises(AdaptlabError, match="already registered"):
        registry.add("nli3", adapters["sent2"])
    with pytest.raises(AdaptlabError, match="task name"):
        registry.add("bad.name", adapters["sent2"])

    pickled = shutil.copytree(adapters["sent2"], tmp_path / "bin-only")
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(AdaptlabError, match="only safetensors"):
        registry.add("binary", pickled)

    other_vocab = shutil.copytree(adapters["sent2"], tmp_path / "other-vocab")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(other_vocab)
    tokenizer.add_tokens(["zebra-token"])
    tokenizer.save_pretrained(other_vocab)
    with pytest.raises(AdaptlabError, match="tokenizer of"):
        registry.add("vocab", other_vocab)

    old = shutil.copytree(adapters["sent2"], tmp_path / "old-adapter")
    meta = json.loads((old / "adaptlab_model.json").read_text())
    del meta["base_sha256"], meta["task"]  # saved before fingerprints and tasks: an NLI pair adapter by default
    (old / "adaptlab_model.json").write_text(json.dumps(meta))
    capsys.readouterr()
    info = registry.add("old", old)
    assert "warning: adapter old" in capsys.readouterr().err and info.input == "pair"
    assert [t.name for t in registry.tasks()] == ["nli3", "old"]
