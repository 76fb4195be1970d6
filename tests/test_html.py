"""The HTML triage report: self-contained (nothing fetched), escaped, and checked in a
real headless Chromium: one chain diagram per finding with the right number of hops,
every chain laid out, and a screenshot that is not blank.

NOFSLINT_SCREENSHOT=FILE keeps the screenshot (docs/report.png is made so);
NOFSLINT_RUN_JSON=RUN.json also checks the report of that saved run (a whole tree):
with both, docs/report.png is made from 6.12's saved run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import browser
import pytest
from click.testing import CliRunner
from test_publish import make_routed

from nofslint.cli.app import main
from nofslint.model.findings import Finding, TraceStep
from nofslint.output import html, runinfo
from nofslint.run.results import RunResult

needs_chromium = pytest.mark.skipif(
    browser.chromium() is None,
    reason="chromium is not installed (Debian package chromium; .ci/run installs it)")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The HTML and JSON reports of one run of the routed fixture tree."""
    base = tmp_path_factory.mktemp("html")
    tree = make_routed(base / "linux")
    saved = base / "run.json"
    assert invoke("check", str(tree), "--format", "json", "-j", "1", "-o",
                  str(saved)).exit_code == 1
    page = base / "report.html"
    r = invoke("report", str(saved), "--format", "html", "-o", str(page), "--html-source-url",
               "https://elixir.bootlin.com/linux/v6.12/source/{path}#L{line}")
    assert r.exit_code == 0, r.output
    return page, json.loads(saved.read_text())


class _Chains(HTMLParser):
    """Per chain diagram: its data-steps/data-hops and the step and hop groups in it."""

    def __init__(self) -> None:
        super().__init__()
        self.chains: list[dict[str, int]] = []
        self.sections = 0
        self.depth = 0  # inside an svg.chain

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and "finding" in (a.get("class") or ""):
            self.sections += 1
        if tag == "svg" and a.get("class") == "chain":
            self.chains.append({"steps": int(a["data-steps"] or 0),
                                "hops": int(a["data-hops"] or 0), "g.step": 0, "g.hop": 0,
                                "g.sink": 0})
        if self.chains and tag == "g" and a.get("class") in ("step", "hop", "sink"):
            self.chains[-1][f"g.{a['class']}"] += 1


def chains_of(text: str) -> _Chains:
    parser = _Chains()
    parser.feed(text)
    return parser


def expected_steps(doc: dict) -> list[int]:
    return [max(1, len(f["trace"])) for f in doc["findings"]]


def test_one_chain_per_finding_in_the_file(report: tuple[Path, dict]) -> None:
    page, doc = report
    parsed = chains_of(page.read_text())
    assert parsed.sections == len(doc["findings"]) == len(parsed.chains)
    assert [c["g.step"] for c in parsed.chains] == expected_steps(doc)
    assert all(c["g.hop"] == c["hops"] == c["steps"] - 1 and c["g.sink"] == 1
               for c in parsed.chains)


def test_nothing_fetched(report: tuple[Path, dict]) -> None:
    text = report[0].read_text()
    assert not re.search(r"<script[^>]*\ssrc\s*=", text, re.I)
    assert not re.search(r"<link\b", text, re.I)
    assert not re.search(r"<(img|iframe|object|embed|video|audio|source)\b", text, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text, re.I)
    for attr in re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", text):
        # only links the reader clicks (the source browser) and in-page references
        assert attr.startswith(("https://elixir.bootlin.com/", "#")), attr
    assert "<style>" in text and "<script>" in text


def test_source_links(report: tuple[Path, dict]) -> None:
    page, doc = report
    f = doc["findings"][0]
    assert (f'href="https://elixir.bootlin.com/linux/v6.12/source/{f["path"]}#L{f["line"]}"'
            in page.read_text())


def test_metadata_and_summaries(report: tuple[Path, dict]) -> None:
    text = report[0].read_text()
    for needle in ("Kernel version", "6.12", "nofslint", "Rules", "nofail-in-reclaim",
                   "By rule", "By subsystem", "DEMOFS FILE SYSTEM", "(unmaintained)",
                   '<select name="rule">', '<select name="severity">',
                   '<select name="section">'):
        assert needle in text, needle


