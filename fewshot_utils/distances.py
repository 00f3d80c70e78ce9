"""Distances, prototypes and the Prototypical Network loss.

Every function takes embeddings as rows (``[n, d]``) or batches of rows
(``[..., n, d]``) and returns a matrix (``[..., n, m]``) of distances between
each row of ``x`` and each row of ``y``. Logits are negative distances, so a
softmax over them is the ProtoNet posterior of Snell et al. (LSED paper eq. 3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "squared_euclidean",
    "euclidean",
    "lsed",
    "lsed_inverse",
    "cosine_similarity",
    "prototypes",
    "protonet_logits",
    "protonet_loss",
    "DISTANCES",
    "float32",
]

_LOW = (torch.float16, torch.bfloat16)


def float32(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Run distance ``fn(x, y, ...)`` in float32 with autocast disabled.

    Squared distances are differences of large numbers (``|x|^2 + |y|^2 - 2 x.y``): in
    float16 or bfloat16, which autocast picks for the matrix product on CUDA (or a CPU with
    ``amp``), features far from the origin lose every digit of their distances, so argmaxes
    flip or every distance clamps to 0 with a zero gradient. Every distance of the package
    goes through this one wrapper; half-precision inputs are cast up, float64 is kept.
    """

    @functools.wraps(fn)
    def wrapped(x: torch.Tensor, y: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        x = x.float() if x.dtype in _LOW else x
        y = y.float() if y.dtype in _LOW else y
        with torch.autocast(x.device.type, enabled=False):
            return fn(x, y, *args, **kwargs)

    return wrapped


@float32
def squared_euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` for every pair: ``[..., n, d], [..., m, d] -> [..., n, m]``.

    Uses ``|x|^2 + |y|^2 - 2 x.y``, a matrix product, so that 10,000 evaluation
    episodes fit in memory and run at BLAS speed; the result is clamped at 0
    because rounding can make the expansion slightly negative when two rows
    nearly coincide (its absolute error is about 1e-7 times the squared norms).
    """
    _check_pair(x, y)
    d = (
        x.pow(2).sum(-1, keepdim=True)
        + y.pow(2).sum(-1).unsqueeze(-2)
        - 2 * x @ y.transpose(-1, -2)
    )
    return d.clamp_min(0)


def euclidean(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Plain (not squared) Euclidean distance, as TADAM's official code uses.

    ``eps`` keeps the gradient of the square root finite at zero distance.
    """
    return (squared_euclidean(x, y) + eps).sqrt()


def lsed(
    x: torch.Tensor,
    y: torch.Tensor,
    s: float = 0.0,
    r: float = 0.01,
) -> torch.Tensor:
    """Leaky squared Euclidean distance (Shen & Liu, eq. 6).

    ``d`` below ``s`` is kept; above ``s`` it grows with slope ``r``:
    ``d_LSED = d if d <= s else s + (d - s) * r``. ``r = 1`` gives back the
    squared Euclidean distance; a small ``r`` stops the distances of a fresh
    network from exploding, which keeps the softmax out of saturation.
    """
    if s < 0:
        msg = f"lsed: s must be >= 0 (a distance threshold), got {s}"
        raise ValueError(msg)
    if r <= 0:
        raise ValueError(f"lsed: r must be > 0 (the slope above s), got {r}")
    d = squared_euclidean(x, y)
    return torch.where(d <= s, d, s + (d - s) * r)


def lsed_inverse(d_lsed: torch.Tensor, s: float = 0.0, r: float = 0.01) -> torch.Tensor:
    """The squared Euclidean distances behind LSED values (eq. 6 solved for ``d``).

    LSED is the identity up to ``s`` and ``s + (d - s) * r`` beyond, so ``d_LSED <= s``
    exactly when ``d <= s`` and the inverse is ``s + (d_LSED - s) / r`` above ``s``. Useful
    to compare an LSED network's distances with a squared Euclidean one's without LSED's
    constant ``(1 - r) s``, which the softmax ignores.
    """
    if s < 0:
        raise ValueError(f"lsed_inverse: s must be >= 0 (a distance threshold), got {s}")
    if r <= 0:
        raise ValueError(f"lsed_inverse: r must be > 0 (the slope above s), got {r}")
    return torch.where(d_lsed <= s, d_lsed, s + (d_lsed - s) / r)


@float32
def cosine_similarity(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine of the angle between each pair of rows, in ``[-1, 1]``."""
    _check_pair(x, y)
    return F.normalize(x, dim=-1, eps=eps) @ F.normalize(y, dim=-1, eps=eps).transpose(-1, -2)


def _cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.0 - cosine_similarity(x, y)


DISTANCES = {
    "squared_euclidean": squared_euclidean,
    "euclidean": euclidean,
    "lsed": lsed,
    "cosine": _cosine_distance,
}
"""Name -> distance function; ``cosine`` is ``1 - cosine similarity``."""


def prototypes(support: torch.Tensor) -> torch.Tensor:
    """Class means of support embeddings (LSED paper eq. 2).

    ``support`` is ``[..., way, shot, d]``; returns ``[..., way, d]``.
    """
    if support.dim() < 3:
        shape = tuple(support.shape)
        what = "prototypes: expected support embeddings shaped"
        raise ValueError(f"{what} [..., way, shot, d], got shape {shape}")
    return support.mean(-2)


def protonet_logits(
    query: torch.Tensor,
    protos: torch.Tensor,
    distance: str = "squared_euclidean",
    scale: float | torch.Tensor = 1.0,
    **distance_kwargs: float,
) -> torch.Tensor:
    """Logits ``-scale * d(query, prototype)``:
    ``[..., n, d], [..., way, d] -> [..., n, way]``.

    ``scale`` is TADAM's metric scaling ``alpha`` (1 gives plain ProtoNet). It
    may be a learnable tensor. ``distance_kwargs`` go to the distance (``s``,
    ``r`` for LSED).
    """
    if distance not in DISTANCES:
        known = sorted(DISTANCES)
        msg = f"unknown distance {distance!r}; choose one of {known}"
        raise ValueError(msg)
    return -scale * DISTANCES[distance](query, protos, **distance_kwargs)


def protonet_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy (LSED paper eq. 4) and accuracy of ``[..., n, way]`` logits.

    ``log_softmax`` subtracts the row maximum first, so the loss and its
    gradient stay finite even when distances reach 1e6 and every ``exp(-d)``
    underflows.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"protonet_loss: logits {tuple(logits.shape)} need labels shaped "
            f"{tuple(logits.shape[:-1])}, got {tuple(labels.shape)}"
        )
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    acc = (logits.argmax(-1) == labels).float().mean()
    return loss, acc


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() < 2 or y.dim() < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            "distances need rows of equal length: x [..., n, d] and y [..., m, d]; "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
