"""Figures shared by the chapters: image grids, episodes, learning curves, the LSED curve and
accuracy against a swept hyper-parameter."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from .distances import lsed

__all__ = [
    "to_display",
    "image_grid",
    "show_episode",
    "learning_curves",
    "with_start",
    "lsed_curves",
    "accuracy_sweeps",
]


def to_display(img: torch.Tensor):
    """A uint8 image ``[h, w]`` or ``[3, h, w]`` as an array ``imshow`` understands."""
    img = img.detach().cpu()
    return img.permute(1, 2, 0).numpy() if img.dim() == 3 else img.numpy()


def image_grid(images: torch.Tensor, row_titles: list[str] | None = None, scale: float = 1.0):
    """Show ``[rows, cols, ...]`` uint8 images as a grid; returns the figure."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(
        rows, cols, figsize=(scale * cols, scale * rows), squeeze=False, constrained_layout=True
    )
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(to_display(images[r, c]), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        if row_titles:
            axes[r, 0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=8)
    return fig


def show_episode(
    support: torch.Tensor,
    query: torch.Tensor,
    predictions: torch.Tensor | None = None,
    scale: float = 1.0,
):
    """Support ``[way, shot, ...]`` left of query ``[way, q, ...]``, one class a row.

    With ``predictions`` (``[way * q]`` class indices, queries flattened class by
    class), each query is framed green when right and red when wrong, and a
    wrong one is titled with the class it was given.
    """
    way, shot = support.shape[:2]
    q = query.shape[1]
    cols = shot + q
    fig, axes = plt.subplots(
        way, cols, figsize=(scale * cols, scale * way), squeeze=False, constrained_layout=True
    )
    for k in range(way):
        for j in range(cols):
            ax = axes[k, j]
            img = support[k, j] if j < shot else query[k, j - shot]
            ax.imshow(to_display(img), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= shot and predictions is not None:
                pred = int(predictions[k * q + j - shot])
                color = "tab:green" if pred == k else "tab:red"
                for spine in ax.spines.values():
                    spine.set_edgecolor(color)
                    spine.set_linewidth(3)
                if pred != k:
                    ax.set_title(f"-> {pred}", fontsize=7, color=color, pad=1)
        axes[k, 0].set_ylabel(f"class {k}", rotation=0, ha="right", va="center", fontsize=8)
    axes[0, 0].set_title("support", fontsize=8, loc="left")
    if q:
        axes[0, shot].set_title(
            "queries" if predictions is None else axes[0, shot].get_title(), fontsize=8
        )
    return fig


def learning_curves(
    histories: dict[str, dict[str, list[float]]], references: dict[str, float] | None = None
):
    """Loss and accuracy against training episodes for several named runs.

    Validation accuracy is drawn with its 95% interval; ``references`` (label -> accuracy in
    percent, e.g. a paper's final test accuracy) are drawn as dotted horizontal lines, in the
    colour of the run of the same position. Returns the figure.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i}"
        ep = h["episode"]
        ax_loss.plot(ep, h["train_loss"], color=color, label=f"{name} train")
        ax_loss.plot(ep, h["val_loss"], color=color, ls="--", label=f"{name} val")
        ax_acc.plot(ep, [100 * a for a in h["train_acc"]], color=color, label=f"{name} train")
        val = torch.tensor(h["val_acc"]) * 100
        ci = torch.tensor(h["val_ci95"]) * 100
        ax_acc.plot(ep, val, color=color, ls="--", label=f"{name} val")
        ax_acc.fill_between(ep, val - ci, val + ci, color=color, alpha=0.15)
    for i, (label, acc) in enumerate((references or {}).items()):
        ax_acc.axhline(acc, color=f"C{i}", ls=":", lw=1.5, label=label)
    ax_loss.set(xlabel="training episodes", ylabel="loss", yscale="log", title="loss")
    ax_acc.set(xlabel="training episodes", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def with_start(history: dict[str, list[float]], start) -> dict[str, list[float]]:
    """A training ``history`` for :func:`learning_curves` with the untrained network as its
    first point, at episode 0: ``start`` is that network's validation result (anything with
    ``loss``, ``accuracy`` and ``ci95``, e.g. an ``EvalResult``). Nothing was trained yet, so
    its training loss and accuracy are NaN (not drawn)."""
    return {
        "episode": [0, *history["episode"]],
        "train_loss": [math.nan, *history["train_loss"]],
        "train_acc": [math.nan, *history["train_acc"]],
        "val_loss": [start.loss, *history["val_loss"]],
        "val_acc": [start.accuracy, *history["val_acc"]],
        "val_ci95": [start.ci95, *history["val_ci95"]],
    }


def lsed_curves(curves: dict[str, tuple[float, float]], s: float = 4.0):
    """The LSED paper's Figure 2(b) and its log-log twin: ``d_LSED`` of each named ``(s, r)``
    of ``curves`` against the distance ``||z - c||`` (left, where it looks like a Huber loss)
    and against the squared distance ``d`` (right, log axes: the identity up to ``s``, then a
    line ``r`` times lower). Computed by :func:`~fewshot_utils.distances.lsed` on
    one-dimensional points; a dotted line marks the threshold ``s``. Returns the figure."""
    origin = torch.zeros(1, 1)
    t = torch.linspace(0, 8, 801)[:, None]  # ||z - c|| of a query to a prototype at 0
    t_log = torch.logspace(-1, 4, 500).sqrt()[:, None]  # squared distances 0.1 ... 10^4
    fig, (ax_d, ax_sq) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for i, (name, (s_i, r_i)) in enumerate(curves.items()):
        color = "k" if i == 0 else f"C{i - 1}"
        ax_d.plot(t[:, 0], lsed(t, origin, s_i, r_i)[:, 0], color=color, label=name)
        ax_sq.loglog(t_log[:, 0] ** 2, lsed(t_log, origin, s_i, r_i)[:, 0], color=color, label=name)
    ax_d.set(xlabel=r"$\|z - c\|$", ylim=(0, 30), title="against the distance (Figure 2(b))")
    ax_sq.set(xlabel=r"squared distance $d$", title="against the squared distance")
    for ax, x in ((ax_d, math.sqrt(s)), (ax_sq, s)):
        ax.axvline(x, color="grey", ls=":", lw=0.8)
        ax.set_ylabel(r"$d_{\mathrm{LSED}}$")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def accuracy_sweeps(
    sweeps: dict[str, dict[float, tuple[float, float]]],
    log_x: Sequence[str] = (),
    ylabel: str = "test accuracy (%)",
):
    """Accuracy against a swept hyper-parameter, one panel per sweep (shared y axis).

    ``sweeps`` maps a sweep's name (its x label) to ``{value: (accuracy, ci95)}``, fractions,
    drawn in percent with the 95% half-width as error bars, in the order given; the sweeps
    named in ``log_x`` get a logarithmic x axis. Returns the figure."""
    unknown = set(log_x) - set(sweeps)
    if unknown:
        raise ValueError(f"log_x names sweeps that are not given: {sorted(unknown)}")
    fig, axes = plt.subplots(
        1,
        len(sweeps),
        figsize=(5.5 * len(sweeps), 3.8),
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )
    for ax, (name, points) in zip(axes[0], sweeps.items()):
        xs = list(points)
        acc = [100 * points[x][0] for x in xs]
        err = [100 * points[x][1] for x in xs]
        ax.errorbar(xs, acc, yerr=err, marker="o", capsize=3)
        ax.set(xlabel=name, xscale="log" if name in log_x else "linear")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(ylabel)
    return fig
