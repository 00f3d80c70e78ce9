"""The published numbers the book reproduces, in one place.

Each :class:`PaperNumber` is one cell of a table in one of the three papers: what was
measured (dataset, way, shot, the row and column it sits in) and the accuracy the paper
prints, in percent, with its 95% confidence interval where the paper prints one. The results
chapter (``notebooks/90_results``) puts every record of ``results/`` beside these numbers.

Transcribed from the papers in ``shared/papers`` and their summary ``protocols.md``:

- LSED, Shen & Liu, Table 1 (``lsed_shen_liu.md``): the ProtoNet and ProtoNet(LSED) rows;
  the MatchingNet and Meta-Learner LSTM rows are other papers' numbers, not reproduced here.
- Lifchitz et al. 2019, Tables 1-5 (``dense_classification_implanting_lifchitz2019.md``):
  every number of Tables 1-3 and the top ("our solutions and baselines") parts of Tables 4
  and 5; their bottom parts quote other papers. ``-`` cells (implanting needs two shots) are
  left out: there is no number to reproduce.
- TADAM, Oreshkin et al. 2018, Table 2 (the ablation; not in the slides file): the rows
  listed in ``protocols.md``. Its confidence intervals are not there; for the baseline (and
  FC100 TADAM) they are taken from Lifchitz et al. Tables 4 and 5, which quote the same
  numbers as "PN [31]" and "TADAM [31]".

A record names the cells it reproduces in its ``paper_rows`` field (a list of
:attr:`PaperNumber.id`); a record without it matches every cell of its dataset, way and shot
whose accuracy equals its ``paper_accuracy`` field (the published number its chapter compared
with). The same experiment is printed in several tables (e.g. ResNet-12 GAP 5-shot, 76.40, in
Lifchitz Tables 1, 2 and 4); :data:`SAME_EXPERIMENT` lists those cells, and the tests check
that no other two cells could be confused that way.

:data:`QUOTED_NUMBERS` holds the published numbers the chapters print beside their own for
context but that the results chapter does not pair records with: Snell et al.'s
Prototypical Networks accuracies (``protocols.md``; miniImageNet also quoted, with its
intervals, as "PN [42]" in Lifchitz et al. Table 4), which chapters 3 and 4 show beside the
LSED paper's ProtoNet row that their records reproduce. :func:`by_id` finds both kinds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PaperNumber",
    "PAPER_NUMBERS",
    "QUOTED_NUMBERS",
    "SAME_EXPERIMENT",
    "TABLES",
    "by_id",
    "existing",
    "printed",
    "table_rows",
    "protonet_accuracy",
]


@dataclass(frozen=True)
class PaperNumber:
    """One published accuracy: ``accuracy`` and ``ci95`` in percent, as printed."""

    paper: str  # bibliography key (book/references.bib)
    table: str  # "Table 1"
    row: str  # the row label as printed, e.g. "ProtoNet(LSED)"
    dataset: str  # as in the records: "omniglot", "miniimagenet", "fc100"
    way: int
    shot: int
    accuracy: float
    ci95: float | None = None  # None: the paper (or our source of it) prints no interval
    column: str = ""  # what else the column says, e.g. "novel classes; test GAP / DC"

    @property
    def id(self) -> str:
        """A stable name for records' ``paper_rows``: ``paper/table/row[/column]/WwSs``."""
        parts = [self.paper, self.table, self.row] + ([self.column] if self.column else [])
        return "/".join([*map(_slug, parts), self.dataset, f"{self.way}w{self.shot}s"])

    @property
    def setting(self) -> str:
        """``miniImageNet 5-way 1-shot``-style label."""
        name = {"omniglot": "Omniglot", "miniimagenet": "miniImageNet", "fc100": "FC100"}
        return f"{name.get(self.dataset, self.dataset)} {self.way}-way {self.shot}-shot"


def _slug(text: str) -> str:
    """``DC + IMP`` -> ``dc+imp``, ``α + AT`` -> ``alpha+at``, ``C128F GAP`` -> ``c128f-gap``."""
    text = re.sub(r"\s*\+\s*", "+", text.lower().replace("α", "alpha"))
    return re.sub(r"[^a-z0-9+]+", "-", text).strip("-")


def _grid(paper, table, rows, dataset, way, shots, column=""):
    """Cells of a table whose rows are methods and whose columns are shots."""
    out = []
    for row, cells in rows:
        for shot, cell in zip(shots, cells):
            if cell is None:  # printed as "-"
                continue
            acc, ci = cell if isinstance(cell, tuple) else (cell, None)
            out.append(PaperNumber(paper, table, row, dataset, way, shot, acc, ci, column))
    return out


