"""The softmax saturation argument of chapter 1, as small functions that can be tested.

A Prototypical Network turns the distances ``d[i, k] = d(z_i, c_k)`` of query ``i`` to the
prototypes into ``p[i, k] = softmax(-alpha * d[i])_k`` and pays ``l_i = -log p[i, y_i]``
(``alpha = 1``: Snell et al.; any ``alpha > 0``: TADAM's metric scaling). Everything here
follows from one derivative,

    dl_i / dd[i, k] = alpha * (1{k = y_i} - p[i, k]),

which vanishes when the softmax saturates. The functions compute it, measure how much of
it is (nearly) zero, locate the linear / non-linear / saturated areas of the LSED paper's
Figure 2(a), give the expected squared distance of random vectors (why distances explode
with the dimension), and give the two limits of TADAM's Lemma 1.

Sign convention: the LSED paper's eq. 5 prints ``p - 1{y = j}``, which is the derivative
with respect to the logit ``-d``; with respect to the distance it is the opposite. Only
magnitudes matter for sparsity, and ``sparsity`` and ``classify_areas`` use ``|grad|``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = [
    "distance_gradient",
    "sparsity",
    "saturated_sparsity",
    "classify_areas",
    "TwoPrototypes",
    "two_prototype_example",
    "area_boundaries",
    "area_two_width",
    "expected_squared_distance",
    "gaussian_squared_distance_std",
    "relu_gaussian_moments",
    "lemma1_limit_weights",
    "AREA_NAMES",
]

AREA_NAMES = {1: "I (linear)", 2: "II (non-linear)", 3: "III (saturated)"}
"""Area code of ``classify_areas`` -> name used in the LSED paper's Figure 2(a)."""


# ------------------------------------------------------------------------- the gradient


def distance_gradient(
    d: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 1.0,
) -> torch.Tensor:
    """Closed-form gradient of each query's loss with respect to its distances:
    ``dl_i / dd[i, k] = alpha * (1{k = y_i} - softmax(-alpha d[i])_k)``.

    ``d`` is ``[..., n, way]`` (query-prototype distances), ``labels``
    ``[..., n]``. This is the gradient of each query's own loss
    ``-log p(y_i | z_i)``; the mean loss over ``N`` queries has this divided by
    ``N``. With ``alpha = 1`` it is the LSED paper's eq. 5 (up to the sign, see
    the module docstring); divided by ``alpha`` it gives the weights of the
    prototype gradients in TADAM's Lemma 1.
    """
    _check_distances(d, labels)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (a metric scale), got {alpha}")
    p = torch.softmax(-alpha * d, dim=-1)
    onehot = torch.nn.functional.one_hot(labels, d.shape[-1]).to(p.dtype)
    return alpha * (onehot - p)


def sparsity(grad: torch.Tensor, threshold: float = 1e-5) -> float:
    """Fraction of entries with ``|grad| < threshold``: gradients that are zero in practice.

    ``1e-5`` is the bias the LSED paper adds before taking logs in its gradient histograms
    (Figures 3-7), i.e. the level it draws as zero.
    """
    if grad.numel() == 0:
        raise ValueError("sparsity of an empty tensor is undefined")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    return (grad.abs() < threshold).double().mean().item()


def saturated_sparsity(accuracy: float, way: int) -> float:
    """The largest possible ``sparsity``: the fraction of zero gradients when the softmax is
    fully saturated, i.e. ``p`` is one-hot on each query's nearest prototype.

    A query classified right then sends nothing back (all ``way`` gradients 0). A query
    classified wrong cannot: its true prototype gets ``1 - p_y >= p_nearest >= 1 / way``
    and its nearest prototype ``-p_nearest``, so at most ``way - 2`` of its gradients are 0.
    Hence ``sparsity <= accuracy + (1 - accuracy) (way - 2) / way = 1 - 2 (1 - accuracy) / way``
    for any distances, with equality in the saturated limit.
    """
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    if way < 2:
        raise ValueError(f"way must be >= 2, got {way}")
    return 1 - 2 * (1 - accuracy) / way


