"""Diagrams of the book's ideas, drawn with matplotlib so that the book builds offline.

One public function per diagram, each returning a :class:`~matplotlib.figure.Figure` about
10 x 3.6 inches (readable at 900 px, every font at least 9 pt):

- :func:`protonet_pipeline`: an episode through a Prototypical Network (chapter 0);
- :func:`gap_vs_dense`: global average pooling against dense classification (chapter 5);
- :func:`implant_block`: the implant stream beside the frozen last block (chapter 6), as
  :class:`fewshot_utils.implanting.Implants` computes it;
- :func:`tadam_ten_film`: TADAM's task embedding network and FiLM layers (chapter 7), as
  :mod:`fewshot_utils.tadam` computes them.

``ALT`` maps each diagram's name to its alt text, for readers who cannot see the picture; the
chapters pass it to Jupyter Book as the image's ``alt`` (cell metadata
``mystnb: {image: {alt: ...}}``). Colours are the Okabe-Ito palette, safe for colour-blind
readers; every box is a light tint of its colour, so black text stays legible.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.text import Text

__all__ = ["ALT", "protonet_pipeline", "gap_vs_dense", "implant_block", "tadam_ten_film"]

# Okabe-Ito: distinguishable with every common colour-vision deficiency.
BLUE, ORANGE, GREEN, VERMILION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
SKY, PURPLE, GREY = "#56B4E9", "#CC79A7", "#7F7F7F"
CLASS_COLOURS = (BLUE, ORANGE, GREEN)
FONT = 10.0  # box labels
SMALL = 9.0  # notes and arrow labels: the smallest size used

ALT = {
    "protonet_pipeline": (
        "Flow chart of a Prototypical Network. An episode's support set (N classes of K images "
        "each) and its query images pass through the same embedding network. In the embedding "
        "space, the support embeddings of each class are averaged into that class's prototype, "
        "and a query's embedding is compared with every prototype by a distance d: the squared "
        "Euclidean distance, or LSED. Minus the distance times a scale alpha (an inverse "
        "temperature) gives the logits, and a softmax turns them into the query's class "
        "probabilities."
    ),
    "gap_vs_dense": (
        "Two flow charts side by side. Left, global average pooling: the H by W by C feature "
        "map is averaged over its positions into one C-dimensional vector, which a cosine "
        "classifier (one weight vector per class, scale tau) scores; one softmax and one loss "
        "follow. Right, dense classification: each of the H times W local feature vectors is "
        "scored by the same cosine classifier, giving H times W softmaxes whose losses are "
        "averaged over the positions."
    ),
    "implant_block": (
        "The last residual block of ResNet-12 drawn as two parallel streams. The top, base "
        "stream of three convolutions is frozen after stage 1. The bottom, implant stream of "
        "three 16-channel convolutions is trained in stage 2 on the new task's support images: "
        "its first convolution reads the block input, and each later one reads the channel-wise "
        "concatenation of the base and implant activations of the layer below, while the base "
        "stream never sees the implants. The block's output is the concatenation of the base "
        "map and the 16-channel implant map."
    ),
    "tadam_ten_film": (
        "TADAM's task conditioning in two rows. Top: the support set is embedded by the "
        "ResNet-12 without conditioning, the mean of its class prototypes is the task "
        "representation, and the task embedding network (small residual MLPs h and g for each "
        "convolution) turns it into FiLM parameters: gamma equals 1 plus gamma-zero times h, "
        "beta equals beta-zero times g, where the learned scalars gamma-zero and beta-zero start "
        "at 0. Bottom: support and query images pass through the same ResNet-12, where every "
        "convolution is followed by batch norm, then FiLM (gamma times the features plus beta), "
        "then the activation; the conditioned features give prototypes, distances and a softmax."
    ),
}


# ----------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Box:
    """Where a drawn box sits (centre and size, in inches): its edges are arrow ends."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> tuple[float, float]:
        return (self.x - self.w / 2, self.y)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y)

    @property
    def top(self) -> tuple[float, float]:
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x, self.y - self.h / 2)


