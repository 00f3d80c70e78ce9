"""fewshot_utils.display: the tables and source listings the chapters show."""

import inspect

import pytest

from fewshot_utils import display, distances


def test_markdown_table_layout_and_escaping():
    text = display.markdown_table(["a", "b"], [["1", "x|y"], ["2", "3"]])
    assert text.splitlines() == ["| a | b |", "|---:|---:|", "| 1 | x\\|y |", "| 2 | 3 |"]


def test_markdown_table_alignment_is_every_column():
    text = display.markdown_table(["a", "b", "c"], [], align="---")
    assert text.splitlines()[1] == "|---|---|---|"


def test_markdown_table_rejects_a_ragged_row():
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        display.markdown_table(["a", "b"], [["1", "2"], ["3"]])


def test_show_source_prints_the_modules_own_source_outside_ipython(capsys):
    display.show_source(distances.protonet_logits)
    out = capsys.readouterr().out
    assert out == f"```python\n{inspect.getsource(distances.protonet_logits)}```\n"


def test_table_prints_outside_ipython(capsys):
    display.table(["k"], [["v"]])
    assert capsys.readouterr().out == "| k |\n|---:|\n| v |\n"
