"""The book's machinery for chapters 0-2: findings text, tables, figures and records.

Chapters 0 (episodes and prototypes), 1 (softmax saturation) and 2 (LSED) teach with short
shown cells; what they only need to *report* (a sentence assembled from the data, a figure's
styling, a table of measurements, the results records) lives here, so that each of their
folded cells is one call. Nothing here is a method of the papers: the methods are in
``distances``, ``saturation``, ``gradients`` and ``training``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from . import data, distances, gradients, paper_numbers, plots, saturation, verdicts
from .checkpoints import checkpoint_dir
from .display import _show_markdown as show_markdown
from .display import table
from .episodes import Episode
from .evaluation import EvalResult, paired_difference
from .models import conv4_for
from .profiles import fastest_threads
from .results import make_record, write_result
from .saturation import TwoPrototypes
from .training import (
    TrainConfig,
    TrainResult,
    miniimagenet_config,
    miniimagenet_protocol,
    training_time_estimate,
)

__all__ = [
    "omniglot_alphabet_overlap",
    "pca_plot",
    "training_summary",
    "first_protonet_records",
    "conv4_threads",
    "figure1",
    "figure2a",
    "saturation_table",
    "fresh_histograms",
    "dimension_figure",
    "lemma1_figure",
    "alpha_sweep_figure",
    "judge",
    "figure2b",
    "evolution",
    "grid_time_estimate",
    "grid_checkpoint",
    "figure8",
    "grid_records",
    "epoch_gap",
    "figure9_verdicts",
    "first_epoch_records",
]


# Chapter 0: episodes and prototypes


def omniglot_alphabet_overlap(example: str = "Gurmukhi") -> str:
    """How many Omniglot test alphabets also have characters in training, with ``example``'s
    classes on each side: the split is by character, not by alphabet (chapter 0 says so)."""
    splits = ("train", "val", "test")
    names = {split: data.split_names("omniglot", split) for split in splits}
    alphabets = {split: {n.split("/")[0] for n in names[split]} for split in splits}
    shared = sorted(alphabets["train"] & alphabets["test"])
    count = {split: sum(n.startswith(f"{example}/") for n in names[split]) for split in splits}
    return (
        f"{len(shared)} of the {len(alphabets['test'])} test alphabets also have characters in "
        f"training, e.g. {example}: {count['train']} training and {count['test']} test "
        "classes (a character's four rotations stay on one side)"
    )


def pca_plot(net: torch.nn.Module, ep: Episode, title: str, ax) -> None:
    """Support, query and prototype embeddings of one episode on two principal axes: chapter
    0's picture of what a Prototypical Network's embedding does to an episode."""
    with torch.no_grad():
        sup = net(ep.support.flatten(0, 1)).view(*ep.support.shape[:2], -1)
        qry = net(ep.query.flatten(0, 1)).view(*ep.query.shape[:2], -1)
    allz = torch.cat([sup.flatten(0, 1), qry.flatten(0, 1)])
    mean = allz.mean(0)
    _, _, v = torch.pca_lowrank(allz - mean, q=2, center=False)

    def proj(z: torch.Tensor) -> torch.Tensor:
        return (z - mean) @ v

    protos = distances.prototypes(sup)
    for k in range(sup.shape[0]):
        ax.scatter(*proj(qry[k]).T, s=12, color=f"C{k}", alpha=0.5)
        ax.scatter(*proj(sup[k]).T, s=25, color=f"C{k}", marker="o", edgecolor="k")
        ax.scatter(*proj(protos[k : k + 1]).T, s=250, color=f"C{k}", marker="*", edgecolor="k")
    ax.set(title=title, xticks=[], yticks=[])


def training_summary(run: TrainResult) -> str:
    """One line on a training run: trained or loaded, its length, best epoch and speed."""
    return (
        f"{'loaded finished run' if run.loaded else 'trained'}: {run.episodes_done} episodes, "
        f"best epoch {run.best_epoch}, {run.episodes_per_s:.2f} training episodes/s, "
        f"{run.wall_time_s:.0f} s of training"
    )


SNELL_OMNIGLOT = "snell2017prototypical/table-1/prototypical-networks/omniglot"
"""Prototypical Networks' Omniglot rows in :mod:`fewshot_utils.paper_numbers`."""