def _canvas(width: float = 10.0, height: float = 3.6) -> tuple[Figure, Axes]:
    """A white figure whose one invisible axes measures inches from the lower left corner,
    so that sizes in the drawing code are sizes on the page."""
    fig = plt.figure(figsize=(width, height), facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def _tint(colour: str, amount: float = 0.78) -> tuple[float, float, float]:
    """``colour`` mixed with ``amount`` of white: a fill light enough for black text."""
    return tuple(c + (1 - c) * amount for c in to_rgb(colour))


def _box(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str,
    colour: str = GREY,
    *,
    fontsize: float = FONT,
) -> _Box:
    """A rounded box of size ``w`` x ``h`` centred at ``(x, y)`` with ``text`` in its middle."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=_tint(colour),
            edgecolor=colour,
            linewidth=1.4,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, linespacing=1.3)
    return _Box(x, y, w, h)


def _arrow(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], colour: str = "black"
) -> None:
    """A straight arrow from ``start`` to ``end`` (inches), its head touching ``end``."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=12,
            color=colour,
            linewidth=1.3,
            shrinkA=0,
            shrinkB=0,
        )
    )


def _panel(ax: Axes, x: float, y: float, w: float, h: float, dashed: bool = False) -> None:
    """A light grey area from ``(x, y)`` (lower left) of size ``w`` x ``h`` that groups the
    drawings inside it (an embedding space, the inside of a network)."""
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.1",
            facecolor="#F7F7F7",
            edgecolor=GREY,
            linewidth=1.0,
            linestyle="--" if dashed else "-",
        )
    )


def _note(ax: Axes, x: float, y: float, text: str, **kwargs) -> Text:
    """Free text (a label beside a drawing, not in a box), ``SMALL`` and centred by default."""
    style = {"ha": "center", "va": "center", "fontsize": SMALL, "linespacing": 1.25}
    return ax.text(x, y, text, **{**style, **kwargs})


def _tiles(
    ax: Axes, x: float, y: float, colours: list[list[str]], size: float = 0.2, gap: float = 0.05
) -> None:
    """A grid of small squares (images, or positions of a feature map), row ``r`` column ``c``
    filled with ``colours[r][c]``, its upper left corner at ``(x, y)``."""
    for r, row in enumerate(colours):
        for c, colour in enumerate(row):
            ax.add_patch(
                Rectangle(
                    (x + c * (size + gap), y - (r + 1) * size - r * gap),
                    size,
                    size,
                    facecolor=colour,
                    edgecolor="black",
                    linewidth=0.6,
                )
            )


# ----------------------------------------------------------------------------- diagrams


def protonet_pipeline() -> Figure:
    """An episode through a Prototypical Network: support and query images embedded by one
    network, prototypes as class means, distances to them, scaled logits, softmax.

    Chapter 0 explains the method in these steps; the picture shows how the support and the
    query paths meet at the prototypes.
    """
    fig, ax = _canvas(10.0, 3.6)
    _episode(ax)
    f_sup = _box(ax, 2.3, 2.75, 0.95, 0.62, "embedding\n$f_\\phi$", SKY)
    f_qry = _box(ax, 2.3, 0.85, 0.95, 0.62, "embedding\n$f_\\phi$", SKY)
    _arrow(ax, (1.3, 2.75), f_sup.left)
    _arrow(ax, (1.3, 0.85), f_qry.left)
    ax.plot([2.3, 2.3], [f_sup.bottom[1], f_qry.top[1]], ls=":", color=GREY, lw=1.3)
    _note(ax, 2.38, 1.8, "same\nweights", ha="left", color="#444444")
    left, right = _embedding_space(ax, 3.15, 5.45)
    _arrow(ax, f_sup.right, (left, 2.75))
    _arrow(ax, f_qry.right, (left, 0.85))
    logits = _box(ax, 6.35, 2.1, 1.45, 0.8, "logits\n$-\\alpha\\, d(f_\\phi(x), c_k)$", PURPLE)
    _note(
        ax,
        6.35,
        1.05,
        "d: squared Euclidean\n(or LSED, chapter 2)\nα: the scale\n(1 / temperature)",
    )
    _arrow(ax, (right, 2.1), logits.left)
    soft = _box(ax, 7.75, 2.1, 0.9, 0.55, "softmax", VERMILION)
    _arrow(ax, logits.right, soft.left)
    _probabilities(fig, ax, soft)
    return fig


