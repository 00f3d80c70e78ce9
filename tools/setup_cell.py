"""The Colab set-up cell, the same in every chapter, with the repository URL of _config.yml.

The URL is defined once, in ``_config.yml`` (``repository.url``, which Jupyter Book's buttons
read too). A fresh Colab runtime has no package yet, so the cell that installs it must hold
the URL itself: this tool writes that cell into every chapter, and the chapters read
``REPOSITORY`` from it (the results chapter clones it).

    python tools/setup_cell.py          # write it into every notebooks/*.py, then sync the twins
    python tools/setup_cell.py --check  # exit 1 naming every notebook whose cell differs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """\
# Set-up, the same in every chapter: on a fresh Colab runtime it installs the
# book's package. DRIVE = True keeps data and checkpoints on Google Drive, so a
# disconnected run resumes and chapter 6 finds the networks chapter 5 trained.
REPOSITORY = "{url}"  # from _config.yml
DRIVE = False

import importlib.util
import subprocess
import sys

if importlib.util.find_spec("fewshot_utils") is None:
    pip = [sys.executable, "-m", "pip", "install", "-q", f"git+{{REPOSITORY}}"]
    subprocess.run(pip, check=True)  # a failure shows pip's own error above
    importlib.invalidate_caches()
if DRIVE:
    from fewshot_utils.colab import use_drive

    use_drive()"""


# folded on the page: the reader needs it only on Colab
TAGS = 'tags=["hide-input"]'


def repository_url() -> str:
    """``repository.url`` of ``_config.yml``, without a trailing slash."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def setup_cell() -> str:
    """The source of the set-up cell."""
    return TEMPLATE.format(url=repository_url())


def _cells(text: str) -> list[str]:
    """The percent-format ``text`` split before every ``# %%`` line (the header first)."""
    parts, current = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("# %%") and current:
            parts.append("".join(current))
            current = []
        current.append(line)
    parts.append("".join(current))
    return parts


def with_setup_cell(text: str) -> str:
    """``text`` (a chapter's .py) with its first code cell, the one after the title, replaced
    by :func:`setup_cell`."""
    parts = _cells(text)
    i = next(i for i, p in enumerate(parts) if p.startswith(("# %%\n", "# %% tags")))
    parts[i] = f"# %% {TAGS}\n" + setup_cell() + "\n\n"
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report, exit 1 on a difference")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        text = path.read_text()
        new = with_setup_cell(text)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
                subprocess.run(["jupytext", "--sync", "-q", str(path)], check=True)
    for path in stale:
        verb = "differs" if args.check else "written"
        print(f"{path.relative_to(ROOT)}: set-up cell {verb}")
    if args.check and stale:
        print("run `python tools/setup_cell.py` to write it")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
