"""The reproduction table: every results record beside the published number it reproduces.

:func:`compare` pairs each cell of :data:`fewshot_utils.paper_numbers.PAPER_NUMBERS` with the
records that reproduce it (how a record names its cells is said there), one line per record,
and one line saying "not measured yet" for a cell that no record reproduces: a missing number
stays missing, it is never filled with the paper's. :func:`markdown_table` and
:func:`plot_differences` draw them; :func:`unmatched` lists the records that reproduce no
published cell (e.g. the book's own experiments), so that every record appears somewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import display
from .paper_numbers import PAPER_NUMBERS, SAME_EXPERIMENT, PaperNumber, by_id

__all__ = [
    "Comparison",
    "record_cells",
    "compare",
    "unmatched",
    "markdown_table",
    "records_table",
    "plot_differences",
    "reductions",
]

PROFILE_ORDER = {"full": 0, "cpu": 1}  # the papers' protocol first; smoke is never a record
_TOL = 0.005  # percent: printed numbers have two decimals at most


@dataclass(frozen=True)
class Comparison:
    """One line of the table: a published cell and one record of ours, or ``record=None``."""

    paper: PaperNumber
    record: dict | None

    @property
    def ours(self) -> float | None:
        """Our accuracy in percent, or None when not measured."""
        return None if self.record is None else 100.0 * self.record["accuracy"]

    @property
    def ours_ci95(self) -> float | None:
        return None if self.record is None else 100.0 * self.record["ci95"]

    @property
    def difference(self) -> float | None:
        """Ours minus the paper's, in percentage points."""
        return None if self.ours is None else self.ours - self.paper.accuracy

    @property
    def difference_ci95(self) -> float | None:
        """Half-width of the 95% interval of the difference: our interval and the paper's,
        when it prints one, added in quadrature (independent runs); ours alone otherwise."""
        if self.ours_ci95 is None:
            return None
        return math.hypot(self.ours_ci95, self.paper.ci95 or 0.0)


def _name(record: dict) -> str:
    return "__".join(
        str(record.get(k)) for k in ("experiment", "dataset", "method", "way", "shot", "profile")
    )


def record_cells(
    record: dict,
    numbers: Sequence[PaperNumber] = PAPER_NUMBERS,
) -> list[str]:
    """Ids of the published cells ``record`` reproduces.

    Its ``paper_rows`` field (a list of ids, or one id) when present, each
    checked to exist; otherwise every cell of the same dataset, way and shot
    whose accuracy is the record's ``paper_accuracy`` (a fraction), and none
    when the record has no ``paper_accuracy``. Cells of two different
    experiments that print the same number are an error: the record must name
    its cell.
    """
    explicit = record.get("paper_rows")
    if explicit is not None:
        ids = [explicit] if isinstance(explicit, str) else list(explicit)
        for i in ids:
            try:
                by_id(i)
            except KeyError as err:
                msg = f"record {_name(record)}: {err.args[0]}"
                raise KeyError(msg) from None
        return ids
    published = record.get("paper_accuracy")
    if published is None:
        return []
    task = (record["dataset"], record["way"], record["shot"])
    printed = 100.0 * published
    ids = [
        p.id
        for p in numbers
        if (p.dataset, p.way, p.shot) == task
        if abs(p.accuracy - printed) < _TOL
    ]
    same = any(set(ids) <= group for group in SAME_EXPERIMENT)
    if len(ids) > 1 and not same:
        raise ValueError(
            f"record {_name(record)}: its paper_accuracy "
            f"{100 * published:.2f} is printed by cells of different "
            f"experiments {ids}; name the one it reproduces in the "
            "record's paper_rows"
        )
    return ids


def _order(record: dict) -> tuple:
    return (PROFILE_ORDER.get(record["profile"], 9), record["experiment"], record["method"])


