import json
import os

import numpy as np
import pytest

from adaptlab.core.runs import INCOMPLETE_PREFIX, RunFolder, to_jsonable


def test_successful_run_is_renamed_into_place(tmp_path):
    with RunFolder(tmp_path, "demo") as run:
        inside = run.path
        assert inside.name.startswith(INCOMPLETE_PREFIX)
        run.write_json("metrics.json", {"auc": np.float32(0.5)})
        run.write_config({"seed": 1, "hidden": (64, 32)})
    assert not inside.exists()
    assert run.path == run.final_path and run.path.name.endswith("-demo")
    assert not run.path.name.startswith(".")
    assert json.loads((run.path / "metrics.json").read_text()) == {"auc": 0.5}
    assert (run.path / "config.yaml").read_text() == "seed: 1\nhidden:\n- 64\n- 32\n"


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_or_interrupted_run_leaves_no_folder(tmp_path, error):
    with pytest.raises(type(error)):
        with RunFolder(tmp_path, "demo") as run:
            run.write_json("metrics.json", {"partial": True})
            raise error
    assert os.listdir(tmp_path) == []


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path):
    paths = []
    for _ in range(3):
        with RunFolder(tmp_path, "same") as run:
            run.write_json("m.json", {})
        paths.append(run.path)
    assert len(set(paths)) == 3
    assert all(p.is_dir() for p in paths)


def test_to_jsonable_handles_numpy_nan_and_tuples():
    out = to_jsonable({"a": np.arange(3), "b": float("nan"), "c": (np.int64(2),), 3: None})
    assert out == {"a": [0, 1, 2], "b": None, "c": [2], "3": None}
    json.dumps(out, allow_nan=False)


def test_a_name_claimed_between_check_and_rename_moves_to_the_next_suffix(tmp_path, monkeypatch):
    import adaptlab.core.runs as runs

    real_rename = os.rename
    claimed = []

    def racing_rename(src, dst):
        if not claimed:  # another process finishes its run under our name just before we rename
            claimed.append(dst)
            os.mkdir(dst)
            (runs.Path(dst) / "metrics.json").write_text("{}")
        return real_rename(src, dst)

    monkeypatch.setattr(runs.os, "rename", racing_rename)
    with RunFolder(tmp_path, "race") as run:
        run.write_json("mine.json", {"mine": True})
    assert run.path == runs.Path(f"{claimed[0]}-2")
    assert json.loads((run.path / "mine.json").read_text()) == {"mine": True}
    assert sorted(os.listdir(tmp_path)) == sorted([runs.Path(claimed[0]).name, run.path.name])  # no .incomplete
