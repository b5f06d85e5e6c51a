"""core.atomic: outputs appear whole or not at all, never through a link, and hashes match hashlib."""

import hashlib
import io
import os

import pytest

from adaptlab.core.atomic import (HashMismatch, atomic_folder, atomic_path, atomic_write_text, copy_hashed,
                                  sha256_file)


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_text_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write_text(target, "new content")
    assert target.read_text() == "new content"
    assert _hidden(tmp_path) == []
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_failed_write_keeps_old_content(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "old"
    assert _hidden(tmp_path) == []


def test_write_replaces_a_symlink_not_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    atomic_write_text(link, "scores")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "scores"


def test_folder_appears_in_one_piece(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("a")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "a"
    assert _hidden(tmp_path) == []


def test_folder_refuses_existing_unless_replace(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError):
        with atomic_folder(target) as staging:
            (staging / "new.txt").write_text("new")
    assert (target / "old.txt").exists() and _hidden(tmp_path) == []
    with atomic_folder(target, replace=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert _hidden(tmp_path) == []


def test_copy_hashed_matches_hashlib_and_refuses_mismatch(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # spans several 1 MiB blocks
    expected = hashlib.sha256(data).hexdigest()
    assert copy_hashed(io.BytesIO(data), tmp_path / "f.bin", expected) == expected
    assert sha256_file(tmp_path / "f.bin") == expected
    with pytest.raises(HashMismatch, match="sha256 mismatch for g.bin"):
        copy_hashed(io.BytesIO(data), tmp_path / "g.bin", "0" * 64, "g.bin")
    assert not (tmp_path / "g.bin").exists() and _hidden(tmp_path) == []
