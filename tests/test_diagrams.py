"""The diagrams of fewshot_utils.diagrams: the terms a reader looks for, alt text for each, no
label over another or spilling out of its box, legible sizes, and the chapters' alt text."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import nbformat
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from fewshot_utils import diagrams

ROOT = Path(__file__).resolve().parents[1]

KEY_TERMS = {
    "protonet_pipeline": ["support", "quer", "prototype", "softmax", "logits", "LSED", "f_\\phi"],
    "gap_vs_dense": ["average", "cosine", "w_j", "tau", "softmax", "loss", "position"],
    "implant_block": ["frozen", "concat", "implant", "16 channels", "stage 1", "stage 2"],
    "tadam_ten_film": ["FiLM", "γ", "β", "TEN", "prototypes", "mean", "BN", "query"],
}
NAMES = sorted(KEY_TERMS)
# Where the chapters show a diagram: notebook stem -> diagram name.
PLACED = {
    "00_episodes_and_prototypes": "protonet_pipeline",
    "05_dense_classification": "gap_vs_dense",
    "06_implanting": "implant_block",
    "07_tadam": "tadam_ten_film",
}


@pytest.fixture(params=NAMES)
def drawn(request):
    """``(name, figure)`` of each diagram, drawn; the figure is closed afterwards."""
    fig = getattr(diagrams, request.param)()
    fig.canvas.draw()
    yield request.param, fig
    plt.close(fig)
    assert not plt.fignum_exists(fig.number)


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_diagram_is_public_and_has_alt_text():
    assert set(diagrams.__all__) == {"ALT", *NAMES}
    assert set(diagrams.ALT) == set(NAMES)
    for name, alt in diagrams.ALT.items():
        assert len(alt.split()) >= 15, f"{name}: alt text too short to describe the picture"
        assert not set("$\\_") & set(alt), f"{name}: alt text is read aloud: no TeX, no x_k"


def test_diagram_shows_its_key_terms(drawn):
    name, fig = drawn
    assert isinstance(fig, Figure)
    text = " ".join(t.get_text() for t in _texts(fig))
    missing = [term for term in KEY_TERMS[name] if term not in text]
    assert not missing, f"{name} does not show {missing}"


def test_diagram_is_legible_at_page_width(drawn):
    name, fig = drawn
    width, height = fig.get_size_inches()
    assert 9 <= width <= 11 and height <= 4.5, f"{name}: {width} x {height} in"
    small = [(t.get_text(), t.get_fontsize()) for t in _texts(fig) if t.get_fontsize() < 9]
    assert not small, f"{name}: text under 9 pt: {small}"


def test_no_two_labels_overlap(drawn):
    name, fig = drawn
    boxes = [(t.get_text(), t.get_window_extent()) for t in _texts(fig)]
    clashes = [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]
    assert not clashes, f"{name}: overlapping labels {clashes}"


def test_every_label_is_inside_the_figure(drawn):
    name, fig = drawn
    page = fig.bbox
    outside = [t.get_text() for t in _texts(fig) if not _within(t.get_window_extent(), page)]
    assert not outside, f"{name}: labels cut off at the edge: {outside}"


def test_box_labels_fit_their_boxes(drawn):
    """A label centred on a box lies wholly inside it, with a margin of 2 px."""
    name, fig = drawn
    patches = [p.get_window_extent() for p in fig.findobj(FancyBboxPatch)]
    spills = []
    for t in _texts(fig):
        ext = t.get_window_extent()
        for box in patches:
            centred = (
                abs(box.x0 + box.x1 - ext.x0 - ext.x1) < 2
                and abs(box.y0 + box.y1 - ext.y0 - ext.y1) < 2
            )
            if centred and not _within(ext, box, margin=2):
                spills.append(t.get_text())
    assert not spills, f"{name}: labels wider or taller than their boxes: {spills}"


def _within(inner: Bbox, outer: Bbox, margin: float = 0.0) -> bool:
    return (
        inner.x0 >= outer.x0 + margin
        and inner.x1 <= outer.x1 - margin
        and inner.y0 >= outer.y0 + margin
        and inner.y1 <= outer.y1 - margin
    )


def test_the_box_check_catches_a_spill():
    """The fit check is not vacuous: a long label in a small box is caught."""
    fig, ax = diagrams._canvas(4.0, 2.0)
    diagrams._box(ax, 2.0, 1.0, 0.5, 0.4, "a label far wider than its box")
    fig.canvas.draw()
    (patch,) = fig.findobj(FancyBboxPatch)
    (text,) = _texts(fig)
    assert not _within(text.get_window_extent(), patch.get_window_extent(), margin=2)
    plt.close(fig)


@pytest.mark.parametrize("stem", sorted(PLACED))
def test_chapters_carry_the_alt_text(stem):
    """The chapter's diagram cell hides its code and gives Jupyter Book the image's alt text
    (myst-nb reads ``mystnb.image.alt`` of the cell metadata), the one of ``ALT``."""
    name = PLACED[stem]
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and f"diagrams.{name}()" in c.source]
    assert len(cells) == 1, f"{stem}: expected one cell drawing diagrams.{name}()"
    meta = cells[0].metadata
    assert "hide-input" in meta.get("tags", [])
    assert meta.get("mystnb", {}).get("image", {}).get("alt") == diagrams.ALT[name]