def first_protonet_records(
    tests: dict[int, tuple[EvalResult, float]],
    config: TrainConfig,
    run: TrainResult,
    embed_time: float,
    profile: str,
    device: str | torch.device,
) -> list[dict]:
    """Chapter 0's test results beside Prototypical Networks' published ones: shows the
    sentence that compares them, prints each test's time and writes one record per way
    (``tests``: way -> (1-shot result, seconds); none written in ``smoke``). Returns the
    records, so that a test can check what they hold."""
    published = {way: paper_numbers.by_id(f"{SNELL_OMNIGLOT}/{way}w1s").accuracy for way in tests}
    show_markdown(
        "A short run does not reach Prototypical Networks' "
        + " and ".join(f"{published[w]:.1f}% ({w}-way 1-shot)" for w in tests)
        + " {cite}`snell2017prototypical`, which took tens of thousands of episodes."
    )
    records = []
    for way, (res, seconds) in tests.items():
        print(f"{way}-way test: {seconds:.1f} s, after {embed_time:.1f} s embedding")
        record = make_record(
            experiment="ch00_first_protonet",
            dataset="omniglot",
            method="squared_euclidean",
            result=res,
            profile=profile,
            device=device,
            wall_time_s=run.wall_time_s + embed_time + seconds,
            config={**config.__dict__, "backbone": "conv4-64"},  # training: config.query
            train_query=config.query,
            train_episodes=run.episodes_done,
            best_epoch=run.best_epoch,
            protonet_paper_accuracy=published[way] / 100,
        )
        print(write_result(record) or f"{profile} profile: record not written")
        records.append(record)
    return records


# Chapter 1: softmax saturation


def conv4_threads(device: str | torch.device) -> dict[int, float]:
    """On a CPU shared with other jobs one thread can beat several on chapter 1's small
    tensors: time both on a Conv-4 forward pass, keep the faster and print the rates. The
    probe draws from a forked generator, so the chapter's random numbers do not depend on it.
    """

    def conv4_rate() -> float:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            net = conv4_for("miniimagenet").train()
            x = torch.randint(0, 256, (16, 3, 84, 84), dtype=torch.uint8)
            net(x)  # warm-up
            t0 = time.perf_counter()
            net(x)
        return 1 / (time.perf_counter() - t0)

    rates = fastest_threads(conv4_rate, device)
    if rates:
        print(
            f"Conv-4 probe, forward passes per s by threads: {rates}; "
            f"using {torch.get_num_threads()}"
        )
    return rates


