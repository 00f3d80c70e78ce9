"""A paper's claim against what a chapter measured: one verdict, in words.

A chapter lists each claim with named checks (a name saying what must hold, and whether it
held). The verdict is one of three: **agrees** when every check holds, **disagrees** naming
the checks that were not met, or **not testable in this profile** with the reason, when the
experiment as run cannot tell (it is then not counted for or against the paper).
``effects.verdict`` is another question: the sign and size of one measured difference against
the paper's.

The claims of the LSED paper's Figures 3 to 9 and its section 5.5 are here as functions of
what chapter 2 measures, each naming its checks and their thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .display import markdown_table

__all__ = [
    "verdict",
    "claim_table",
    "lsed_figure3",
    "lsed_figure4",
    "lsed_figure5",
    "lsed_figure6",
    "lsed_figure7",
    "lsed_figure8",
    "lsed_figure9",
    "lsed_five_shots",
]


def verdict(checks: dict[str, bool], untestable: str = "") -> str:
    """'not testable in this profile (why)' when ``untestable`` says why; else 'agrees' when
    every check holds, else 'disagrees (check not met: ...)' with the checks that do not."""
    if not checks and not untestable:
        raise ValueError("a verdict needs at least one check, or the reason it is untestable")
    if untestable:
        return f"not testable in this profile ({untestable})"
    failed = [name for name, ok in checks.items() if not ok]
    return "agrees" if not failed else "disagrees (check not met: " + "; ".join(failed) + ")"


def claim_table(claims: Sequence[tuple]) -> str:
    """The paper's claims as a Markdown table, one row each: the claim, what was measured and
    the :func:`verdict` (in bold). A claim is ``(claim, measured, checks)``, or
    ``(claim, measured, checks, untestable)`` with the reason it cannot be tested."""
    rows = [[claim, measured, f"**{verdict(*rest)}**"] for claim, measured, *rest in claims]
    return markdown_table(["the paper's claim", "measured here", "verdict"], rows)


# ------------------------------------------------------------- the LSED paper's claims (chapter 2)
# Each function takes what chapter 2 measured and returns its claim(s) for :func:`claim_table`.
# A summary is a dict of ``gradients.snapshot_summary``: ``sparse`` is the share of gradients
# below 1e-5, ``median`` and ``max`` the distances. "Mostly" means more than half of the pairs.


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def lsed_figure3(sed: dict, r_large: dict, r_small: dict) -> tuple:
    """Figure 3: at initialisation, squared Euclidean (``sed``) gradients are sparse, LSED's
    with ``s = 0`` less so, the more so the smaller ``r`` (``r_large``: 0.1, ``r_small``:
    0.01); each a summary of the same embeddings."""
    return (
        "Fig. 3: at initialisation squared Euclidean gradients are sparse; LSED (s = 0) less "
        "so, the more so the smaller r",
        f"near zero: {_pct(sed['sparse'])} (squared Euclidean), {_pct(r_large['sparse'])} "
        f"(r = 0.1), {_pct(r_small['sparse'])} (r = 0.01)",
        {
            "squared Euclidean mostly near zero": sed["sparse"] > 0.5,
            "r = 0.1 below squared Euclidean": r_large["sparse"] < sed["sparse"],
            "r = 0.01 below r = 0.1": r_small["sparse"] < r_large["sparse"],
        },
    )


def lsed_figure4(sed: dict[int, dict]) -> tuple:
    """Figure 4: Omniglot ProtoNet's gradients are mostly zero at first and fill in over the
    next iterations as the distances shrink; ``sed`` maps three iteration counts to
    summaries."""
    i0, i1, i2 = sorted(sed)
    near = " → ".join(_pct(sed[i]["sparse"]) for i in (i0, i1, i2))
    return (
        f"Fig. 4: Omniglot ProtoNet gradients mostly zero at first, more non-zero after {i1} "
        f"and {i2} iterations, as distances shrink",
        f"near zero {near}; median d {sed[i0]['median']:.3g} → {sed[i2]['median']:.3g}",
        {
            "mostly near zero at 0": sed[i0]["sparse"] > 0.5,
            f"fewer near zero at {i1}": sed[i1]["sparse"] < sed[i0]["sparse"],
            f"fewer still at {i2}": sed[i2]["sparse"] < sed[i1]["sparse"],
            "distances shrink": sed[i2]["median"] < sed[i0]["median"],
        },
    )


def lsed_figure5(lse: dict[int, dict], spread: dict[int, tuple[float, float]]) -> tuple:
    """Figure 5: with LSED most Omniglot gradients are non-zero at the first iteration, and
    gradients and distances grow more diverse; ``spread`` maps the first and last iteration
    to ``gradients.spread`` (standard deviations of ln|g| and of d / median d)."""
    first, last = min(lse), max(lse)
    (g0, d0), (g1, d1) = spread[first], spread[last]
    return (
        "Fig. 5: Omniglot ProtoNet(LSED): most gradients non-zero at the first iteration, "
        f"gradients and distances more diverse after {last} iterations",
        f"near zero {_pct(lse[first]['sparse'])}; standard deviation of ln|g| {g0:.2f} → "
        f"{g1:.2f}, of d/median {d0:.2f} → {d1:.2f}",
        {
            "most gradients non-zero": lse[first]["sparse"] < 0.5,
            "gradients more diverse": g1 > g0,
            "distances more diverse": d1 > d0,
        },
    )


def lsed_figure6(sed: dict[int, dict]) -> list[tuple]:
    """Figure 6: miniImageNet ProtoNet's squared distances reach about 1,500 at
    initialisation (within a factor 2: 750 to 3,000); its gradients are sparse at first and
    less sparse at the last iteration, while the median distance drops sharply (more than
    halves)."""
    first, last = min(sed), max(sed)
    drop = sed[last]["median"] / sed[first]["median"]
    return [
        (
            "Fig. 6: miniImageNet ProtoNet squared distances as large as 1,500 at initialisation",
            f"largest d {sed[first]['max']:.0f}, median {sed[first]['median']:.0f}",
            {"largest distance within a factor 2 of 1,500": 750 <= sed[first]["max"] <= 3000},
        ),
        (
            "Fig. 6: miniImageNet ProtoNet gradients sparse at first, less sparse after "
            f"{last} iterations, sharp drop of distances",
            f"near zero {_pct(sed[first]['sparse'])} → {_pct(sed[last]['sparse'])}; median d "
            f"× {drop:.2f}",
            {
                "mostly near zero at 0": sed[first]["sparse"] > 0.5,
                f"fewer near zero at {last}": sed[last]["sparse"] < sed[first]["sparse"],
                "median distance more than halved": drop < 0.5,
            },
        ),
    ]


def lsed_figure7(lse: dict[int, dict], behind: dict[int, float]) -> tuple:
    """Figure 7: with LSED the initial miniImageNet gradients are not sparse and the distances
    change little (by less than a factor 2), judged on ``behind``, the median squared
    distance behind LSED's at the first and last iteration (LSED's constant ``(1 - r) s``,
    which the softmax ignores, would hide part of the change)."""
    first, last = min(lse), max(lse)
    change = behind[last] / behind[first]
    raw = lse[last]["median"] / lse[first]["median"]
    return (
        "Fig. 7: miniImageNet ProtoNet(LSED) initial gradients not sparse, distances change little",
        f"near zero {_pct(lse[first]['sparse'])}; median squared distance × {change:.2f} over "
        f"{last} iterations (on d_LSED, constant included: × {raw:.2f})",
        {
            "mostly non-zero at 0": lse[first]["sparse"] < 0.5,
            "squared distances change by less than a factor 2": abs(math.log(change)) < math.log(2),
        },
    )


def lsed_figure8(
    s_accuracy: dict[float, float],
    r_gaps: dict[float, tuple[float, float]],
    share_below: float,
    s_max: float,
    captured: int,
    trained: int,
) -> list[tuple]:
    """Figure 8: the test accuracy stays within about 1 point across ``s`` (``s_accuracy``:
    s -> accuracy in points) and drops when ``r`` approaches 1 (``r_gaps``: r -> paired
    difference to r = 0.01 and its 95% half-width, in points; it must hold ``r = 1``).

    The sweep over ``s`` is not testable when its models are one model: while no squared
    distance falls below ``s``, LSED with any ``s`` trains like ``s = 0``. That is so when
    training (``trained`` episodes) ended within the ``captured`` iterations whose distances
    were measured, and fewer than 1% of those pairs (``share_below``) were at most ``s_max``.
    """
    spread = max(s_accuracy.values()) - min(s_accuracy.values())
    same_model = trained <= captured and share_below < 0.01
    untestable = (
        f"no model trained beyond the {captured} iterations of the capture and only "
        f"{_pct(share_below)} of its pairs fall at or below s = {s_max:g}: the s models are "
        "the same model"
        if same_model
        else ""
    )
    gap, half = r_gaps[1.0]
    return [
        (
            "Fig. 8(a): test accuracy within about 1% across s (r = 0.01)",
            f"range {spread:.2f} points; {_pct(share_below)} of the training pairs at most "
            f"{s_max:g} after {captured} iterations",
            {"range ≤ 1 point": spread <= 1.0},
            untestable,
        ),
        (
            "Fig. 8(b): test accuracy drops when r is very close to 1 (s = 4)",
            "relative to r = 0.01, paired: "
            + ", ".join(f"r = {r:g}: {g:+.2f} ± {h:.2f}" for r, (g, h) in r_gaps.items()),
            {
                "lower at r = 1 beyond the paired 95% interval": gap + half < 0,
                "no drop beyond 1 point for r < 0.5": all(
                    g > -1.0 for r, (g, _) in r_gaps.items() if r < 0.5
                ),
            },
        ),
    ]


def lsed_figure9(ours: dict, at_paper: dict, ahead: int, validations: int) -> list[tuple]:
    """Figure 9: after the first epoch LSED's training and validation accuracy are higher, and
    the margin persists. ``ours`` and ``at_paper`` describe our first validation and the one
    after the paper's first epoch: ``episodes``, ``train`` and ``val`` (ProtoNet, LSED) and
    the paired validation ``gap`` LSED - ProtoNet with its half-width ``gap_ci``, in points;
    LSED's validation accuracy was higher after ``ahead`` of ``validations`` validations."""

    def measured(g: dict) -> str:
        return (
            f"after {g['episodes']} episodes: train {_pct(g['train'][0])} vs "
            f"{_pct(g['train'][1])}, val gap {g['gap']:+.2f} ± {g['gap_ci']:.2f} points"
        )

    return [
        (
            "Fig. 9: after the first epoch LSED's training and validation accuracy are higher",
            f"{measured(at_paper)} (the paper's first epoch); {measured(ours)} (our first)",
            {
                "training accuracy higher": at_paper["train"][1] > at_paper["train"][0],
                "validation accuracy higher beyond its 95% interval": at_paper["gap"]
                > at_paper["gap_ci"],
                f"already ahead beyond noise after {ours['episodes']} episodes": ours["gap"]
                > ours["gap_ci"]
                and ours["train"][1] > ours["train"][0],
            },
        ),
        (
            "Fig. 9: the margin persists",
            f"LSED's validation accuracy higher after {ahead} of {validations} validations",
            {"higher after every validation": ahead == validations},
        ),
    ]


def lsed_five_shots(shots: dict[tuple[str, int], dict]) -> tuple:
    """Section 5.5: with 5 shots the distances of a fresh network explode less, and fewer
    gradients are near zero, than with 1 shot; ``shots`` maps (dataset, shot) to the
    summary, for shots 1 and 5."""
    names = list(dict.fromkeys(name for name, _ in shots))
    return (
        "Section 5.5: with 5 shots the distances explode less at initialisation, which "
        "alleviates the sparse gradients (hence the small 5-shot gain)",
        "; ".join(
            f"{n}: median d {shots[n, 1]['median']:.4g} → {shots[n, 5]['median']:.4g}, near "
            f"zero {_pct(shots[n, 1]['sparse'])} → {_pct(shots[n, 5]['sparse'])} (1 → 5 shots)"
            for n in names
        ),
        {
            f"{what} with 5 shots on {n}": shots[n, 5][key] < shots[n, 1][key]
            for key, what in [("median", "shorter distances"), ("sparse", "fewer near zero")]
            for n in names
        },
    )
