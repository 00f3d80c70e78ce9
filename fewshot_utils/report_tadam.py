"""The book's machinery for chapter 7 (TADAM): the paper's Table 2 beside ours, records,
claims, time estimates, tables, figures and findings.

Chapter 7 teaches with short shown cells; what it only needs to *report* lives here, so that
each of its folded cells is one call: the name of a model's record and checkpoint
(``method_name``, ``checkpoint_stem``) and its record (``chapter_record``, ``write_record``);
TADAM's Table 2 as our claims read it (``table2_cell``, ``table2_difference``); the time
estimate (``chapter_estimate`` with ``estimate_seconds``, ``evaluation_images``,
``seconds_per_image``); the numbers read off trained models (``Scores``); the chapter's tables
(``models_table``, ``ablation_table``, ``seeds_table``), figures (``plot_fresh_sweep``,
``plot_fresh_gradients``, ``plot_training``, ``plot_aux_schedule``) and findings
(``findings``). Nothing here is TADAM's method: that is ``tadam``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from . import effects, gradients, paper_numbers
from .display import _show_markdown as show_markdown
from .display import table
from .evaluation import EvalResult, embed, paired_difference
from .profiles import resolve_device
from .results import make_record, write_result
from .tadam import (
    TadamConfig,
    TadamNet,
    aux_probability,
    expected_aux_steps,
    measure_tadam_seconds,
)
from .training import TrainResult, sync

__all__ = [
    "BASELINE",
    "method_name",
    "checkpoint_stem",
    "chapter_record",
    "write_record",
    "table2_cell",
    "table2_difference",
    "evaluation_images",
    "seconds_per_image",
    "estimate_seconds",
    "model_kinds",
    "chapter_estimate",
    "Scores",
    "models_table",
    "ablation_table",
    "seeds_table",
    "plot_fresh_sweep",
    "plot_fresh_gradients",
    "plot_training",
    "plot_aux_schedule",
    "findings",
]

BASELINE = "sq, α = 1"
"""The model every difference of chapter 7 is taken against by default (Table 2's baseline)."""


# ------------------------------------------------------------------- names and records


def method_name(name: str) -> str:
    """The ``method`` of chapter 7's record for the model called ``name`` (its checkpoint's
    stem too): ``"sq, α = 0.01"`` -> ``"sq_alpha=0.01"``, ``"α + AT"`` -> ``"alpha_AT"``.
    Record file names are built from it, so the mapping must not change."""
    return name.replace("α", "alpha").replace(" ", "").replace(",", "_").replace("+", "_")


def checkpoint_stem(name: str, spec: dict, in_grid: bool, profile: str, seed: int) -> str:
    """File name of the checkpoint of chapter 7's model ``name`` (specification ``spec``)
    trained with ``seed``: its ``method_name``; then ``_alpha<α>`` when its fixed ``α`` was
    chosen on validation, i.e. it is neither learned nor one of the grid's models
    (``in_grid``): the ablation's; then the profile and the seed. Finished checkpoints are
    found by it, so the mapping must not change."""
    alpha = "" if spec["learn"] or in_grid else f"_alpha{spec['alpha']:g}"
    return f"ch07_{method_name(name)}{alpha}_{profile}_seed{seed}.pt"


def chapter_record(
    name: str,
    run: TrainResult,
    result: EvalResult,
    config: TadamConfig,
    test_seconds: float,
    alpha_choice: str,
    ablation_rows: Sequence[str],
    *,
    profile: str,
    device: str | torch.device,
    widths: Sequence[int],
    image_side: int,
    test_per_class: int,
) -> dict:
    """The results record of chapter 7's model ``name``: trained as ``run`` with ``config``
    (whose ``seed`` is the training seed), tested as ``result`` in ``test_seconds``.

    It keeps the training configuration with the model's parts and the profile's reductions
    (``widths``, ``image_side``, ``test_per_class``), the final ``alpha`` and how it was set
    (``alpha_choice``), the validation accuracy of the epoch kept, the mean near-zero share of
    training, and the rows of TADAM's Table 2 it stands for (``ablation_rows``) with their
    published cells (``paper_rows``, where our sources have one)."""
    h = run.history
    return make_record(
        experiment="ch07_tadam",
        dataset="miniimagenet",
        method=method_name(name),
        result=result,
        profile=profile,
        device=device,
        wall_time_s=run.wall_time_s + test_seconds,
        config={
            **config.__dict__,
            "model": run.model.describe(),
            "backbone": f"resnet12-{'-'.join(map(str, widths))}",
            "image_side": image_side,
            "test_per_class": test_per_class,
        },
        train_episodes=run.episodes_done,
        final_alpha=run.model.alpha.item(),
        alpha_choice=alpha_choice,
        val_accuracy=h["val_acc"][run.best_epoch - 1],
        near_zero_train=sum(h["near_zero"]) / len(h["near_zero"]),
        ablation_rows=list(ablation_rows),
        paper_rows=[cell for cell in map(table2_cell, ablation_rows) if cell],
        train_seed=config.seed,
    )


def write_record(
    key: str | tuple[str, int],
    seed: int,
    models: dict[str, dict],
    grid: Iterable[str],
    ablation: dict[str, str],
    config: TadamConfig,
    scores: Scores,
    facts: dict,
) -> dict:
    """Build (``chapter_record``), write (``results.write_result``; never in ``smoke``) and
    announce the record of model ``key``: a name of ``models`` trained with the chapter's
    ``seed``, or ``(name, training seed)``.

    Its ``alpha_choice`` is "learned" for a learned alpha, "validation grid" for a model of
    the ``grid`` and "chosen on validation" otherwise (the ablation's models); its Table 2
    rows are those of ``ablation`` (row -> model) it stands for. ``facts`` are the keyword
    arguments of ``chapter_record`` (profile, device, widths, image side, test images per
    class). Returns the record."""
    name, train_seed = (key, seed) if isinstance(key, str) else key
    rows = [row for row, model in ablation.items() if model == name]
    choice = "validation grid" if name in grid else "chosen on validation"
    choice = "learned" if models[name]["learn"] else choice
    c = dataclasses.replace(config, seed=train_seed)
    run, res, seconds = scores.runs[key], scores.tests[key], scores.test_seconds[key]
    rec = chapter_record(name, run, res, c, seconds, choice, rows, **facts)
    written = write_result(rec) or f"{facts['profile']} profile: record not written"
    print(f"{name:14s}", written)
    return rec


def table2_cell(row: str) -> str | None:
    """Id of the :mod:`paper_numbers` cell of TADAM's Table 2 (miniImageNet 5-way 5-shot) for
    the ablation row ``row`` ("baseline", "α", "α + AT", "α + TC", "α + AT + TC"), read from
    the claims of ``effects.CLAIMS``; None where our sources print no number (α + TC)."""
    for claim in effects.CLAIMS:
        if claim.experiment != "ch07_tadam":
            continue
        if claim.new == {"ablation_rows": row} and claim.paper_new:
            return claim.paper_new
        if claim.ref == {"ablation_rows": row} and claim.paper_ref:
            return claim.paper_ref
    return None


def table2_difference(row: str, ref: str) -> float:
    """TADAM's Table 2 (5-shot): the published accuracy of ``row`` minus that of ``ref``, in
    points. A row without a published number is an error, never a guess."""
    cells = {r: table2_cell(r) for r in (row, ref)}
    missing = [r for r, cell in cells.items() if cell is None]
    if missing:
        raise KeyError(f"TADAM's Table 2 has no 5-shot number for {missing} in our sources")
    return paper_numbers.by_id(cells[row]).accuracy - paper_numbers.by_id(cells[ref]).accuracy


# ------------------------------------------------------------------- the time estimate


def evaluation_images(
    task_conditioned: bool,
    *,
    epochs: int,
    val_episodes: int,
    test_episodes: int,
    val_images: int,
    test_images: int,
    episode_images: int,
) -> int:
    """Images one model embeds for validation (after each of ``epochs`` epochs) and testing,
    for chapter 7's time estimate. Without a TEN each split is embedded whole (``val_images``
    every epoch, ``test_images`` once) and the episodes are drawn from the embeddings; with a
    TEN every episode is embedded on its own, ``episode_images`` each (the support counted
    twice: once to condition, once conditioned)."""
    if task_conditioned:
        return (epochs * val_episodes + test_episodes) * episode_images
    return epochs * val_images + test_images


def seconds_per_image(
    model: nn.Module, images: torch.Tensor, device: str | torch.device | None = "auto"
) -> float:
    """Wall seconds per image of ``evaluation.embed(model, images)`` (uint8
    ``[classes, per_class, C, H, W]``) on ``device``, after a warm-up pass on the first class."""
    n = images.shape[0] * images.shape[1]
    if n == 0:
        raise ValueError("seconds_per_image needs at least one image")
    embed(model, images[:1], device=device)  # warm-up: first calls allocate and dispatch
    t0 = time.perf_counter()
    embed(model, images, device=device)
    sync(resolve_device(device))
    return (time.perf_counter() - t0) / n


def estimate_seconds(
    make: Callable[[bool, bool], TadamNet],
    kinds: Sequence[tuple[bool, bool]],
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    test_data: torch.Tensor,
    config: TadamConfig,
    test_episodes: int,
    probe_episodes: int = 3,
    device: str | torch.device | None = "auto",
    test_query: int = 15,
    overhead: float = 1.3,
) -> dict[str, float]:
    """Expected seconds of chapter 7's runs on this machine: ``{"training": ...,
    "validation and test": ...}``, for ``profiles.time_estimate``.

    ``kinds`` lists one ``(auxiliary task, task conditioning)`` pair per model to train;
    ``make(at, tc)`` builds a model of that kind. Each kind's seconds per episode and per
    auxiliary batch are measured once (``measure_tadam_seconds``, ``probe_episodes`` timed
    steps); validation and testing count the images ``evaluation_images`` says each model
    embeds, at the embedding speed of the first 4 base classes (at most 50 images each),
    times ``overhead`` for the episodes' own work. Test episodes have ``config.val_way``
    classes, the training shot and ``test_query`` queries per class."""
    cost = {
        kind: measure_tadam_seconds(make(*kind), train_data, config, probe_episodes, device)
        for kind in dict.fromkeys(kinds)
    }
    per_image = seconds_per_image(make(False, False), train_data[:4, :50], device)
    shot = config.val_shot or config.shot
    counts = dict(
        epochs=config.max_episodes // config.episodes_per_epoch,
        val_episodes=config.val_episodes,
        test_episodes=test_episodes,
        val_images=val_data.shape[0] * val_data.shape[1],
        test_images=test_data.shape[0] * test_data.shape[1],
        episode_images=config.val_way * (2 * shot + max(config.val_query, test_query)),
    )
    images = sum(evaluation_images(tc, **counts) for _, tc in kinds)
    return {
        "training": sum(cost[kind]["predicted_s"] for kind in kinds),
        "validation and test": overhead * images * per_image,
    }


def model_kinds(specs: Iterable[dict], seeds: Sequence[int], seed: int) -> list[tuple[bool, bool]]:
    """``(auxiliary task, task conditioning)`` of every model chapter 7 trains: one per
    specification of ``specs`` (each with ``at`` and ``tc``), and the baseline and alpha
    models again (neither part) for each training seed of ``seeds`` other than ``seed``."""
    retrained = sum(s != seed for s in seeds)
    return [(s["at"], s["tc"]) for s in specs] + [(False, False)] * (2 * retrained)


def chapter_estimate(
    make: Callable[[bool, bool], TadamNet],
    specs: Iterable[dict],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    config: TadamConfig,
    settings: dict,
    seed: int,
    device: str | torch.device | None = "auto",
) -> dict[str, float]:
    """``estimate_seconds`` for every model of chapter 7 (``model_kinds`` of ``specs`` and the
    profile's ``settings["seeds"]``), on ``data`` (train, validation, test) with the
    profile's test and probe episodes: the parts ``profiles.time_estimate`` prints."""
    kinds = model_kinds(specs, settings["seeds"], seed)
    counts = (settings["test_episodes"], settings["probe_episodes"])
    return estimate_seconds(make, kinds, *data, config, *counts, device)


# ------------------------------------------------------------------- scores and tables


@dataclass
class Scores:
    """Chapter 7's trained runs, test results and test seconds by model key (a name, or
    ``(name, training seed)``), and the numbers its tables and findings read off them.

    It holds the chapter's own dicts, so models trained and tested later are seen too."""

    runs: dict
    tests: dict
    test_seconds: dict

    def val_accuracy(self, key) -> float:
        """Validation accuracy of model ``key`` at the epoch its checkpoint keeps."""
        run = self.runs[key]
        return run.history["val_acc"][run.best_epoch - 1]

    def near_zero(self, key) -> float:
        """Mean share of near-zero gradients over the training epochs of model ``key``."""
        h = self.runs[key].history
        return sum(h["near_zero"]) / len(h["near_zero"])

    def gap(self, a, b=BASELINE) -> str:
        """Test accuracy of model ``a`` minus model ``b``, paired on the same episodes, in
        points with the 95% half-width."""
        mean, hw = paired_difference(self.tests[a].per_episode, self.tests[b].per_episode)
        return f"{100 * mean:+.2f} ± {100 * hw:.2f}"

    def accuracy(self, key) -> str:
        """Test accuracy of model ``key`` with its 95% half-width, in percent."""
        r = self.tests[key]
        return f"{100 * r.accuracy:.2f} ± {100 * r.ci95:.2f}"

    def minutes(self, key) -> str:
        """Wall minutes of model ``key``: training + testing."""
        return f"{self.runs[key].wall_time_s / 60:.1f} + {self.test_seconds[key] / 60:.1f}"


def models_table(models: dict[str, dict], scores: Scores) -> None:
    """Section 7.3's table: per model, validation accuracy (epoch kept), test accuracy, the
    paired difference against the baseline, the final alpha, the near-zero share of
    training and the wall time; learned-alpha models are marked as not the paper's."""
    rows = [
        [
            name + (" *(learned, not the paper's)*" if s["learn"] else ""),
            f"{100 * scores.val_accuracy(name):.2f}",
            scores.accuracy(name),
            "—" if name == BASELINE else scores.gap(name),
            f"{scores.runs[name].model.alpha.item():.3g}",
            f"{100 * scores.near_zero(name):.1f}",
            scores.minutes(name),
        ]
        for name, s in models.items()
    ]
    header = ["model", "validation acc. (%)", "test acc. (%)", f"vs {BASELINE} (paired)"]
    header += ["final α", "near-zero grads in training (%)", "wall time, train + test (min)"]
    table(header, rows)


def ablation_table(ablation: dict[str, str], scores: Scores) -> None:
    """Section 7.6's table: each row of TADAM's Table 2 (row -> our model), our accuracy, the
    difference against the baseline paired on the same test episodes, the final alpha, the
    auxiliary batches trained, the wall time and the paper's accuracy where our sources
    print one."""
    base = ablation["baseline"]
    rows = []
    for row, name in ablation.items():
        run, cell = scores.runs[name], table2_cell(row)
        rows.append(
            [
                row,
                scores.accuracy(name),
                "—" if row == "baseline" else scores.gap(name, base),
                f"{run.model.alpha.item():.3g}",
                str(sum(run.history["aux_steps"])),
                scores.minutes(name),
                f"{paper_numbers.by_id(cell).accuracy:.1f}" if cell else "not in our sources",
            ]
        )
    header = ["TADAM Table 2 row", "ours (%)", "vs baseline (paired)", "final α"]
    header += ["auxiliary batches", "wall time, train + test (min)", "paper (%)"]
    table(header, rows)


def seeds_table(
    pair: Sequence[str],
    seeds: Sequence[int],
    scores: Scores,
    key: Callable[[str, int], object],
) -> None:
    """The baseline and alpha models (``pair``) per training seed: their test accuracies and
    alpha minus baseline paired on the same test episodes; ``key(name, seed)`` names a
    model's run as the chapter does."""
    rows = []
    for seed in seeds:
        base, alpha = (key(n, seed) for n in pair)
        accs = [f"{100 * scores.tests[k].accuracy:.2f}" for k in (base, alpha)]
        rows.append([str(seed), *accs, scores.gap(alpha, base)])
    header = ["training seed", "baseline (%)", "α (%)", "α − baseline (paired, 95%)"]
    table(header, rows)


# ------------------------------------------------------------------- figures


def plot_fresh_sweep(
    alphas: Sequence[float],
    sweeps: dict[str, Sequence[float]],
    lsed: float,
    episodes: int,
    profile: str,
) -> None:
    """Section 7.2's figure: the share of near-zero gradients of a fresh ResNet-12 against
    alpha, for squared Euclidean and cosine (``sweeps``, fractions per alpha), with LSED's
    share at alpha = 1 (``lsed``) as a line."""
    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    names = (("squared_euclidean", "squared Euclidean"), ("cosine", "cosine (1 - cos)"))
    for name, label in names:
        ax.plot(alphas, [100 * f for f in sweeps[name]], marker=".", label=label)
    ax.axhline(100 * lsed, color="tab:green", ls="--", label="LSED s=4, r=0.01 (α = 1)")
    ax.axvline(1.0, color="gray", lw=0.8)
    ax.set(xscale="log", xlabel="metric scale α", ylabel="near-zero gradients (%)")
    ax.set_title(f"fresh ResNet-12, {episodes} training episodes ({profile} profile)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plt.show()


def plot_fresh_gradients(
    embedded: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    lsed: dict,
) -> None:
    """Section 7.2's histograms, as chapter 2 draws them: ``ln(|dl/dd| / alpha + 1e-5)`` of
    the fresh network's episodes (``embedded``: queries, prototypes, labels) for squared
    Euclidean at alpha = 0.01, 0.1, 1 and for LSED (``lsed``: its s and r) at alpha = 1."""
    sq = "squared_euclidean"
    panels = [(sq, a, {}) for a in (0.01, 0.1, 1.0)] + [("lsed", 1.0, lsed)]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), constrained_layout=True)
    for ax, (name, a, kw) in zip(axes, panels):
        snaps = []
        for q, c, y in embedded:
            _, snap = gradients.episode_gradients(q.cpu(), c.cpu(), y.cpu(), name, a, **kw)
            snaps.append(snap._replace(grads=snap.grads / a))
        title = f"{'LSED' if name == 'lsed' else 'squared Euclidean'}, α = {a:g}"
        gradients.gradient_histogram(ax, gradients.pool(snaps), title)
    axes[0].legend(fontsize=7)
    plt.show()


