"""nli compare --sweep / --learning-curve: parsing, the runs it expands to, and one end-to-end sweep on tiny models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from adaptlab.cli import main
from adaptlab.errors import AdaptlabError
from adaptlab.nli.defaults import DEFAULT_LR, default_lr
from adaptlab.nli.config import NLIRunConfig
from adaptlab.nli.sweep import Sweep, sweep_runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_values_take_the_settings_types():
    assert Sweep.parse("rank=1,4,16", NLIRunConfig).values == (1, 4, 16)
    assert Sweep.parse("lr=1e-4,3e-4", NLIRunConfig).values == (1e-4, 3e-4)
    assert Sweep.parse("targets=qv,attn,all-linear", NLIRunConfig).values == ("qv", "attn", "all-linear")
    assert Sweep.parse("use-dora=false,true", NLIRunConfig).values == (False, True)
    assert Sweep.parse("max_train_samples=100,all", NLIRunConfig).values == (100, None)


@pytest.mark.parametrize("text, message", [
    ("rank", "KEY=V1,V2"), ("colour=1,2", "KEY one of"), ("rank=4", "at least two different values"),
    ("rank=4,4", "at least two different values"), ("rank=4,x", "config key --sweep rank: expected an integer"),
])
def test_bad_sweeps_are_one_line_errors(text, message):
    with pytest.raises(AdaptlabError, match=message):
        Sweep.parse(text, NLIRunConfig)


def test_a_lora_only_setting_runs_full_and_partial_once():
    config = NLIRunConfig(model="roberta-base", data="x.csv")
    runs = sweep_runs(config, ["lora", "full", "partial"], {"full": 1e-4}, Sweep.parse("rank=2,8", NLIRunConfig))
    assert [(label, c.method, c.rank, c.lr) for label, _, c in runs] == [
        ("lora rank=2", "lora", 2, None), ("lora rank=8", "lora", 8, None), ("full", "full", 16, 1e-4),
        ("partial", "partial", 16, None)]
    assert [c.method_alpha() for _, _, c in runs[:2]] == [4, 16]  # alpha follows 2 x rank
    lrs = sweep_runs(config, ["lora", "full"], {}, Sweep.parse("lr=1e-4,1e-3", NLIRunConfig))
    assert [(c.method, c.lr) for _, _, c in lrs] == [("lora", 1e-4), ("lora", 1e-3), ("full", 1e-4), ("full", 1e-3)]
    with pytest.raises(AdaptlabError, match="cannot be combined"):
        sweep_runs(config, ["lora"], {"lora": 1e-3}, Sweep.parse("lr=1e-4,1e-3", NLIRunConfig))
    with pytest.raises(AdaptlabError, match="lora init=orthogonal: init_lora_weights 'orthogonal' needs an even"):
        sweep_runs(replace(config, rank=3), ["lora"], {}, Sweep.parse("init=default,orthogonal", NLIRunConfig))


def test_default_learning_rates_are_per_model_and_method():
    assert default_lr("roberta-large", "lora") == 3e-4 and default_lr("roberta-large", "full") == 1e-5
    assert default_lr("FacebookAI/roberta-base", "lora") == 5e-4  # a preset's hub id means the preset
    assert default_lr("/some/other/model", "full") == DEFAULT_LR["roberta-large"]["full"]
    for lrs in DEFAULT_LR.values():
        assert lrs["lora"] > lrs["partial"] > lrs["full"]  # fewer trained weights need larger steps


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    words = ["A man plays music.", "A dog runs.", "Nobody sleeps.", "The children read.", "Someone is outside."]
    rows = [{"sentence1": f"{words[i % 5]} ({i})", "sentence2": words[(i * 3) % 5],
             "label": ("entailment", "neutral", "contradiction")[i % 3]} for i in range(48)]
    path = tmp_path_factory.mktemp("sweep-data") / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_compare_sweep_gives_one_row_per_setting_and_a_plot(tiny_bert_pretrained, small_csv, tmp_path, capsys):
    assert main(["nli", "compare", "--model", str(tiny_bert_pretrained), "--data", str(small_csv),
                 "--methods", "lora,full", "--sweep", "rank=2,8", "--lr", "full=2e-5", "--max-steps", "2",
                 "--batch-size", "8", "--heldout-fraction", "0.25", "--out", str(tmp_path), "--quiet"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    rows = json.loads((folder / "metrics.json").read_text())["rows"]
    assert [(r["method"], r["setting"]) for r in rows] == [("lora", "rank=2"), ("lora", "rank=8"),
                                                            ("full", "rank not swept")]
    pooler_and_head = 16 * 16 + 16 + 16 * 3 + 3
    assert [r["trainable params"] for r in rows[:2]] == [4 * 2 * 2 * (16 + 16) + pooler_and_head,
                                                         4 * 2 * 8 * (16 + 16) + pooler_and_head]
    assert rows[2]["lr"] == 2e-5 and "| full | rank not swept |" in (folder / "report.md").read_text()
    assert "| 2e-5 |" in (folder / "report.md").read_text()  # not 0.0000
    assert (folder / "sweep_rank.png").is_file()


@pytest.mark.slow
def test_learning_curve_plots_accuracy_against_training_pairs(tiny_bert_pretrained, small_csv, tmp_path, capsys):
    assert main(["nli", "compare", "--model", str(tiny_bert_pretrained), "--data", str(small_csv),
                 "--methods", "lora", "--learning-curve", "12,all", "--epochs", "1", "--batch-size", "8",
                 "--heldout-fraction", "0.25", "--out", str(tmp_path), "--quiet"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    rows = json.loads((folder / "metrics.json").read_text())["rows"]
    assert [(r["setting"], r["train pairs"], r["steps"]) for r in rows] == [
        ("max_train_samples=12", 12, 2), ("max_train_samples=all", 36, 5)]
    assert (folder / "learning_curve.png").is_file()
