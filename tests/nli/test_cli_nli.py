"""`adaptlab nli ...` command line: generated flags (with Trainer spellings), YAML then flags, one-line errors, how
the run folder is printed, and that --help imports no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from adaptlab.cli import build_parser, main
from adaptlab.nli.cli import _resolve
from adaptlab.nli.config import NLIRunConfig

LABELS = ["entailment", "neutral", "contradiction"]
SENTENCES = ["A man is playing a guitar on stage.", "A woman reads a book in the park.",
             "Two dogs are running through the snow.", "The children are sleeping.", "Nobody is outside."]


@pytest.fixture(scope="module")
def saved_full_model(tiny_roberta_pretrained, tmp_path_factory) -> Path:
    """A tiny RoBERTa classifier saved as `nli train --method full` saves it (no training needed to score)."""
    import torch

    from adaptlab.nli.artifacts import save_trained
    from adaptlab.nli.methods import MethodConfig
    from adaptlab.nli.models import build_model

    torch.manual_seed(0)
    method = MethodConfig(method="full")
    model, tokenizer = build_model(str(tiny_roberta_pretrained), method)
    return save_trained(model, tokenizer, tmp_path_factory.mktemp("saved") / "model", method)


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory) -> Path:
    """25 labelled pairs and one without a gold label, in a file meant only for evaluation."""
    rows = [{"sentence1": f"{SENTENCES[i % 5]} ({i})", "sentence2": SENTENCES[(i * 2) % 5],
             "label": LABELS[i % 3] if i < 25 else "-"} for i in range(26)]
    path = tmp_path_factory.mktemp("eval-data") / "dev_matched.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_trainer_spellings_give_the_same_settings_as_ours():
    ours = ["--model", "minilm", "--lr", "0.002", "--epochs", "2", "--batch-size", "4", "--grad-accum", "3",
            "--max-steps", "9", "--eval-every", "5", "--save-every", "6", "--weight-decay", "0.1",
            "--warmup-ratio", "0.2", "--seed", "7", "--output-dir", "somewhere", "--resume", "ckpt",
            "--max-length", "64", "--max-train-samples", "100", "--max-eval-samples", "50",
            "--rank", "4", "--alpha", "8", "--dropout", "0.2", "--targets", "query,key", "--gradient-checkpointing",
            "--max-grad-norm", "0.5"]
    trainer = ["--model_name_or_path", "minilm", "--learning_rate", "0.002", "--num_train_epochs", "2",
               "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "3", "--max_steps", "9",
               "--eval_steps", "5", "--save_steps", "6", "--weight_decay", "0.1", "--warmup_ratio", "0.2",
               "--seed", "7", "--output_dir", "somewhere", "--resume_from_checkpoint", "ckpt",
               "--max_seq_length", "64", "--max_train_samples", "100", "--max_eval_samples", "50",
               "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0.2", "--target_modules", "query,key",
               "--gradient_checkpointing", "--max_grad_norm", "0.5"]
    configs = [_resolve(NLIRunConfig, build_parser().parse_args(["nli", "train", *argv])) for argv in (ours, trainer)]
    assert configs[0] == configs[1]
    assert (configs[0].lr, configs[0].epochs, configs[0].output_dir, configs[0].gradient_checkpointing) == \
        (0.002, 2, "somewhere", True)
    assert configs[0] != NLIRunConfig()  # every flag above changed something


def test_output_dir_is_the_one_name_shown_and_out_still_works(capsys):
    parse = build_parser().parse_args
    assert _resolve(NLIRunConfig, parse(["nli", "train", "--out", "old"])).output_dir == "old"
    assert _resolve(NLIRunConfig, parse(["nli", "train"])).output_dir == "runs"
    for command in ("train", "compare", "evaluate"):
        with pytest.raises(SystemExit):
            main(["nli", command, "--help"])
        shown = capsys.readouterr().out
        assert "--output-dir DIR" in shown and "--out " not in shown and "--out," not in shown
    with pytest.raises(SystemExit):
        main(["nli", "predict", "--help"])
    assert "--output FILE" in capsys.readouterr().out  # a file, not a folder of runs


def test_help_loads_no_heavy_library():
    code = ("import sys; from adaptlab.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets', 'accelerate') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


def test_evaluate_scores_a_whole_file_and_prints_the_run_folder_last(saved_full_model, eval_csv, tmp_path, capsys):
    assert main(["nli", "evaluate", str(saved_full_model), "--data", str(eval_csv),
                 "--output-dir", str(tmp_path / "a")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("run folder: ")
    run = Path(lines[-1].removeprefix("run folder: "))
    assert run.parent == tmp_path / "a"
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["evals"]) == ["validation_matched"] and metrics["evals"]["validation_matched"]["n"] == 25
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["eval_split"] == "validation_matched" and saved["heldout_fraction"] is None

    assert main(["nli", "evaluate", str(saved_full_model), "--data", str(eval_csv), "--quiet",
                 "--output-dir", str(tmp_path / "b"), "--heldout-fraction", "0.2"]) == 0
    quiet = capsys.readouterr().out.strip().splitlines()
    assert len(quiet) == 1 and Path(quiet[0]).parent == tmp_path / "b"  # the path alone
    assert list(json.loads((Path(quiet[0]) / "metrics.json").read_text())["evals"]) == ["heldout"]


def test_predict_writes_a_file_only_when_given_one(saved_full_model, eval_csv, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert main(["nli", "predict", str(saved_full_model), "--file", str(eval_csv), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"26 predictions written to {out}"
    assert len(pd.read_csv(out)) == 26 and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_config_file_then_flags(tmp_path, tiny_roberta_pretrained):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"model: {tiny_roberta_pretrained}\nmethod: partial\nlr: 0.002\nmax_steps: 7\n"
                           "targets: [query, key]\n")
    args = build_parser().parse_args(["nli", "train", "--config", str(config_file), "--max-steps", "3"])
    config = _resolve(NLIRunConfig, args)
    assert (config.method, config.lr, config.max_steps, config.targets) == ("partial", 0.002, 3, "query,key")
    assert config.batch_size == 16 and config.data is None and config.task is None  # untouched defaults (mnli)


@pytest.mark.parametrize("argv, message", [
    (["nli", "train", "--data", "/no/such/file.csv", "--model", "minilm"], "/no/such/file.csv"),
    (["nli", "compare", "--methods", "lora,bogus"], "unknown method(s) bogus"),
    (["nli", "compare", "--lr", "lora=fast"], "'lora=fast' is not a number"),
    (["nli", "train", "--batch-size", "0"], "batch_size must be at least 1"),
    (["nli", "evaluate", "/no/such/run", "--data", "x.csv"], "neither a run folder"),
    (["nli", "predict", "/no/such/run", "--premise", "A dog runs."], "a pair needs both --premise and --hypothesis"),
])
def test_bad_inputs_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_unknown_method_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["nli", "train", "--method", "bogus"])
    assert exit_info.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_compare_flags_reach_run_compare(monkeypatch, tmp_path, capsys):
    from adaptlab.nli import compare

    seen = {}

    def fake_run_compare(config, methods, lrs, sweep):
        seen.update(config=config, methods=methods, lrs=lrs, sweep=sweep)
        return tmp_path / "compare-run"

    monkeypatch.setattr(compare, "run_compare", fake_run_compare)
    assert main(["nli", "compare", "--methods", "lora,full", "--learning_rate", "lora=2e-3", "--rank", "4",
                 "--max-steps", "3", "--output-dir", str(tmp_path)]) == 0
    assert seen["methods"] == ["lora", "full"] and seen["lrs"] == {"lora": 2e-3, "full": 1e-5}
    assert seen["sweep"] is None
    config = seen["config"]
    assert type(config) is NLIRunConfig and (config.alpha, config.max_steps, config.lr) == (8, 3, None)
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"run folder: {tmp_path / 'compare-run'}"


def test_an_output_dir_that_is_a_file_fails_before_any_work(saved_full_model, eval_csv, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert main(["nli", "evaluate", str(saved_full_model), "--data", str(eval_csv), "--output-dir", str(blocker)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["nli", "train", "--data", str(eval_csv), "--output-dir", str(blocker)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err  # before the default model would be loaded


def test_evaluate_checks_its_data_before_loading_any_model(tmp_path, capsys, monkeypatch):
    import adaptlab.nli.study as study

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded before --data was checked")

    monkeypatch.setattr(study, "load_trained", must_not_load)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # looks like a saved model; never loaded here
    assert main(["nli", "evaluate", str(tmp_path / "model"), "--data", str(tmp_path / "nope.csv"), "--output-dir",
                 str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such file or folder" in err and "nope.csv" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
