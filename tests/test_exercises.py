"""Every chapter ends as a lesson: a summary, at least three exercises (one that runs in
under two minutes, with its time stated, in a cell tagged ``exercise`` that the smoke run
executes), and a paragraph on what comes next; it opens with what the reader will learn."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(p for p in NOTEBOOKS.glob("0*.ipynb"))


def _cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def test_every_chapter_is_checked():
    assert len(CHAPTERS) == 9  # chapters 0-7 with 4b


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_opens_with_its_lesson_and_ends_with_summary_exercises_and_next(path):
    cells = _cells(path)
    text = [c.source for c in cells if c.cell_type == "markdown"]
    assert any("**What you will learn.**" in t for t in text[:3]), "no 'What you will learn'"
    assert any("**The question.**" in t for t in text[:3]), "no 'The question'"
    heads = [h for t in text for h in re.findall(r"^## (.+)$", t, re.M)]
    tail = [h for h in heads if h in ("Summary", "Exercises", "What comes next")]
    assert tail == ["Summary", "Exercises", "What comes next"], heads[-5:]
    exercises = re.findall(r"\*\*Exercise (\d+)[ .(]", "\n".join(text))
    assert len(exercises) >= 3 and exercises == [str(i + 1) for i in range(len(exercises))]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_quick_exercise_states_its_time_and_runs_in_smoke_only_unless_asked(path):
    cells = _cells(path)
    quick = [c for c in cells if c.cell_type == "code" and "exercise" in c.metadata.get("tags", [])]
    assert quick, "no code cell tagged 'exercise'"
    for c in quick:
        assert re.search(r"about \d+ (s|min) on 2 CPU cores", c.source), c.source[:120]
        assert "exercises_on(EXERCISES, profile)" in c.source
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and re.search(r"^EXERCISES = None", params[0].source, re.M)