def _episode(ax: Axes) -> None:
    """The episode of :func:`protonet_pipeline`: a support grid and two query images."""
    _note(ax, 0.75, 3.4, "support set", fontsize=FONT)
    _tiles(ax, 0.35, 3.15, [[c] * 3 for c in CLASS_COLOURS], size=0.2, gap=0.08)
    _note(ax, 0.75, 2.0, "N classes\n× K images")
    _note(ax, 0.75, 1.25, "queries x", fontsize=FONT)
    _tiles(ax, 0.49, 0.95, [["#D9D9D9", "#D9D9D9"]], size=0.2, gap=0.08)


def _embedding_space(ax: Axes, left: float, right: float) -> tuple[float, float]:
    """Embedded supports (dots), prototypes (stars) and a query (diamond) with its distances
    to every prototype, in a panel from ``left`` to ``right``; returns its x extent."""
    _panel(ax, left, 0.3, right - left, 3.0)
    _note(ax, (left + right) / 2, 3.1, "embedding space", fontsize=FONT)
    centres = [(left + 0.55, 2.3), (right - 0.55, 2.2), (left + 1.2, 1.15)]
    offsets = [(-0.18, 0.1), (0.16, 0.14), (0.02, -0.18)]
    query = (left + 1.2, 1.9)
    for (cx, cy), colour in zip(centres, CLASS_COLOURS):
        ax.plot([query[0], cx], [query[1], cy], color=GREY, lw=1.0, ls="--", zorder=2)
        for dx, dy in offsets:
            ax.plot(cx + dx, cy + dy, "o", color=colour, ms=6, mec="black", mew=0.5, zorder=3)
        ax.plot(cx, cy, "*", color=colour, ms=17, mec="black", mew=0.7, zorder=4)
    ax.plot(*query, "D", color="black", ms=6, zorder=5)
    _note(ax, query[0] - 0.1, query[1] - 0.08, "query\n$f_\\phi(x)$", ha="right", va="top")
    _note(ax, centres[1][0], centres[1][1] + 0.48, "prototype $c_k$")
    _note(ax, (left + right) / 2, 0.58, "● support embeddings\n★ class mean = prototype")
    _note(ax, right - 0.5, 1.4, "$d(f_\\phi(x), c_k)$")
    return left, right


def _probabilities(fig: Figure, ax: Axes, soft: _Box) -> None:
    """A small bar chart of a query's class probabilities right of the softmax box."""
    x0, y0 = soft.right[0] + 0.35, 1.45
    width, height = 0.9, 1.2
    page_w, page_h = fig.get_size_inches()
    bars = fig.add_axes((x0 / page_w, y0 / page_h, width / page_w, height / page_h))
    bars.bar(range(3), [0.72, 0.18, 0.10], color=CLASS_COLOURS, edgecolor="black", lw=0.6)
    bars.set_ylim(0, 1)
    bars.set_xticks([])
    bars.set_yticks([])
    for side in ("top", "right"):
        bars.spines[side].set_visible(False)
    _arrow(ax, soft.right, (x0 - 0.05, soft.y))
    _note(ax, x0 + width / 2, y0 + height + 0.3, "class\nprobabilities", fontsize=FONT)
    _note(ax, x0 + width / 2, y0 - 0.25, "$p(y = k \\mid x)$")


def _stack(
    ax: Axes, x: float, y: float, w: float, h: float, text: str, colour: str, n: int = 3
) -> _Box:
    """``n`` copies of a box centred at ``(x, y)``, each shifted up and right behind the front
    one: the same operation repeated (one per position); returns the extent of them all."""
    step = 0.07
    for i in range(n - 1, 0, -1):
        _box(ax, x + i * step, y + i * step, w, h, "", colour)
    _box(ax, x, y, w, h, text, colour)
    d = (n - 1) * step
    return _Box(x + d / 2, y + d / 2, w + d, h + d)


