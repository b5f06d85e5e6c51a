"""The gathered mixed-batch LoRA forward equals PEFT's ``adapter_names`` path, whatever the ranks, label counts,
target layers and add/remove history; PEFT's layers are back in place after every forward."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from adaptlab.adapters.gathered_lora import GatheredLinear, GatheredLoRA, lora_layers, supports
from adaptlab.adapters.registry import AdapterRegistry
from adaptlab.errors import AdaptlabError

# rank 4 and rank 8 adapters with 2 and 5 labels, next to the family's rank-2/4 ones (qv and attn targets)
EXTRA = {"wide8": (["a", "b", "c", "d", "e"], "pair", dict(rank=8)),
         "narrow4": (["yes", "no"], "single", dict(rank=4, alpha=3))}


@pytest.fixture(scope="module")
def adapters(family, tiny, tmp_path_factory):
    """The family's three adapters plus EXTRA, on the same tiny base."""
    name, base, family_adapters = family
    root = tmp_path_factory.mktemp(f"{name}-extra")
    extra = {task: tiny.make_adapter(base, root / task, labels, kind, seed=50 + i, **settings)
             for i, (task, (labels, kind, settings)) in enumerate(EXTRA.items())}
    return base, {**family_adapters, **extra}


def mixed_items(tiny, tasks: dict[str, str], rng, count: int) -> list[tuple]:
    """``(task, text, pair or None)`` items cycling over ``tasks`` (name -> "pair"/"single"), random sentences."""
    names = list(tasks)
    items = []
    for i in range(count):
        task = names[i % len(names)] if i < len(names) else str(rng.choice(names))
        text = " ".join(rng.choice(tiny.SENTENCES, size=rng.integers(1, 4)))
        items.append((task, text, str(rng.choice(tiny.SENTENCES)) if tasks[task] == "pair" else None))
    return items


def probabilities(registry: AdapterRegistry, items: list[tuple], lora_batching: str) -> list[list[float]]:
    registry.lora_batching = lora_batching
    return [list(p.probabilities.values()) for p in registry.classify(items)]


@contextmanager
def in_float64(registry: AdapterRegistry):
    """The registry's model (encoder, LoRA, every head copy) in float64 within the block; the stacks follow."""
    registry._peft.double()
    registry._gathered = None  # the stacks are copies, taken in the model's dtype
    try:
        yield
    finally:
        registry._peft.float()
        registry._gathered = None


def assert_paths_agree(tiny, registry: AdapterRegistry, rng) -> None:
    """Both paths give the same probabilities: within 1e-6 in float64, within 1e-5 in float32.

    float32 alone cannot show 1e-6: the tiny adapters' random LoRA weights (scale 0.5) make updates as large as the
    base outputs, and the rounding of sums taken in another order grows through the layers to ~2e-6 (PEFT's own
    path against the adapter loaded alone differs as much). In float64 that rounding vanishes and what is left is
    any difference in the computation itself: a wrong slot, scaling or padding shows as 1e-2, not 1e-6."""
    kinds = {t.name: t.input for t in registry.tasks()}
    items = mixed_items(tiny, kinds, rng, 17)
    compare(registry, items, atol=1e-5)
    with in_float64(registry):
        compare(registry, items, atol=1e-6)


def compare(registry: AdapterRegistry, items: list[tuple], atol: float) -> None:
    kinds = {t.name: t.input for t in registry.tasks()}
    peft, gathered = probabilities(registry, items, "peft"), probabilities(registry, items, "gathered")
    assert registry._gathered is not None and list(registry._gathered.slots) == list(kinds)  # the gathered path ran
    for item, a, b in zip(items, peft, gathered):
        assert len(a) == len(b) == len(registry.task(item[0]).labels)
        assert np.allclose(a, b, atol=atol, rtol=0), (item, a, b)
    # a single-task batch (no gather: every row uses the same slot)
    task = items[0][0]
    single = [item for item in items if item[0] == task]
    assert np.allclose(probabilities(registry, single, "peft"), probabilities(registry, single, "gathered"),
                       atol=atol, rtol=0)
    # PEFT's own layers are back after the forward
    assert not any(isinstance(m, GatheredLinear) for m in registry._peft.modules())


