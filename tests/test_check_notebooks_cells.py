"""tools/check_notebooks.py: a shown code cell over the limit fails the check, naming the
notebook, the cell and its length; a hidden one, the set-up cell and the parameters cell pass."""

import importlib.util
import sys
from pathlib import Path

import jupytext
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "check_notebooks", ROOT / "tools" / "check_notebooks.py"
)
cn = importlib.util.module_from_spec(_spec)
sys.modules["check_notebooks"] = cn  # dataclasses look their module up there
_spec.loader.exec_module(cn)


def _code(lines: int, tags: tuple[str, ...] = ()):
    cell = new_code_cell("\n".join(f"x{i} = {i}" for i in range(lines)))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _write_pair(folder: Path, stem: str, cells) -> None:
    """A paired notebook as the book keeps it: .py:percent twin and an .ipynb without outputs."""
    nb = new_notebook(cells=cells)
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    jupytext.write(nb, folder / f"{stem}.py", fmt="py:percent")
    nbformat.write(jupytext.read(folder / f"{stem}.py"), folder / f"{stem}.ipynb")


def _chapter(last_cell):
    """Title, a long set-up cell, a long parameters cell, a short cell, then ``last_cell``."""
    return [
        new_markdown_cell("# A chapter"),
        _code(60),
        _code(50, ("parameters",)),
        _code(10),
        last_cell,
    ]


def test_a_shown_cell_over_the_limit_fails_with_notebook_cell_and_length(tmp_path):
    _write_pair(tmp_path, "07_long", _chapter(_code(cn.MAX_SHOWN_LINES + 1)))
    problems = cn.check(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"07_long: code cell 5 shows {cn.MAX_SHOWN_LINES + 1} lines")
    assert "fewshot_utils" in problems[0] and "hide-input" in problems[0]


def test_a_cell_of_exactly_the_limit_passes(tmp_path):
    _write_pair(tmp_path, "07_edge", _chapter(_code(cn.MAX_SHOWN_LINES)))
    assert cn.check(tmp_path) == []


def test_a_hidden_long_cell_passes_and_counts_as_code(tmp_path):
    for tag in sorted(cn.HIDDEN_TAGS):
        folder = tmp_path / tag
        folder.mkdir()
        _write_pair(folder, "07_hidden", _chapter(_code(90, (tag,))))
        assert cn.check(folder) == [], tag
        stats = cn.cell_stats(jupytext.read(folder / "07_hidden.py"))
        assert stats.code_cells == 4
        assert stats.code_lines == 60 + 50 + 10 + 90
        assert stats.longest_shown == (4, 10)  # the set-up and parameters cells are exempt


def test_table_reports_every_notebook(tmp_path):
    _write_pair(tmp_path, "07_long", _chapter(_code(45)))
    _write_pair(tmp_path, "08_short", _chapter(_code(3)))
    rows = cn.table(tmp_path).splitlines()
    assert rows[2:] == [
        "| 07_long | 4 | 165 | 45 (cell 5) | 1 |",
        "| 08_short | 4 | 123 | 10 (cell 4) | 0 |",
    ]


def test_a_wide_line_in_a_shown_cell_fails_and_a_hidden_one_passes(tmp_path):
    wide = "y = 1  # " + "x" * cn.MAX_WIDTH
    hidden = new_code_cell(wide)
    hidden.metadata["tags"] = ["hide-input"]
    _write_pair(tmp_path, "03_wide", _chapter(new_code_cell(wide)) + [hidden])
    problems = cn.check(tmp_path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"03_wide: code cell 5, line 1 is {len(wide)} characters")


def test_shown_source_resolves_module_attributes_and_bare_names():
    from fewshot_utils import distances, models

    assert cn._resolve("distances.lsed") is distances.lsed
    assert cn._resolve("ResBlock.forward") is models.ResBlock.forward


def test_shown_source_wider_than_the_column_is_named():
    nb = new_notebook(cells=[new_code_cell("show_source(distances.lsed)")])
    assert cn.shown_source_problems("02", nb, limit=10)[0].startswith(
        "02: show_source(distances.lsed) has"
    )
    assert cn.shown_source_problems("02", nb, limit=1000) == []


def test_a_line_starting_with_plus_inside_a_formula_is_named():
    """Chapter 0 once broke ``$a\n+ b$`` over two lines: the page showed a bullet and raw TeX."""
    nb = new_notebook(
        cells=[new_markdown_cell("the sum $a\n+ b$ and\n- a real item\n\n$$x\n- y$$")]
    )
    problems = cn.math_break_problems("00", nb)
    assert len(problems) == 1 and problems[0].startswith("00: markdown cell 1, line 2")