LSED, DENSE, TADAM = "shen2018lsed", "lifchitz2019dense", "oreshkin2018tadam"
SNELL = "snell2017prototypical"

# Table captions, for the chapter's headings.
TABLES: dict[tuple[str, str], str] = {
    (LSED, "Table 1"): "LSED, Table 1: ProtoNet with squared Euclidean distance and with LSED "
    "(Omniglot 20-way, miniImageNet 5-way)",
    (DENSE, "Table 1"): "Dense classification, Table 1: miniImageNet 5-way, stage 1 only, "
    "C128F and ResNet-12",
    (DENSE, "Table 2"): "Dense classification, Table 2: miniImageNet 5-way 5-shot, stage 1 "
    "only, support / query pooling at test, base, novel and both classes",
    (DENSE, "Table 3"): "Dense classification, Table 3: miniImageNet 5-way 5-shot, implanting "
    "(stage 2) pooling",
    (DENSE, "Table 4"): "Dense classification, Table 4: miniImageNet 5-way, ablation",
    (DENSE, "Table 5"): "Dense classification, Table 5: FC100 5-way, ablation",
    (TADAM, "Table 2"): "TADAM, Table 2: ablation of metric scaling (α), auxiliary task "
    "co-training (AT) and task conditioning (TC), 5-way",
}

PAPER_NUMBERS: list[PaperNumber] = [
    # LSED (Shen & Liu), Table 1: Omniglot 20-way, miniImageNet 5-way, 1 / 5 shots.
    *_grid(
        LSED,
        "Table 1",
        [("ProtoNet", (95.14, 98.54)), ("ProtoNet(LSED)", (95.65, 98.70))],
        "omniglot",
        20,
        (1, 5),
    ),
    *_grid(
        LSED,
        "Table 1",
        [("ProtoNet", (48.34, 67.94)), ("ProtoNet(LSED)", (51.74, 68.39))],
        "miniimagenet",
        5,
        (1, 5),
    ),
    # Lifchitz et al. 2019, Table 1: miniImageNet 5-way novel classes, stage 1 only; at test
    # GMP on queries for DC-trained models, GAP otherwise. Rows: network, stage-1 pooling.
    *_grid(
        DENSE,
        "Table 1",
        [
            ("C128F GAP", ((54.28, 0.18), (71.60, 0.13), (76.92, 0.12))),
            ("C128F DC", ((49.84, 0.18), (69.64, 0.15), (74.61, 0.13))),
            ("ResNet-12 GAP", ((58.61, 0.18), (76.40, 0.13), (80.76, 0.11))),
            ("ResNet-12 DC", ((61.26, 0.20), (79.01, 0.13), (83.04, 0.12))),
        ],
        "miniimagenet",
        5,
        (1, 5, 10),
    ),
    # Table 2: ResNet-12, 5-way 5-shot, stage 1 only. Rows: stage-1 training x test classes;
    # columns: support / query pooling at test (GMP/GMP, GMP/DC, GAP/GAP, GAP/DC).
    *[
        PaperNumber(
            DENSE,
            "Table 2",
            f"{train}, {classes} classes",
            "miniimagenet",
            5,
            5,
            acc,
            ci,
            f"test {support} / {query}",
        )
        for train, classes, cells in [
            ("GAP", "base", ((63.55, 0.20), (77.17, 0.11), (79.37, 0.09), (77.15, 0.11))),
            ("GAP", "novel", ((72.25, 0.13), (70.71, 0.14), (76.40, 0.13), (73.28, 0.14))),
            ("GAP", "both", ((37.74, 0.07), (38.65, 0.05), (56.25, 0.10), (54.80, 0.09))),
            ("DC", "base", ((79.28, 0.10), (80.67, 0.10), (80.61, 0.10), (80.70, 0.10))),
            ("DC", "novel", ((79.01, 0.13), (77.93, 0.13), (78.55, 0.13), (78.95, 0.13))),
            ("DC", "both", ((42.45, 0.07), (57.98, 0.10), (67.53, 0.10), (67.78, 0.10))),
        ]
        for (support, query), (acc, ci) in zip(
            [("GMP", "GMP"), ("GMP", "DC"), ("GAP", "GAP"), ("GAP", "DC")], cells
        )
    ],
    # Table 3: 5-way 5-shot novel classes with implanting; GAP on supports at test. Rows:
    # stage-2 training pooling (support / queries); columns: query pooling at test.
    *[
        PaperNumber(
            DENSE,
            "Table 3",
            f"stage 2 {support} / {query}",
            "miniimagenet",
            5,
            5,
            acc,
            ci,
            f"test queries {test}",
        )
        for support, query, cells in [
            ("GMP", "GMP", ((79.03, 0.19), (78.92, 0.19), (79.04, 0.19))),
            ("GMP", "DC", ((79.06, 0.19), (79.37, 0.18), (79.15, 0.19))),
            ("GAP", "GAP", ((79.62, 0.19), (74.57, 0.22), (79.77, 0.19))),
            ("GAP", "DC", ((79.56, 0.19), (74.58, 0.22), (79.52, 0.19))),
        ]
        for test, (acc, ci) in zip(("GAP", "GMP", "DC"), cells)
    ],
    # Table 4, top part (ResNet-12): miniImageNet 5-way novel classes, 1 / 5 / 10 shots.
    *_grid(
        DENSE,
        "Table 4",
        [
            ("GAP", ((58.61, 0.18), (76.40, 0.13), (80.76, 0.11))),
            ("DC", ((62.53, 0.19), (78.95, 0.13), (82.66, 0.11))),
            ("DC + WIDE", ((61.73, 0.19), (78.25, 0.14), (82.03, 0.12))),
            ("DC + IMP", (None, (79.77, 0.19), (83.83, 0.16))),
        ],
        "miniimagenet",
        5,
        (1, 5, 10),
    ),
    # Table 5, top part (ResNet-12): FC100 5-way novel classes, 1 / 5 / 10 shots.
    *_grid(
        DENSE,
        "Table 5",
        [
            ("GAP", ((41.02, 0.17), (56.63, 0.16), (61.65, 0.15))),
            ("DC", ((42.04, 0.17), (57.05, 0.16), (61.91, 0.16))),
            ("DC + IMP", (None, (57.63, 0.23), (62.91, 0.22))),
        ],
        "fc100",
        5,
        (1, 5, 10),
    ),
    # TADAM (Oreshkin et al. 2018), Table 2, as listed in protocols.md; intervals of the
    # baseline and of FC100 TADAM from Lifchitz et al. Tables 4 / 5 ("PN [31]", "TADAM [31]").
    *_grid(
        TADAM,
        "Table 2",
        [
            ("baseline", ((56.5, 0.4), (74.2, 0.2), (78.6, 0.4))),
            ("α", (56.8, 75.7, 79.6)),
            ("α + AT", (58.0, 75.6, 80.0)),
            ("TADAM (α + AT + TC)", (58.5, 76.7, 80.8)),
        ],
        "miniimagenet",
        5,
        (1, 5, 10),
    ),
    *_grid(
        TADAM,
        "Table 2",
        [
            ("baseline", ((37.8, 0.4), (53.3, 0.5), (58.7, 0.4))),
            ("TADAM (α + AT + TC)", ((40.1, 0.4), (56.1, 0.4), (61.6, 0.5))),
        ],
        "fc100",
        5,
        (1, 5, 10),
    ),
]