def classify_areas(grad: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Area of each gradient, as in the LSED paper's Figure 2(a): 1 = I, 2 = II, 3 = III.

    ``|dl/dd|`` lies in ``[0, 1]`` (``alpha = 1``). Area I (linear: the loss grows like the
    distance itself) is ``|grad| > 1 - eps``; area III (saturated: the loss is flat) is
    ``|grad| < eps``; area II (non-linear) is everything in between, the only place where
    the gradient depends on *how far* the query is.
    """
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5) so that the three areas are disjoint, got {eps}")
    g = grad.abs()
    areas = torch.full(g.shape, 2, dtype=torch.long, device=g.device)
    areas[g > 1 - eps] = 1
    areas[g < eps] = 3
    return areas


def episode_statistics(
    d: torch.Tensor, grad: torch.Tensor, labels: torch.Tensor, dim: int, eps: float = 1e-2
) -> dict[str, float]:
    """How saturated one episode's softmax is: distances ``d`` ``[N, K]`` (embeddings of
    ``dim`` coordinates), their gradients ``grad`` and the query ``labels``.

    Returns the ``mean d``, ``median d`` and ``d / D`` (mean per coordinate); the ``sparsity``
    of all gradients and the ``ceiling`` a fully saturated softmax would reach at this
    ``accuracy`` (``saturated_sparsity``); the shares of gradients in areas ``I``, ``II`` and
    ``III`` (tolerance ``eps``); and the ``sparsity true`` of the true prototypes' gradients.
    """
    if d.dim() != 2:
        raise ValueError(f"one episode's distances are [queries, way], got shape {tuple(d.shape)}")
    _check_distances(d, labels)
    true = torch.nn.functional.one_hot(labels, d.shape[1]).bool()
    areas = classify_areas(grad, eps).flatten().bincount(minlength=4)[1:] / grad.numel()
    accuracy = (d.argmin(1) == labels).double().mean().item()
    values = {
        "mean d": d.mean(),
        "median d": d.median(),
        "d / D": d.mean() / dim,
        "sparsity": sparsity(grad),
        "ceiling": saturated_sparsity(accuracy, d.shape[1]),
        "I": areas[0],
        "II": areas[1],
        "III": areas[2],
        "sparsity true": sparsity(grad[true]),
        "accuracy": accuracy,
    }
    return {key: float(value) for key, value in values.items()}


# --------------------------------------------------------------- the two-prototype toy


class TwoPrototypes(NamedTuple):
    """The toy of the LSED paper's Figure 1 at each scale factor (all tensors ``[scales]``)."""

    scale: torch.Tensor
    d0: torch.Tensor  # scaled distance to the true prototype c_0
    d1: torch.Tensor  # scaled distance to the other prototype c_1
    p0: torch.Tensor  # p(y = 0 | z)
    grad_d0: torch.Tensor  # dl/dd(z, c_0) = 1 - p0
    grad_d1: torch.Tensor  # dl/dd(z, c_1) = -p1 = p0 - 1


def two_prototype_example(d0: float, d1: float, scales: torch.Tensor) -> TwoPrototypes:
    """Query ``z`` of class 0 at distances ``(d0, d1)`` from prototypes ``c_0, c_1``, with both
    distances multiplied by each factor in ``scales``.

    The ratio ``d0 / d1`` never changes, yet ``p0 = sigmoid(scale * (d1 - d0))`` tends to 1
    (``d0 < d1``) or 0 (``d0 > d1``), and the gradients to 0 or magnitude 1: the softmax is
    blind to ratios and sees only differences, which scaling inflates.
    """
    if d0 < 0 or d1 < 0:
        raise ValueError(f"distances must be >= 0, got d0={d0}, d1={d1}")
    scales = torch.as_tensor(scales, dtype=torch.float64).reshape(-1)
    if (scales <= 0).any():
        raise ValueError("scale factors must be > 0")
    d = scales[:, None] * torch.tensor([d0, d1], dtype=torch.float64)
    labels = torch.zeros(len(scales), dtype=torch.long)
    grad = distance_gradient(d, labels)
    return TwoPrototypes(scales, d[:, 0], d[:, 1], 1 - grad[:, 0], grad[:, 0], grad[:, 1])


