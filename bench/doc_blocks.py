"""Benchmarks write their tables into docs between ``<!-- NAME:start -->`` / ``<!-- NAME:end -->`` markers, so a rerun
replaces its own block and leaves the rest of the page alone."""

from __future__ import annotations

from pathlib import Path


def replace_block(doc: Path, name: str, block: str, heading: str | None = None) -> None:
    """Put ``block`` between ``name``'s markers in ``doc``; the first time, append ``heading`` and the block."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    section = f"{start}\n{block}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + (f"\n\n{heading}" if heading else "") + f"\n\n{section}\n"
    doc.write_text(text)