# Cells that print the same experiment in several tables (same setting, same number, and the
# captions say it is the same model and test): a record matching one by its paper_accuracy
# matches all of them. Two other cells share a number by chance (79.37: Table 2 GAP base
# classes, Table 3 stage 2 GMP / DC with GMP queries); a record comparing with 79.37 must name
# its cell in paper_rows.
SAME_EXPERIMENT: list[set[str]] = [
    {  # ResNet-12 GAP 1-shot
        "lifchitz2019dense/table-1/resnet-12-gap/miniimagenet/5w1s",
        "lifchitz2019dense/table-4/gap/miniimagenet/5w1s",
    },
    {  # ResNet-12 GAP 5-shot, GAP / GAP at test
        "lifchitz2019dense/table-1/resnet-12-gap/miniimagenet/5w5s",
        "lifchitz2019dense/table-2/gap-novel-classes/test-gap-gap/miniimagenet/5w5s",
        "lifchitz2019dense/table-4/gap/miniimagenet/5w5s",
    },
    {  # ResNet-12 GAP 10-shot
        "lifchitz2019dense/table-1/resnet-12-gap/miniimagenet/5w10s",
        "lifchitz2019dense/table-4/gap/miniimagenet/5w10s",
    },
    {  # ResNet-12 DC 5-shot, GMP / GMP at test (Table 1's test pooling for DC)
        "lifchitz2019dense/table-1/resnet-12-dc/miniimagenet/5w5s",
        "lifchitz2019dense/table-2/dc-novel-classes/test-gmp-gmp/miniimagenet/5w5s",
    },
    {  # ResNet-12 DC 5-shot, GAP / DC at test (Table 4's test pooling)
        "lifchitz2019dense/table-2/dc-novel-classes/test-gap-dc/miniimagenet/5w5s",
        "lifchitz2019dense/table-4/dc/miniimagenet/5w5s",
    },
    {  # DC + implanting 5-shot, stage 2 GAP / GAP, DC queries at test
        "lifchitz2019dense/table-3/stage-2-gap-gap/test-queries-dc/miniimagenet/5w5s",
        "lifchitz2019dense/table-4/dc+imp/miniimagenet/5w5s",
    },
]

