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


def record_cells(record: dict, numbers: Sequence[PaperNumber] = PAPER_NUMBERS) -> list[str]:
    """Ids of the published cells ``record`` reproduces.

    Its ``paper_rows`` field (a list of ids, or one id) when present, each checked to exist;
    otherwise every cell of the same dataset, way and shot whose accuracy is the record's
    ``paper_accuracy`` (a fraction), and none when the record has no ``paper_accuracy``. Cells
    of two different experiments that print the same number are an error: the record must
    name its cell.
    """
    explicit = record.get("paper_rows")
    if explicit is not None:
        ids = [explicit] if isinstance(explicit, str) else list(explicit)
        for i in ids:
            try:
                by_id(i)
            except KeyError as err:
                raise KeyError(f"record {_name(record)}: {err.args[0]}") from None
        return ids
    published = record.get("paper_accuracy")
    if published is None:
        return []
    ids = [
        p.id
        for p in numbers
        if (p.dataset, p.way, p.shot) == (record["dataset"], record["way"], record["shot"])
        and abs(p.accuracy - 100.0 * published) < _TOL
    ]
    if len(ids) > 1 and not any(set(ids) <= group for group in SAME_EXPERIMENT):
        raise ValueError(
            f"record {_name(record)}: its paper_accuracy {100 * published:.2f} is printed by "
            f"cells of different experiments {ids}; name the one it reproduces in the record's "
            "paper_rows"
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


def _provenance(r: dict) -> str:
    """Device, wall time, commit, experiment, training length (and shot when it differs from
    the test's), test (or ``split``) episodes: what the record says about how it was made."""
    commit = str(r["commit"])
    train = ""
    if r.get("train_episodes") is not None:
        shot = r.get("train_shot")
        train = f"{r['train_episodes']:,} training episodes" + (
            f" ({shot}-shot)" if shot is not None and shot != r["shot"] else ""
        )
        train += ", "
    return (
        f"{r['device']}, {_wall(r['wall_time_s'])}, commit `{commit[:7]}"
        f"{'-dirty' if commit.endswith('-dirty') else ''}`; {r['experiment']}: {train}"
        f"{r['episodes']:,} {r.get('split') or 'test'} episodes"
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
            lines.append([
                label, p.setting, paper, f"**{c.record['profile']}**", _pct(c.ours, c.ours_ci95),
                _pct(c.difference, c.difference_ci95, signed=True), _provenance(c.record),
            ])  # fmt: skip
    return display.markdown_table(_HEAD, lines, align="---")


def records_table(records: Sequence[dict]) -> str:
    """A Markdown table of records on their own (those that reproduce no published cell)."""
    head = ["experiment", "dataset", "method", "setting", "profile", "ours", "provenance"]
    lines = [
        [r["experiment"], r["dataset"], str(r["method"]), f"{r['way']}-way {r['shot']}-shot",
         f"**{r['profile']}**", _pct(100 * r["accuracy"], 100 * r["ci95"]), _provenance(r)]
        for r in sorted(records, key=lambda r: (r["experiment"], r["dataset"], r["method"],
                                                r["way"], r["shot"], _order(r)))
    ]  # fmt: skip
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
            c.difference, y, xerr=c.difference_ci95, fmt="o", capsize=3,
            color=colours.get(profile, "C7"),
            label=f"{profile} profile" if profile not in [t for t in labels] else None,
        )  # fmt: skip
        labels.append(profile)
    ax.set_yticks(range(len(measured)))
    ax.set_yticklabels(
        [f"{c.paper.row}{' (' + c.paper.column + ')' if c.paper.column else ''}, "
         f"{c.paper.setting}" for c in measured], fontsize=8)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("ours − paper (percentage points), 95% interval")
    ax.set_title(f"{title}\n{len(done)} of {len(cells)} cells measured".strip(), fontsize=9)
    if measured:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "not measured yet", ha="center", va="center", transform=ax.transAxes)
    return ax