def compare(
    records: Iterable[dict], numbers: Sequence[PaperNumber] = PAPER_NUMBERS
) -> list[Comparison]:
    """One :class:`Comparison` per (cell, record reproducing it), in the order of ``numbers``
    (records: ``full`` before ``cpu``), and ``Comparison(cell, None)`` for a cell without one."""
    found: dict[str, list[dict]] = {p.id: [] for p in numbers}
    for record in records:
        if record.get("profile") == "smoke":
            raise ValueError(f"record {_name(record)} is a smoke run: smoke runs are never results")
        for i in record_cells(record, numbers):
            if i in found:
                found[i].append(record)
    out = []
    for p in numbers:
        matched = sorted(found[p.id], key=_order)
        out.extend([Comparison(p, r) for r in matched] or [Comparison(p, None)])
    return out


def unmatched(
    records: Iterable[dict], numbers: Sequence[PaperNumber] = PAPER_NUMBERS
) -> list[dict]:
    """The records that reproduce none of ``numbers``."""
    ids = {p.id for p in numbers}
    return [r for r in records if not ids.intersection(record_cells(r, numbers))]


NBSP = "\u00a0"  # keeps "95.46 ± 0.05" on one line in narrow table columns


def _pct(x: float | None, ci: float | None = None, signed: bool = False) -> str:
    if x is None:
        return "—"
    s = f"{x:+.2f}" if signed else f"{x:.2f}"
    return s if ci is None else f"{s}{NBSP}±{NBSP}{ci:.2f}"