def _grad_d0(d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
    """``dl/dd0`` of the two-prototype toy (true class 0), elementwise, from the closed form."""
    d0, d1 = torch.broadcast_tensors(d0, d1)
    d = torch.stack([d0.reshape(-1), d1.reshape(-1)], dim=-1)
    labels = torch.zeros(len(d), dtype=torch.long)
    return distance_gradient(d, labels)[:, 0].reshape(d0.shape)


def area_boundaries(
    d1: float | torch.Tensor, eps: float = 1e-2, iters: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distances ``d0`` where area II begins and ends, for each ``d(z, c_1) = d1``.

    Returns ``(d0_saturated, d0_linear)``: below ``d0_saturated`` the gradient ``dl/dd0`` is
    under ``eps`` (area III), above ``d0_linear`` it is over ``1 - eps`` (area I). Both are
    found by bisection on the computed gradient (it increases with ``d0``), not from a
    formula; ``d0_saturated`` is 0 when even a perfect match ``d0 = 0`` leaves a gradient of
    at least ``eps``, i.e. when there is no area III.
    """
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    d1 = torch.as_tensor(d1, dtype=torch.float64)
    if (d1 <= 0).any():
        raise ValueError("d1 must be > 0")
    hi = torch.clamp(2 * d1, min=1.0)
    while (short := _grad_d0(hi, d1) <= 1 - eps).any():  # expand until the bracket holds area I
        hi = torch.where(short, 2 * hi, hi)
    edges = []
    for level in (eps, 1 - eps):
        lo_b, hi_b = torch.zeros_like(d1), hi.clone()
        for _ in range(iters):
            mid = (lo_b + hi_b) / 2
            below = _grad_d0(mid, d1) < level
            lo_b, hi_b = torch.where(below, mid, lo_b), torch.where(below, hi_b, mid)
            if ((hi_b - lo_b) <= 1e-13 * hi_b).all():  # converged to double precision
                break
        edges.append(hi_b)
    saturated = torch.where(_grad_d0(torch.zeros_like(d1), d1) >= eps, 0.0, edges[0])
    return saturated, edges[1]


def area_two_width(d1: float | torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Width of area II on the axis ``-log d0`` of Figure 2(a): ``log(d0_linear / d0_saturated)``.

    Infinite when there is no area III (small ``d1``). In distance units the band has a
    fixed width; on this (relative) axis it shrinks as ``d1`` grows.
    """
    saturated, linear = area_boundaries(d1, eps)
    return torch.log(linear) - torch.log(saturated)


# ------------------------------------------------------------ random vectors explode


def expected_squared_distance(
    dim: int | torch.Tensor, var_x: float = 1.0, var_y: float = 1.0, mean_gap: float = 0.0
) -> float | torch.Tensor:
    """``E ||x - y||^2`` for independent ``x, y`` with independent coordinates.

    Each coordinate contributes ``E (x_j - y_j)^2 = var_x + var_y + (E x_j - E y_j)^2``
    (``mean_gap = E x_j - E y_j``), so the sum grows linearly with ``dim``, whatever the
    distribution: ``dim * (var_x + var_y + mean_gap^2)``.
    """
    _check_dim(dim)
    if var_x < 0 or var_y < 0:
        raise ValueError(f"variances must be >= 0, got var_x={var_x}, var_y={var_y}")
    return dim * (var_x + var_y + mean_gap**2)


def gaussian_squared_distance_std(
    dim: int | torch.Tensor, var_x: float = 1.0, var_y: float = 1.0
) -> float | torch.Tensor:
    """Standard deviation of ``||x - y||^2`` for Gaussian ``x, y`` with iid coordinates.

    ``x_j - y_j ~ N(0, v)`` with ``v = var_x + var_y``, so ``(x_j - y_j)^2`` has variance
    ``2 v^2`` and the sum ``dim * 2 v^2``: the spread grows like ``sqrt(dim)``, slower than
    the mean (relative spread ``sqrt(2 / dim)``) but without bound.
    """
    _check_dim(dim)
    if var_x < 0 or var_y < 0:
        raise ValueError(f"variances must be >= 0, got var_x={var_x}, var_y={var_y}")
    v = var_x + var_y
    return (2 * dim) ** 0.5 * v


def relu_gaussian_moments(std: float = 1.0) -> tuple[float, float]:
    """Mean and variance of ``max(0, g)`` for ``g ~ N(0, std^2)``: a unit after BN and ReLU.

    Mean ``std / sqrt(2 pi)``; second moment ``std^2 / 2`` (half of the Gaussian's); so the
    variance is ``std^2 (1/2 - 1/(2 pi))``.
    """
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    mean = std / math.sqrt(2 * math.pi)
    return mean, std**2 / 2 - mean**2


# ------------------------------------------------------------------ TADAM's Lemma 1


def lemma1_limit_weights(
    d: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights of ``dd[i, k] / dphi`` in ``(1/alpha) dJ/dphi`` as ``alpha -> 0`` and
    ``alpha -> inf`` (TADAM, Lemma 1), both ``[..., n, way]``.

    ``(1/alpha) dJ/dphi = sum_{i,k} (1{k = y_i} - p[i, k]) dd[i, k]/dphi``. As ``alpha -> 0``,
    ``p -> 1/K``: weight ``(K-1)/K`` on the true prototype and ``-1/K`` on every other. As
    ``alpha -> inf``, ``p`` puts all its mass on the nearest prototype ``j* = argmin_k d[i, k]``:
    weight ``+1`` on the true and ``-1`` on ``j*``, which cancel (all zero) when the query is
    already classified correctly. Ties in the argmin go to the first (Lemma 1 assumes none).
    """
    _check_distances(d, labels)
    k = d.shape[-1]
    onehot = torch.nn.functional.one_hot(labels, k).to(d.dtype)
    small = onehot - 1.0 / k
    nearest = torch.nn.functional.one_hot(d.argmin(-1), k).to(d.dtype)
    return small, onehot - nearest


# ------------------------------------------------------------------------- helpers


def _check_distances(d: torch.Tensor, labels: torch.Tensor) -> None:
    if d.dim() < 2 or d.shape[-1] < 2:
        raise ValueError(
            f"distances must be [..., n, way] with way >= 2, got shape {tuple(d.shape)}"
        )
    if labels.shape != d.shape[:-1]:
        raise ValueError(
            f"labels must be shaped {tuple(d.shape[:-1])} to match distances "
            f"{tuple(d.shape)}, got {tuple(labels.shape)}"
        )
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= d.shape[-1]):
        raise ValueError(
            f"labels must lie in [0, {d.shape[-1] - 1}] (one per prototype), "
            f"got values from {labels.min().item()} to {labels.max().item()}"
        )


def _check_dim(dim: int | torch.Tensor) -> None:
    bad = (torch.as_tensor(dim) <= 0).any()
    if bad:
        raise ValueError(f"dimension must be >= 1, got {dim}")