def test_escaped() -> None:
    """Names and messages come from the linted tree: none becomes markup."""
    evil = "<script>alert(1)</script>"
    f = Finding("nofail-in-reclaim", "warning", f"fs/{evil}.c", 3, 1, 3, 5, f"fn{evil}",
                f"message {evil}", trace=[TraceStep(f"ops.{evil}", "a.c", 1),
                                          TraceStep(evil, f"b{evil}.c", 2, note=evil)],
                fix=f"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-{evil}\n+ok\n")
    info = runinfo.RunInfo(command=["nofslint", "check", evil])
    text = html.render(RunResult(findings=[f], files=1), info, {},
                       'https://x.invalid/{path}?"><script>#L{line}')
    assert evil not in text and "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # shown, as text
    assert text.count("<script>") == 1  # the report's own filter script


@needs_chromium
def test_chromium_draws_every_chain(report: tuple[Path, dict], tmp_path: Path) -> None:
    page, doc = report
    dom = browser.dump_dom(_probed(page, tmp_path))
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    n = len(doc["findings"])
    assert f'data-chains="{n}"' in body.group() and f'data-drawn="{n}"' in body.group()
    parsed = chains_of(dom)
    assert [c["g.step"] for c in parsed.chains] == expected_steps(doc)
    assert all(c["g.hop"] == c["steps"] - 1 for c in parsed.chains)
    assert '<span id="shown">' in dom


@needs_chromium
def test_chromium_filters_from_the_link(report: tuple[Path, dict]) -> None:
    """``report.html#rule=…&section=…`` opens filtered (a link to one subsystem's part)."""
    page, doc = report
    wanted = [f for f in doc["findings"] if f["rule"] == "wq-flush-reclaim"
              and f["owner"]["section"] == "WQ FILE SYSTEM"]
    assert wanted
    dom = browser.dump_dom(page, "rule=wq-flush-reclaim&section=WQ%20FILE%20SYSTEM")
    assert f'<span id="shown">{len(wanted)}</span>' in dom
    hidden = re.findall(r'<section class="finding [a-z]+ hidden"', dom)
    assert len(hidden) == len(doc["findings"]) - len(wanted)


@needs_chromium
def test_chromium_screenshot_not_blank(report: tuple[Path, dict], tmp_path: Path) -> None:
    png = browser.screenshot(report[0], tmp_path / "shot.png")
    colours = browser.png_colours(png)
    assert len(colours) > 8, colours  # a blank page has one; the report has many
    keep = os.environ.get("NOFSLINT_SCREENSHOT")
    if keep and not os.environ.get("NOFSLINT_RUN_JSON"):  # else the saved run's is kept
        shutil.copyfile(tmp_path / "shot.png", keep)


@needs_chromium
@pytest.mark.skipif(not os.environ.get("NOFSLINT_RUN_JSON"),
                    reason="NOFSLINT_RUN_JSON names no saved whole-tree run")
def test_chromium_saved_run(tmp_path: Path) -> None:
    """A whole tree's saved run: the browser lays out every finding's chain."""
    saved = Path(os.environ["NOFSLINT_RUN_JSON"])
    page = tmp_path / "run.html"
    assert invoke("report", str(saved), "--format", "html", "-o", str(page)).exit_code == 0
    doc = json.loads(saved.read_text())
    dom = browser.dump_dom(_probed(page, tmp_path))
    n = len(doc["findings"])
    assert f'data-chains="{n}"' in dom and f'data-drawn="{n}"' in dom
    parsed = chains_of(dom)
    assert [c["g.step"] for c in parsed.chains] == expected_steps(doc)
    assert all(c["g.hop"] == c["steps"] - 1 for c in parsed.chains)
    keep = os.environ.get("NOFSLINT_SCREENSHOT")
    if keep:
        browser.screenshot(page, Path(keep), 1000, 1700, scale=0.8)
        assert len(browser.png_colours(Path(keep).read_bytes())) > 8


def _probed(page: Path, tmp_path: Path) -> Path:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", browser.PROBE + "</body>"))
    return probed