# Snell et al. 2017 (Prototypical Networks, squared Euclidean, 64-d Conv-4 embeddings), as
# listed in protocols.md: Table 1 Omniglot 5- and 20-way, Table 2 miniImageNet 5-way (the
# 30-way 1-shot / 20-way 5-shot trained models), 1 / 5 shots.
QUOTED_NUMBERS: list[PaperNumber] = [
    *_grid(SNELL, "Table 1", [("Prototypical Networks", (98.8, 99.7))], "omniglot", 5, (1, 5)),
    *_grid(SNELL, "Table 1", [("Prototypical Networks", (96.0, 98.9))], "omniglot", 20, (1, 5)),
    *_grid(
        SNELL,
        "Table 2",
        [("Prototypical Networks", ((49.42, 0.78), (68.20, 0.66)))],
        "miniimagenet",
        5,
        (1, 5),
    ),
]

_ALL = PAPER_NUMBERS + QUOTED_NUMBERS
_BY_ID = {p.id: p for p in _ALL}
if len(_BY_ID) != len(_ALL):  # two cells with one id: a transcription mistake
    raise RuntimeError("fewshot_utils.paper_numbers: duplicate cell ids")


def by_id(row_id: str) -> PaperNumber:
    """The cell named ``row_id``; a clear error listing close names when there is none."""
    try:
        return _BY_ID[row_id]
    except KeyError:
        stem = row_id.rsplit("/", 1)[0].split("/")[0]
        near = sorted(i for i in _BY_ID if i.startswith(stem))[:8]
        raise KeyError(
            f"no published number with id {row_id!r}; ids look like {near or list(_BY_ID)[:4]} "
            "(see fewshot_utils.paper_numbers.PAPER_NUMBERS)"
        ) from None


def existing(row_ids: Iterable[str]) -> list[str]:
    """The ids among ``row_ids`` that name a published cell, in order: for records that
    compare with a table where it has a cell (Table 3 is 5-shot only, DC + IMP has no 1-shot
    cell), without a cell that does not exist being an error."""
    return [i for i in row_ids if i in _BY_ID]


def printed(row_ids: Iterable[str]) -> str:
    """The published accuracies of the cells ``row_ids``, as a chapter's "paper" column shows
    them: ``"54.28 / 71.60 / 76.92"`` (two decimals, the papers' precision)."""
    return " / ".join(f"{by_id(i).accuracy:.2f}" for i in row_ids)


def table_rows(paper: str, table: str) -> list[PaperNumber]:
    """The cells of one table, in the order of :data:`PAPER_NUMBERS`."""
    return [p for p in PAPER_NUMBERS if (p.paper, p.table) == (paper, table)]


def protonet_accuracy(paper: str, method: str, dataset: str, way: int, shot: int) -> float | None:
    """The accuracy ``paper`` publishes for a Prototypical Network with distance ``method``
    (``squared_euclidean`` or ``lsed``) on ``dataset`` (``omniglot`` or ``miniimagenet``) in
    a ``way``-way ``shot``-shot test, as a fraction, the unit of a record's ``paper_accuracy``.
    ``paper`` is ``shen2018lsed`` (Table 1, both distances) or ``snell2017prototypical``
    (squared Euclidean: Table 1 on Omniglot, Table 2 on miniImageNet). None where that paper
    prints no such number: the LSED paper has no Omniglot 5-way column, Snell et al. no LSED.
    Chapters 3 and 4 set their models beside both."""
    known = paper in (LSED, SNELL) and method in ("squared_euclidean", "lsed")
    if not known or dataset not in ("omniglot", "miniimagenet"):
        raise ValueError(
            f"protonet_accuracy: paper {LSED!r} or {SNELL!r}, method squared_euclidean or lsed, "
            f"dataset omniglot or miniimagenet; got {paper!r}, {method!r}, {dataset!r}"
        )
    if paper == LSED:
        row = "table-1/protonet" + ("-lsed" if method == "lsed" else "")
    elif method == "squared_euclidean":
        row = ("table-1" if dataset == "omniglot" else "table-2") + "/prototypical-networks"
    else:
        return None
    cell = _BY_ID.get(f"{paper}/{row}/{dataset}/{way}w{shot}s")
    return None if cell is None else cell.accuracy / 100