def _feature_map(ax: Axes, x: float, y: float, highlight: bool = False) -> _Box:
    """A 3 x 3 feature map (H x W positions, C channels in depth) centred at ``(x, y)``; with
    ``highlight`` one position is filled in orange, to stand for any one of them."""
    size, gap, step = 0.22, 0.04, 0.07
    side = 3 * size + 2 * gap
    for i in (2, 1):  # the channels behind the front slice
        ax.add_patch(
            Rectangle(
                (x - side / 2 + i * step, y - side / 2 + i * step),
                side,
                side,
                facecolor=_tint(SKY, 0.5),
                edgecolor="black",
                linewidth=0.6,
            )
        )
    colours = [[SKY] * 3 for _ in range(3)]
    if highlight:
        colours[1][1] = ORANGE
    _tiles(ax, x - side / 2, y + side / 2, colours, size, gap)
    return _Box(x, y, side, side)


def gap_vs_dense() -> Figure:
    """Lifchitz et al.'s Figures 1b and 2 side by side: a cosine classifier on the globally
    average-pooled feature map (left) against the same classifier at every position (right).

    Chapter 5 compares the two stage-1 trainings; the picture shows that they differ only in
    where the averaging happens: before the classifier, or over the losses after it.
    """
    fig, ax = _canvas(10.0, 3.6)
    ax.plot([5.0, 5.0], [0.2, 3.4], color=GREY, lw=1.0)
    _gap_panel(ax, 0.0)
    _dense_panel(ax, 5.0)
    return fig


_FLOW_Y = 2.05  # height of the main flow of gap_vs_dense


def _gap_panel(ax: Axes, ox: float) -> None:
    """Global average pooling: one vector per image, one softmax, one loss."""
    _note(ax, ox + 2.5, 3.3, "global average pooling (GAP)", fontsize=FONT + 1, weight="bold")
    fmap = _feature_map(ax, ox + 0.6, _FLOW_Y)
    _note(ax, fmap.x, 1.3, "feature map\nH × W × C")
    _arrow(ax, (ox + 1.2, _FLOW_Y), (ox + 1.74, _FLOW_Y))
    _note(ax, ox + 1.47, _FLOW_Y + 0.1, "average", va="bottom")
    _tiles(ax, ox + 1.8, _FLOW_Y + 0.36, [[SKY]] * 4, size=0.16, gap=0.03)
    _note(ax, ox + 1.88, 1.3, "one\nC-vector a")
    cls = _box(
        ax, ox + 2.85, _FLOW_Y, 1.1, 1.0, "cosine\nclassifier\n$\\tau\\,\\cos(a, w_j)$", PURPLE
    )
    _arrow(ax, (ox + 2.02, _FLOW_Y), cls.left)
    soft = _box(ax, ox + 4.2, _FLOW_Y, 0.9, 0.5, "softmax", VERMILION)
    _arrow(ax, cls.right, soft.left)
    loss = _box(ax, soft.x, 0.95, 0.9, 0.5, "loss", GREY)
    _arrow(ax, soft.bottom, loss.top)
    _note(ax, ox + 2.5, 0.3, "one prediction per image", style="italic")


