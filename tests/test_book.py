"""The book's wiring: every chapter in the table of contents, paired, with a Colab badge and a
set-up cell pointing at the one repository URL of _config.yml, and a parameters cell."""

import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from setup_cell import setup_cell  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_every_toc_entry_exists():
    for f in _toc_files():
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_header(path):
    url = _config()["repository"]["url"].rstrip("/")
    repo = url.removeprefix("https://github.com/")
    nb = nbformat.read(path, as_version=4)
    badge = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}"
    assert badge in nb.cells[0].source, f"{path.name}: Colab badge must link {badge}"
    assert nb.cells[1].source == setup_cell(), (
        f"{path.name}: the set-up cell differs from every other chapter's: run "
        "`python tools/setup_cell.py`"
    )
    assert f'REPOSITORY = "{url}"' in nb.cells[1].source
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "PROFILE = None" in params[0].source
    assert "# Runtime:" in params[0].source, f"{path.name}: say which runtime it needs"
    assert f"notebooks/{path.stem}" in _toc_files() or path.stem.startswith("99_"), (
        f"{path.name} is not in _toc.yml"
    )


def _code(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_records_keep_the_training_configuration(path):
    """A record's ``config`` is the training configuration; the test episodes' queries go in the
    record's own ``query`` field (chapter 0 once wrote the test's 15 over the training's 5)."""
    import ast

    tree = ast.parse(_code(path))
    for call in ast.walk(tree):
        if not (
            isinstance(call, ast.Call)
            and getattr(call.func, "id", "") in ("make_record", "protonet_record")
        ):
            continue
        for kw in call.keywords:
            if kw.arg == "config" and isinstance(kw.value, ast.Dict):
                keys = [k.value for k in kw.value.keys if isinstance(k, ast.Constant)]
                assert "query" not in keys, f"{path.name}: config overrides the training query"


def test_chapter_0_takes_published_numbers_from_paper_numbers():
    from fewshot_utils.paper_numbers import QUOTED_NUMBERS

    nb = nbformat.read(ROOT / "notebooks" / "00_episodes_and_prototypes.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for cell in QUOTED_NUMBERS:
        if cell.dataset == "omniglot":
            assert f"{cell.accuracy}" not in text, f"{cell.accuracy} typed in chapter 0"


@pytest.mark.parametrize("stem", ["05_dense_classification", "06_implanting", "07_tadam"])
def test_chapters_5_to_7_take_published_numbers_from_paper_numbers(stem):
    """No published accuracy of Lifchitz et al. or TADAM is typed into these chapters (they
    once were: 78.95 - 76.40, 71.60 vs 69.64, FC100's 57.63 / 62.91): every one comes from
    fewshot_utils.paper_numbers, the single transcription the tests check against the papers."""
    from fewshot_utils.paper_numbers import PAPER_NUMBERS

    text = (ROOT / "notebooks" / f"{stem}.py").read_text()
    for cell in PAPER_NUMBERS:
        if cell.paper in ("lifchitz2019dense", "oreshkin2018tadam") and cell.accuracy % 1:
            typed = (
                f"{cell.accuracy:.2f}" if cell.paper == "lifchitz2019dense" else str(cell.accuracy)
            )
            assert typed not in text, f"{stem}: {typed} ({cell.id}) typed, not from paper_numbers"
