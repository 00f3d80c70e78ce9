"""Check the paired notebooks: every notebooks/*.ipynb has its .py:percent twin and back, the
.ipynb carries no outputs, and its cells (type, source, tags) are what jupytext makes of the .py.

It also checks that the chapters read as a book rather than a listing: every code cell the
page shows is at most ``MAX_SHOWN_LINES`` lines. A cell tagged ``hide-input``,
``remove-input`` or ``remove-cell`` is folded away (or removed) by Jupyter Book, so its length
does not count; and every line of a shown code cell fits the site's code column
(``MAX_WIDTH`` characters); nor does the set-up cell (the first code cell, written by
``tools/setup_cell.py``) nor the ``parameters`` cell. ``--table`` prints, per notebook, the
number of code cells and code lines and the longest shown cell.

Exit 1 with one line per problem and the command that fixes it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]

MAX_SHOWN_LINES = 40
MAX_WIDTH = 80  # characters: the site's code column cuts off longer lines
HIDDEN_TAGS = frozenset({"hide-input", "remove-input", "remove-cell"})


@dataclass(frozen=True)
class CellStats:
    """What a reader scrolls through in one notebook."""

    code_cells: int
    code_lines: int
    longest_shown: tuple[int, int]  # (cell number counted from 1 over all cells, lines)
    too_long: tuple[tuple[int, int], ...]  # every shown code cell over MAX_SHOWN_LINES


def _lines(source: str) -> int:
    return len(source.strip().splitlines())


def cell_stats(nb, limit: int = MAX_SHOWN_LINES) -> CellStats:
    """Count the code cells and lines of ``nb`` and find its longest *shown* code cell.

    Cells are numbered from 1 over all cells (markdown too), as Jupyter shows them. The first
    code cell (the set-up cell) and the ``parameters`` cell are exempt, and so is a cell
    tagged with one of ``HIDDEN_TAGS``, whose code the page does not show.
    """
    code = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code"]
    shown = [
        (i, _lines(c.source))
        for n, (i, c) in enumerate(code)
        if n > 0 and not ({"parameters"} | HIDDEN_TAGS) & set(c.metadata.get("tags", []))
    ]
    return CellStats(
        code_cells=len(code),
        code_lines=sum(_lines(c.source) for _, c in code),
        longest_shown=max(shown, key=lambda s: s[1], default=(0, 0)),
        too_long=tuple(s for s in shown if s[1] > limit),
    )


def long_cell_problems(stem: str, stats: CellStats, limit: int = MAX_SHOWN_LINES) -> list[str]:
    """One line per shown code cell of notebook ``stem`` that is longer than ``limit``."""
    return [
        f"{stem}: code cell {cell} shows {lines} lines (at most {limit}): move its plumbing "
        f"into a named, tested function in fewshot_utils, or tag it hide-input "
        f'(`# %% tags=["hide-input"]` in notebooks/{stem}.py)'
        for cell, lines in stats.too_long
    ]


def wide_line_problems(stem: str, nb, limit: int = MAX_WIDTH) -> list[str]:
    """One line per line wider than ``limit`` in a code cell of ``stem`` that the page shows
    (hidden cells fold their code; a reader who unfolds one scrolls)."""
    problems = []
    for i, c in enumerate(nb.cells, 1):
        if c.cell_type != "code" or HIDDEN_TAGS & set(c.metadata.get("tags", [])):
            continue
        for n, line in enumerate(c.source.splitlines(), 1):
            if len(line) > limit:
                problems.append(
                    f"{stem}: code cell {i}, line {n} is {len(line)} characters (the page's "
                    f"code column holds {limit}): `ruff format notebooks` wraps code; shorten "
                    f"a comment or string by hand"
                )
    return problems


def _open_math(text: str) -> bool:
    """Whether ``text`` leaves an inline ``$...$`` formula open (``$$`` and ``\\$`` aside)."""
    return text.replace("\\$", "").replace("$$", "").count("$") % 2 == 1


def math_break_problems(stem: str, nb) -> list[str]:
    """One line per markdown line that starts with ``+``, ``-`` or ``*`` and a space inside an
    inline formula begun on the line before: Markdown reads it as a list item and the page
    shows the formula's raw TeX."""
    problems = []
    for i, c in enumerate(nb.cells, 1):
        if c.cell_type != "markdown":
            continue
        lines = c.source.splitlines()
        inside = False
        for n, line in enumerate(lines, 1):
            if inside and re.match(r"\s*[-+*] ", line):
                problems.append(
                    f"{stem}: markdown cell {i}, line {n} starts with {line.split()[0]!r} "
                    f"inside a formula: Markdown makes it a list item; end the line before it "
                    f"with the operator instead"
                )
            inside = _open_math(line) != inside if line.strip() else False
    return problems


SHOWN_SOURCE = re.compile(r"show_source\(([\w.]+)\)")


def _resolve(name: str):
    """The object a chapter passes to ``show_source`` as ``name``: ``module.attr...`` for a
    fewshot_utils module, or a bare name that one of its modules defines."""
    import fewshot_utils

    modules = {
        m.name: importlib.import_module(f"fewshot_utils.{m.name}")
        for m in pkgutil.iter_modules(fewshot_utils.__path__)
    }
    head, *rest = name.split(".")
    obj = modules.get(head) or next(getattr(m, head) for m in modules.values() if hasattr(m, head))
    for attr in rest:
        obj = getattr(obj, attr)
    return obj


def shown_source_problems(stem: str, nb, limit: int = MAX_WIDTH) -> list[str]:
    """One line per function a chapter shows with ``show_source`` whose source has a line wider
    than ``limit``: the page cuts it off like any other code."""
    problems = []
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for name in sorted(set(SHOWN_SOURCE.findall(code))):
        lines = inspect.getsource(_resolve(name)).splitlines()
        wide = [n for n, line in enumerate(lines, 1) if len(line) > limit]
        if wide:
            problems.append(
                f"{stem}: show_source({name}) has {len(wide)} line(s) over {limit} characters "
                f"(first: line {wide[0]}): wrap them in the module (a trailing comma keeps "
                f"ruff from joining a call again)"
            )
    return problems


def table(folder: Path = ROOT / "notebooks") -> str:
    """Per notebook: code cells, code lines, the longest shown cell, shown cells over the
    limit, as a Markdown table."""
    rows = [
        "| notebook | code cells | code lines | longest shown cell (lines) | shown cells > "
        f"{MAX_SHOWN_LINES} |",
        "|---|---:|---:|---:|---:|",
    ]
    for path in sorted(folder.glob("*.py")):
        s = cell_stats(jupytext.read(path))
        cell, lines = s.longest_shown
        rows.append(
            f"| {path.stem} | {s.code_cells} | {s.code_lines} | {lines} (cell {cell}) | "
            f"{len(s.too_long)} |"
        )
    return "\n".join(rows)


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
    for path in sorted(folder.glob("*.py")):
        nb = jupytext.read(path)
        problems += long_cell_problems(path.stem, cell_stats(nb))
        problems += wide_line_problems(path.stem, nb)
        problems += shown_source_problems(path.stem, nb)
        problems += math_break_problems(path.stem, nb)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--table", action="store_true", help="print the code cells of every notebook first"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(table())
    problems = check()
    for p in problems:
        print(f"notebook check: {p}")
    if not problems:
        count = len(list((ROOT / "notebooks").glob("*.ipynb")))
        print(
            f"notebook check: {count} notebooks paired and clean, no shown code cell over "
            f"{MAX_SHOWN_LINES} lines or {MAX_WIDTH} characters wide"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
