"""Sphinx extension (loaded by _config.yml): the published pages load nothing from other hosts
and run without JavaScript errors (tools/browser_check.py checks both).

Each chapter starts with the usual "Open in Colab" badge, an image hosted by Colab. In the
notebook (on GitHub, in Jupyter, on Colab) that image is fine; on the site it would be the
one file fetched from another host, broken offline. This extension serves a copy of the badge
with the site: it writes ``_static/colab-badge.svg`` and points every image of the remote
badge at it. The link itself still opens Colab.

sphinx-thebe adds its inline configuration script once per build event it listens to, so a
page can carry ``const THEBE_JS_URL = ...`` twice: the second raises "Identifier
'THEBE_JS_URL' has already been declared" in the browser. Identical scripts are written once.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from docutils import nodes

REMOTE_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "_static/colab-badge.svg"

# Drawn for this book (117 x 20, the size of Colab's badge): a grey "Open in" and an orange
# "Colab" half, in the style of the common shields.
BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img"
 aria-label="Open in Colab"><title>Open in Colab</title>
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>
<stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="r"><rect width="117" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#r)"><rect width="69" height="20" fill="#555"/>
<rect x="69" width="48" height="20" fill="#f9ab00"/>
<rect width="117" height="20" fill="url(#s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif"
 font-size="11"><text x="34.5" y="14">Open in</text><text x="93" y="14">Colab</text></g>
</svg>
"""


def _local_badges(app, doctree, docname: str) -> None:
    """Point the remote badge images of ``docname`` at the copy served with the site."""
    local = posixpath.relpath(LOCAL_BADGE, posixpath.dirname(docname) or ".")
    for image in doctree.findall(nodes.image):
        if image.get("uri") == REMOTE_BADGE:
            image["uri"] = local
            image["candidates"] = {"*": local}


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop the repeats of a script (same file or inline body, same attributes)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {}) or {}
        name = getattr(js, "filename", str(js)) or ""  # None and "" both mean inline
        key = (name, tuple(sorted(map(str, attributes.items()))))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def _write_badge(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        path = Path(app.outdir) / LOCAL_BADGE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BADGE_SVG)


def setup(app):
    app.connect("doctree-resolved", _local_badges)
    app.connect("html-page-context", _unique_scripts, priority=900)  # after the others
    app.connect("build-finished", _write_badge)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
