"""tools/build_times.py: chapter times read from a real jupyter-cache, which build executed
what, the README table filled only from a full build followed by a cached one, and the book's
protocols page showing that table from the README itself."""

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str):
    """Import ``tools/<name>.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bt = _tool("build_times")
rp = _tool("results_page")


@pytest.fixture
def book(tmp_path):
    """A two-chapter book with an execution cache holding one executed chapter."""
    (tmp_path / "notebooks").mkdir()
    for i, name in enumerate(("00_a", "01_b")):  # different code: different cache keys
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{i} + 1")])
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: C\n    chapters:\n"
        "      - file: notebooks/00_a\n      - file: notebooks/01_b\n      - file: book/prose\n"
    )
    return tmp_path


def _cache(book, name, seconds):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.read(book / "notebooks" / f"{name}.ipynb", as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"})]
    cache = get_cache(str(book / "_build" / ".jupyter_cache"))
    cache.cache_notebook_bundle(
        CacheBundleIn(
            nb, str(book / "notebooks" / f"{name}.ipynb"), data={"execution_seconds": seconds}
        ),
        check_validity=False,
        overwrite=True,
    )


def test_record_reads_the_cache_and_knows_what_ran(book):
    assert bt.toc_notebooks(book) == ["notebooks/00_a.ipynb", "notebooks/01_b.ipynb"]
    start = time.time()
    _cache(book, "00_a", 12.5)
    entry = bt.record(book / "_build", start, 30.0, "cpu", root=book)
    assert entry["chapters"] == {
        "notebooks/00_a.ipynb": {"seconds": 12.5, "executed_in_this_build": True},
        "notebooks/01_b.ipynb": {"seconds": None, "executed_in_this_build": False},
    }
    later = bt.record(book / "_build", time.time() + 5, 2.0, "cpu", root=book)
    assert later["chapters"]["notebooks/00_a.ipynb"] == {
        "seconds": 12.5,
        "executed_in_this_build": False,
    }
    history = json.loads((book / "_build" / "build_times.json").read_text())
    assert [e["wall_seconds"] for e in history] == [30.0, 2.0]
    assert "| `notebooks/01_b.ipynb` | not executed | no (cache) |" in bt.table(entry)


def _entry(profile, wall, ran, seconds=(60.0, 120.0)):
    return {
        "profile": profile,
        "wall_seconds": wall,
        "machine": "2 CPU cores",
        "commit": "abc",
        "finished": "2026-11-25T20:00:00Z",
        "chapters": {
            f"notebooks/0{i}.ipynb": {"seconds": s, "executed_in_this_build": ran}
            for i, s in enumerate(seconds)
        },
    }


def test_readme_block_needs_a_full_build_then_a_cached_one(tmp_path):
    with pytest.raises(SystemExit, match="no cpu build .* executed every chapter"):
        bt.readme_block([_entry("cpu", 50.0, False), _entry("smoke", 20.0, True)])
    assert "smoke profile" in bt.readme_block(
        [_entry("smoke", 20.0, True), _entry("smoke", 1.0, False)], profile="smoke"
    )
    with pytest.raises(SystemExit, match="again"):
        bt.readme_block([_entry("cpu", 200.0, True), _entry("smoke", 20.0, False)])
    block = bt.readme_block(
        [
            _entry("cpu", 999.0, True),
            _entry("cpu", 240.0, True),
            _entry("cpu", 30.0, False),
        ]
    )
    assert "| `notebooks/01.ipynb` | 2.0 |" in block
    assert "| all chapters | 3.0 |" in block
    assert "| whole build (`jupyter-book build`, wall) | 4.0 |" in block
    assert "| second build, nothing changed (wall) | 0.5 (30 s) |" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{bt.START} keep this -->\nold\n{bt.END}\nb\n")
    bt.fill_readme(readme, block)
    text = readme.read_text()
    assert text.startswith(f"a\n{bt.START} keep this -->\nMeasured by") and "old" not in text
    assert text.endswith(f"{bt.END}\nb\n")


def test_readme_has_the_marks():
    text = (ROOT / "README.md").read_text()
    assert bt.START in text and bt.END in text


@pytest.fixture
def results_book(book):
    """The book with its first chapter as the results page, and an empty results/."""
    (book / "notebooks" / "00_a.ipynb").rename(book / "notebooks" / "90_results.ipynb")
    (book / "results").mkdir()
    return book


def test_results_page_reexecuted_only_when_records_change(results_book):
    from jupyter_cache import get_cache

    book = results_book
    (book / "results" / "a.json").write_text('{"accuracy": 0.5}')
    _cache(book, "90_results", 3.0)
    _cache(book, "01_b", 4.0)
    page = book / "notebooks" / "90_results.ipynb"
    old = page.stat().st_mtime - 100
    os.utime(page, (old, old))
    build = book / "_build"

    def uris():
        return sorted(
            Path(r.uri).name for r in get_cache(str(build / ".jupyter_cache")).list_cache_records()
        )

    assert rp.refresh(build, root=book) is True  # no stamp yet: results unknown
    assert uris() == ["01_b.ipynb"] and page.stat().st_mtime > old + 50
    _cache(book, "90_results", 3.0)
    os.utime(page, (old, old))
    assert rp.refresh(build, root=book) is False  # nothing changed: page stays cached
    assert uris() == ["01_b.ipynb", "90_results.ipynb"] and page.stat().st_mtime == old
    (book / "results" / "b.json").write_text('{"accuracy": 0.6}')
    assert rp.refresh(build, root=book) is True
    assert uris() == ["01_b.ipynb"]


def test_results_page_not_reexecuted_for_records_it_already_shows(results_book):
    book = results_book
    build = book / "_build"
    record = book / "results" / "a.json"
    record.write_text('{"accuracy": 0.5}')
    assert rp.refresh(build, root=book) is True  # before the build: records unknown
    past = record.stat().st_mtime - 100
    newer = book / "results" / "b.json"  # a chapter of the build wrote it, then the page ran
    newer.write_text('{"accuracy": 0.6}')
    os.utime(record, (past, past))
    os.utime(newer, (past, past))
    _cache(book, "90_results", 3.0)
    assert rp.settle(build, root=book) is True
    assert rp.refresh(build, root=book) is False  # the next build: from the cache
    later = record.stat().st_mtime + 10**6  # a record written after the page ran
    os.utime(newer, (later, later))
    newer.write_text('{"accuracy": 0.7}')
    os.utime(newer, (later, later))
    assert rp.settle(build, root=book) is False
    assert rp.refresh(build, root=book) is True


def _includes(page: Path) -> list[tuple[str, dict]]:
    """The ``{include}`` directives of a MyST page: (path, options), quotes around a value
    removed as MyST removes them."""
    found = []
    for m in re.finditer(r"^```\{include\} (\S+)\n((?::[\w-]+:.*\n)*)```$", page.read_text(), re.M):
        options = {}
        for line in m.group(2).splitlines():
            name, value = re.match(r":([\w-]+):\s*(.*)", line).groups()
            if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            options[name] = value
        found.append((m.group(1), options))
    return found


def test_protocols_page_shows_the_readme_tables_between_their_marks():
    """book/protocols.md includes the README's build-times table (between the marks that
    ``readme`` fills) and the estimated `full` costs, instead of a copy that could drift."""
    page = ROOT / "book" / "protocols.md"
    readme = (ROOT / "README.md").read_text()
    includes = _includes(page)
    assert includes and all(
        (page.parent / path).resolve() == ROOT / "README.md" for path, _ in includes
    )
    mark_line = next(line for line in readme.splitlines() if line.startswith(bt.START))
    marks = [o for _, o in includes if o.get("end-before") == bt.END]
    assert [o["start-after"] for o in marks] == [mark_line], "include the whole build-times block"
    for _, options in includes:  # as MyST cuts it: after the first start, before the next end
        start = readme.find(options["start-after"])
        assert start >= 0, f"README.md lacks {options['start-after']!r}: the page would not build"
        rest = readme[start + len(options["start-after"]) :]
        assert options["end-before"] in rest, f"README.md lacks {options['end-before']!r}"
        block = rest[: rest.find(options["end-before"])]
        assert "| chapter |" in block and "\n#" not in block  # one table, no README heading
