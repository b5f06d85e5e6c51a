"""Atomic run folders.

A run is written into a hidden ``.incomplete-*`` folder next to its final place and renamed to
``<root>/<YYYYmmdd-HHMMSS>-<name>/`` only when everything succeeded. ``os.rename`` within one
filesystem is atomic, so a folder without the ``.incomplete-`` prefix is always complete; a run
that raises (or is interrupted with Ctrl-C) removes its partial folder, and the output root too when the
run created it and it is still empty: a failed run leaves nothing behind.

The final name is claimed when the run *starts* (an exclusive ``.claim-<name>`` file), so everything a run
writes that names its own folder (a report's "score with this model" command) is right even when two runs
with the same name start in the same second. A run killed with SIGKILL leaves its hidden folder and claim
behind; the next run in the same root removes those whose process (same host, by pid) is gone.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import socket
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from adaptlab.errors import AdaptlabError

INCOMPLETE_PREFIX = ".incomplete-"
CLAIM_PREFIX = ".claim-"
NAME_MAX_BYTES = 255  # one path component on Linux/macOS file systems


class RunFolder:
    """Context manager: ``with RunFolder("runs", "fraud") as run: run.write_json(...)``.

    Inside the block ``run.path`` is the temporary folder and ``run.final_path`` where it will be; after a
    clean exit ``run.path`` is the final one.
    """

    def __init__(self, root: str | Path, name: str):
        self.root = Path(root)
        self.name = name
        self.path: Path | None = None
        self.final_path: Path | None = None
        self._claim: Path | None = None
        self._created: list[Path] = []  # folders above the run that this run created (removed if it fails)

    def __enter__(self) -> "RunFolder":
        owner = _owner()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        _check_name_length(f"{INCOMPLETE_PREFIX}{stamp}-{self.name}-99@{owner}")
        check_output_root(self.root)
        self._created = _make_folders(self.root)
        remove_stale(self.root)
        try:
            self.final_path, self._claim = _claim_name(self.root, f"{stamp}-{self.name}")
            self.path = self.root / f"{INCOMPLETE_PREFIX}{self.final_path.name}@{owner}"
            self.path.mkdir()
        except BaseException:
            if self._claim is not None:
                self._claim.unlink(missing_ok=True)
            _remove_empty(self._created)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.path is not None and self.final_path is not None
        try:
            if exc_type is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = None
                return False
            self.path = self.final_path = self._move_into_place()
            self._created = []  # they hold the finished run now
            return False
        finally:
            if self._claim is not None:
                self._claim.unlink(missing_ok=True)
            _remove_empty(self._created)

    def _move_into_place(self) -> Path:
        """Rename the finished folder to its claimed name.

        Every adaptlab run honours the claims, so the claimed name is free; a process that does not (an older
        version, a user's own script) could still take it, so on ENOTEMPTY/EEXIST the next suffix is used.
        """
        base, n = self.final_path, 2
        candidate = base
        while True:
            if not candidate.exists():
                try:
                    os.rename(self.path, candidate)
                    return candidate
                except OSError as exc:
                    if not (isinstance(exc, FileExistsError) or exc.errno in (errno.ENOTEMPTY, errno.EEXIST)):
                        raise AdaptlabError(f"the run finished but cannot be moved from {self.path} to "
                                            f"{candidate}: {exc.strerror or exc}") from None
            candidate = base.with_name(f"{base.name}-{n}")
            n += 1

    def file(self, relative: str) -> Path:
        assert self.path is not None, "RunFolder used outside its with-block"
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, relative: str, obj: Any) -> Path:
        target = self.file(relative)
        target.write_text(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")
        return target

    def write_config(self, config: Any, relative: str = "config.yaml") -> Path:
        target = self.file(relative)
        target.write_text(yaml.safe_dump(to_jsonable(config), sort_keys=False))
        return target


RUN_FOLDER_PREFIX = "run folder: "


def print_run_folder(path: Path, quiet: bool = False) -> None:
    """How every command announces its run folder on stdout: ``run folder: PATH`` as the last line, or,
    with ``quiet``, the bare path (for scripts: ``run=$(adaptlab ... --quiet)``)."""
    print(path if quiet else f"{RUN_FOLDER_PREFIX}{path}", flush=True)


def check_output_root(root: str | Path) -> Path:
    """Make sure run folders can be written in ``root``, else one-line AdaptlabError; leaves nothing behind.

    Studies call this before any long work, so a bad ``--output-dir`` fails in a second, not after training.
    Missing folders are created for the probe and removed again: a run that then fails early (bad data, bad
    settings) must not leave an empty output folder; :class:`RunFolder` creates them for real.
    """
    root = Path(root)
    created: list[Path] = []
    try:
        blocking = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
        if blocking == root:
            raise AdaptlabError(f"output folder {root} is a file, not a folder")
        if blocking is not None:
            raise AdaptlabError(f"output folder {root} cannot be created: {blocking} is a file, not a folder")
        created = _make_folders(root)
        probe = root / f".probe-{_owner()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise AdaptlabError(f"cannot write run folders in {root}: {exc.strerror or exc}") from None
    finally:
        _remove_empty(created)
    return root


def _make_folders(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the folders this call created, outermost first."""
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    created = []
    for folder in missing:
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by a concurrent run meanwhile: not ours to remove
        created.append(folder)
    return created


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders of :func:`_make_folders` again, innermost first, as long as they are empty (another
    run may have started writing in them meanwhile: those stay)."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


def remove_stale(root: Path) -> list[Path]:
    """Remove ``.incomplete-*`` folders and ``.claim-*`` files left by runs on this host whose process is gone
    (killed with SIGKILL, power loss); returns what was removed. Entries of live processes or of other hosts
    (a shared file system) are left alone."""
    removed = []
    host = socket.gethostname()
    for entry in root.iterdir():
        if not entry.name.startswith((INCOMPLETE_PREFIX, CLAIM_PREFIX)):
            continue
        if entry.name.startswith(CLAIM_PREFIX):  # the claim's content names its owner
            try:
                owner_host, pid = _parse_owner("@" + entry.read_text(errors="replace").strip())
            except OSError:
                continue
        else:
            owner_host, pid = _parse_owner(entry.name)
        if pid is None or owner_host not in (None, host) or _alive(pid):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _parse_owner(name: str) -> tuple[str | None, int | None]:
    """``(host, pid)`` from ``...@host-pid`` (host None for the older ``...-pid`` form without a host)."""
    head, _, pid = name.rpartition("-")
    if not pid.isdigit():
        return None, None
    host = head.rpartition("@")[2] if "@" in head else None
    return host, int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _check_name_length(longest: str) -> None:
    if len(longest.encode()) > NAME_MAX_BYTES:
        raise AdaptlabError(f"run name too long: its folder names would exceed the file system's "
                            f"{NAME_MAX_BYTES} bytes per name; use a shorter --name")


def _claim_name(root: Path, base: str) -> tuple[Path, Path]:
    """The first free ``base``, ``base-2``, ... together with the claim file that reserves it (O_EXCL)."""
    n = 1
    while True:
        name = base if n == 1 else f"{base}-{n}"
        n += 1
        if (root / name).exists():
            continue
        claim = root / f"{CLAIM_PREFIX}{name}"
        try:
            handle = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.write(handle, _owner().encode())
        os.close(handle)
        return root / name, claim


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars/arrays, Paths and NaN (-> None) made JSON-safe, recursively."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
