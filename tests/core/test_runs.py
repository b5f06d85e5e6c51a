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


def test_final_name_is_known_at_start_even_when_two_runs_start_together(tmp_path):
    with RunFolder(tmp_path, "twin") as first:
        with RunFolder(tmp_path, "twin") as second:
            assert first.final_path != second.final_path  # each report can name its own folder
            promised = second.final_path
            second.write_json("m.json", {})
        first.write_json("m.json", {})
    assert second.path == promised and first.path.is_dir() and second.path.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    import signal
    import subprocess
    import sys

    code = ("import os, signal\nfrom adaptlab.core.runs import RunFolder\n"
            f"with RunFolder({str(tmp_path)!r}, 'killed') as run:\n"
            "    run.write_json('half.json', {})\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert done.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and left[0].startswith(".claim-") and left[1].startswith(INCOMPLETE_PREFIX)
    with RunFolder(tmp_path, "next") as run:
        run.write_json("m.json", {})
    assert [p.name for p in tmp_path.iterdir()] == [run.path.name]


def test_leftovers_of_live_processes_stay(tmp_path):
    live = tmp_path / f"{INCOMPLETE_PREFIX}20260101-000000-other@{os.uname().nodename}-{os.getppid()}"
    live.mkdir()
    other_host = tmp_path / f"{INCOMPLETE_PREFIX}20260101-000000-other@elsewhere-999999999"
    other_host.mkdir()
    with RunFolder(tmp_path, "mine"):
        pass
    assert live.is_dir() and other_host.is_dir()


@pytest.mark.parametrize("setup", ["file", "too_long"])
def test_unusable_output_root_or_name_is_one_line_error(tmp_path, setup):
    from adaptlab.errors import AdaptlabError

    root, name = tmp_path / "runs", "x"
    if setup == "file":
        root.write_text("not a folder")
    else:
        name = "n" * 250
    with pytest.raises(AdaptlabError) as info:
        with RunFolder(root, name):
            pass
    assert "\n" not in str(info.value)
    assert not root.is_dir() or list(root.iterdir()) == []


def test_a_failed_run_removes_the_output_folders_it_created_and_only_those(tmp_path):
    from adaptlab.core.runs import check_output_root

    check_output_root(tmp_path / "a" / "b")  # the probe leaves nothing behind
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "a" / "b", "x"):
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "a" / "b", "x"):
            raise RuntimeError("boom")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["keep.txt"]
    with RunFolder(tmp_path / "a" / "b", "x") as run:  # a finished run keeps the folders it created
        pass
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == [run.path.name]


def test_an_output_folder_below_a_file_or_with_a_too_long_name_is_one_line(tmp_path):
    from adaptlab.core.runs import check_output_root
    from adaptlab.errors import AdaptlabError

    (tmp_path / "file").write_text("x")
    for root, expected in ((tmp_path / "file" / "runs", "is a file, not a folder"),
                           (tmp_path / ("n" * 300), "File name too long")):
        with pytest.raises(AdaptlabError, match=expected) as info:
            check_output_root(root)
        assert "\n" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
