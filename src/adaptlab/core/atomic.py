"""Atomic writes and streaming hashes: the one implementation every module uses.

A file or folder is written under a hidden temporary name in the destination's own folder and renamed into
place only when complete. ``os.replace`` within one filesystem is atomic, so a reader sees either the old
content or the new one, never a half-written file, and a crash leaves only a hidden ``.part-*`` entry.
Writing *through* a symbolic link is refused implicitly: the rename replaces the link itself, never the
file it points to.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from adaptlab.errors import AdaptlabError

CHUNK_BYTES = 1 << 20
PART_PREFIX = ".part-"


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``target``; on a clean exit it replaces ``target`` in one rename.

    For writers that want a path (``DataFrame.to_csv``, ``save_file``); on an exception the temp file is removed
    and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{PART_PREFIX}{target.name}-", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_file(target: str | Path, what: str = "--output") -> Path:
    """Refuse, in one line, an output file path that cannot be written (a folder, below a file, a name too long
    for the temp file next to it), before a command spends time computing what goes there."""
    target = Path(target)
    try:
        if target.is_dir():
            raise AdaptlabError(f"{what} {target} is a folder; give a file path such as {target / 'out.csv'}")
        blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise AdaptlabError(f"{what} {target} cannot be written: {blocking} is a file, not a folder")
    except OSError as exc:
        raise AdaptlabError(f"{what} {target} cannot be written: {exc.strerror or exc}") from None
    if len(f"{PART_PREFIX}{target.name}-12345678".encode()) > 255:  # mkstemp's name next to it, per file system
        raise AdaptlabError(f"{what} {target}: the file name is too long for the file system (255 bytes)")
    return target


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically; returns ``target``."""
    return atomic_write_bytes(target, text.encode(encoding))


@contextmanager
def atomic_folder(target: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder next to ``target``; on a clean exit it becomes ``target`` in one rename.

    ``replace``: an existing ``target`` is swapped out (moved aside, then removed) instead of refused; the
    caller decides whether that is allowed. On an exception the partial folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{PART_PREFIX}{target.name}-", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        if target.exists() or target.is_symlink():
            if not replace:
                raise FileExistsError(f"{target} already exists")
            old = Path(tempfile.mkdtemp(prefix=f"{PART_PREFIX}old-{target.name}-", dir=target.parent))
            os.replace(target, old / "old")
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_hashed(source: BinaryIO, target: str | Path, expected_sha256: str | None = None,
                what: str = "") -> str:
    """Stream ``source`` into ``target`` atomically while hashing; returns the sha256 hex digest.

    With ``expected_sha256`` a mismatch raises :class:`HashMismatch` and nothing reaches ``target``.
    """
    digest = hashlib.sha256()
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for block in iter(lambda: source.read(CHUNK_BYTES), b""):
            digest.update(block)
            out.write(block)
        out.flush()
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise HashMismatch(what or str(target), expected_sha256, digest.hexdigest())
    return digest.hexdigest()


def sha256_stream(source: BinaryIO) -> str:
    """sha256 hex digest of everything ``source`` yields, read in 1 MiB blocks (bounded memory)."""
    digest = hashlib.sha256()
    for block in iter(lambda: source.read(CHUNK_BYTES), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of the file at ``path``."""
    with open(path, "rb") as handle:
        return sha256_stream(handle)


class HashMismatch(AdaptlabError):
    """A file did not hash to the expected sha256 (a corrupt or substituted download)."""

    def __init__(self, what: str, expected: str, actual: str):
        super().__init__(f"sha256 mismatch for {what}: expected {expected}, got {actual}")
        self.expected, self.actual = expected, actual
