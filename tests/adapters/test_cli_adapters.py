"""`adaptlab adapters add|list|predict|remove`: a registry folder built and used from the command line."""

from __future__ import annotations

import json

from adaptlab.adapters.registry import AdapterRegistry
from adaptlab.cli import main


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["adapters", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_add_list_predict_remove(family, tiny, tmp_path, capsys):
    _, base, adapters = family
    registry = tmp_path / "reg"
    code, out, _ = run(capsys, "add", registry, "nli3", adapters["nli3"], "--base", base, "--quiet")
    assert code == 0 and out.strip() == str(registry)
    code, out, _ = run(capsys, "add", registry, "sent2", adapters["sent2"])  # the base comes from the registry
    assert code == 0 and "added sent2 (2 labels, single input)" in out and "2 task(s)" in out

    code, out, _ = run(capsys, "list", registry)
    assert code == 0 and out.splitlines()[0].startswith(f"base: {base} (sha256 ")
    assert [line.split("\t")[:2] for line in out.splitlines()[1:]] == [["nli3", "pair"], ["sent2", "single"]]

    code, out, _ = run(capsys, "predict", registry, "--task", "sent2", "--text", "Nobody is outside.", "--json")
    got = json.loads(out)
    expected = tiny.alone(adapters["sent2"], ("sent2", "Nobody is outside.", None),
                          AdapterRegistry.open(registry).max_length)
    assert code == 0 and list(got["probabilities"]) == ["negative", "positive"]
    assert abs(got["probabilities"]["positive"] - expected[1]) < 1e-5
    capsys.readouterr()  # what loading the reference model printed

    code, _, err = run(capsys, "predict", registry, "--task", "nli3", "--text", "only one")
    assert code == 2 and err.count("\n") == 1 and "text pairs" in err

    code, _, err = run(capsys, "add", registry, "nli3", adapters["topic4"], "--quiet")
    assert code == 2 and err.count("\n") == 1 and "already registered" in err
    code, _, err = run(capsys, "add", registry, "x", adapters["topic4"], "--base", tmp_path / "elsewhere")
    assert code == 2 and "already serves base" in err

    code, out, _ = run(capsys, "remove", registry, "nli3")
    assert code == 0 and "removed nli3" in out and "1 task(s) left" in out
    assert [t["name"] for t in json.loads((registry / "registry.json").read_text())["tasks"]] == ["sent2"]
    code, _, err = run(capsys, "remove", registry, "nli3", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "unknown task 'nli3'" in err


def test_list_of_a_folder_that_is_not_a_registry(tmp_path, capsys):
    code, _, err = run(capsys, "list", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "not an adapter registry folder" in err
