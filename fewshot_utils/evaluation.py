"""Evaluation: embed every test image once, then score many episodes over the cache.

A few-shot test set is small (Omniglot test: 33,840 images) but is read by
10,000 episodes; embedding each image once and sampling the episodes over the
embeddings, many at a time, turns hours of re-embedding into seconds. It is
exact: the backbone is in eval mode, so an image's embedding does not depend
on the episode it appears in.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .distances import protonet_logits
from .episodes import check_episode, query_labels, sample_indices
from .profiles import resolve_device

__all__ = [
    "EvalResult",
    "embed",
    "inference_copy",
    "evaluate_embeddings",
    "ci95",
    "wilson",
    "equal_halves_ci95",
    "image_accuracy",
    "paired_difference",
]


@dataclass
class EvalResult:
    """Mean accuracy (fraction), its 95% half-width, mean loss, and per-episode accuracies;
    ``way``, ``shot`` and ``query`` are those of the tasks that were scored, so that a record
    made from the result (``results.make_record(result=...)``) cannot name other ones.
    ``unit`` says what ``episodes`` counts: test ``"episodes"``, or ``"images"`` for an
    accuracy computed exactly over a fixed set of images (then ``per_episode`` holds one 0/1
    per image and ``ci95`` is half the width of the Wilson interval ``ci_low``-``ci_high``)."""

    accuracy: float
    ci95: float
    loss: float
    episodes: int
    per_episode: torch.Tensor
    way: int | None = None
    shot: int | None = None
    query: int | None = None
    unit: str = "episodes"
    ci_low: float | None = None
    ci_high: float | None = None
    interval: str = ""  # what the interval is over, when not the tasks' (nor unit's) spread

    def __str__(self) -> str:
        return f"{100 * self.accuracy:.2f} +- {100 * self.ci95:.2f} % ({self.episodes} episodes)"


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` of a binomial proportion ``correct / n``.

    The interval of an accuracy measured once on ``n`` fixed images: unlike the normal
    interval it stays inside [0, 1] and is right near 0 and 1 (Wilson, 1927)."""
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"wilson: need 0 <= correct <= n and n >= 1, got {correct} of {n}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def equal_halves_ci95(p_a: float, n_a: int, p_b: float, n_b: int, z: float = 1.96) -> float:
    """95% half-width of ``(p_a + p_b) / 2``, the mean of two accuracies measured on two
    different sets of ``n_a`` and ``n_b`` images and weighted equally whatever their sizes:
    ``z / 2 * sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b)``. Pooling the images into one
    binomial of ``n_a + n_b`` would weight each image alike, not each half."""
    if n_a < 1 or n_b < 1 or not (0 <= p_a <= 1 and 0 <= p_b <= 1):
        raise ValueError(f"need accuracies in [0, 1] and sizes >= 1, got {p_a}/{n_a}, {p_b}/{n_b}")
    return z / 2 * math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)


def image_accuracy(correct: torch.Tensor) -> EvalResult:
    """An :class:`EvalResult` of per-image 0/1 outcomes, with the Wilson interval: for an
    accuracy computed exactly over a fixed set of images, where resampling tasks over the
    same images would only measure Monte-Carlo error."""
    c = correct.flatten().float().cpu()
    low, high = wilson(int(c.sum().item()), c.numel())
    return EvalResult(
        c.mean().item(),
        (high - low) / 2,
        float("nan"),
        c.numel(),
        c,
        unit="images",
        ci_low=low,
        ci_high=high,
    )


def ci95(values: torch.Tensor) -> float:
    """Half-width of the normal 95% interval of the mean: ``1.96 * std / sqrt(n)``."""
    n = values.numel()
    if n < 2:
        return float("nan")
    return 1.96 * values.double().std().item() / math.sqrt(n)


