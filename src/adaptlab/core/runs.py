"""Atomic run folders.

A run is written into a hidden ``.incomplete-*`` folder next to its final place and renamed to
``<root>/<YYYYmmdd-HHMMSS>-<name>/`` only when everything succeeded. ``os.rename`` within one
filesystem is atomic, so a folder without the ``.incomplete-`` prefix is always complete; a run
that raises (or is interrupted with Ctrl-C) removes its partial folder. A run killed with SIGKILL
leaves only a hidden ``.incomplete-*`` folder, which never looks like a finished run.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from adaptlab.errors import AdaptlabError

INCOMPLETE_PREFIX = ".incomplete-"


class RunFolder:
    """Context manager: ``with RunFolder("runs", "fraud") as run: run.write_json(...)``.

    Inside the block ``run.path`` is the temporary folder; after a clean exit it is the final one.
    """

    def __init__(self, root: str | Path, name: str):
        self.root = Path(root)
        self.name = name
        self.path: Path | None = None
        self.final_path: Path | None = None

    def __enter__(self) -> "RunFolder":
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.final_path = _unique(self.root / f"{stamp}-{self.name}")
        self.path = self.root / f"{INCOMPLETE_PREFIX}{self.final_path.name}-{os.getpid()}"
        self.path.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.path is not None and self.final_path is not None
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
            return False
        self.path = self.final_path = self._move_into_place()
        return False

    def _move_into_place(self) -> Path:
        """Rename the finished folder to the first free name ``<stamp>-<name>[-N]``.

        Checking a name and then renaming is not atomic: another run may claim it in between. On Linux
        renaming onto a non-empty folder fails with ENOTEMPTY or EEXIST (onto an empty one it would
        replace it, hence the exists() check first), so each failure just moves on to the next suffix.
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


def _unique(path: Path) -> Path:
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}-{n}")
        n += 1
    return candidate


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
