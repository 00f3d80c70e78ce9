"""Open every page of the built site in headless Chromium and fail on what a reader would see
broken. Run by .ci/run after the book build:

    python tools/browser_check.py _build/html --screenshots _build/screenshots

The site is served on 127.0.0.1 and the browser cannot resolve any other host, so the check
also proves that the site works offline. For each page it reports

- a broken internal link (a missing page or a missing ``#anchor``) or a broken image, or a
  cell's figure embedded in the page rather than written as a file;
- a resource (script, style sheet, font, image) requested from another host;
- a formula left unrendered: an element of class ``math`` without MathJax output, TeX left
  as text (``$...\\cmd...$``, ``\\(``, ``\\[``, ``\\begin{``), or a MathJax error;
- a cell that printed an error (a traceback in a cell's output);
- a JavaScript error, or any error the browser logged (e.g. a file that failed to load);
- on a chapter page (``notebooks/``): no Colab launch button, or a Colab link that opens
  another notebook than the page's own;

and saves a screenshot of the page (its first 16,000 pixels) into ``--screenshots`` with
``report.json``. Exit status 1 when a page has a problem. Needs ``chromium`` and
``chromium-driver`` (Debian), or the browser and driver named by the environment variables
CHROMIUM and CHROMEDRIVER, and the ``selenium`` package.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin

SKIP_DIRS = ("_static", "_sources", "_images", "_downloads", "_sphinx_design_static")
COLAB = "https://colab.research.google.com/github/"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
WAIT_S = 30  # per page: load and typeset

# In the page: what the reader sees broken. Returns a list of problem strings.
_PAGE_JS = r"""
const problems = [];
const here = location.origin;
for (const img of document.images) {
  const src = img.currentSrc || img.src;
  if (!img.complete || img.naturalWidth === 0) problems.push('broken image: ' + src);
}
for (const img of document.querySelectorAll('.cell_output img[src^="data:"]'))
  problems.push('figure embedded in the page, not a file: ' + img.src.slice(0, 40));
const maths = document.querySelectorAll('.math');
let bare = 0;
for (const el of maths) if (!el.querySelector('mjx-container')) bare += 1;
if (bare) problems.push(bare + ' of ' + maths.length + ' formulas not rendered by MathJax' +
  (window.MathJax ? '' : ' (MathJax did not load)'));
