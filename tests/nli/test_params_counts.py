"""`adaptlab nli params`: exact counts from shipped configs on the meta device, vs an independent formula."""

from __future__ import annotations

import json

import pytest

from adaptlab.cli import main
from adaptlab.nli.methods import MethodConfig, parameter_counts
from adaptlab.nli.models import build_meta_model
from adaptlab.nli.params import params_report


def roberta_sizes(hidden: int, layers: int, inter: int, vocab=50265, positions=514, types=1, labels=3) -> dict:
    """Parameter counts of RobertaForSequenceClassification written out from the architecture."""
    embeddings = (vocab + positions + types) * hidden + 2 * hidden
    layer = 4 * (hidden * hidden + hidden) + 2 * 2 * hidden + (hidden * inter + inter) + (inter * hidden + hidden)
    head = (hidden * hidden + hidden) + (hidden * labels + labels)
    return {"encoder": embeddings + layers * layer, "layer": layer, "head": head,
            "total": embeddings + layers * layer + head}


def test_roberta_large_lora_matches_the_reference_study_exactly():
    sizes = roberta_sizes(1024, 24, 4096)
    assert (sizes["encoder"], sizes["head"], sizes["total"]) == (354_310_144, 1_052_675, 355_362_819)
    lora = 24 * 2 * 16 * (1024 + 1024)
    model = build_meta_model("roberta-large", MethodConfig(method="lora", rank=16, targets=("query", "value")))
    assert {p.device.type for p in model.parameters()} == {"meta"}
    counts = parameter_counts(model)
    assert (counts.trainable, counts.total) == (lora + sizes["head"], sizes["total"]) == (2_625_539, 355_362_819)
    assert counts.with_adapters == 356_935_683
    assert counts.peft_all == 357_988_358 == model.get_nb_trainable_parameters()[1]


def test_full_and_partial_counts_for_both_shipped_presets():
    report = params_report("roberta-base", [MethodConfig(method="full"), MethodConfig(method="partial"),
                                            MethodConfig(method="partial", top_layers=12)])
    base = roberta_sizes(768, 12, 3072)
    assert (report["total"], report["encoder"], report["head"]) == (base["total"], base["encoder"], base["head"])
    full, quarter, all_layers = report["rows"]
    assert full["trainable"] == base["total"]
    assert quarter["trainable"] == 3 * base["layer"] + base["head"] and "top 3 of 12" in quarter["setting"]
    assert all_layers["trainable"] == 12 * base["layer"] + base["head"]
    large = params_report("roberta-large", [MethodConfig(method="partial", top_layers=2)])
    big = roberta_sizes(1024, 24, 4096)
    assert large["rows"][0]["trainable"] == 2 * big["layer"] + big["head"]


def test_cli_prints_the_reference_line_and_explains_peft(capsys):
    assert main(["nli", "params", "--model", "roberta-large", "--method", "lora", "--rank", "16",
                 "--targets", "query,value"]) == 0
    out = capsys.readouterr().out
    assert "lora: 2,625,539 trainable of 355,362,819 total (0.74%)" in out
    assert "357,988,358" in out and "356,935,683" in out and "1,572,864" in out


def test_cli_json_for_all_methods(capsys):
    assert main(["nli", "params", "--method", "all", "--top-layers", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in report["rows"]}
    assert set(rows) == {"lora", "full", "partial"}
    assert rows["full"]["trainable"] == rows["full"]["total"] == 355_362_819
    assert rows["lora"]["peft_all_params"] == 357_988_358
    assert rows["partial"]["trainable"] == 6 * roberta_sizes(1024, 24, 4096)["layer"] + 1_052_675


def test_local_config_file_and_folder_give_the_same_counts(tiny_roberta_dir, capsys):
    folder = params_report(str(tiny_roberta_dir), [MethodConfig(rank=2)])
    file = params_report(str(tiny_roberta_dir / "config.json"), [MethodConfig(rank=2)])
    assert folder["rows"] == file["rows"]
    assert folder["rows"][0]["lora_params"] == 4 * 2 * 2 * (16 + 16)


@pytest.mark.parametrize("argv, message", [
    (["--method", "lora", "--targets", "query,qkv"], "LoRA target module 'qkv' not found"),
    (["--method", "lora", "--rank", "0"], "rank must be a positive integer"),
    (["--method", "partial", "--top-layers", "25"], "exceeds the model's 24 encoder layers"),
    (["--model", "./no/such/folder"], "no such model file or folder"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(["nli", "params", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_rejects_a_config_that_is_not_json(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text("not json")
    assert main(["nli", "params", "--model", str(bad)]) == 2
    assert "not a readable JSON config" in capsys.readouterr().err
