"""Showing things in a chapter: the module's own source, and Markdown tables.

The chapters explain functions by showing their source from this package (never a copy),
and report numbers in Markdown tables. Outside IPython both fall back to plain text, so a
chapter's ``.py`` file also runs as a script.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

__all__ = ["markdown_table", "table", "show_source"]


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "---:"
) -> str:
    """A Markdown table of already formatted cells; ``|`` inside a cell is escaped so that it
    cannot split the row. ``align`` is every column's separator cell (``---:`` right-aligns)."""
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header {len(header)}: {list(row)}")

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + f"{align}|" * len(header), *map(line, rows)])


def _show_markdown(text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # no IPython: plain text
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "---:") -> None:
    """Display :func:`markdown_table` (rendered in a notebook, printed in a script)."""
    _show_markdown(markdown_table(header, rows, align))


def show_source(obj) -> None:
    """Show ``obj``'s source as it is in the installed package, highlighted as Python."""
    _show_markdown(f"```python\n{inspect.getsource(obj)}```")