def figure1(lambdas: torch.Tensor, toys: dict[str, TwoPrototypes]):
    """The LSED paper's Figure 1: the true class's probability and the gradients with
    respect to both distances, against a factor ``lambdas`` on both distances."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for (name, toy), color in zip(toys.items(), ("C0", "C3")):
        axes[0].semilogx(lambdas, toy.p0, color=color, label=name)
        axes[1].semilogx(lambdas, toy.grad_d0, color=color, label=r"$\partial\ell/\partial d_0$")
        axes[1].semilogx(
            lambdas, toy.grad_d1, color=color, ls="--", label=r"$\partial\ell/\partial d_1$"
        )
    axes[0].set(ylabel=r"$p_0 = p(y=0\mid z)$", title="probability of the true class")
    axes[1].set(ylabel="gradient", title="gradients w.r.t. the two distances (colours as left)")
    for ax in axes:
        ax.set(xlabel=r"factor $\lambda$ on both distances")
        ax.axvline(1, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        "Figure 1 of the LSED paper: same ratio $d_0/d_1$, different gradient", fontsize=11
    )
    return fig


def figure2a(band: float, eps: float, d1_values: tuple[float, ...] = (10.0, 100.0, 1000.0)):
    """The LSED paper's Figure 2(a): the two-prototype loss and its gradient against
    ``-log d0`` for each ``d1``, with area II (``|d0 - d1| < band``) shaded."""
    x_axis = torch.linspace(-8.0, 2.3, 4001, dtype=torch.float64)  # -log d0
    d0 = torch.exp(-x_axis)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for d1, color in zip(d1_values, ("C0", "C1", "C2")):
        loss = torch.nn.functional.softplus(d0 - d1)  # -log sigma(d1 - d0)
        label = f"$d_1$ = {d1:g}"
        axes[0].semilogy(x_axis, loss.clamp_min(1e-12), color=color, label=label)
        axes[1].plot(x_axis, torch.sigmoid(d0 - d1), color=color, label=label)
        for ax in axes:  # area II: d1 - band < d0 < d1 + band
            left, right = -math.log(d1 + band), -math.log(max(d1 - band, 1e-9))
            ax.axvspan(left, right, color=color, alpha=0.2)
    for level in (eps, 1 - eps):
        axes[1].axhline(level, color="k", lw=0.7, ls="--")
    axes[0].set(ylabel=r"$\ell = -\log p_0$", ylim=(1e-12, 1e4), title="the loss")
    axes[1].set(
        ylabel=r"$\partial\ell/\partial d_0$",
        title=r"the gradient; dashed: $\varepsilon$, $1-\varepsilon$",
    )
    for ax in axes:
        ax.set(xlabel=r"$-\log d_0$  (left: far from its prototype; right: close)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="shaded: area II", title_fontsize=8)
    fig.suptitle(
        "Figure 2(a) of the LSED paper: area I left of each band, area III right", fontsize=11
    )
    return fig


Measured = dict[tuple[str, int], list[dict]]
"""Chapter 1's measurements: (network, way) -> one dict per episode (``d``, ``labels``,
``grad``, ``dim``)."""


def saturation_table(measured: Measured, eps: float) -> dict[tuple[str, int], dict]:
    """Show the mean statistics of each measured (network, way) as a table (mean distance,
    accuracy, sparsity, share of gradients in areas I-III) and return them by key."""
    summaries = {}
    for key, runs in measured.items():
        per_episode = [
            saturation.episode_statistics(r["d"], r["grad"], r["labels"], r["dim"], eps)
            for r in runs
        ]
        summaries[key] = {k: sum(s[k] for s in per_episode) / len(runs) for k in per_episode[0]}
    header = ["network", "episodes", "mean d", "accuracy", "sparsity"]
    rows = [
        [
            name,
            f"{len(measured[name, way])} × {way}-way",
            f"{s['mean d']:.0f}",
            f"{s['accuracy']:.2f}",
            f"{s['sparsity']:.3f}",
            *(f"{s[area]:.3f}" for area in ("I", "II", "III")),
        ]
        for (name, way), s in summaries.items()
    ]
    table([*header, "area I", "area II", "area III"], rows)
    return summaries


LN_RANGE = (-11.75, 0.25)
"""ln(1e-5) ... ln(1), the range of chapter 2's gradient histograms."""


def fresh_histograms(measured: Measured, keys: list[tuple[str, int]]):
    """Histograms of ``ln(|dl/dd| + 1e-5)`` and of the squared distances of each measured
    (network, way) in ``keys``: one row each."""
    fig, axes = plt.subplots(len(keys), 2, figsize=(11, 3.2 * len(keys)), squeeze=False)
    for row, key in enumerate(keys):
        g = torch.cat([r["grad"].flatten() for r in measured[key]])
        d = torch.cat([r["d"].flatten() for r in measured[key]])
        log_g = gradients.log_abs_gradient(g)
        axes[row, 0].hist(log_g, bins=60, range=LN_RANGE, color="C0")
        share = 100 * saturation.sparsity(g)
        axes[row, 0].set(
            xlabel=r"$\ln(|\partial\ell/\partial d| + 10^{-5})$",
            ylabel="count (log scale)",
            yscale="log",
            title=f"{key[0]}: {share:.1f}% of gradients below 1e-5",
        )
        axes[row, 1].hist(d, bins=60, color="C1")
        median = d.median()
        axes[row, 1].axvline(median, color="k", ls="--", lw=1, label=f"median {median:.0f}")
        axes[row, 1].set(xlabel="squared distance d", ylabel="count", title=f"{key[0]}: distances")
        axes[row, 1].legend(fontsize=8)
    fig.suptitle("Fresh Conv-4, training mode, 5-way 1-shot episodes", fontsize=11)
    fig.tight_layout()
    return fig


