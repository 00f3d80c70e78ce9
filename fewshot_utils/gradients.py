"""The gradient of the ProtoNet loss with respect to each query-prototype distance, measured on
real episodes during training (the LSED paper's Figures 3 to 7).

For query ``i`` and prototype ``k`` of an episode, ``d[i, k]`` is the distance the softmax sees
(the squared Euclidean distance, or ``d_LSED`` for LSED) and ``l_i = -log softmax(-d[i])_{y_i}``
the query's own loss. ``dl_i / dd[i, k] = 1{k = y_i} - p[i, k]`` (the closed form is
``saturation.distance_gradient``; the paper's eq. 5 prints the opposite sign). Here it is
measured by autograd, from the same loss a training step minimises, so that the histograms show
what training really back-propagates.

``capture_training_gradients`` is a short training run, step for step the first iterations of
``training.train_protonet`` with the same configuration (same episodes from the same seed, same
Adam steps), that records the gradients of chosen iterations. ``initial_snapshots`` is what a
first training step would see, for several distances on the same embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from torch import nn

from .checkpoints import save_atomic
from .display import markdown_table
from .distances import protonet_logits, protonet_loss, prototypes
from .episodes import Episode, query_labels, sample_episode
from .profiles import resolve_device
from .saturation import classify_areas, sparsity
from .training import TrainConfig, adam

__all__ = [
    "GradientSnapshot",
    "BIAS",
    "embed_episode",
    "episode_gradients",
    "capture_training_gradients",
    "pool",
    "initial_snapshots",
    "log_abs_gradient",
    "snapshot_summary",
    "spread",
    "summary_markdown",
    "gradient_histogram",
    "distance_histogram",
    "histogram_figure",
    "histogram_row",
]

BIAS = 1e-5
"""The bias the paper adds before the log in its histograms: ``log(|dl/dd| + 1e-5)``."""


class GradientSnapshot(NamedTuple):
    """The distances and per-query gradients of one episode (all on the CPU)."""

    iteration: int  # training iterations (parameter updates) done before this episode
    distances: torch.Tensor  # [n, way] distances the softmax sees (d_LSED for LSED)
    grads: torch.Tensor  # [n, way] dl_i / dd[i, k] of each query's own loss
    labels: torch.Tensor  # [n] index of each query's own prototype
    loss: float  # the episode's mean loss
    accuracy: float  # the episode's query accuracy


def embed_episode(model: nn.Module, ep: Episode) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query embeddings ``[way * query, D]``, prototypes ``[way, D]`` and query labels of one
    episode, in one forward pass as a training step makes it (support and queries together,
    so that batch normalisation in training mode sees the whole episode)."""
    way, shot = ep.support.shape[:2]
    emb = model(torch.cat([ep.support.flatten(0, 1), ep.query.flatten(0, 1)])).float()
    protos = prototypes(emb[: way * shot].view(way, shot, -1))
    return emb[way * shot :], protos, query_labels(way, ep.query.shape[1], emb.device)


def episode_gradients(
    queries: torch.Tensor,
    protos: torch.Tensor,
    labels: torch.Tensor,
    distance: str = "squared_euclidean",
    scale: float = 1.0,
    iteration: int = 0,
    **distance_kwargs: float,
) -> tuple[torch.Tensor, GradientSnapshot]:
    """The episode's mean loss (with its graph, ready for a training step) and a
    snapshot of its distances and of ``dl_i / dd[i, k]``, by autograd.

    The mean loss has the per-query gradients divided by the number of queries
    ``N``; the snapshot multiplies them back, so each row is one query's own
    gradient, as in eq. 5. With a metric ``scale`` alpha the logits are
    ``-alpha * d``, and the gradient is alpha times larger.
    """
    d = -protonet_logits(queries, protos, distance, 1.0, **distance_kwargs)
    if not d.requires_grad:
        # embeddings computed without a graph: differentiate from d on
        d = d.detach().requires_grad_()
    loss, acc = protonet_loss(-scale * d, labels)
    (grad,) = torch.autograd.grad(loss, d, retain_graph=True)
    snap = GradientSnapshot(
        iteration=iteration,
        distances=d.detach().cpu(),
        grads=(grad * labels.numel()).cpu(),
        labels=labels.cpu(),
        loss=loss.item(),
        accuracy=acc.item(),
    )
    return loss, snap


