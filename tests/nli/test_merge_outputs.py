"""`nli merge ADAPTER OUT` never replaces what it should not: existing folders, the adapter itself, its run folder."""

from __future__ import annotations

import os

import pytest
import torch

from adaptlab.cli import main
from adaptlab.nli.artifacts import merge_adapter, read_meta, save_trained
from adaptlab.nli.methods import MethodConfig
from adaptlab.nli.models import build_model


@pytest.fixture
def run_folder(tiny_bert_pretrained, tmp_path):
    """A LoRA run folder laid out like `nli train` writes it (RUN/model is the PEFT adapter)."""
    torch.manual_seed(0)
    method = MethodConfig(method="lora", rank=2)
    model, tokenizer = build_model(str(tiny_bert_pretrained), method)
    run = tmp_path / "runs" / "20261130-000000-nli-lora"
    save_trained(model, tokenizer, run / "model", method)
    (run / "metrics.json").write_text("{}")
    return run


def snapshot(folder):
    """Every file under ``folder`` with its bytes, to prove nothing was touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def merge(capsys, *args) -> tuple[int, str]:
    code = main(["nli", "merge", *map(str, args), "--quiet"])
    return code, capsys.readouterr().err


def test_an_existing_non_empty_out_is_refused_unless_overwrite(run_folder, tmp_path, capsys):
    other = tmp_path / "other-run-model"
    other.mkdir()
    (other / "adapter_model.safetensors").write_bytes(b"another run's adapter")
    before = snapshot(other)

    code, err = merge(capsys, run_folder, other)
    assert code == 2 and err.count("\n") == 1 and "already exists" in err and "--overwrite" in err
    assert snapshot(other) == before

    assert main(["nli", "merge", str(run_folder), str(other), "--overwrite", "--quiet"]) == 0
    assert read_meta(other)["format"] == "transformers" and (other / "model.safetensors").is_file()
    assert not (other / "adapter_model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-run-model", "runs"]  # no staging left


def test_an_empty_out_folder_or_a_new_path_is_fine_without_overwrite(run_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    assert merge_adapter(run_folder / "model", tmp_path / "empty") == tmp_path / "empty"
    assert (tmp_path / "empty" / "model.safetensors").is_file()
    assert merge_adapter(run_folder / "model", tmp_path / "new" / "deeper").joinpath("model.safetensors").is_file()


def test_a_file_at_out_is_refused_unless_overwrite(run_folder, tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    code, err = merge(capsys, run_folder, tmp_path / "out")
    assert code == 2 and "already exists" in err and (tmp_path / "out").read_text() == "not a folder"
    assert main(["nli", "merge", str(run_folder), str(tmp_path / "out"), "--overwrite", "--quiet"]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize("where", ["adapter", "run", "runs-root", "inside-adapter", "link-to-adapter"])
def test_the_adapter_or_its_run_folder_is_never_the_output_even_with_overwrite(where, run_folder, tmp_path,
                                                                              capsys):
    out = {"adapter": run_folder / "model", "run": run_folder, "runs-root": run_folder.parent,
           "inside-adapter": run_folder / "model" / "merged", "link-to-adapter": tmp_path / "link"}[where]
    if where == "link-to-adapter":
        os.symlink(run_folder / "model", out)
    before = snapshot(run_folder)
    for source in (run_folder, run_folder / "model"):  # ADAPTER as the run folder or as its model/ folder
        code = main(["nli", "merge", str(source), str(out), "--overwrite", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "adapter folder" in err and "Traceback" not in err
    assert snapshot(run_folder) == before
    assert sorted(p.name for p in run_folder.parent.iterdir()) == [run_folder.name]


def test_an_out_that_cannot_be_created_fails_before_merging(run_folder, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, err = merge(capsys, run_folder, tmp_path / "file" / "merged")
    assert code == 2 and err.count("\n") == 1 and "is a file" in err
