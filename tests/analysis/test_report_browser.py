"""`cnnarch report` as a person sees it: a real headless Chromium opens the page offline, runs its script
and takes a screenshot."""

import html
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from cnnarch.analysis import build, profile
from cnnarch.analysis.diagram import draw
from cnnarch.cli import main

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium browser installed (Debian: apt-get install chromium)"
)


def chromium(*args, timeout=120):
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "alexnet.html"
    assert main(["report", "alexnet", "--out", str(out)]) == 0
    return out


def test_report_is_self_contained(page):
    text = page.read_text()
    # nothing to fetch: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<svg" in text and "<script>" in text and "<style>" in text


def test_browser_renders_table_diagram_and_claims(page, tmp_path):
    dom = chromium("--dump-dom", page.as_uri()).stdout  # the DOM after the page's script ran
    model, size = build("alexnet")
    p = profile(model, size)
    rows = re.findall(r'<tr data-name="([^"]*)"', dom)
    assert rows == [r.name for r in p.layers]
    boxes = re.findall(r'<g class="layer (\w+)"', dom)
    assert len(boxes) == len(draw("alexnet").nodes) == 1 + 5 + 3 + 2 + 3  # input, conv, pool, LRN, FC
    assert dom.count('class="agree"') > 10 and "differ" in dom  # the lecture's claims with verdicts
    shot = tmp_path / "shot.png"
    chromium("--window-size=1200,2000", f"--screenshot={shot}", page.as_uri())
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2000, 1200)
    assert img.std() > 20  # not blank
    assert (img.sum(-1) < 300).mean() > 0.005  # there is dark text on the page
    bar = np.array([0x7A, 0xA6, 0xE0])  # the parameter bars are drawn
    assert (np.abs(img - bar).sum(-1) < 10).sum() > 200


def test_table_sorts_in_the_browser(page):
    model, size = build("alexnet")
    p = profile(model, size)
    for key, value in (("params", lambda r: r.params), ("MACs", lambda r: r.macs)):
        dom = chromium("--dump-dom", page.as_uri() + f"#sort={key}").stdout
        rows = re.findall(r'<tr data-name="([^"]*)"', dom)
        assert rows == [r.name for r in sorted(p.layers, key=lambda r: -value(r))]


# Measured in the page by the browser itself: the smallest font of the diagram's labels and of the
# tables, and where the parts sit, written into the DOM for --dump-dom to read.
_PROBE = """<script>
window.addEventListener('load', function () {
  function smallest(sel) {
    return Math.min.apply(null, Array.prototype.map.call(document.querySelectorAll(sel),
      function (e) { return parseFloat(getComputedStyle(e).fontSize); }));
  }
  function rect(sel) { return document.querySelector(sel).getBoundingClientRect(); }
  var svg = rect('.diagram'), layers = rect('table.layers'), claims = rect('.claims-box');
  var arrow = getComputedStyle(document.querySelector('th.sortable'), '::after').content;
  document.body.setAttribute('data-probe', JSON.stringify({
    svg_text: smallest('.diagram svg text'), table: smallest('table.layers td'),
    svg_right: svg.right, layers_left: layers.left, layers_top: layers.top,
    claims_top: claims.top, arrow: arrow, bars: document.querySelectorAll('table.bars tr').length - 1}));
});
</script></body>"""


def test_readable_at_1x_on_a_laptop_screen(page, tmp_path):
    import json

    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE))
    dom = chromium("--window-size=1366,768", "--dump-dom", probed.as_uri()).stdout
    got = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    assert got["svg_text"] >= 11 and got["table"] >= 11  # px at 1x: no 9 px labels
    assert got["layers_left"] >= got["svg_right"]  # the table beside the diagram, not below it
    assert got["claims_top"] < 200 and got["layers_top"] < 768  # claims at the top, the table on screen
    assert "21c5" in got["arrow"].lower() or "\u21c5" in got["arrow"]  # a sort arrow on each sortable header
    model, size = build("alexnet")
    stages = {r.name.split(".")[0] for r in profile(model, size).layers if r.params or r.macs}
    assert got["bars"] == len(stages)  # a bar only for a stage with parameters or operations