def test_gathered_equals_peft_adapter_names_across_ranks_and_after_remove_add(adapters, tiny, one_torch_thread):
    base, folders = adapters
    registry = AdapterRegistry.from_base(str(base), batch_size=6)
    for name, folder in folders.items():
        registry.add(name, folder)
    ranks = {layer.lora_A[name].weight.shape[0] for _, layer in lora_layers(registry._peft) for name in layer.lora_A}
    assert ranks == {2, 4, 8}
    rng = np.random.default_rng(0)
    assert_paths_agree(tiny, registry, rng)

    registry.remove("nli3")  # a rank-2 qv adapter: the slots shift, the stacks are rebuilt
    assert registry._gathered is None
    assert_paths_agree(tiny, registry, rng)
    registry.remove("wide8")  # the largest rank: the stacks shrink to rank 4
    assert_paths_agree(tiny, registry, rng)
    rebuilt = GatheredLoRA(registry._peft, [t.name for t in registry.tasks()])
    assert max(site.gathered.a_stack.shape[-1] for site in rebuilt._sites) == 4
    registry.add("nli3", folders["nli3"])
    registry.add("wide8-again", folders["wide8"])
    assert_paths_agree(tiny, registry, rng)


def test_stacks_hold_pefts_weights_scaled_and_zero_padded(adapters):
    """Slot by slot, the stacks are PEFT's A^T and scaling * B^T, zero past each rank and for absent layers; each
    layer's stacks are as wide as its largest rank."""
    base, folders = adapters
    registry = AdapterRegistry.from_base(str(base))
    for name in ("sent2", "wide8", "narrow4"):  # attn targets vs query/value only; ranks 4, 8, 4
        registry.add(name, folders[name])
    gathered = GatheredLoRA(registry._peft, ["sent2", "wide8", "narrow4"])
    sites = {site.child: site for site in gathered._sites}
    assert len(gathered._sites) == len(lora_layers(registry._peft))
    for site in gathered._sites:
        layer, a_stack, b_stack = site.lora_layer, site.gathered.a_stack, site.gathered.b_stack
        largest = 8 if "wide8" in layer.lora_A else 4  # the largest rank on this layer
        assert a_stack.shape == (3, layer.in_features, largest) and b_stack.shape == (3, largest, layer.out_features)
        for slot, name in enumerate(["sent2", "wide8", "narrow4"]):
            if name not in layer.lora_A:
                assert not a_stack[slot].any() and not b_stack[slot].any()
                continue
            a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
            rank = a.shape[0]
            assert torch.equal(a_stack[slot, :, :rank], a.T) and not a_stack[slot, :, rank:].any()
            assert torch.allclose(b_stack[slot, :rank], b.T * layer.scaling[name]) and not b_stack[slot, rank:].any()
    assert "key" in sites  # sent2 targets key too: the others' rows there get zeros
    assert registry._peft.peft_config["narrow4"].lora_alpha == 3  # scaling 3/4, not the default


def test_rows_route_each_lora_layer_and_restore_it(adapters):
    base, folders = adapters
    registry = AdapterRegistry.from_base(str(base))
    registry.add("nli3", folders["nli3"])
    registry.add("wide8", folders["wide8"])
    gathered = GatheredLoRA(registry._peft, ["nli3", "wide8"])
    layers = dict(lora_layers(registry._peft))
    with gathered.rows(["wide8", "nli3", "wide8"], torch.device("cpu")):
        swapped = [registry._peft.get_submodule(name) for name in layers]
        assert all(isinstance(m, GatheredLinear) for m in swapped)
        assert swapped[0].row_slots.tolist() == [1, 0, 1] and swapped[0].uniform_slot is None
    assert all(registry._peft.get_submodule(name) is layer for name, layer in layers.items())
    with gathered.rows(["wide8"] * 4, torch.device("cpu")):
        assert registry._peft.get_submodule(next(iter(layers))).uniform_slot == 1


def test_supports_only_vanilla_lora_linear(family):
    from peft import LoraConfig, PeftModel

    from adaptlab.nli.models import load_base_model

    _, base, _ = family
    for settings, expected in [({}, True), ({"use_dora": True}, False), ({"lora_bias": True}, False)]:
        model, _ = load_base_model(str(base), report_missing=False)
        config = LoraConfig(r=4, target_modules=["query", "value"], **settings)
        peft_model = PeftModel(model, config, adapter_name="one").eval()
        assert supports(peft_model, ["one"]) is expected, settings
    model, _ = load_base_model(str(base), report_missing=False)
    training = PeftModel(model, LoraConfig(r=4, target_modules=["query"], lora_dropout=0.1), adapter_name="one")
    assert supports(training.train(), ["one"]) is False and supports(training.eval(), ["one"]) is True


def test_lora_batching_is_checked(family):
    _, base, _ = family
    with pytest.raises(AdaptlabError, match="lora_batching must be one of auto, gathered, peft"):
        AdapterRegistry.from_base(str(base), lora_batching="fast")
    registry = AdapterRegistry.from_base(str(base))
    assert registry.lora_batching == "auto"
    with pytest.raises(AdaptlabError, match="lora_batching"):
        registry.lora_batching = "punica"