def _dense_panel(ax: Axes, ox: float) -> None:
    """Dense classification: the same classifier at each of the H x W positions."""
    _note(ax, ox + 2.5, 3.3, "dense classification (DC)", fontsize=FONT + 1, weight="bold")
    fmap = _feature_map(ax, ox + 0.6, _FLOW_Y, highlight=True)
    _note(ax, fmap.x, 1.3, "feature map\nH × W × C")
    _note(ax, ox + 1.72, _FLOW_Y + 0.1, "each position k\nseparately", va="bottom")
    cls = _stack(
        ax, ox + 2.8, _FLOW_Y, 1.1, 1.0, "cosine\nclassifier\n$\\tau\\,\\cos(a^{(k)}, w_j)$", PURPLE
    )
    _arrow(ax, (ox + 1.2, _FLOW_Y), (cls.left[0], _FLOW_Y))
    soft = _stack(ax, ox + 4.2, _FLOW_Y, 0.95, 0.6, "H × W\nsoftmaxes", VERMILION)
    _arrow(ax, (cls.right[0], _FLOW_Y), (soft.left[0], _FLOW_Y))
    loss = _box(ax, soft.x, 0.95, 1.3, 0.5, "loss averaged\nover positions", GREY)
    _arrow(ax, (soft.x, _FLOW_Y - 0.3), loss.top)
    _note(ax, ox + 2.5, 0.3, "a prediction at every position", style="italic")


_BASE_Y, _IMPLANT_Y = 2.7, 1.0  # heights of the two streams of implant_block


def implant_block() -> Figure:
    """The last residual block with implants, as :class:`~fewshot_utils.implanting.Implants`
    computes it: a frozen base stream and a 16-channel implant stream beside it.

    Each implant convolution after the first reads the concatenation of the base and implant
    activations below it (Lifchitz et al.'s Figure 4), and nothing flows back into the base
    stream, so the network keeps what stage 1 learned; the block's output is the
    concatenation of both maps.
    """
    fig, ax = _canvas(10.0, 3.6)
    x_in = _box(ax, 0.6, 1.85, 1.05, 0.85, "x: output of\nblocks 1–3\n(frozen)", GREY)
    base = _stream(ax, _BASE_Y, "conv {}", BLUE)
    implants = _stream(ax, _IMPLANT_Y, "conv′ {}", ORANGE)
    _arrow(ax, (x_in.right[0], 2.05), base[0].left)
    _arrow(ax, (x_in.right[0], 1.65), implants[0].left)
    for i in range(2):  # base activation a_{i+1} joins the implant's a'_{i+1}
        x_join = (base[i].x + base[i + 1].x) / 2
        join = _box(ax, x_join, _IMPLANT_Y, 0.58, 0.32, "concat", GREY, fontsize=SMALL)
        _arrow(ax, base[i].right, base[i + 1].left)
        _arrow(ax, (join.x, _BASE_Y), join.top)
        _arrow(ax, implants[i].right, join.left)
        _arrow(ax, join.right, implants[i + 1].left)
        _note(ax, join.x - 0.3, _BASE_Y + 0.06, f"$a_{i + 1}$", va="bottom")
        _note(ax, join.x - 0.44, _IMPLANT_Y + 0.06, f"$a'_{i + 1}$", va="bottom")
    _note(ax, base[1].x, 3.35, "base stream: frozen after stage 1 (d channels)", color=BLUE)
    _note(
        ax,
        base[1].x,
        0.3,
        "implant stream: 16 channels, trained in stage 2 on the task's supports",
        color=VERMILION,
    )
    out = _box(ax, 8.0, 1.85, 1.3, 0.6, "concat\n[base, implant]", GREY)
    _arrow(ax, base[2].right, (out.left[0], 2.0))
    _arrow(ax, implants[2].right, (out.left[0], 1.7))
    emb = _box(ax, 9.45, 1.85, 0.95, 0.85, "embedding\nd + 16\nchannels", SKY)
    _arrow(ax, out.right, emb.left)
    return fig


def _stream(ax: Axes, y: float, name: str, colour: str) -> list[_Box]:
    """The three convolution layers of one stream of :func:`implant_block` at height ``y``;
    ``name`` formats the layer number."""
    texts = ["{}\nBN, act", "{}\nBN, act", "{}, BN\n+ shortcut\nact, pool"]
    return [
        _box(ax, x, y, 1.05, 0.8 if i == 2 else 0.6, t.format(name.format(i + 1)), colour)
        for i, (x, t) in enumerate(zip((2.0, 4.25, 6.5), texts))
    ]


_TASK_Y, _FILM_Y = 2.85, 1.05  # heights of the two rows of tadam_ten_film


