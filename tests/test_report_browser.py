"""The report in a real browser (headless Chromium): no horizontal scroll at 1,400 px, the
findings first and then the constructs, a table of contents, a caption on every table and
figure, labels rather than column names in the headers; and a screenshot.

Skipped, with a message, where no Chromium is installed (``apt-get install chromium``). The
screenshot goes to the test's temporary folder and, when ``PIPELINE_SCREENSHOT_DIR`` is set,
is copied there (``PIPELINE_SCREENSHOT_DIR=outputs make test`` keeps it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from analysis import config
from analysis.stages import models, report, robustness
from tests.test_bad_inputs import _project

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                  "google-chrome", "chrome")
                if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get "
                                "install chromium): the browser test of the report is skipped")
WIDTH = 1400
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--hide-scrollbars", "--virtual-time-budget=8000"]

MEASURE = """<script>
window.addEventListener('load', () => {
  const d = document.documentElement, w = window.innerWidth;
  const boxes = [...document.querySelectorAll('table, figure, img, pre, p, nav')];
  const out = {
    innerWidth: w, scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    tooWide: boxes.filter(e => e.getBoundingClientRect().right > w + 0.5)
      .map(e => e.tagName + ': ' + (e.querySelector && e.querySelector('caption')
        ? e.querySelector('caption').textContent.slice(0, 60) : e.textContent.slice(0, 60))),
    sections: [...document.querySelectorAll('section > h2')].map(h => h.textContent),
    toc: [...document.querySelectorAll('nav.toc a')].map(a => a.getAttribute('href')),
    ids: [...document.querySelectorAll('section')].map(s => '#' + s.id),
    tables: document.querySelectorAll('section table').length,
    captioned: document.querySelectorAll('section table > caption').length,
    figures: document.querySelectorAll('figure').length,
    figcaptions: document.querySelectorAll('figure > figcaption').length,
    headers: [...document.querySelectorAll('th')].map(t => t.textContent),
  };
  const pre = document.createElement('pre');
  pre.id = 'measurements';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    profile = workdir / "profile"  # a fresh profile: nothing from the user's browser
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def measure(page: Path, workdir: Path) -> dict:
    """Lay ``page`` out at WIDTH px in Chromium and return what the script above measured."""
    copy = workdir / "measured.html"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
                    encoding="utf-8")
    run = _chromium([f"--window-size={WIDTH},900", "--dump-dom", copy.as_uri()], workdir)
    found = re.search(r'<pre id="measurements">(.*?)</pre>', run.stdout, re.DOTALL)
    assert found, run.stderr[-2000:]
    text = found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(text)


def screenshot(page: Path, target: Path, workdir: Path, height: int = 2400) -> Path:
    run = _chromium([f"--window-size={WIDTH},{height}", f"--screenshot={target}",
                     page.as_uri()], workdir)
    assert target.exists(), run.stderr[-2000:]
    return target


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def check_layout(found: dict) -> None:
    assert found["innerWidth"] == WIDTH
    assert found["scrollWidth"] <= found["clientWidth"], "the page scrolls horizontally"
    assert found["tooWide"] == []
    assert found["sections"][0].startswith("Findings")
    assert found["sections"][1].startswith("Constructs")
    assert found["toc"] == found["ids"] and len(found["toc"]) >= 10
    assert found["tables"] > 0 and found["captioned"] == found["tables"]
    assert found["figcaptions"] == found["figures"]
    column_names = [h for h in found["headers"] if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)]
    assert column_names == [], f"column names instead of labels: {column_names}"


def _keep(shot: Path, name: str) -> None:
    folder = os.environ.get("PIPELINE_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(folder) / name)


def test_report_of_a_synthetic_run_in_the_browser(tmp_path):
    paths = _project(tmp_path / "project")
    models.run(paths["processed"], paths["outputs"], paths["models"])
    robustness.run(paths["processed"], paths["outputs"], paths["robustness"], paths["models"])
    page = report.run(paths["outputs"], paths["processed"], tmp_path / "raw")
    check_layout(measure(page, tmp_path))
    shot = screenshot(page, tmp_path / "report_synthetic.png", tmp_path)
    assert png_size(shot) == (WIDTH, 2400) and shot.stat().st_size > 50_000
    _keep(shot, "report_synthetic_1400px.png")


def test_the_pipeline_report_in_the_browser(tmp_path):
    """The report of the last `make all` (skipped when there is none)."""
    page = config.OUTPUTS / "report.html"
    if not page.exists():
        pytest.skip("no outputs/report.html: run `make all` first")
    check_layout(measure(page, tmp_path))
    shot = screenshot(page, tmp_path / "report.png", tmp_path)
    assert png_size(shot) == (WIDTH, 2400) and shot.stat().st_size > 50_000
    _keep(shot, "report_1400px.png")
