"""Backbones. Every model takes uint8 images as stored by ``fewshot_utils.data``
(``[n, 28, 28]`` greyscale or ``[n, 3, 84, 84]`` RGB) and normalises them
itself, so the dataset tensor can stay uint8 on any device."""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "InputNorm",
    "Conv4",
    "conv4_for",
    "DATASET_STATS",
    "ResNet12",
    "ResBlock",
    "C128F",
    "activation_layer",
]

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


# ------------------------------------------------------------------------------ ResNet-12


def activation_layer(name: str) -> nn.Module:
    """``"swish"`` (swish-1, ``x * sigmoid(x)``, as TADAM and Lifchitz et al. use) or ``"relu"``."""
    if name == "swish":
        return nn.SiLU()
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r}; choose 'swish' or 'relu'")


def _apply_film(h: torch.Tensor, gamma_beta) -> torch.Tensor:
    """``gamma * h + beta`` with ``gamma``, ``beta`` broadcastable to ``[B, C]``."""
    gamma, beta = gamma_beta
    c = h.shape[1]

    def as_map(t: torch.Tensor | float) -> torch.Tensor | float:
        if not torch.is_tensor(t):
            return t
        if t.dim() == 0:
            return t
        if t.dim() > 2 or t.shape[-1] not in (1, c):
            raise ValueError(
                f"FiLM parameters must be broadcastable to [B, {c}] ([{c}], [1, {c}] or "
                f"[B, {c}]), got shape {tuple(t.shape)}"
            )
        return t.reshape(-1 if t.dim() == 2 else 1, t.shape[-1], 1, 1)

    return as_map(gamma) * h + as_map(beta)


class ResBlock(nn.Module):
    """Residual block of ResNet-12: 3 x [3x3 conv (no bias), BN, activation], where the last
    activation comes after adding the 1x1-conv + BN shortcut; then 2x2 max-pool.

    ``film`` is None or 3 ``(gamma, beta)`` pairs, applied right after each BN.
    """

    def __init__(self, cin: int, cout: int, activation: str = "swish"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.act = activation_layer(activation)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor, film=None) -> torch.Tensor:
        film = film if film is not None else (None, None, None)
        h = x
        convs = (self.conv1, self.conv2, self.conv3)
        bns = (self.bn1, self.bn2, self.bn3)
        for i, (conv, bn) in enumerate(zip(convs, bns)):
            h = bn(conv(h))
            if film[i] is not None:
                h = _apply_film(h, film[i])
            if i < 2:
                h = self.act(h)
        return self.pool(self.act(h + self.shortcut(x)))


class ResNet12(nn.Module):
    """ResNet-12 of TADAM {cite}`oreshkin2018tadam` and Lifchitz et al.: 4 residual blocks
    (:class:`ResBlock`) of widths 64-128-256-512, swish-1, no bias, 2x2 max-pool after each.

    ``forward`` returns the feature *map* ``[B, widths[-1], h, w]`` (5x5 for 84x84 input, 2x2
    for 32x32): callers pool it (GAP, GMP) or classify every location (dense classification).
    Input: uint8 (or float in [0, 255]) images, normalised by :class:`InputNorm` as Conv-4 does;
    ``stats`` defaults to the ImageNet statistics for 3 channels.

    ``film``: None, or 4 lists (one per block) of 3 ``(gamma, beta)`` pairs (one per BN), each
    broadcastable to ``[B, C]``, applied as ``gamma * bn(x) + beta`` (TADAM's task conditioning).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        in_channels: int = 3,
        activation: str = "swish",
        stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    ):
        super().__init__()
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"ResNet-12 needs 4 positive block widths, got {widths}")
        activation_layer(activation)  # validates the name
        if stats is None:
            stats = (
                DATASET_STATS["miniimagenet"]
                if in_channels == 3
                else ((0.0,) * in_channels, (1.0,) * in_channels)
            )
        self.widths = tuple(int(w) for w in widths)
        self.activation = activation
        self.norm = InputNorm(*stats)
        cins = (in_channels, *self.widths[:-1])
        self.blocks = nn.ModuleList(
            ResBlock(cin, cout, activation) for cin, cout in zip(cins, self.widths)
        )
        self.feature_dim = self.widths[-1]

    def forward(self, x: torch.Tensor, film=None) -> torch.Tensor:
        if film is not None:
            _check_film(film, len(self.blocks))
        h = self.norm(x)
        for i, block in enumerate(self.blocks):
            h = block(h, None if film is None else film[i])
        return h


def _check_film(film, n_blocks: int) -> None:
    ok = isinstance(film, (list, tuple)) and len(film) == n_blocks
    ok = ok and all(
        isinstance(b, (list, tuple))
        and len(b) == 3
        and all(p is None or (isinstance(p, (list, tuple)) and len(p) == 2) for p in b)
        for b in film
    )
    if not ok:
        raise ValueError(
            f"film must be a list of {n_blocks} lists (one per residual block) of 3 (gamma, beta) "
            "pairs (one per conv/BN), e.g. [[(g, b)] * 3] * 4; got "
            + (
                f"a list of length {len(film)}"
                if isinstance(film, (list, tuple))
                else type(film).__name__
            )
        )


class C128F(nn.Module):
    """C128F of Gidaris & Komodakis as Lifchitz et al. use it: 4 x [3x3 conv, BN, ReLU,
    2x2 max-pool] of widths 64-64-128-128; returns the feature map (5x5x128 on 84x84)."""

    def __init__(
        self,
        in_channels: int = 3,
        stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    ):
        super().__init__()
        if stats is None:
            stats = (
                DATASET_STATS["miniimagenet"]
                if in_channels == 3
                else ((0.0,) * in_channels, (1.0,) * in_channels)
            )
        self.norm = InputNorm(*stats)
        self.encoder = nn.Sequential(
            conv_block(in_channels, 64),
            conv_block(64, 64),
            conv_block(64, 128),
            conv_block(128, 128),
        )
        self.feature_dim = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.norm(x))
