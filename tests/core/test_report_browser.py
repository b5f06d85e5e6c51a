"""report.html rendered in a real headless browser (Debian's chromium-headless-shell): at phone width the
page never scrolls sideways (wide tables scroll inside their own box), and every embedded figure loads
with a nonzero size that fits the screen. Skips when no headless Chromium is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from adaptlab.core.plots import plot_confusion_grid, plot_curves, plot_pr_curves
from adaptlab.core.report import Report

BROWSERS = ("chromium-headless-shell", "chromium", "google-chrome")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium (apt-get install chromium-headless-shell)")

# Runs after every image has loaded; writes what the page measured into the DOM that --dump-dom prints.
MEASURE = """<script>
window.addEventListener('load', () => {
  const root = document.documentElement;
  const wrappers = [...document.querySelectorAll('.table-scroll')];
  const result = {
    viewport: root.clientWidth, page: root.scrollWidth,
    images: [...document.images].map(i => ({complete: i.complete, natural: i.naturalWidth,
                                              shown: i.getBoundingClientRect().width})),
    tables: wrappers.map(w => ({box: w.clientWidth, content: w.scrollWidth})),
  };
  const out = document.createElement('output');
  out.id = 'measured';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def _measure(html_path: Path, width: int) -> dict:
    probe = html_path.with_name(f"probe-{html_path.name}")
    probe.write_text(html_path.read_text().replace("</body>", MEASURE + "</body>"))
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},900",
                           "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'<output id="measured">(.*?)</output>', done.stdout)
    assert found, f"the page did not report its measurements: {done.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """A report with what real ones hold: a table wider than a phone, a long unbroken path, figures."""
    folder = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    scores = np.clip(y * 0.5 + rng.random(400) * 0.6, 0, 1)
    plot_pr_curves({"test (AP 0.8)": (y, scores)}, folder / "pr.png", title="Precision-recall")
    plot_curves([1, 2, 3], {"train": [0.5, 0.3, 0.2], "validation": [0.6, 0.4, 0.45]}, folder / "loss.png",
                title="Loss per epoch", xlabel="epoch", ylabel="loss", chosen_x=2)
    plot_confusion_grid({f"row {i}": [[900, 10 * i], [5, 40]] for i in range(8)}, ["normal", "fraud"],
                        folder / "confusion.png", title="Confusion matrices")
    report = Report("A report read on a phone")
    report.paragraph("Data: /a/very/long/path/" + "without-any-space-" * 12 + "creditcard.parquet (sha256 "
                     + "0123456789abcdef" * 4 + ").")
    report.table([{f"column number {c}": 0.123456 * (r + c) for c in range(16)} for r in range(4)])
    for name in ("pr", "loss", "confusion"):
        report.image(folder / f"{name}.png", f"the {name} figure")
    report.code("adaptlab fraud score " + "runs/20260101-000000-fraud-with-a-long-name/" * 3 + " x.csv")
    report.write(folder)
    return folder / "report.html"


@pytest.mark.parametrize("width", [400, 1280])
def test_the_page_never_scrolls_sideways_and_every_figure_loads(report_html, width):
    measured = _measure(report_html, width)
    assert measured["viewport"] <= width
    assert measured["page"] <= measured["viewport"], measured  # no horizontal overflow of the page
    assert len(measured["images"]) == 3
    for image in measured["images"]:
        assert image["complete"] and image["natural"] > 0, image
        assert 0 < image["shown"] <= measured["viewport"], image
    if width == 400:  # the 16-column table is wider than a phone: it scrolls inside its own box
        (table,) = measured["tables"]
        assert table["content"] > table["box"] > 0


def test_the_check_sees_overflow_when_tables_cannot_scroll(report_html, tmp_path):
    spilling = tmp_path / "report.html"  # the same page without the scrolling wrapper's rule
    spilling.write_text(report_html.read_text().replace(".table-scroll{overflow-x:auto;", ".table-scroll{"))
    measured = _measure(spilling, 400)
    assert measured["page"] > measured["viewport"]