def paired_difference(new: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """Mean and 95% half-width (:func:`ci95`) of ``new - ref``, episode by episode.

    The book's one rule for the uncertainty of a gap between two models scored on the *same*
    episodes (same seed): an episode that is hard for one model is hard for the other, so the
    interval of the per-episode difference is narrower than either accuracy's. It covers the
    choice of episodes only, not the randomness of training (a single training run per model
    says nothing about that). ``new`` and ``ref`` are per-episode accuracies
    (``EvalResult.per_episode``, or a validation pass's in a training history)."""
    new, ref = torch.as_tensor(new).double(), torch.as_tensor(ref).double()
    if new.shape != ref.shape or new.dim() != 1:
        raise ValueError(
            "paired_difference needs the per-episode accuracies of the same episodes, two 1-d "
            f"tensors of one length; got shapes {tuple(new.shape)} and {tuple(ref.shape)}"
        )
    diff = new - ref
    return diff.mean().item(), ci95(diff)


@torch.no_grad()
def embed(
    model: nn.Module,
    data: torch.Tensor,
    batch_size: int = 128,
    device: str | torch.device | None = "auto",
    amp: bool | None = None,
) -> torch.Tensor:
    """Outputs ``[classes, per_class, *out]`` (float32, on ``device``) of ``model``, in eval
    mode, for images ``[classes, per_class, ...]``: ``out`` is what the model gives one image,
    ``[d]`` for an embedding network (Conv-4, TADAM's nets) and the feature map ``[d, h, w]``
    for a bare ResNet-12 (dense classification pools or classifies it afterwards).

    The caller's ``model`` is left untouched (mode, device, memory format): the
    work is done by an inference copy (:func:`inference_copy`) with every
    conv + batch-norm pair folded into one conv, which gives the same outputs
    (to float rounding) for about half the work of a Conv-4. On the CPU the copy
    runs in channels_last: with batches of about a hundred images that embeds
    3-4x faster than contiguous tensors in large batches, whose activations
    spill out of the caches.
    """
    device = resolve_device(device)
    amp = device.type == "cuda" if amp is None else amp
    net = inference_copy(model, device)
    flat = data.reshape(-1, *data.shape[2:])
    out = []
    for start in range(0, flat.shape[0], batch_size):
        x = flat[start : start + batch_size].to(device, non_blocking=True)
        with _autocast(device, amp):
            out.append(net(x).float())
    emb = torch.cat(out)
    return emb.reshape(*data.shape[:2], *emb.shape[1:])


def inference_copy(model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """A copy of ``model`` in eval mode on ``device`` (channels_last on the CPU) in which
    every ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential`` is
    replaced by one conv with the batch norm folded in (``fuse_conv_bn_eval``): in eval mode
    batch norm is a fixed per-channel affine map, so ``bn(conv(x))`` is itself a conv.
    Other layers (and models without such pairs) are copied as they are."""
    device = torch.device(device)
    net = copy.deepcopy(model).eval()
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if (
                type(conv) is nn.Conv2d
                and type(bn) is nn.BatchNorm2d
                and bn.track_running_stats
                and bn.running_mean is not None
            ):
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
    net.to(device)
    if device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    return net


def evaluate_embeddings(
    emb: torch.Tensor,
    way: int,
    shot: int,
    query: int = 15,
    episodes: int = 1000,
    seed: int = 0,
    distance: str = "squared_euclidean",
    scale: float = 1.0,
    max_chunk_bytes: int = 2**23,
    **distance_kwargs: float,
) -> EvalResult:
    """Score ``episodes`` random ``way``-way ``shot``-shot episodes over
    embeddings ``[classes, per_class, d]``, many episodes per batched tensor
    operation.

    Episodes go in chunks of about ``max_chunk_bytes`` of gathered embeddings:
    8 MB keeps a chunk in the CPU caches (twice as fast here as 256 MB chunks);
    the chunk size never changes which episodes a seed gives."""
    n_cls, per_class, dim = emb.shape
    check_episode(n_cls, per_class, way, shot, query)
    # Indices for every episode first, in fixed blocks: the episodes a seed
    # gives do not depend on the chunk size, so models of different widths meet
    # the same episodes.
    gen = torch.Generator().manual_seed(seed)
    n_per_class = shot + query
    blocks = [
        sample_indices(
            n_cls,
            per_class,
            way,
            n_per_class,
            gen,
            episodes=min(1000, episodes - b),
        )
        for b in range(0, episodes, 1000)
    ]
    all_classes = torch.cat([c for c, _ in blocks]).to(emb.device)
    all_items = torch.cat([i for _, i in blocks]).to(emb.device)
    labels = query_labels(way, query, emb.device)
    per_ep = way * (shot + query) * dim * 4 * 3  # gathered copy, queries, slack
    chunk = max(1, min(episodes, max_chunk_bytes // per_ep))
    accs, losses = [], []
    for start in range(0, episodes, chunk):
        classes = all_classes[start : start + chunk]
        items = all_items[start : start + chunk]
        e = classes.shape[0]
        x = emb[classes[..., None], items]  # [e, way, shot + query, d]
        protos = x[:, :, :shot].mean(2)
        queries = x[:, :, shot:].reshape(e, way * query, dim)
        logits = protonet_logits(
            queries,
            protos,
            distance,
            scale,
            **distance_kwargs,
        )
        logp = logits.log_softmax(-1)
        own = logp.gather(-1, labels.expand(e, -1)[..., None])
        losses.append(-own.mean((1, 2)))
        accs.append((logits.argmax(-1) == labels).float().mean(1))
    acc = torch.cat(accs).cpu()
    loss = torch.cat(losses).mean().item()
    mean = acc.mean().item()
    return EvalResult(mean, ci95(acc), loss, episodes, acc, way, shot, query)


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision: float16 on CUDA; bfloat16 elsewhere (so the path runs in CPU tests)."""
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)
