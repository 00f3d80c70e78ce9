"""tools/browser_check.py against a tiny site: a good page passes, a broken one is flagged for
each kind of fault. Needs Chromium, chromedriver and selenium (CI has them); skipped without."""

import base64
import importlib.util
import shutil
import struct
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("browser_check", ROOT / "tools" / "browser_check.py")
bc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bc)

have_browser = (
    importlib.util.find_spec("selenium") is not None
    and any(Path(p).exists() for p in bc.CHROMIUM) | (shutil.which("chromium") is not None)
    and any(Path(p).exists() for p in bc.CHROMEDRIVER) | (shutil.which("chromedriver") is not None)
)


def _png() -> bytes:
    """A valid 2x2 grey PNG, written by hand."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x80\x80" for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


GOOD = """<html><head><title>good</title></head><body>
<h1 id="top">Good</h1><img src="_images/dot.png"><a href="notebooks/chapter.html#sec">ok</a>
<a href="#top">self</a><a href="https://example.org/">other host, not fetched</a></body></html>"""

BROKEN = f"""<html><head><title>broken</title>
<link rel="stylesheet" href="https://cdn.example.org/style.css"></head><body>
<img src="_images/missing.png"><a href="nowhere.html">dead</a><a href="index.html#gone">x</a>
<p><span class="math notranslate nohighlight">\\(x^2\\)</span></p>
<p>a sum left as text: $\\sum_i x_i$ costs $5 or $6</p>
<div class="cell_output docutils container"><div class="output traceback">
ZeroDivisionError: division by zero</div></div>
<div class="cell_output"><img src="data:image/png;base64,{base64.b64encode(_png()).decode()}"></div>
<script>throw new Error("boom from the page");</script></body></html>"""

# Jupyter Book's index.html: a page that replaces itself at once (the check follows its link).
REDIRECT = '<html><head><meta http-equiv="refresh" content="0; url={}" /></head></html>'

COLAB = "https://colab.research.google.com/github/o/r/blob/main/notebooks/"
CHAPTER = f"""<html><head><title>chapter</title></head><body>
<div class="dropdown-launch-buttons"><a href="{COLAB}chapter.ipynb">launch</a></div>
<article><h2 id="sec">S</h2><a href="{COLAB}other.ipynb">badge</a></article></body></html>"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    if not have_browser:
        pytest.skip(
            "chromium, chromedriver or selenium missing (apt-get install -y chromium "
            "chromium-driver; pip install selenium)"
        )
    site = tmp_path_factory.mktemp("site")
    (site / "_images").mkdir()
    (site / "_images" / "dot.png").write_bytes(_png())
    (site / "notebooks").mkdir()
    (site / "index.html").write_text(GOOD)
    (site / "broken.html").write_text(BROKEN)
    (site / "notebooks" / "chapter.html").write_text(CHAPTER)
    (site / "redirect.html").write_text(REDIRECT.format("notebooks/chapter.html"))
    (site / "redirect_broken.html").write_text(REDIRECT.format("notebooks/gone.html"))
    shots = site.parent / "shots"
    return {r["page"]: r for r in bc.check_site(site, shots)}, shots


def test_good_page_passes_with_a_screenshot(reports):
    by_page, shots = reports
    assert set(by_page) == {
        "index.html",
        "broken.html",
        "notebooks/chapter.html",
        "redirect.html",
        "redirect_broken.html",
    }
    assert by_page["index.html"]["problems"] == []
    png = Path(by_page["index.html"]["screenshot"])
    assert png.parent == shots.resolve() and png.read_bytes().startswith(b"\x89PNG")


def test_each_fault_of_the_broken_page_is_flagged(reports):
    problems = "\n".join(reports[0]["broken.html"]["problems"])
    assert "broken image" in problems and "missing.png" in problems
    assert "broken link (404)" in problems and "nowhere.html" in problems
    assert "broken anchor" in problems and "index.html#gone" in problems
    assert "1 of 1 formulas not rendered" in problems
    assert "formula left as raw TeX: $\\sum_i x_i$" in problems
    assert "a cell printed an error: ZeroDivisionError" in problems
    assert "figure embedded in the page, not a file: data:image/png;base64" in problems
    assert "boom from the page" in problems  # the JavaScript error, from the console
    assert "another host" in problems and "cdn.example.org/style.css" in problems


def test_redirect_page_is_followed_not_inspected(reports):
    by_page = reports[0]
    assert by_page["redirect.html"]["problems"] == []
    assert by_page["redirect.html"]["math"] == "redirect to notebooks/chapter.html"
    (problem,) = by_page["redirect_broken.html"]["problems"]
    assert problem.startswith("redirect to a missing page (404)") and "gone.html" in problem


def test_a_page_the_browser_cannot_inspect_is_reported_not_fatal():
    class Dead:
        def get_log(self, kind):
            raise RuntimeError("session lost\nstack")

    r = bc.check_page(Dead(), "http://127.0.0.1:1/", "a.html", bc._Targets(), None)
    assert r["problems"] == ["the browser check failed on this page: RuntimeError: session lost"]


def test_chapter_must_open_its_own_notebook_on_colab(reports):
    problems = reports[0]["notebooks/chapter.html"]["problems"]
    assert problems == [f"Colab link (badge) opens another notebook: {COLAB}other.ipynb"]
    assert bc._colab_problems("notebooks/chapter.html", [[f"{COLAB}chapter.ipynb", "badge"]]) == [
        "no Colab launch button"
    ]
    assert bc._colab_problems("book/intro.html", []) == []


def test_main_exit_status(reports, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><body><p>fine</p></body></html>")
    assert bc.main([str(site), "--screenshots", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "1 pages checked" in out and str((tmp_path / "s").resolve()) in out
    (site / "index.html").write_text('<html><body><img src="no.png"></body></html>')
    assert bc.main([str(site)]) == 1
