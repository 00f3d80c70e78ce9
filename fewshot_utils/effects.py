"""The papers' claims as effects: a difference between two models, measured on the same tasks.

A short `cpu` run cannot reach a paper's absolute numbers, but it can test a paper's *claim*:
the sign and size of a difference (LSED minus squared Euclidean, DC minus GAP, ...). Each
:class:`Claim` names the two records it compares; :func:`measure` pairs them task by task
(their ``per_task`` accuracies, on the same test tasks) with :func:`evaluation.paired_difference`,
and over training seeds where the records hold several (``train_seed``), and gives a verdict
in words. A claim with no records says so, with the reason: a missing effect is never filled
with the paper's.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from . import display
from .evaluation import ci95, paired_difference
from .paper_numbers import by_id

__all__ = [
    "Claim",
    "Effect",
    "CLAIMS",
    "measure",
    "verdict",
    "resolved",
    "summary",
    "t975",
    "markdown_table",
]


@dataclass(frozen=True)
class Claim:
    """A paper's claim that ``new`` beats ``ref`` by the difference of two published cells.

    ``new`` and ``ref`` are the record fields that pick each model's records (besides
    ``experiment``, ``dataset``, ``way`` and ``shot``); a list-valued record field matches
    when it contains the value. ``ref=None``: the ``new`` record carries the paired
    difference itself (``paired_difference``, ``paired_ci95``: implanting measures DC on the
    implanted tasks). ``paper_new``/``paper_ref``: cell ids of :mod:`paper_numbers`, or None
    where the paper prints no number (then ``paper_text`` says what it claims).
    """

    paper: str
    source: str
    effect: str
    experiment: str
    dataset: str
    way: int
    shot: int
    new: dict
    ref: dict | None
    paper_new: str | None = None
    paper_ref: str | None = None
    paper_text: str = ""

    @property
    def setting(self) -> str:
        name = {"omniglot": "Omniglot", "miniimagenet": "miniImageNet"}.get(self.dataset)
        return f"{name or self.dataset} {self.way}-way {self.shot}-shot"

    @property
    def paper_difference(self) -> float | None:
        """The published difference in points, or None when the paper prints none."""
        if self.paper_new is None or self.paper_ref is None:
            return None
        return by_id(self.paper_new).accuracy - by_id(self.paper_ref).accuracy


def _lsed(dataset: str, experiment: str, way: int, shot: int) -> Claim:
    cell = f"shen2018lsed/table-1/{{}}/{dataset}/{way}w{shot}s"
    return Claim(
        "shen2018lsed",
        "Table 1",
        "LSED − squared Euclidean",
        experiment,
        dataset,
        way,
        shot,
        {"method": "lsed"},
        {"method": "squared_euclidean"},
        cell.format("protonet-lsed"),
        cell.format("protonet"),
    )


def _dense(
    table: str,
    new: str,
    ref: str,
    new_method: str,
    ref_method: str | None,
    experiment: str,
    effect: str,
    shot: int,
) -> Claim:
    cell = f"lifchitz2019dense/{table.lower().replace(' ', '-')}/{{}}/miniimagenet/5w{shot}s"
    return Claim(
        "lifchitz2019dense",
        table,
        effect,
        experiment,
        "miniimagenet",
        5,
        shot,
        {"method": new_method},
        {"method": ref_method} if ref_method else None,
        cell.format(new),
        cell.format(ref),
    )


_TADAM_ROWS = {"baseline": "baseline", "α": "alpha", "α + AT": "alpha+at"}
_TADAM_ROWS["α + AT + TC"] = "tadam-alpha+at+tc"  # the ids of Table 2's rows (α + TC: none)


def _tadam(row: str, ref: str) -> Claim:
    """Row ``row`` of TADAM's Table 2 against row ``ref``: each component against α is the
    paper's increment, so that α's own gain is not counted again in every line."""
    cell = "oreshkin2018tadam/table-2/{}/miniimagenet/5w5s"
    published = row in _TADAM_ROWS and ref in _TADAM_ROWS
    return Claim(
        "oreshkin2018tadam",
        "Table 2",
        f"{row} − {ref}",
        "ch07_tadam",
        "miniimagenet",
        5,
        5,
        {"ablation_rows": row},
        {"ablation_rows": ref},
        cell.format(_TADAM_ROWS[row]) if published else None,
        cell.format(_TADAM_ROWS[ref]) if published else None,
        "" if published else "no number in our sources",
    )


_R12 = "resnet12-{}-support-{}-query-{}"
_DENSE = [  # the arguments of _dense but the shot, then the shots of the claim
    (
        "Table 1",
        "resnet-12-dc",
        "resnet-12-gap",
        _R12.format("dc", "gmp", "gmp"),
        _R12.format("gap", "gap", "gap"),
        "ch05_dense_classification",
        "DC − GAP (ResNet-12; DC tested with GMP)",
        (1, 5, 10),
    ),
    (
        "Table 4",
        "dc",
        "gap",
        _R12.format("dc", "gap", "dc"),
        _R12.format("gap", "gap", "gap"),
        "ch05_dense_classification",
        "DC − GAP (DC queries)",
        (1, 5, 10),
    ),
    (
        "Table 4",
        "dc+imp",
        "dc",
        "resnet12-dc-imp-stage2-gap-gap-support-gap-query-dc",
        None,
        "ch06_implanting",
        "DC + IMP − DC",
        (5, 10),
    ),
    (
        "Table 4",
        "dc+wide",
        "dc",
        _R12.format("dc-wide", "gap", "dc"),
        _R12.format("dc", "gap", "dc"),
        "ch06_implanting",
        "DC + WIDE − DC",
        (5, 10),
    ),
]
CLAIMS: list[Claim] = [
    _lsed("omniglot", "ch03_protonet_omniglot", 20, 1),
    _lsed("omniglot", "ch03_protonet_omniglot", 20, 5),
    _lsed("miniimagenet", "ch04_protonet_miniimagenet", 5, 1),
    _lsed("miniimagenet", "ch04_protonet_miniimagenet", 5, 5),
    Claim(
        "shen2018lsed",
        "Figure 9",
        "LSED − squared Euclidean, after the first epoch",
        "ch02_first_epoch",
        "miniimagenet",
        5,
        1,
        {"method": "lsed_s4_r0.01"},
        {"method": "squared_euclidean"},
        paper_text="LSED ahead at the first epoch (validation accuracy, a figure)",
    ),
    *[_dense(*row, shot) for *row, shots in _DENSE for shot in shots],
    *[
        Claim(
            "this book",
            "chapter 4b",
            effect,
            "ch04b_lsed_scale",
            "miniimagenet",
            5,
            1,
            {"method": new},
            {"method": ref},
            paper_text="the book's ablation: no published number",
        )
        for effect, new, ref in (
            ("fixed α = 0.01 − squared Euclidean", "alpha_0.01", "squared_euclidean"),
            ("last BN γ × 0.1 − squared Euclidean", "bn_gamma_0.1", "squared_euclidean"),
            ("learned α − squared Euclidean", "alpha_learned", "squared_euclidean"),
            ("LSED − fixed α = 0.01", "lsed", "alpha_0.01"),
            ("LSED − last BN γ × 0.1", "lsed", "bn_gamma_0.1"),
        )
    ],
    _tadam("α", "baseline"),
    _tadam("α + AT", "α"),
    _tadam("α + TC", "α"),
    _tadam("α + AT + TC", "α"),
    _tadam("α + AT + TC", "baseline"),
]
"""One line per claim of the three papers that the book measures."""


@dataclass(frozen=True)
class Effect:
    """One claim measured in one profile: ours (points) with its 95% half-width, the per-seed
    differences, and how it was computed; ``reason`` instead when it is not measured."""

    claim: Claim
    profile: str | None
    difference: float | None = None
    ci95: float | None = None
    task_ci95: float | None = None
    per_seed: tuple[float, ...] = ()
    how: str = ""
    commit: str = ""
    reason: str = ""
    departure: str = ""  # how the test is not the paper's experiment ("" when it is)

    @property
    def seed_sd(self) -> float | None:
        """Standard deviation of the difference over training seeds (None under 2 seeds)."""
        return statistics.stdev(self.per_seed) if len(self.per_seed) > 1 else None


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)
_T975 += (2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)
_T975 += (2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (a two-sided 95%
    interval): the table for 1 to 30, then the Cornish-Fisher expansion around the normal
    quantile (error under 1e-4 from 30 on), which tends to 1.96."""
    if df < 1:
        raise ValueError(f"Student's t needs df >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def _matches(record: dict, fields: dict) -> bool:
    for key, want in fields.items():
        have = record.get(key)
        if not (have == want or (isinstance(have, list) and want in have)):
            return False
    return True


def _seed(record: dict) -> int:
    seed = record.get("train_seed")
    return int(seed if seed is not None else (record.get("config") or {}).get("seed", 0))


def _pick(records: Sequence[dict], claim: Claim, fields: dict, profile: str) -> dict[int, dict]:
    same = {
        "experiment": claim.experiment,
        "dataset": claim.dataset,
        "way": claim.way,
        "shot": claim.shot,
        "profile": profile,
    }
    return {_seed(r): r for r in records if _matches(r, same) and _matches(r, fields)}


def _one_seed(new: dict, ref: dict | None) -> tuple[float, float, str, list[float] | None]:
    """Difference (points), its 95% half-width, how, and the per-task differences."""
    if ref is None and "paired_difference" in new:
        return 100 * new["paired_difference"], 100 * new["paired_ci95"], "paired", None
    if ref is None:  # an older record: only its baseline's accuracy and interval
        ref = {"accuracy": new["baseline_accuracy"], "ci95": new["baseline_ci95"]}
    a, b = new.get("per_task"), ref.get("per_task")
    if a is not None and b is not None and len(a) == len(b):
        mean, hw = paired_difference(a, b)
        return 100 * mean, 100 * hw, "paired", [x - y for x, y in zip(a, b)]
    diff = 100 * (new["accuracy"] - ref["accuracy"])
    return diff, 100 * math.hypot(new["ci95"], ref["ci95"]), "unpaired", None


def measure(
    claim: Claim,
    records: Iterable[dict],
    profile: str,
) -> Effect:
    """``claim`` in ``profile``'s records: the paired difference over the test
    tasks, and over training seeds where several (the 95% half-width then
    adds the seeds' t-interval to the tasks' in quadrature, since every seed
    meets the same tasks)."""
    records = list(records)
    new = _pick(records, claim, claim.new, profile)
    ref = None
    if claim.ref is not None:
        ref = _pick(records, claim, claim.ref, profile)
    if not new and (ref is None or not ref):
        reason = f"no `{profile}` record yet ({claim.experiment})"
        return Effect(claim, profile, reason=reason)
    seeds = sorted(new if ref is None else set(new) & set(ref))
    if not seeds:
        reason = "only one of the two models has a record"
        return Effect(claim, profile, reason=reason)
    per_seed, per_task, hws, hows = [], [], [], set()
    for s in seeds:
        d, hw, how, tasks = _one_seed(new[s], None if ref is None else ref[s])
        per_seed.append(d)
        per_task.append(tasks)
        hws.append(hw)
        hows.add(how)
    if len(seeds) == 1:
        task_hw = hws[0]
    elif all(t is not None for t in per_task):
        # the seeds' mean model, task by task
        mean_tasks = [sum(col) / len(col) for col in zip(*per_task)]
        task_hw = 100 * ci95(torch.tensor(mean_tasks))
    else:
        # the seeds meet the same tasks: their task noise is shared, not
        # averaged away
        task_hw = statistics.mean(hws)
    mean = sum(per_seed) / len(per_seed)
    total = task_hw
    n = len(seeds)
    if n > 1:
        seed_hw = t975(n - 1) * statistics.stdev(per_seed) / math.sqrt(n)
        total = math.hypot(task_hw, seed_hw)
    commits = {str(new[s].get("commit", ""))[:7] for s in seeds}
    how = " and ".join(sorted(hows)) + f", {n} training seed{'s' * (n > 1)}"
    train_shot = new[seeds[0]].get("train_shot")
    departure = ""
    if train_shot is not None and train_shot != claim.shot:
        trained = f"models trained on {train_shot}-shot episodes"
        departure = f"{claim.shot}-shot test of {trained}"
    commits_s = ", ".join(sorted(commits))
    return Effect(
        claim,
        profile,
        mean,
        total,
        task_hw,
        tuple(per_seed),
        how,
        commits_s,
        "",
        departure,
    )


def verdict(effect: Effect) -> str:
    """One rule for every effect: ours (the 95% interval ``difference ± ci95``) against the
    paper's difference, by size as well as sign.

    - **agrees**: the paper's difference lies inside our interval, and zero does not;
    - **not resolved: holds the paper's and zero**: the interval is too wide to tell;
    - **same sign, larger** / **same sign, smaller**: our interval excludes zero and the
      paper's value, on the paper's side of zero, above or below it;
    - **opposite sign**: our interval excludes zero, on the other side;
    - **not resolved, smaller than the paper's**: our interval holds zero but not the
      paper's value;
    - without a published difference: **positive** / **negative** / **not resolved**.

    Where the effect rests on one trained model, its interval covers only the test tasks,
    and the verdict says so ("one training seed: seed spread not measured") instead of
    claiming more; a test that is not the paper's experiment is marked as such. "Not
    measured" comes with the reason."""
    if effect.difference is None:
        return f"not measured: {effect.reason}"
    d, hw, paper = effect.difference, effect.ci95, effect.claim.paper_difference
    excludes_zero = abs(d) > hw
    if paper is None:
        words = ("positive" if d > 0 else "negative") if excludes_zero else "not resolved"
        words += " (no published difference)"
    elif abs(d - paper) <= hw:
        # an interval that holds the paper's value and zero supports neither
        words = "agrees" if excludes_zero else "not resolved: holds the paper's and zero"
    elif not excludes_zero:
        words = "not resolved, smaller than the paper's"
    elif (d > 0) != (paper > 0):
        words = "opposite sign"
    else:
        words = "same sign, larger" if abs(d) > abs(paper) else "same sign, smaller"
    seeds = len(effect.per_seed)
    words += (
        "; one training seed: seed spread not measured"
        if seeds == 1
        else f"; over {seeds} training seeds"
    )
    if effect.departure:
        words = f"not the paper's experiment ({effect.departure}): " + words
    return words


def resolved(effect: Effect) -> int:
    """+1 / -1 when the 95% interval lies above / below zero, 0 when it holds zero or the
    effect is not measured: the one test every chapter applies to every difference."""
    if effect.difference is None or abs(effect.difference) <= effect.ci95:
        return 0
    return 1 if effect.difference > 0 else -1


def summary(effect: Effect) -> str:
    """The effect in one phrase: ``+4.87 ± 6.06 points (verdict); per seed +7.67 / +3.71 /
    +3.22, positive for 3 of 3``, or "not measured (reason)"."""
    if effect.difference is None:
        return f"not measured ({effect.reason})"
    out = f"{effect.difference:+.2f} ± {effect.ci95:.2f} points ({verdict(effect)})"
    if len(effect.per_seed) > 1:
        seeds = " / ".join(f"{d:+.2f}" for d in effect.per_seed)
        pos = sum(d > 0 for d in effect.per_seed)
        out += f"; per seed {seeds}, positive for {pos} of {len(effect.per_seed)}"
    return out


def markdown_table(effects: Sequence[Effect]) -> str:
    """One line per measured effect (or claim not measured): the paper's difference, ours with
    its 95% interval, the seed spread, the verdict and how it was computed."""
    head = [
        "claim",
        "source",
        "setting",
        "paper",
        "profile",
        "ours (95%)",
        "seeds (sd)",
        "verdict",
        "how",
    ]
    lines = []
    for e in effects:
        c = e.claim
        paper = c.paper_difference
        paper_s = f"{paper:+.2f}" if paper is not None else (c.paper_text or "—")
        if e.difference is None:
            lines.append(
                [
                    c.effect,
                    f"{c.paper} {c.source}",
                    c.setting,
                    paper_s,
                    e.profile or "—",
                    "—",
                    "—",
                    verdict(e),
                    "",
                ]
            )
            continue
        sd = e.seed_sd
        seeds = f"{len(e.per_seed)}" + (f" ({sd:.2f})" if sd is not None else "")
        lines.append(
            [
                c.effect,
                f"{c.paper} {c.source}",
                c.setting,
                paper_s,
                f"**{e.profile}**",
                f"{e.difference:+.2f} ± {e.ci95:.2f}",
                seeds,
                verdict(e),
                f"{e.how}; commit `{e.commit}`",
            ]
        )
    return display.markdown_table(head, lines, align="---")
