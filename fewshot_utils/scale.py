"""Temperature and embedding scale: four ways to write the same softmax, and how to tell
them apart once training starts.

The squared Euclidean softmax is homogeneous in the scale of the embedding:
``softmax(-alpha * ||z - c||^2) = softmax(-||sqrt(alpha) z - sqrt(alpha) c||^2)``, so
multiplying the distances by ``alpha`` (TADAM's metric scaling) is multiplying the embeddings
by ``sqrt(alpha)``. LSED with ``s = 0`` is ``r * d``: metric scaling with ``alpha = r``.
And Conv-4 ends with batch normalisation, ReLU and max-pooling: after BN's normalisation,
``gamma * x_hat + beta`` scaled by ``k > 0`` gives ``k`` times the output, because ReLU and
max-pooling are positively homogeneous. So on one forward pass, LSED(s = 0, r), ``alpha = r``,
embeddings times ``sqrt(r)`` and the last BN's ``gamma`` and ``beta`` times ``sqrt(r)`` give the
same logits (:func:`equivalent_logits`). They part once training starts: ``alpha`` fixed is a
temperature the network can undo by growing its embeddings, a small ``gamma`` is a starting
point it can move away from, LSED with ``s > 0`` bends the distance itself.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .distances import protonet_logits, prototypes
from .episodes import Episode

__all__ = ["LearnedScale", "last_batchnorm", "scale_last_batchnorm_", "equivalent_logits"]


class LearnedScale(nn.Module):
    """``backbone`` followed by a learned scalar scale ``sqrt(alpha)`` of the embedding: with
    squared Euclidean distance, TADAM's metric scaling with ``alpha`` learned rather than
    fixed. ``alpha = exp(log_alpha)`` is learned in log space, as in chapter 7, so it stays
    positive; ``TrainConfig.alpha_lr`` gives it its own rate."""

    def __init__(self, backbone: nn.Module, alpha: float = 1.0):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha (the metric scale) must be > 0, got {alpha}")
        self.backbone = backbone
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha)))

    @property
    def alpha(self) -> float:
        return self.log_alpha.exp().item()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x) * (0.5 * self.log_alpha).exp()


def last_batchnorm(model: nn.Module) -> nn.BatchNorm2d:
    """The network's last ``BatchNorm2d`` (Conv-4: the one before its last ReLU and pool)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        raise ValueError(f"{type(model).__name__} has no BatchNorm2d layer")
    return norms[-1]


@torch.no_grad()
def scale_last_batchnorm_(model: nn.Module, k: float) -> nn.Module:
    """Multiply the last batch norm's ``gamma`` and ``beta`` by ``k > 0``, in
    place: when only positively homogeneous layers follow it (ReLU, max-pooling,
    flattening, as in Conv-4), every embedding is multiplied by ``k``. Returns
    ``model``."""
    if not k > 0:
        raise ValueError(
            f"k must be > 0 (a negative scale flips ReLU's side), got {k}",
        )
    bn = last_batchnorm(model)
    bn.weight.mul_(k)
    bn.bias.mul_(k)
    return model


def equivalent_logits(
    model: nn.Module,
    episode: Episode,
    r: float,
) -> dict[str, torch.Tensor]:
    """The logits of one episode (training-mode batch norm, one forward pass as
    a training step) written four ways that the derivation says are equal:
    LSED(s = 0, r); squared Euclidean with metric scale ``alpha = r``; squared
    Euclidean on embeddings times ``sqrt(r)``; squared Euclidean with the last
    batch norm's affine map times ``sqrt(r)`` (on a copy of ``model``)."""
    way, shot = episode.support.shape[:2]
    n = way * shot
    images = torch.cat(
        [episode.support.flatten(0, 1), episode.query.flatten(0, 1)],
    )

    def split(emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return emb[n:], prototypes(emb[:n].view(way, shot, -1))

    model.train()
    with torch.no_grad():
        q, c = split(model(images).float())
        scaled = scale_last_batchnorm_(copy.deepcopy(model), math.sqrt(r))
        qb, cb = split(scaled(images).float())
    root = math.sqrt(r)
    sed = "squared_euclidean"
    out = {
        "LSED(s = 0, r)": protonet_logits(q, c, "lsed", s=0.0, r=r),
        "metric scaling α = r": protonet_logits(q, c, sed, r),
        "embeddings × √r": protonet_logits(root * q, root * c, sed),
        "last BN γ, β × √r": protonet_logits(qb, cb, sed),
    }
    return out
