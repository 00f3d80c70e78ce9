"""Backbones. Every model takes uint8 images as stored by ``fewshot_utils.data``
(``[n, 28, 28]`` greyscale or ``[n, 3, 84, 84]`` RGB) and normalises them
itself, so the dataset tensor can stay uint8 on any device."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["InputNorm", "Conv4", "conv4_for", "DATASET_STATS"]

DATASET_STATS = {
    # Omniglot: pixels mapped to [0, 1], ink = 1, as Prototypical Networks' code does.
    "omniglot": ((0.0,), (1.0,)),
    # miniImageNet: ImageNet channel statistics on [0, 1] pixels.
    "miniimagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class InputNorm(nn.Module):
    """uint8 (or float in [0, 255]) images -> float ``(x / 255 - mean) / std``, ``[n, c, h, w]``."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # greyscale [n, h, w]
            x = x.unsqueeze(1)
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"expected images [n, {self.mean.shape[1]}, h, w]"
                + (" or [n, h, w]" if self.mean.shape[1] == 1 else "")
                + f", got {tuple(x.shape)}"
            )
        x = x.to(self.mean.dtype) / 255.0
        return (x - self.mean) / self.std


def conv_block(cin: int, cout: int, pool: bool = True) -> nn.Sequential:
    """3x3 conv, batch norm, ReLU, then (optionally) 2x2 max-pool."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """Conv-4 of Prototypical Networks: 4 x [3x3 conv 64, BN, ReLU, 2x2 max-pool].

    Output sizes: 64-d on 28x28 Omniglot; 576-d with ``last_pool=False`` (the
    LSED paper's Omniglot network); 1600-d on 84x84 miniImageNet.
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden: int = 64,
        last_pool: bool = True,
        stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    ):
        super().__init__()
        mean, std = stats or ((0.0,) * in_channels, (1.0,) * in_channels)
        self.norm = InputNorm(mean, std)
        self.encoder = nn.Sequential(
            conv_block(in_channels, hidden),
            conv_block(hidden, hidden),
            conv_block(hidden, hidden),
            conv_block(hidden, hidden, pool=last_pool),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.norm(x)).flatten(1)


def conv4_for(dataset: str, last_pool: bool = True) -> Conv4:
    """Conv-4 with the input channels and normalisation of ``dataset``."""
    if dataset not in DATASET_STATS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASET_STATS)}")
    mean, std = DATASET_STATS[dataset]
    return Conv4(in_channels=len(mean), last_pool=last_pool, stats=(mean, std))
