"""Figures shared by the chapters: image grids, episodes, learning curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

__all__ = ["to_display", "image_grid", "show_episode", "learning_curves"]


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
