import base64
from dataclasses import dataclass

import pytest

from adaptlab.core.config import load_config
from adaptlab.core.plots import plot_bars
from adaptlab.core.report import Report, format_value
from adaptlab.errors import AdaptlabError


def test_report_markdown_and_html_say_the_same(tmp_path):
    png = plot_bars(["a", "b"], [3, 1_000], tmp_path / "bars.png", title="t", ylabel="count")
    report = Report("Title & <stuff>")
    report.heading("Numbers").paragraph("Accuracy lies.").table(
        [{"name": "x", "value": 0.123456, "count": 1234567, "missing": None}]
    ).image(png, "bars").bullets(["one"])
    md_path, html_path = report.write(tmp_path)
    md = md_path.read_text()
    assert "| x | 0.1235 | 1,234,567 | n/a |" in md
    assert "![bars](bars.png)" in md
    html = html_path.read_text()
    # the html is self-contained: the PNG bytes are embedded, no external reference
    assert base64.b64encode(png.read_bytes()).decode() in html
    assert 'src="bars.png"' not in html
    assert "Title &amp; &lt;stuff&gt;" in html
    assert "<td>1,234,567</td>" in html


def test_format_value():
    assert format_value(True) == "True"
    assert format_value(12345.678) == "12,345.7"
    assert format_value(211.0) == "211.00"
    assert format_value(0.46843) == "0.4684"
    assert format_value(None) == "n/a"


@dataclass
class _Cfg:
    seed: int = 0
    name: str = "x"

    def validate(self):
        if self.seed < 0:
            raise AdaptlabError("seed must be >= 0")


def test_config_precedence_defaults_yaml_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 5\nname: from-yaml\n")
    assert load_config(_Cfg) == _Cfg()
    assert load_config(_Cfg, path) == _Cfg(seed=5, name="from-yaml")
    assert load_config(_Cfg, path, {"seed": 7, "name": None}) == _Cfg(seed=7, name="from-yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("sed: 5\n", "unknown config key(s) sed"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("seed: [1\n", "not valid YAML"),
        ("seed: -1\n", "seed must be >= 0"),
    ],
)
def test_config_errors_are_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(AdaptlabError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")) as info:
        load_config(_Cfg, path)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(AdaptlabError, match="config file not found"):
        load_config(_Cfg, tmp_path / "nope.yaml")