def capture_training_gradients(
    model: nn.Module,
    train_data: torch.Tensor,
    config: TrainConfig,
    iterations: list[int],
    device: str | torch.device | None = "auto",
    cache: str | os.PathLike | None = None,
    recompute: bool = False,
) -> dict[int, GradientSnapshot]:
    """Train ``model`` for ``max(iterations)`` episodes as
    ``train_protonet(config)`` would, and return the snapshot of the training
    episode at each requested iteration (0: the fresh network), keyed by
    iteration.

    Episodes, initial weights and Adam steps are those of the first iterations
    of ``train_protonet`` with the same ``config`` and the same initial
    ``model`` (float32, no learning-rate halving: the first halving comes after
    2000 episodes). A snapshot is taken before its iteration's update. With
    ``cache``, a finished capture of the same configuration and initial weights
    is loaded instead of recomputed (unless ``recompute``).
    """
    cfg = config
    if not iterations or min(iterations) < 0:
        msg = "iterations must be a non-empty list of counts >= 0"
        raise ValueError(f"{msg}, got {iterations}")
    last = max(iterations)
    if last >= cfg.lr_halve_every:
        first = f"capture covers the first {cfg.lr_halve_every} iterations"
        then = "(before the first learning-rate halving)"
        raise ValueError(f"{first} {then}; got up to {last}")
    key = _cache_key(model, train_data, cfg, iterations)
    if cache is not None and Path(cache).exists() and not recompute:
        stored = torch.load(cache, map_location="cpu", weights_only=False)
        if stored.get("key") == key:
            stored_snaps = stored["snapshots"].items()
            return {it: GradientSnapshot(*s) for it, s in stored_snaps}
    device = resolve_device(device)
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)  # as train_protonet does
    model.train()
    data = train_data.to(device)
    optimiser = adam(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    snapshots: dict[int, GradientSnapshot] = {}
    for it in range(max(iterations) + 1):
        ep = sample_episode(data, cfg.way, cfg.shot, cfg.query, gen)
        loss, snap = episode_gradients(
            *embed_episode(model, ep),
            cfg.distance,
            cfg.scale,
            it,
            **cfg.distance_kwargs,
        )
        if it in iterations:
            snapshots[it] = snap
        if it < max(iterations):
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    if cache is not None:
        stored_snaps = {k: tuple(s) for k, s in snapshots.items()}
        save_atomic({"key": key, "snapshots": stored_snaps}, cache)
    return snapshots


def pool(snapshots: list[GradientSnapshot]) -> GradientSnapshot:
    """Several episodes' snapshots as one (rows concatenated; loss and accuracy averaged)."""
    if not snapshots:
        raise ValueError("pool needs at least one snapshot")
    n = len(snapshots)
    return GradientSnapshot(
        iteration=snapshots[0].iteration,
        distances=torch.cat([s.distances for s in snapshots]),
        grads=torch.cat([s.grads for s in snapshots]),
        labels=torch.cat([s.labels for s in snapshots]),
        loss=sum(s.loss for s in snapshots) / n,
        accuracy=sum(s.accuracy for s in snapshots) / n,
    )


def log_abs_gradient(grads: torch.Tensor, bias: float = BIAS) -> torch.Tensor:
    """``log(|grad| + bias)`` (natural log), the quantity of the paper's histograms: a gradient
    of exactly 0 lands at ``log(bias)``, about -11.5, and one of magnitude 1 at about 0."""
    if not bias > 0:
        raise ValueError(f"bias must be > 0, got {bias}")
    return torch.log(grads.abs() + bias)


def initial_snapshots(
    model: nn.Module,
    data: torch.Tensor,
    way: int,
    shot: int,
    query: int,
    episodes: int,
    seed: int,
    methods: dict[str, tuple[str, dict[str, float]]],
) -> dict[str, GradientSnapshot]:
    """What a first training step would see, for several distances on the same embeddings.

    ``episodes`` episodes are drawn from ``data`` by a generator seeded ``seed`` and embedded
    once each by ``model`` (on the model's device, without a graph, in whatever mode the
    caller set: training mode is a first step's, batch normalisation on the episode's own
    statistics). Every method of ``methods`` (name -> (distance, keyword arguments)) is then
    applied to the same embeddings, so that only the distance differs. Returns one pooled
    snapshot per method name.
    """
    if episodes < 1:
        raise ValueError(f"initial_snapshots needs at least one episode, got {episodes}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    snaps: dict[str, list[GradientSnapshot]] = {name: [] for name in methods}
    for _ in range(episodes):
        ep = sample_episode(data, way, shot, query, gen)
        ep = ep._replace(support=ep.support.to(device), query=ep.query.to(device))
        with torch.no_grad():
            emb = embed_episode(model, ep)
        for name, (distance, kwargs) in methods.items():
            snaps[name].append(episode_gradients(*emb, distance, **kwargs)[1])
    return {name: pool(s) for name, s in snaps.items()}


def snapshot_summary(
    snap: GradientSnapshot, eps: float = 1e-2, s: float | None = None
) -> dict[str, float]:
    """The numbers the LSED chapter quotes about one snapshot: the share of gradients that are
    zero in practice (``sparse``, below ``BIAS``), the shares in chapter 1's areas ``I``, ``II``
    and ``III`` (tolerance ``eps``), the ``median`` and ``max`` distance, ``loss`` and ``acc``.
    With an LSED threshold ``s``, also ``s`` and ``below_s``, the share of distances at most
    ``s`` (those LSED leaves unscaled: ``d_LSED <= s`` exactly when ``d <= s``)."""
    areas = classify_areas(snap.grads, eps)
    out = {
        "sparse": sparsity(snap.grads, BIAS),
        "I": (areas == 1).double().mean().item(),
        "II": (areas == 2).double().mean().item(),
        "III": (areas == 3).double().mean().item(),
        "median": snap.distances.median().item(),
        "max": snap.distances.max().item(),
        "loss": snap.loss,
        "acc": snap.accuracy,
    }
    if s is not None:
        out.update(s=s, below_s=(snap.distances <= s).double().mean().item())
    return out


def spread(snap: GradientSnapshot) -> tuple[float, float]:
    """How diverse a snapshot is: the standard deviation of ``ln(|dl/dd| + BIAS)`` and that of
    ``d / median(d)`` (divided by the median, so that a network whose distances all shrink
    together does not count as less diverse)."""
    log_grad = log_abs_gradient(snap.grads)
    d = snap.distances
    return log_grad.std().item(), (d / d.median()).std().item()


def summary_markdown(summaries: dict[str, dict[str, float]], label: str = "") -> str:
    """``snapshot_summary`` dicts as one Markdown table, a row per name (the first column,
    headed ``label``): median and largest distance, the share of distances at most ``s`` when
    every summary has one, the share of near-zero gradients, the three areas, loss and
    accuracy."""
    if not summaries:
        raise ValueError("summary_markdown needs at least one summary")
    with_s = all("below_s" in v for v in summaries.values())
    s_values = {v["s"] for v in summaries.values()} if with_s else set()
    if len(s_values) > 1:
        raise ValueError(f"one table, one threshold s: got {sorted(s_values)}")

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    header = [label, "median d", "largest d"]
    header += [f"d ≤ {next(iter(s_values)):g}"] if with_s else []
    header += ["|∂ℓ/∂d| < 1e-5", "area III", "area II", "area I", "loss", "accuracy"]
    rows = []
    for name, v in summaries.items():
        row = [name, f"{v['median']:.3g}", f"{v['max']:.3g}"]
        row += [pct(v["below_s"])] if with_s else []
        row += [pct(v[k]) for k in ("sparse", "III", "II", "I")]
        rows.append(row + [f"{v['loss']:.3f}", pct(v["acc"])])
    return markdown_table(header, rows)


# ------------------------------------------------------------------------------ figures

_GRAD_BINS = torch.linspace(-11.75, 0.25, 49)  # bins of 0.25 around log(1e-5) ... log(1)
_COLORS = {"own prototype": "tab:green", "other prototypes": "tab:gray"}


def _own_mask(snap: GradientSnapshot) -> torch.Tensor:
    return torch.nn.functional.one_hot(snap.labels, snap.grads.shape[-1]).bool()


def gradient_histogram(ax, snap: GradientSnapshot, title: str, bias: float = BIAS) -> None:
    """Histogram of ``log(|dl/dd| + bias)`` on ``ax``, the pairs of each query with its own
    prototype stacked on those with the other prototypes, as fractions of all pairs; the title
    gets the fraction below ``bias`` (gradients that are zero in practice)."""
    own = _own_mask(snap)
    values = log_abs_gradient(snap.grads, bias)
    parts = [values[own], values[~own]]
    weights = [torch.full_like(p, 1 / values.numel()) for p in parts]
    ax.hist(
        parts,
        bins=_GRAD_BINS,
        weights=weights,
        stacked=True,
        label=list(_COLORS),
        color=list(_COLORS.values()),
    )
    frac = sparsity(snap.grads, bias)
    ax.set_title(f"{title}\n{100 * frac:.1f}% of |∂ℓ/∂d| below {bias:g}", fontsize=9)
    ax.set(xlabel=f"ln(|∂ℓ/∂d| + {bias:g})", ylabel="fraction of pairs")
    ax.grid(alpha=0.3)


def distance_histogram(ax, snap: GradientSnapshot, title: str) -> None:
    """Histogram of the query-prototype distances on ``ax`` (own / other prototypes stacked)."""
    own = _own_mask(snap)
    d = snap.distances
    parts = [d[own], d[~own]]
    weights = [torch.full_like(p, 1 / d.numel()) for p in parts]
    ax.hist(
        parts,
        bins=40,
        weights=weights,
        stacked=True,
        label=list(_COLORS),
        color=list(_COLORS.values()),
    )
    ax.set_title(f"{title}\nmedian distance {d.median().item():.3g}", fontsize=9)
    ax.set(xlabel="distance d(z, c_k) seen by the softmax", ylabel="fraction of pairs")
    ax.grid(alpha=0.3)


def histogram_figure(snapshots: dict[int, GradientSnapshot], name: str, bias: float = BIAS):
    """The layout of the paper's Figures 4-7: one row per iteration, log-gradient histogram on
    the left, distance histogram on the right; returns the figure."""
    fig, axes = plt.subplots(
        len(snapshots),
        2,
        figsize=(10, 2.9 * len(snapshots)),
        squeeze=False,
        constrained_layout=True,
    )
    for row, (it, snap) in enumerate(sorted(snapshots.items())):
        label = f"{name}, after {it} iteration{'' if it == 1 else 's'}"
        gradient_histogram(axes[row, 0], snap, label, bias)
        distance_histogram(axes[row, 1], snap, label)
    axes[0, 1].legend(fontsize=8)
    return fig


def histogram_row(snapshots: dict[str, GradientSnapshot], bias: float = BIAS):
    """The layout of the paper's Figure 3: one log-gradient histogram per named snapshot, side
    by side with a shared y axis; returns the figure."""
    fig, axes = plt.subplots(
        1,
        len(snapshots),
        figsize=(4.4 * len(snapshots), 3.6),
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )
    for ax, (name, snap) in zip(axes[0], snapshots.items()):
        gradient_histogram(ax, snap, name, bias)
    axes[0, 0].legend(fontsize=8, loc="upper center")
    return fig


def _cache_key(model: nn.Module, data: torch.Tensor, cfg: TrainConfig, iterations) -> dict:
    """What determines a capture: configuration, iterations, data shape and initial weights."""
    with torch.no_grad():
        weights = sum(p.double().sum().item() for p in model.state_dict().values())
    return {
        "config": cfg.signature(),
        "iterations": sorted(iterations),
        "data_shape": tuple(data.shape),
        "weights_sum": weights,
    }