const walker = document.createTreeWalker(document.body || document.documentElement,
                                         NodeFilter.SHOW_TEXT, {acceptNode: (n) =>
  n.parentElement.closest('pre, code, script, style, textarea, .highlight, mjx-container, .math')
    ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
const rawTex = /\$(?=\S)[^$]*\\[A-Za-z]+[^$]*\$|\\\(|\\\[|\\begin\{/;
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const m = n.textContent.match(rawTex);
  if (m) { problems.push('formula left as raw TeX: ' + m[0].slice(0, 80)); break; }
}
for (const err of document.querySelectorAll('mjx-merror, [data-mjx-error]'))
  problems.push('MathJax error: ' + (err.getAttribute('data-mjx-error') || err.textContent));
for (const out of document.querySelectorAll('.cell_output .traceback'))
  problems.push('a cell printed an error: ' + out.textContent.trim().slice(0, 300));
for (const out of document.querySelectorAll('.cell_output')) {
  const t = out.textContent;
  if (t.includes('Traceback (most recent call last)') && !out.querySelector('.traceback'))
    problems.push('a cell printed a traceback: ' + t.trim().slice(0, 300));
}
for (const r of performance.getEntriesByType('resource'))
  if (!r.name.startsWith(here) && !r.name.startsWith('data:'))
    problems.push('requested from another host (the site must work offline): ' + r.name);
const links = [], colab = [];
for (const a of document.querySelectorAll('a[href]')) {
  links.push(a.href);
  if (a.href.startsWith(arguments[0]))
    colab.push([a.href, a.closest('.dropdown-launch-buttons') ? 'launch button' :
                        a.closest('article') ? 'badge' : 'elsewhere']);
}
return {problems: problems, links: links, colab: colab, title: document.title,
        height: document.documentElement.scrollHeight};
"""

_TYPESET_JS = """
const done = arguments[arguments.length - 1];
const t0 = Date.now();
const loads = document.querySelector('script[src*="mathjax" i]') !== null;
const needs = document.querySelector('.math') !== null;
(function wait() {
  if (document.readyState !== 'complete' || !document.body) {
    // still loading (e.g. a page that replaced itself): wait for the whole document
    if (Date.now() - t0 > 10000) done('the page did not finish loading');
    else setTimeout(wait, 100);
  } else if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset'), (e) => done('MathJax failed: ' + e));
  } else if (!loads && !needs) { done('none on the page'); }
  else if (Date.now() - t0 > 10000) { done('MathJax did not start'); }
  else { setTimeout(wait, 100); }
})();
"""


_REFRESH = re.compile(
    r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]*content=["'][^"']*url=([^"'>\s]+)""", re.I
)


def redirect_target(page: Path) -> str | None:
    """The URL a redirect-only page (``<meta http-equiv="refresh" ... url=...>``, as Jupyter
    Book writes ``index.html``) sends the reader to, else None. Such a page replaces itself
    while it is being inspected, so the check follows its link instead of opening it."""
    head = page.read_text(encoding="utf-8", errors="replace")[:4000]
    m = _REFRESH.search(head)
    return m.group(1) if m else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the report says what matters
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; returns (server, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def pages(root: Path) -> list[Path]:
    """Every HTML page of the site, outside the theme's and Sphinx's asset folders."""
    return sorted(
        p
        for p in root.rglob("*.html")
        if not any(part in SKIP_DIRS for part in p.relative_to(root).parts)
    )


def _find(candidates: tuple[str, ...], name: str, hint: str) -> str:
    """The environment variable ``name.upper()`` (e.g. CHROMEDRIVER), else the first of
    ``candidates`` that exists, else ``name`` on the PATH."""
    chosen = os.environ.get(name.upper())
    if chosen:
        if not Path(chosen).exists():
            raise FileNotFoundError(f"{name.upper()}={chosen} does not exist; {hint}")
        return chosen
    for c in candidates:
        if Path(c).exists():
            return c
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found ({', '.join(candidates)}); {hint}")


def browser(width: int = 1280, height: int = 1000):
    """Headless Chromium that resolves no host but 127.0.0.1, logging the console."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        raise ImportError(
            "the browser check needs selenium: pip install -r requirements.txt"
        ) from err
    hint = "install them with: apt-get install -y chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = _find(CHROMIUM, "chromium", hint)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline, even online
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=_find(CHROMEDRIVER, "chromedriver", hint))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S + 5)
    return driver


class _Targets:
    """Internal link targets fetched once: does the page exist, which ids does it have."""

    def __init__(self):
        self._cache: dict[str, tuple[int, set[str]]] = {}

    def get(self, url: str) -> tuple[int, set[str]]:
        if url not in self._cache:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    body = r.read()
                    status = r.status
            except urllib.error.HTTPError as err:
                status, body = err.code, b""
            ids = set()
            if url.endswith((".html", "/")):
                text = body.decode("utf-8", "replace")
                ids = set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
            self._cache[url] = (status, ids)
        return self._cache[url]


def _colab_problems(rel: str, colab: list[list[str]]) -> list[str]:
    """A chapter page opens its own notebook on Colab from its badge (in the text) and from
    the launch button (the rocket menu); ``colab`` holds (link, where it is) pairs."""
    if not rel.startswith("notebooks/"):
        return []
    want = "/notebooks/" + rel.removeprefix("notebooks/").removesuffix(".html") + ".ipynb"
    problems = [
        f"Colab link ({where}) opens another notebook: {url}"
        for url, where in colab
        if not url.endswith(want)
    ]
    for where in ("badge", "launch button"):
        if not any(w == where for _, w in colab):
            problems.append(f"no Colab {where}")
    return problems


def check_page(
    driver, base: str, rel: str, targets: _Targets, shots: Path | None, max_height: int = 16000
) -> dict:
    """Open one page, wait for MathJax, and list its problems; save its screenshot."""
    url = urljoin(base, rel)
    t0 = time.perf_counter()
    try:
        return _inspect(driver, base, rel, url, targets, shots, max_height, t0)
    except Exception as err:  # the browser failed on this page: report it, check the rest
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        msg = f"the browser check failed on this page: {type(err).__name__}: {first}"
        return {
            "page": rel,
            "title": None,
            "math": None,
            "problems": [msg[:300]],
            "screenshot": None,
            "seconds": round(time.perf_counter() - t0, 2),
        }


def check_redirect(base: str, rel: str, target: str, targets: _Targets) -> dict:
    """A redirect-only page passes when the page it sends the reader to exists."""
    link = urljoin(urljoin(base, rel), target)
    status, _ = targets.get(urldefrag(link)[0]) if link.startswith(base) else (0, set())
    problems = [] if status == 200 else [f"redirect to a missing page ({status}): {link}"]
    return {
        "page": rel,
        "title": None,
        "math": f"redirect to {target}",
        "problems": problems,
        "screenshot": None,
        "seconds": 0.0,
    }


def _inspect(
    driver,
    base: str,
    rel: str,
    url: str,
    targets: _Targets,
    shots: Path | None,
    max_height: int,
    t0: float,
) -> dict:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    typeset = driver.execute_async_script(_TYPESET_JS)
    found = driver.execute_script(_PAGE_JS, COLAB)
    problems = list(found["problems"])
    if typeset.startswith("MathJax failed") or typeset in (
        "MathJax did not start",
        "the page did not finish loading",
    ):
        problems.append(typeset)
    for entry in driver.get_log("browser"):
        # (the browser asks for /favicon.ico by itself; a page's own icon would be a link)
        if entry["level"] == "SEVERE" and not entry["message"].startswith(base + "favicon.ico"):
            problems.append("browser console: " + entry["message"][:300])
    for link in sorted(set(found["links"])):
        target, frag = urldefrag(link)
        if not target.startswith(base):
            continue  # other hosts: GitHub, Colab (not fetched: the check is offline)
        status, ids = targets.get(target)
        if status != 200:
            problems.append(f"broken link ({status}): {link}")
        elif frag and unquote(frag) not in ids and target.endswith((".html", "/")):
            problems.append(f"broken anchor: {link}")
    problems += _colab_problems(rel, found["colab"])
    shot = None
    if shots is not None:
        shot = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
        # The whole page (up to max_height): a viewport as tall as the page, then back.
        height = min(int(found["height"]), max_height)
        width = driver.execute_script("return document.documentElement.clientWidth")
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": False,
            },
        )
        try:
            png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        shot.write_bytes(base64.b64decode(png))
    return {
        "page": rel,
        "title": found["title"],
        "math": typeset,
        "problems": problems,
        "screenshot": str(shot) if shot else None,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def check_site(root: Path, shots: Path | None = None) -> list[dict]:
    """Check every page of the site built in ``root``; one report dict per page."""
    root = Path(root).resolve()
    if not (root / "index.html").exists():
        raise FileNotFoundError(
            f"{root}/index.html is missing: build the site first "
            "(bash tools/book.sh) and pass its _build/html folder"
        )
    if shots is not None:
        shots = Path(shots).resolve()
        shutil.rmtree(shots, ignore_errors=True)
        shots.mkdir(parents=True)
    server, base = serve(root)
    driver = browser()
    targets = _Targets()
    try:
        reports = []
        for p in pages(root):
            rel, target = p.relative_to(root).as_posix(), redirect_target(p)
            if target is not None:
                reports.append(check_redirect(base, rel, target, targets))
            else:
                reports.append(check_page(driver, base, rel, targets, shots))
        return reports
    finally:
        driver.quit()
        server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument(
        "--screenshots", type=Path, default=None, help="folder for one PNG per page and report.json"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    reports = check_site(args.site, args.screenshots)
    bad = [r for r in reports if r["problems"]]
    for r in reports:
        status = "ok" if not r["problems"] else f"{len(r['problems'])} problem(s)"
        print(f"[browser] {r['page']}: {status} (math: {r['math']}, {r['seconds']} s)")
        for p in r["problems"]:
            print(f"[browser]     {p}")
    if args.screenshots is not None:
        report = args.screenshots.resolve() / "report.json"
        report.write_text(json.dumps(reports, indent=2) + "\n")
        print(f"[browser] screenshots and report.json in {args.screenshots.resolve()}")
    print(
        f"[browser] {len(reports)} pages checked in {time.perf_counter() - t0:.0f} s: "
        f"{len(reports) - len(bad)} ok, {len(bad)} with problems"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