def plot_training(models: dict[str, dict], runs: dict) -> None:
    """Section 7.3's figure: alpha epoch by epoch for the learned-alpha models, and every
    model's share of near-zero gradients (epoch means)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    for i, (name, s) in enumerate(models.items()):
        h, style = runs[name].history, dict(marker="o", color=f"C{i}", label=name)
        if s["learn"]:
            axes[0].plot([0] + h["episode"], [1.0] + h["alpha"], **style)
        axes[1].plot(h["episode"], [100 * f for f in h["near_zero"]], **style)
    axes[0].set(xlabel="training episodes", ylabel="α", yscale="log", title="learned α")
    axes[1].set(xlabel="training episodes", ylabel="near-zero gradients (%)", title="epoch means")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    plt.show()


def plot_aux_schedule(total: int) -> None:
    """Section 7.5's figure: the probability of an auxiliary batch at each of ``total``
    training steps, TADAM's smooth decay beside the official code's 20 stages."""
    fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
    for stairs, label in ((False, "0.9^(20 t / T)"), (True, "official code (20 stages)")):
        ax.plot([aux_probability(t, total, staircase=stairs) for t in range(total)], label=label)
    ax.set(xlabel="training step t", ylabel="P(auxiliary batch)", ylim=(0, 1.05))
    expected = expected_aux_steps(total)
    ax.set_title(f"auxiliary task schedule, T = {total}: {expected:.0f} expected")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plt.show()


# ------------------------------------------------------------------- findings


def findings(
    near_zero: tuple[float, float, float],
    alpha: dict[str, float],
    ablation: dict[str, str],
    scores: Scores,
    elapsed_s: float,
    device: str | torch.device,
    profile: str,
) -> None:
    """Display section 7.7's findings, every number computed from this run: the fresh
    network's near-zero shares (``near_zero``: squared Euclidean at alpha = 1 and 0.01, LSED),
    alpha chosen on validation per distance (``alpha``), the learned alphas, LSED against the
    baseline, each Table 2 row of ``ablation`` against alpha alone and the paper's
    differences, the notebook's ``elapsed_s``; outside ``full``, a reminder of how early in
    training every model is."""
    z1, z_small, lsed = near_zero
    gap, accuracy = scores.gap, scores.accuracy
    both = "both reduce" if z_small < z1 and lsed < z1 else "do not both reduce"
    a_sq, cos = ablation["α"], f"cos, α = {alpha['cosine']:g}"
    learned = {d: scores.runs[f"{d}, α learned"].model.alpha.item() for d in ("sq", "cos")}
    moved = {d: "rose" if a > 1 else "fell" for d, a in learned.items()}
    best = max(ablation, key=lambda row: scores.tests[ablation[row]].accuracy)
    accs = [100 * r.accuracy for r in scores.tests.values()]

    def published(row, ref):
        return f"the paper: {table2_difference(row, ref):+.1f}"

    lines = [
        f"- At initialisation {100 * z1:.1f}% of the squared Euclidean gradients are near zero at "
        f"α = 1, {100 * z_small:.1f}% at α = 0.01 and {100 * lsed:.1f}% with LSED: here a "
        f"smaller α and LSED {both} it.",
        f"- Metric scaling as the paper does it (α fixed, chosen on validation): squared Euclidean "
        f"α = {alpha['squared_euclidean']:g}, {gap(a_sq)} points against α = 1 on the same test "
        f"episodes ({published('α', 'baseline')}); cosine α = {alpha['cosine']:g}, "
        f"{accuracy(cos)}%.",
        f"- Learned α (ours, not the paper's) {moved['sq']} from 1 to {learned['sq']:.3g} for "
        f"squared Euclidean ({gap('sq, α learned')} points against α = 1) and {moved['cos']} to "
        f"{learned['cos']:.3g} for cosine, following ∂L/∂α of 7.2.",
        f"- LSED against squared Euclidean at α = 1, same episodes: {gap('LSED')} points.",
        f"- Each component against α alone: +AT {gap('α + AT', a_sq)} "
        f"({published('α + AT', 'α')}), +TC {gap('α + TC', a_sq)}, +AT+TC {gap('TADAM', a_sq)} "
        f"({published('α + AT + TC', 'α')}) points; TADAM against the baseline {gap('TADAM')} "
        f"({published('α + AT + TC', 'baseline')}). The best row here is *{best}*.",
        f"- The whole notebook took {elapsed_s / 60:.1f} min on {device}.",
    ]
    if profile != "full":
        lines.append(
            f"- **`{profile}` profile** (7.1): every model is between {min(accs):.1f}% and "
            f"{max(accs):.1f}% (chance: 20%), early in training."
        )
    show_markdown("\n".join(lines))
