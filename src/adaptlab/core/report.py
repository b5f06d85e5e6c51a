"""report.md and a self-contained report.html (images embedded as base64) from one list of blocks.

Studies build a :class:`Report` with headings, paragraphs, tables and images, then call
:meth:`Report.write`; both files always say the same thing.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence


def format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        # metrics in [0, 1] keep 4 decimals; seconds, MB and throughputs need fewer
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


class Report:
    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple[str, Any]] = []

    def heading(self, text: str, level: int = 2) -> "Report":
        self.blocks.append(("heading", (level, text)))
        return self

    def paragraph(self, text: str) -> "Report":
        self.blocks.append(("paragraph", text))
        return self

    def bullets(self, items: Sequence[str]) -> "Report":
        self.blocks.append(("bullets", list(items)))
        return self

    def table(self, rows: Sequence[dict], columns: Sequence[str] | None = None) -> "Report":
        """A table from dicts; ``columns`` fixes the order (default: keys of the first row)."""
        rows = list(rows)
        columns = list(columns or (rows[0].keys() if rows else []))
        self.blocks.append(("table", (columns, rows)))
        return self

    def image(self, path: Path, caption: str) -> "Report":
        """An image inside the run folder; referenced relatively in md, embedded in html."""
        self.blocks.append(("image", (Path(path), caption)))
        return self

    def code(self, text: str) -> "Report":
        self.blocks.append(("code", text))
        return self

    def to_markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for kind, data in self.blocks:
            if kind == "heading":
                out += ["#" * data[0] + " " + data[1], ""]
            elif kind == "paragraph":
                out += [data, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in data] + [""]
            elif kind == "table":
                columns, rows = data
                out.append("| " + " | ".join(columns) + " |")
                out.append("|" + "---|" * len(columns))
                for row in rows:
                    out.append("| " + " | ".join(format_value(row.get(c)) for c in columns) + " |")
                out.append("")
            elif kind == "image":
                path, caption = data
                out += [f"![{caption}]({_relative(path, base)})", ""]
            elif kind == "code":
                out += ["```", data, "```", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, data in self.blocks:
            if kind == "heading":
                level = min(data[0], 6)
                body.append(f"<h{level}>{html.escape(data[1])}</h{level}>")
            elif kind == "paragraph":
                body.append(f"<p>{html.escape(data)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in data) + "</ul>")
            elif kind == "table":
                columns, rows = data
                head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
                lines = [
                    "<tr>" + "".join(f"<td>{html.escape(format_value(r.get(c)))}</td>" for c in columns) + "</tr>"
                    for r in rows
                ]
                # the wrapper scrolls sideways, so a wide table never widens the page on a phone
                body.append(f"<div class='table-scroll'><table><thead><tr>{head}</tr></thead>"
                            f"<tbody>{''.join(lines)}</tbody></table></div>")
            elif kind == "image":
                path, caption = data
                encoded = base64.b64encode(path.read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
            elif kind == "code":
                body.append(f"<pre>{html.escape(data)}</pre>")
        style = (
            "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
            "overflow-wrap:anywhere}"  # long paths and hashes break instead of widening the page
            ".table-scroll{overflow-x:auto;margin:1rem 0}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;overflow-wrap:normal}"
            "th{background:#f3f3f3}figure{margin:1rem 0}img{max-width:100%;height:auto}"
            "figcaption{color:#555;font-size:.9rem}pre{overflow-x:auto;background:#f6f6f6;padding:.5rem}"
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html`` into ``folder``; returns both paths."""
        folder = Path(folder)
        md_path, html_path = folder / "report.md", folder / "report.html"
        md_path.write_text(self.to_markdown(folder))
        html_path.write_text(self.to_html())
        return md_path, html_path


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return path.name