def _wall(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_RESNET12 = (64, 128, 256, 512)
_PROTONET_MINI = dict(
    tasks=600,
    train_way={1: 30, 5: 20},
    train_query=15,
    train_length="early stopping on the validation loss",
    test_per_class=600,
)
_PROTOCOL = {  # (experiment, dataset) -> the papers' protocol, in the fields records carry
    ("ch03_protonet_omniglot", "omniglot"): dict(
        tasks=1000, train_way={1: 60, 5: 60}, train_query=5
    ),
    ("ch04_protonet_miniimagenet", "miniimagenet"): _PROTONET_MINI,
    ("ch04_long_training", "miniimagenet"): _PROTONET_MINI,
    ("ch05_dense_classification", "miniimagenet"): dict(
        widths=_RESNET12, iterations=(8000, 200), tasks=10_000, test_per_class=600
    ),
    ("ch05_dense_classification", "fc100"): dict(
        widths=_RESNET12, iterations=(12_500, 512), tasks=10_000, test_per_class=600
    ),
    ("ch06_implanting", "miniimagenet"): dict(
        widths=_RESNET12, iterations=(8000, 200), tasks=10_000, test_per_class=600
    ),
    ("ch06_implanting", "fc100"): dict(widths=_RESNET12, tasks=10_000, test_per_class=600),
    ("ch07_tadam", "miniimagenet"): dict(
        widths=_RESNET12,
        episodes=30_000,
        image_side=84,
        test_per_class=600,
        aux_batch=64,
        distance="euclidean",  # the official code's: not squared
        episodes_per_step=2,
    ),
}
"""What ``protocols.md`` states of each chapter's protocol; :func:`reductions` sets a record
beside it. Lifchitz et al. test implanting on 5,000 tasks and everything else on 10,000."""


def _widths(r: dict) -> tuple[int, ...] | None:
    cfg = r.get("config") or {}
    if cfg.get("network", "resnet12") != "resnet12":
        return None  # the protocol's widths are ResNet-12's (C128F is the paper's own)
    if cfg.get("widths") is not None:
        return tuple(cfg["widths"])
    backbone = str(cfg.get("backbone", ""))
    if backbone.startswith("resnet12-"):
        return tuple(int(w) for w in backbone.split("-")[1:])
    return None


def reductions(r: dict) -> list[str]:
    """How record ``r`` departs from its paper's protocol (:data:`_PROTOCOL`): network width,
    training episodes (way, shot, query, length), iterations and batch, image size, the
    distance, auxiliary batch and episodes per step (TADAM), number of test tasks and test
    images per class; each as "ours (paper: theirs)". Empty when nothing differs or the
    protocol is not known."""
    paper = _PROTOCOL.get((r.get("experiment"), r.get("dataset")))
    if paper is None:
        return []
    cfg, out = r.get("config") or {}, []
    widths = _widths(r)
    want = paper.get("widths")
    if want is not None and "-wide-" in str(r.get("method")):
        want = (*want[:-1], want[-1] + 16)  # WIDE: the last block widened by 16 channels
    if want is not None and widths is not None and widths != want:
        out.append(f"widths {_dash(widths)} (paper: {_dash(want)})")
    out += _episodic(r, cfg, paper)
    if "iterations" in paper and r.get("train_iterations") is not None:
        its, batch = r["train_iterations"], cfg.get("batch_size")
        if (its, batch) != paper["iterations"]:
            p_its, p_batch = paper["iterations"]
            out.append(f"{its:,} iterations of batch {batch} (paper: {p_its:,} of {p_batch})")
    if cfg.get("aux_batch") is not None and cfg["aux_batch"] != paper.get(
        "aux_batch", cfg["aux_batch"]
    ):
        out.append(f"auxiliary batch {cfg['aux_batch']} (paper: {paper['aux_batch']})")
    distance = (cfg.get("model") or {}).get("distance")
    if "distance" in paper and distance is not None and distance != paper["distance"]:
        out.append(f"{distance.replace('_', ' ')} distance (paper: {paper['distance']})")
    if "episodes_per_step" in paper:
        out.append(f"1 episode per step (paper: {paper['episodes_per_step']})")
    if "episodes" in paper and r.get("train_episodes") is not None:
        if r["train_episodes"] != paper["episodes"]:
            out.append(f"{r['train_episodes']:,} training episodes (paper: {paper['episodes']:,})")
    side = cfg.get("image_side")
    if "image_side" in paper and side is not None and side != paper["image_side"]:
        out.append(f"{side} px images (paper: {paper['image_side']})")
    tasks = paper.get("tasks")
    if tasks is not None and "-imp-" in str(r.get("method")):
        tasks = 5000  # implanting experiments
    if tasks is not None and r.get("unit", "episodes") == "episodes" and r["episodes"] < tasks:
        out.append(f"{r['episodes']:,} test tasks (paper: {tasks:,})")
    per_class = cfg.get("test_per_class")
    if "test_per_class" in paper and per_class is not None and per_class < paper["test_per_class"]:
        out.append(f"{per_class} test images per class (paper: {paper['test_per_class']})")
    return out


def _episodic(r: dict, cfg: dict, paper: dict) -> list[str]:
    """A Prototypical Network's training episodes against the protocol's: the way and
    queries for the shot trained, the shot (the protocol trains at the test's shot), and
    the length."""
    if "train_way" not in paper or cfg.get("way") is None:
        return []
    out, shot = [], cfg.get("shot", r["shot"])
    if shot != r["shot"]:
        out.append(
            f"tested at {r['shot']} shots, trained on {shot}-shot episodes (paper: the same shot)"
        )
    way = paper["train_way"].get(r["shot"])
    if way is not None and cfg["way"] != way:
        out.append(f"{cfg['way']}-way training episodes (paper: {way})")
    if cfg.get("query") is not None and cfg["query"] != paper["train_query"]:
        out.append(f"{cfg['query']} training queries per class (paper: {paper['train_query']})")
    if "train_length" in paper and r.get("train_episodes") is not None:
        out.append(f"{r['train_episodes']:,} training episodes (paper: {paper['train_length']})")
    return out


def _dash(widths: Sequence[int]) -> str:
    return "-".join(map(str, widths))


def _provenance(r: dict) -> str:
    """Device, wall time, commit, experiment, training length (and shot when it differs from
    the test's), test (or ``split``) episodes, or the images of an accuracy computed over a
    fixed image set, then how it departs from the paper's protocol (:func:`reductions`)."""
    commit = str(r["commit"])
    train = ""
    if r.get("train_episodes") is not None:
        shot = r.get("train_shot")
        train = f"{r['train_episodes']:,} training episodes" + (
            f" ({shot}-shot)" if shot is not None and shot != r["shot"] else ""
        )
        train += ", "
    elif r.get("train_iterations") is not None:
        batch = (r.get("config") or {}).get("batch_size")
        train = f"{r['train_iterations']:,} training iterations"
        train += (f" of batch {batch}" if batch else "") + ", "
    if r.get("unit") == "images":
        tested = f"{r['episodes']:,} images, each once (Wilson interval)"
    else:
        tested = f"{r['episodes']:,} {r.get('split') or 'test'} episodes"
    if r.get("interval"):
        tested += f" (interval {r['interval']})"
    reduced = reductions(r)
    return (
        f"{r['device']}, {_wall(r['wall_time_s'])}, commit `{commit[:7]}"
        f"{'-dirty' if commit.endswith('-dirty') else ''}`; {r['experiment']}: {train}{tested}"
        + (f"; reduced: {'; '.join(reduced)}" if reduced else "")
    )


_HEAD = ["row", "setting", "paper", "profile", "ours", "ours − paper", "provenance"]


def markdown_table(comparisons: Sequence[Comparison]) -> str:
    """A Markdown table: the published cell, the profile of our number, ours ± 95% CI, the
    difference ± its 95% CI (percentage points) and the record's provenance; "not measured
    yet" where no record reproduces the cell."""
    lines = []
    for c in comparisons:
        p = c.paper
        label = p.row + (f" ({p.column})" if p.column else "")
        paper = _pct(p.accuracy, p.ci95)
        if c.record is None:
            lines.append([label, p.setting, paper, "—", "*not measured yet*", "—", ""])
        else:
            lines.append(
                [
                    label,
                    p.setting,
                    paper,
                    f"**{c.record['profile']}**",
                    _pct(c.ours, c.ours_ci95),
                    _pct(c.difference, c.difference_ci95, signed=True),
                    _provenance(c.record),
                ]
            )
    return display.markdown_table(_HEAD, lines, align="---")


def records_table(records: Sequence[dict]) -> str:
    """A Markdown table of records on their own (those that reproduce no published cell)."""
    head = ["experiment", "dataset", "method", "setting", "profile", "ours", "provenance"]
    lines = [
        [
            r["experiment"],
            r["dataset"],
            str(r["method"]),
            f"{r['way']}-way {r['shot']}-shot",
            f"**{r['profile']}**",
            _pct(100 * r["accuracy"], 100 * r["ci95"]),
            _provenance(r),
        ]
        for r in sorted(
            records,
            key=lambda r: (
                r["experiment"],
                r["dataset"],
                r["method"],
                r["way"],
                r["shot"],
                _order(r),
            ),
        )
    ]
    return display.markdown_table(head, lines, align="---")


def plot_differences(comparisons: Sequence[Comparison], ax=None, title: str = ""):
    """Ours minus the paper's (percentage points) with the 95% interval of the difference, one
    point per measured line, coloured by profile; the cells not measured yet are not drawn
    (the title counts them). Returns the axes."""
    import matplotlib.pyplot as plt

    measured = [c for c in comparisons if c.record is not None]
    cells = {c.paper.id for c in comparisons}
    done = {c.paper.id for c in measured}
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * max(len(measured), 2) + 1.2))
    ax.axvline(0.0, color="0.3", lw=1)
    colours = {"full": "C0", "cpu": "C1"}
    labels = []
    for y, c in enumerate(measured):
        profile = c.record["profile"]
        ax.errorbar(
            c.difference,
            y,
            xerr=c.difference_ci95,
            fmt="o",
            capsize=3,
            color=colours.get(profile, "C7"),
            label=f"{profile} profile" if profile not in [t for t in labels] else None,
        )
        labels.append(profile)
    ax.set_yticks(range(len(measured)))
    ax.set_yticklabels(
        [
            f"{c.paper.row}{' (' + c.paper.column + ')' if c.paper.column else ''}, "
            f"{c.paper.setting}"
            for c in measured
        ],
        fontsize=8,
    )
    ax.invert_yaxis()
    ax.set_xlabel("ours − paper (percentage points), 95% interval")
    ax.set_title(f"{title}\n{len(done)} of {len(cells)} cells measured".strip(), fontsize=9)
    if measured:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "not measured yet", ha="center", va="center", transform=ax.transAxes)
    return ax