def dimension_figure(
    dims: list[int],
    rand_sparsity: list[float],
    networks: list[str],
    summaries: dict[tuple[str, int], dict],
    measured: Measured,
):
    """Mean squared distance and sparsity against the embedding's dimension: the formulas
    and random Gaussian episodes beside each fresh Conv-4 (``networks``, 5-way)."""
    relu_var = saturation.relu_gaussian_moments()[1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    d_line = torch.logspace(0, math.log10(1600), 50)
    expected = saturation.expected_squared_distance
    axes[0].loglog(d_line, expected(d_line), label="random N(0, 1): formula")
    axes[0].loglog(
        d_line, expected(d_line, relu_var, relu_var), label="random ReLU of N(0, 1): formula"
    )
    axes[1].semilogx(dims, rand_sparsity, "o-", ms=3, label="random Gaussian episodes")
    for name, marker in zip(networks, ("s", "D", "^")):
        s, dim = summaries[name, 5], measured[name, 5][0]["dim"]
        label = f"{name}, fresh Conv-4"
        axes[0].plot(dim, s["mean d"], marker, color="C3", ms=7, label=label)
        axes[1].plot(dim, s["sparsity"], marker, color="C3", ms=7, label=label)
    axes[0].set(ylabel="mean squared query-prototype distance", title="distances grow with D")
    axes[1].set(
        ylabel="sparsity (fraction below 1e-5)",
        ylim=(-0.02, 1.02),
        title="5-way 1-shot episodes",
    )
    for ax in axes:
        ax.set(xlabel="dimension D of the embedding")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    return fig


def lemma1_figure(
    d_i: torch.Tensor,
    y_i: torch.Tensor,
    alphas: torch.Tensor,
    w_curve: torch.Tensor,
    limits: tuple[torch.Tensor, torch.Tensor],
):
    """One query's weights ``w_ik(alpha)`` against ``alphas`` (``w_curve``, one row per
    alpha), with Lemma 1's limits for alpha -> 0 and alpha -> infinity as arrows."""
    w_small, w_large = limits
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    way = d_i.shape[1]
    nearest_wrong = int(d_i[0].masked_fill(torch.arange(way) == y_i, math.inf).argmin())
    for k in d_i[0].argsort().tolist():
        kind = "true" if k == y_i else ("nearest wrong" if k == nearest_wrong else "other")
        label = f"prototype {k} ({kind}), d = {d_i[0, k]:.0f}"
        lw = 2.5 if kind == "true" else 1.2
        ax.semilogx(alphas, w_curve[:, k], color=f"C{k}", lw=lw, label=label)
        ax.plot(alphas[0], w_small[0, k], "<", color=f"C{k}", ms=8, clip_on=False)
        ax.plot(alphas[-1], w_large[0, k], ">", color=f"C{k}", ms=8, clip_on=False)
    ax.axvline(1, color="k", ls="--", lw=0.8)
    ax.set(xlabel=r"$\alpha$ (dashed: 1, plain ProtoNet)", ylabel=r"weight $w_{ik}(\alpha)$")
    ax.set_title("one query; arrows: Lemma 1's limits, α → 0 (left) and α → ∞ (right)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def alpha_sweep_figure(
    alphas: torch.Tensor, sweep: dict[tuple[str, int], list[tuple[float, float]]], eps: float
):
    """Sparsity and the share of gradients in area II against the metric scale alpha, for
    each measured (network, way): ``sweep`` holds one (sparsity, area II) pair per alpha."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for key, values in sweep.items():
        label = f"{key[0]}, {key[1]}-way"
        axes[0].semilogx(alphas, [v[0] for v in values], label=label)
        axes[1].semilogx(alphas, [v[1] for v in values], label=label)
    for ax in axes:
        ax.axvline(1.0, color="k", ls="--", lw=0.8)
        ax.set(xlabel=r"metric scale $\alpha$ (dashed: 1, plain ProtoNet)", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3, which="both")
    axes[0].set(ylabel=r"fraction of $|w_{ik}| < 10^{-5}$", title="zero gradients (sparsity)")
    axes[1].set(ylabel=rf"fraction in area II ($\varepsilon$ = {eps:g})", title="graded gradients")
    axes[0].legend(fontsize=8)
    fig.suptitle(r"Fresh Conv-4, the measured distances, softmax over $-\alpha d$", fontsize=11)
    return fig


# Chapter 2: LSED


def judge(*claims: tuple) -> None:
    """Show the verdicts of the LSED paper's claims (``verdicts.lsed_*``) as a table."""
    show_markdown(verdicts.claim_table(claims))


def figure2b():
    """The LSED paper's Figure 2(b): LSED against the squared Euclidean distance for the
    ``(s, r)`` pairs chapter 2 discusses."""
    fig = plots.lsed_curves(
        {
            "squared Euclidean (r = 1)": (0.0, 1.0),
            "LSED s = 4, r = 0.1": (4.0, 0.1),
            "LSED s = 4, r = 0.01": (4.0, 0.01),
            "LSED s = 0, r = 0.01": (0.0, 0.01),
        }
    )
    fig.suptitle("Figure 2(b): the leaky squared Euclidean distance (dotted: d = s = 4)")
    return fig


Captures = dict[str, dict[int, gradients.GradientSnapshot]]
"""Gradient captures by model name, then by training iteration."""


def evolution(caps: Captures, titles: list[str], s: float | None = None) -> dict:
    """Show the histograms of each model's captures (one figure per model, titled from
    ``titles``) and a table of their summaries; returns the summaries by model name and
    iteration (``s``: LSED's threshold, for the share of distances at most ``s``)."""
    for (name, snaps), title in zip(caps.items(), titles):
        fig = gradients.histogram_figure(snaps, name)
        fig.suptitle(f"{title}: {name}, 1-shot training episodes")
        plt.show()
    out = {
        name: {it: gradients.snapshot_summary(snap, s=s) for it, snap in sorted(snaps.items())}
        for name, snaps in caps.items()
    }
    rows = {f"{n}, {it} iterations": v for n, by_it in out.items() for it, v in by_it.items()}
    show_markdown(gradients.summary_markdown(rows, "model"))
    return out


def grid_time_estimate(
    config: TrainConfig,
    n_models: int,
    train_x: torch.Tensor,
    device: str | torch.device,
    elapsed: float,
) -> str:
    """An upper bound of the training time of chapter 2's grid of ``n_models`` models,
    from this configuration's measured speed (validation and testing not included)."""
    later = "validation, testing and the sections below"  # not in the estimate
    model = conv4_for("miniimagenet")
    _, estimate = training_time_estimate(model, train_x, config, n_models, device, elapsed, later)
    return estimate


SHARED_WITH_CH04 = {
    "squared_euclidean": "ch04_squared_euclidean_1shot",
    "lsed_s4_r0.01": "ch04_lsed_1shot",
}
"""Grid models that are chapter 4's 1-shot models in ``full`` (same configuration, data and
seed): they share its checkpoints instead of training twice."""


def grid_checkpoint(tag: str, config: TrainConfig, profile: str, seed: int) -> Path:
    """The checkpoint of the grid model ``tag``: chapter 4's in ``full`` for the two paper
    models (an error if their configuration no longer is chapter 4's), else chapter 2's."""
    if profile == "full" and tag in SHARED_WITH_CH04:
        protocol = miniimagenet_protocol(profile)
        same = miniimagenet_config(protocol, 1, config.distance, seed)
        if config != same:
            raise RuntimeError(f"{tag} is no longer chapter 4's model: do not share its checkpoint")
        return checkpoint_dir() / f"{SHARED_WITH_CH04[tag]}_{profile}_seed{seed}.pt"
    return checkpoint_dir() / f"ch02_{tag}_{profile}_seed{seed}.pt"


Point = tuple[float, float]  # a grid point (s, r)
Paired = Callable[[str], tuple[float, float]]  # tag -> paired difference to the reference


def figure8(
    tests: dict[str, EvalResult],
    tags: dict[Point, str],
    paired: Paired,
    ref: str,
    settings: dict,
    lsed_caps: dict[int, gradients.GradientSnapshot],
    profile: str,
) -> None:
    """The LSED paper's Figure 8 on our grid: test accuracy against ``s`` and against ``r``,
    the table of every model with its paired difference to ``ref``, and the verdicts
    (``lsed_caps``: section 2.5's captures of ProtoNet(LSED), for the share of distances
    below the largest ``s``)."""

    def sweep(grid: list[float], point) -> dict[float, tuple[float, float]]:
        return {x: (tests[tags[point(x)]].accuracy, tests[tags[point(x)]].ci95) for x in grid}

    r_axis = "slope r (s = 4; r = 1 is squared Euclidean)"
    fig = plots.accuracy_sweeps(
        {
            "threshold s (r = 0.01)": sweep(settings["s_grid"], lambda s: (s, 0.01)),
            r_axis: sweep(settings["r_grid"], lambda r: (4.0, r)),
        },
        log_x=[r_axis],
        ylabel="5-way 1-shot test accuracy (%)",
    )
    fig.suptitle(
        f"Figure 8 ({profile} profile): {settings['mini_way']}-way 1-shot training, up to "
        f"{settings['max_episodes']} episodes per model; bars: 95% intervals"
    )
    plt.show()
    rows = []
    for s, r in sorted(tags):
        res, (m, h) = tests[tags[s, r]], (100 * v for v in paired(tags[s, r]))
        acc = f"{100 * res.accuracy:.2f} ± {100 * res.ci95:.2f}"
        diff = "—" if tags[s, r] == ref else f"{m:+.2f} ± {h:.2f}"
        rows.append([f"{s:g}", f"{r:g}", tags[s, r], acc, diff])
    table(["s", "r", "model", "test accuracy (%)", f"minus {ref}, paired (points)"], rows)
    j2 = max(settings["mini_iters"])  # the last captured iteration of section 2.5
    d_late = distances.lsed_inverse(lsed_caps[j2].distances, 4.0, 0.01)
    s_max = max(settings["s_grid"])
    judge(
        *verdicts.lsed_figure8(
            {s: 100 * tests[tags[s, 0.01]].accuracy for s in settings["s_grid"]},
            {
                r: tuple(100 * v for v in paired(tags[4.0, r]))
                for r in settings["r_grid"]
                if r != 0.01
            },
            (d_late <= s_max).double().mean().item(),
            s_max,
            j2,
            settings["max_episodes"],
        )
    )


def grid_records(
    tags: dict[Point, str],
    configs: dict[Point, TrainConfig],
    tests: dict[str, EvalResult],
    runs: dict[str, TrainResult],
    test_time: dict[str, float],
    paired: Paired,
    ref: str,
    test_per_class: int,
    profile: str,
    device: str | torch.device,
) -> list[dict]:
    """Write one record per grid model (``ch02_lsed_grid``): its test accuracy, training
    configuration and length, and paired difference to ``ref`` (none written in ``smoke``).
    Returns the records."""
    records = []
    for p in sorted(tags):
        tag, cfg = tags[p], configs[p]
        res, run = tests[tag], runs[tag]
        m, h = paired(tag)
        record = make_record(
            experiment="ch02_lsed_grid",
            dataset="miniimagenet",
            method=tag,
            way=5,
            shot=1,
            accuracy=res.accuracy,
            ci95=res.ci95,
            episodes=res.episodes,
            profile=profile,
            device=device,
            wall_time_s=run.wall_time_s + test_time[tag],
            config={
                **cfg.__dict__,
                "backbone": "conv4-1600",
                "test_images_per_class": test_per_class,
                "seed": cfg.seed,
            },
            query=15,
            s=p[0] if cfg.distance == "lsed" else None,
            r=p[1],
            train_episodes=run.episodes_done,
            best_epoch=run.best_epoch,
            paired_minus_reference=m,
            paired_ci95=h,
            reference=ref,
            training_stage="protocol" if profile == "full" else "early training",
        )
        print(write_result(record) or f"{profile} profile: record not written")
        records.append(record)
    return records


History = dict[str, list]


def epoch_gap(hs: History, hl: History, i: int) -> dict[str, float]:
    """Accuracies of ProtoNet (``hs``) and ProtoNet(LSED) (``hl``) after validation ``i``,
    and the validation gap LSED - SED in points with its paired 95% half-width (both models
    meet the same validation episodes)."""
    if not all("val_per_episode" in h for h in (hs, hl)):
        raise RuntimeError(
            "these checkpoints predate per-episode validation accuracies (needed "
            "for the paired gap): rerun with RETRAIN = True"
        )
    gap, gap_ci = paired_difference(hl["val_per_episode"][i], hs["val_per_episode"][i])
    return {
        "episodes": hs["episode"][i],
        "train": (hs["train_acc"][i], hl["train_acc"][i]),
        "val": (hs["val_acc"][i], hl["val_acc"][i]),
        "gap": 100 * gap,
        "gap_ci": 100 * gap_ci,
    }


PAPER_EPOCH = 100
"""Episodes per epoch in the paper's (Prototypical Networks') training."""


def figure9_verdicts(hs: History, hl: History) -> tuple[int, dict[str, float]]:
    """Judge the paper's Figure 9 claims on our two learning curves, at our first
    validation and after as many episodes as the paper's first epoch. Returns the index of
    that validation and the gap there (:func:`epoch_gap`)."""
    ours = epoch_gap(hs, hl, 0)
    paper_i = next(
        (i for i, e in enumerate(hs["episode"]) if e >= PAPER_EPOCH), len(hs["episode"]) - 1
    )
    at_paper = epoch_gap(hs, hl, paper_i)
    ahead = sum(a > b for a, b in zip(hl["val_acc"], hs["val_acc"]))
    judge(*verdicts.lsed_figure9(ours, at_paper, ahead, len(hs["episode"])))
    return paper_i, at_paper


def first_epoch_records(
    models: dict[str, tuple[History, TrainConfig]],
    paper_i: int,
    at_paper: dict[str, float],
    val_episodes: int,
    profile: str,
    device: str | torch.device,
) -> list[dict]:
    """Write the ``ch02_first_epoch`` record of each model (tag -> (history, training
    configuration)): its validation accuracy after validation ``paper_i`` with its
    learning curves, and the paired LSED - SED gap there (none written in ``smoke``)."""
    records = []
    for tag, (h, cfg) in models.items():
        record = make_record(
            experiment="ch02_first_epoch",
            dataset="miniimagenet",
            method=tag,
            way=5,
            shot=1,
            accuracy=h["val_acc"][paper_i],
            ci95=h["val_ci95"][paper_i],
            episodes=val_episodes,
            profile=profile,
            device=device,
            wall_time_s=sum(h["train_seconds"][: paper_i + 1]),
            config={**cfg.__dict__, "backbone": "conv4-1600", "seed": cfg.seed},
            split="val",
            query=15,
            after_episodes=h["episode"][paper_i],
            train_acc=h["train_acc"][paper_i],
            first_validation_after_episodes=h["episode"][0],
            first_validation_val_acc=h["val_acc"][0],
            first_validation_val_ci95=h["val_ci95"][0],
            first_validation_train_acc=h["train_acc"][0],
            val_acc_per_epoch=h["val_acc"],
            train_acc_per_epoch=h["train_acc"],
            epoch_ends=h["episode"],
            val_gap_lsed_minus_sed=at_paper["gap"] / 100,
            val_gap_ci95=at_paper["gap_ci"] / 100,
        )
        print(write_result(record) or f"{profile} profile: record not written")
        records.append(record)
    return records
