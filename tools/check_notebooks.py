"""Check the paired notebooks: every notebooks/*.ipynb has its .py:percent twin and back, the
.ipynb carries no outputs, and its cells (type, source, tags) are what jupytext makes of the .py.

Exit 1 with one line per problem and the command that fixes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    # Type, source and tags (papermill finds its "parameters" cell by tag).
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def check(folder: Path = ROOT / "notebooks") -> list[str]:
    problems = []
    ipynbs = {p.stem for p in folder.glob("*.ipynb")}
    pys = {p.stem for p in folder.glob("*.py")}
    for stem in sorted(ipynbs - pys):
        problems.append(
            f"{stem}.ipynb has no .py twin: run `jupytext --set-formats "
            f"ipynb,py:percent notebooks/{stem}.ipynb`"
        )
    for stem in sorted(pys - ipynbs):
        problems.append(
            f"{stem}.py has no .ipynb twin: run `jupytext --set-formats "
            f"ipynb,py:percent notebooks/{stem}.py`"
        )
    for stem in sorted(ipynbs & pys):
        ipynb = nbformat.read(folder / f"{stem}.ipynb", as_version=4)
        py = jupytext.read(folder / f"{stem}.py")
        fix = f"run `jupytext --sync notebooks/{stem}.py`"
        if any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in ipynb.cells):
            problems.append(f"{stem}.ipynb is committed with outputs: clear them and {fix}")
        if _cells(ipynb) != _cells(py):
            problems.append(f"{stem}.ipynb differs from {stem}.py: {fix}")
        formats = ipynb.metadata.get("jupytext", {}).get("formats", "")
        if formats != "ipynb,py:percent":
            problems.append(
                f"{stem}.ipynb is not paired as ipynb,py:percent ({formats!r}): run "
                f"`jupytext --set-formats ipynb,py:percent notebooks/{stem}.py`"
            )
    return problems


def main() -> int:
    problems = check()
    for p in problems:
        print(f"notebook check: {p}")
    if not problems:
        count = len(list((ROOT / "notebooks").glob("*.ipynb")))
        print(f"notebook check: {count} notebooks paired and clean")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