def tadam_ten_film() -> Figure:
    """TADAM's task conditioning as :mod:`fewshot_utils.tadam` computes it: the support set
    gives a task representation, the TEN maps it to FiLM parameters, and FiLM layers inside
    the ResNet-12 condition the features of supports and queries on the task.

    Chapter 7 trains the TEN; the picture shows the two passes through the feature extractor
    (unconditioned for the task representation, then conditioned) and where FiLM acts.
    """
    fig, ax = _canvas(10.0, 3.6)
    params = _task_row(ax)
    film = _film_row(ax)
    turn = 2.0  # the FiLM parameters go down, left above the bottom row, down into FiLM
    ax.plot([params.x, params.x, film.x], [params.bottom[1], turn, turn], color=VERMILION, lw=1.3)
    _arrow(ax, (film.x, turn), film.top, VERMILION)
    _note(ax, 5.3, turn + 0.06, "γ, β for every convolution", color=VERMILION, va="bottom")
    return fig


def _task_row(ax: Axes) -> _Box:
    """Support set -> unconditioned ResNet-12 -> prototypes -> task representation -> TEN ->
    FiLM parameters; returns the box of the FiLM parameters."""
    _note(ax, 0.5, 3.45, "support set")
    _tiles(ax, 0.2, _TASK_Y + 0.38, [[c] * 2 for c in CLASS_COLOURS], size=0.2, gap=0.08)
    net = _box(ax, 1.55, _TASK_Y, 1.05, 0.62, "ResNet-12\n(no FiLM)", SKY)
    _arrow(ax, (0.85, _TASK_Y), net.left)
    protos = _box(ax, 2.9, _TASK_Y, 1.2, 0.62, "class\nprototypes $c_k$", GREEN)
    _arrow(ax, net.right, protos.left)
    task = _box(
        ax, 4.55, _TASK_Y, 1.75, 0.62, "task representation\n$t$ = mean of the $c_k$", GREEN
    )
    _arrow(ax, protos.right, task.left)
    ten = _box(ax, 6.45, _TASK_Y, 1.6, 0.62, "TEN: per conv,\nresidual MLPs h, g", PURPLE)
    _arrow(ax, task.right, ten.left)
    params = _box(ax, 8.65, _TASK_Y, 1.75, 0.62, "γ = 1 + γ₀ · h(t)\nβ = β₀ · g(t)", VERMILION)
    _arrow(ax, ten.right, params.left)
    _note(ax, params.x - 0.12, 2.3, "γ₀, β₀ start at 0:\nFiLM starts as identity", ha="right")
    return params


def _film_row(ax: Axes) -> _Box:
    """Support and query images through the ResNet-12 with FiLM after every batch norm, then
    the Prototypical Network's head; returns the FiLM box."""
    images = _box(ax, 0.65, _FILM_Y, 1.1, 0.62, "support and\nquery images", GREY)
    _panel(ax, 1.45, 0.3, 4.0, 1.3, dashed=True)
    _arrow(ax, images.right, (1.45, _FILM_Y))
    steps = [(2.05, 0.75, "conv\n3×3", SKY), (2.85, 0.5, "BN", SKY)]
    steps += [(3.8, 1.05, "FiLM\nγ · x + β", VERMILION), (4.8, 0.6, "act", SKY)]
    boxes = [_box(ax, x, _FILM_Y, w, 0.62, t, c) for x, w, t, c in steps]
    for a, b in zip(boxes, boxes[1:]):
        _arrow(ax, a.right, b.left)
    _note(ax, 3.45, 0.45, "the same ResNet-12: 3 times in each of its 4 blocks")
    feats = _box(ax, 6.4, _FILM_Y, 1.2, 0.62, "conditioned\nfeatures", SKY)
    _arrow(ax, (5.45, _FILM_Y), feats.left)
    head = _box(ax, 8.6, _FILM_Y, 1.9, 0.62, "prototypes, $-\\alpha\\, d$,\nsoftmax", GREEN)
    _arrow(ax, feats.right, head.left)
    return boxes[2]
