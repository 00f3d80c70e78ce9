"""TADAM {cite}`oreshkin2018tadam`: metric scaling, task conditioning and auxiliary co-training
on top of the Prototypical Network of ``distances`` and ``episodes``.

- **Metric scaling**: logits ``-alpha * d(query, prototype)``, with ``alpha`` fixed (a float,
  passed to ``distances.protonet_logits(scale=...)``) or learned (a parameter, same call).
  ``alpha_gradient`` is the closed form of ``dL/dalpha``; ``near_zero_fraction`` measures the
  saturated share of ``dL/dd`` with ``saturation.distance_gradient`` and ``saturation.sparsity``.
- **Task conditioning** (TEN): the task representation is the mean of the class prototypes of
  the *unconditioned* network; per convolution of the ResNet-12, two small residual MLPs map it
  to FiLM parameters ``gamma = 1 + gamma0 * h(task)``, ``beta = beta0 * g(task)``, applied right
  after the batch norm; the scalars ``gamma0``, ``beta0`` start at 0 (so a fresh TEN is the
  identity) and carry an L2 penalty.
- **Auxiliary co-training**: a 64-way linear head on the pooled features of the base classes;
  before each episode, an auxiliary batch is trained with a probability that decays with the
  training step (``aux_probability``).

``train_tadam`` is the episodic loop of all three (SGD with momentum, the official code's
piecewise-constant learning rate and per-tensor gradient clipping), with checkpoints written
atomically after every epoch and exact resume, as ``training.train_protonet`` does.
``evaluate_tadam`` scores test episodes; for a task-conditioned network every episode has its
own FiLM parameters, so it embeds each episode, over exactly the episodes that
``evaluation.evaluate_embeddings`` draws from the same seed.

``measure_tadam_seconds`` times training steps on this machine. Chapter 7's bookkeeping
(record names and records, the paper's Table 2, the time estimate) is in ``report_tadam``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints
from .distances import DISTANCES, protonet_logits, protonet_loss, prototypes
from .episodes import check_episode, query_labels, sample_episode, sample_indices
from .evaluation import EvalResult, _autocast, ci95, embed, evaluate_embeddings
from .models import activation_layer
from .profiles import resolve_device
from .saturation import distance_gradient, sparsity
from .training import (
    EPISODIC_KEYS,
    TrainResult,
    check_episodic,
    clip_per_tensor_,
    place,
    prepare_episodic,
    record_epoch,
    sync,
    train_episodes,
)

__all__ = [
    "FILM_PENALTY",
    "NEAR_ZERO",
    "downsample",
    "aux_probability",
    "expected_aux_steps",
    "lr_factor",
    "alpha_gradient",
    "near_zero_fraction",
    "ResidualMLP",
    "TaskEmbeddingNetwork",
    "TadamNet",
    "TadamConfig",
    "train_tadam",
    "measure_tadam_seconds",
    "evaluate_tadam",
]

FILM_PENALTY = 0.01
"""Weight of the L2 penalty on the FiLM post-multipliers ``gamma0``, ``beta0`` (TADAM)."""

NEAR_ZERO = 1e-5
"""``|dL/dd| / alpha`` below this counts as a zero gradient (the bias of chapter 2's histograms)."""


# ----------------------------------------------------------------------------- data


def downsample(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """uint8 images ``[..., C, H, W]`` -> ``[..., C, size, size]`` by area averaging (a box
    filter: for ``H = 2 * size`` the mean of each 2x2 block), rounded back to uint8.

    Used by the reduced ``cpu`` protocol of chapter 7 (84x84 -> 42x42 quarters the cost of
    every convolution); processed in chunks so that a whole split never exists in float.
    """
    if images.dim() < 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"downsample expects uint8 images [..., C, H, W], got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    h, w = images.shape[-2:]
    if not 1 <= size <= min(h, w):
        raise ValueError(f"size must be in [1, {min(h, w)}] (the image side), got {size}")
    flat = images.reshape(-1, *images.shape[-3:])
    out = torch.empty(flat.shape[0], flat.shape[1], size, size, dtype=torch.uint8)
    for s in range(0, flat.shape[0], chunk):
        x = flat[s : s + chunk].float()
        out[s : s + chunk] = (
            F.interpolate(x, size=(size, size), mode="area").round().to(torch.uint8)
        )
    return out.reshape(*images.shape[:-2], size, size)


# ------------------------------------------------------------------- schedules


def aux_probability(
    step: int, total: int, rate: float = 0.9, n: int = 20, staircase: bool = False
) -> float:
    """Probability of training an auxiliary 64-way batch before episode ``step`` of ``total``.

    TADAM anneals it exponentially, ``rate ** (n * step / total)`` with ``rate = 0.9``,
    ``n = 20``: 1 at the start, ``0.9 ** 20 = 0.12`` at the end. ``staircase=True`` gives the
    official code's variant, ``rate ** (step // (total // n) + 1)``: ``n`` constant stages,
    starting at 0.9.
    """
    if total < 1 or step < 0:
        raise ValueError(f"need total >= 1 and step >= 0, got step={step}, total={total}")
    if not 0 < rate <= 1 or n < 1:
        raise ValueError(f"need 0 < rate <= 1 and n >= 1, got rate={rate}, n={n}")
    if staircase:
        return rate ** (step // max(1, total // n) + 1)
    return rate ** (n * step / total)


def expected_aux_steps(
    total: int, rate: float = 0.9, n: int = 20, staircase: bool = False
) -> float:
    """Expected number of auxiliary batches in a run of ``total`` episodes (sum of
    ``aux_probability``): about 42% of ``total`` for the default schedule."""
    return sum(aux_probability(t, total, rate, n, staircase) for t in range(total))


def lr_factor(step: int, total: int, drops: int = 3, every: float = 1 / 12) -> float:
    """Multiplier of the initial learning rate at ``step`` of ``total``: 1 for the first half,
    then divided by 10 at ``total / 2``, ``total / 2 + every * total``, ... (``drops`` times).

    The official TADAM code uses 30,000 steps with drops at 15,000, 17,500 and 20,000
    (``every = 2500 / 30000``); shorter runs keep the same proportions.
    """
    if total < 1 or step < 0:
        raise ValueError(f"need total >= 1 and step >= 0, got step={step}, total={total}")
    bounds = [total / 2 + i * every * total for i in range(drops)]
    return 0.1 ** sum(step >= b for b in bounds)


# ------------------------------------------------------------------- metric scaling


def alpha_gradient(
    d: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """Closed-form ``dL/dalpha`` of the mean loss
    ``L = mean_i -log softmax(-alpha d[i])_{y_i}``:

        dL/dalpha = mean_i ( d[i, y_i] - sum_k p[i, k] d[i, k] ),

    the distance to the own prototype minus its softmax-weighted mean.
    Negative while the own prototype is nearer than average (then a larger
    ``alpha`` lowers the loss): a learned ``alpha`` grows until the softmax
    is sharp enough, and no further.
    """
    if d.shape[:-1] != labels.shape:
        raise ValueError(
            f"distances {tuple(d.shape)} need labels shaped "
            f"{tuple(d.shape[:-1])}, got {tuple(labels.shape)}"
        )
    p = torch.softmax(-alpha * d, dim=-1)
    own = d.gather(-1, labels[..., None])[..., 0]
    return (own - (p * d).sum(-1)).mean()


def near_zero_fraction(
    d: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    threshold: float = NEAR_ZERO,
) -> float:
    """Fraction of query-prototype pairs whose gradient ``dl_i / dd[i, k]``,
    divided by ``alpha``, is below ``threshold``: the pairs a saturated
    softmax no longer trains.

    Dividing by ``alpha`` leaves the softmax factor ``1{k = y_i} - p[i, k]``
    (TADAM's Lemma 1 normalises the same way), so a small ``alpha`` is not
    counted as "sparse" merely because it shrinks every gradient.
    ``alpha <= 0`` (a learned scale gone wrong) gives NaN.
    """
    if not alpha > 0:
        return float("nan")
    grads = distance_gradient(d, labels, alpha) / alpha
    return sparsity(grads, threshold)


# ------------------------------------------------------------------- task conditioning


class ResidualMLP(nn.Module):
    """``layers`` fully connected layers of width ``width``; from the second on each adds its
    input (a residual connection), and all but the last are followed by the activation.
    Weights start normal with variance ``0.2 / width`` as in the official TADAM code (its
    ``ScaledVarianceRandomNormal(factor=0.1)``), biases at 0."""

    def __init__(self, in_dim: int, width: int, layers: int = 3, activation: str = "swish"):
        super().__init__()
        if layers < 1 or in_dim < 1 or width < 1:
            raise ValueError(f"need layers, in_dim, width >= 1; got {layers}, {in_dim}, {width}")
        self.fcs = nn.ModuleList(
            nn.Linear(in_dim if i == 0 else width, width) for i in range(layers)
        )
        for fc in self.fcs:
            nn.init.normal_(fc.weight, std=math.sqrt(0.2 / width))
            nn.init.zeros_(fc.bias)
        self.act = activation_layer(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, fc in enumerate(self.fcs):
            y = fc(x)
            if i > 0:
                y = y + x
            x = self.act(y) if i < len(self.fcs) - 1 else y
        return x


class TaskEmbeddingNetwork(nn.Module):
    """TADAM's TEN: task representation ``[1, D]`` -> FiLM parameters for every convolution.

    For block ``b`` (``channels[b]`` wide) and convolution ``u`` (``units`` per block), two
    residual MLPs ``h``, ``g`` give ``gamma = 1 + gamma0[b, u] * h(task)`` and
    ``beta = beta0[b, u] * g(task)``, each ``[1, channels[b]]``. The scalars ``gamma0``,
    ``beta0`` start at 0, so a fresh TEN returns ``gamma = 1``, ``beta = 0`` (the network is
    unchanged) and only grows task dependence when that pays more than ``penalty()``.
    """

    def __init__(
        self,
        task_dim: int,
        channels: Sequence[int],
        units: int = 3,
        layers: int = 3,
        activation: str = "swish",
        penalty_weight: float = FILM_PENALTY,
    ):
        super().__init__()
        if not channels or units < 1:
            raise ValueError(f"need at least one block and unit, got {channels}, units={units}")
        if penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
        self.channels = tuple(int(c) for c in channels)
        self.units = units
        self.task_dim = task_dim
        self.penalty_weight = penalty_weight

        def nets():
            return nn.ModuleList(
                nn.ModuleList(ResidualMLP(task_dim, c, layers, activation) for _ in range(units))
                for c in self.channels
            )

        self.h, self.g = nets(), nets()
        self.gamma0 = nn.Parameter(torch.zeros(len(self.channels), units))
        self.beta0 = nn.Parameter(torch.zeros(len(self.channels), units))

    def forward(
        self,
        task: torch.Tensor,
    ) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """``[[(gamma, beta)] * units] * blocks``, each ``[1, C]``, from
        ``task`` ``[D]`` or ``[1, D]`` (one task at a time: the parameters
        broadcast over the batch)."""
        if task.dim() == 1:
            task = task[None]
        if task.dim() != 2 or task.shape != (1, self.task_dim):
            d, got = self.task_dim, tuple(task.shape)
            shapes = f"[{d}] or [1, {d}]"
            raise ValueError(f"task representation must be {shapes}, got {got}")
        return [
            [
                (
                    1 + self.gamma0[b, u] * self.h[b][u](task),
                    self.beta0[b, u] * self.g[b][u](task),
                )
                for u in range(self.units)
            ]
            for b in range(len(self.channels))
        ]

    def penalty(self) -> torch.Tensor:
        """``penalty_weight * (sum gamma0^2 + sum beta0^2) / 2``: TensorFlow's
        ``l2_regularizer(0.01)``, the form of the official code."""
        squares = self.gamma0.pow(2).sum() + self.beta0.pow(2).sum()
        return self.penalty_weight * 0.5 * squares


# ------------------------------------------------------------------- the network


class TadamNet(nn.Module):
    """A Prototypical Network with TADAM's three optional parts.

    ``backbone(x)`` (and ``backbone(x, film=...)`` with a TEN) returns features ``[B, D]`` or
    a feature map ``[B, D, h, w]``, which is average-pooled. ``alpha`` is the metric scale:
    a buffer when fixed; when ``learn_alpha``, ``exp`` of the parameter ``log_alpha``. The
    official code keeps ``alpha`` fixed, cross-validated on the validation classes (with the
    plain Euclidean distance); learning it is an experiment of this book. At initialisation
    ``dL/dalpha`` is large and positive (the saturated softmax weights the nearest
    prototype, rarely the own one), and SGD at learning rate 0.1 with momentum would drive a
    plain ``alpha`` below 0 within a few steps; in log space it stays positive and moves by a
    factor per step. ``ten``: a
    :class:`TaskEmbeddingNetwork` (task conditioning), or None. ``aux_classes``: the number of
    base classes of the auxiliary head, or None.

    ``model(x)`` embeds without conditioning, so ``evaluation.embed`` works on any TadamNet.
    """

    def __init__(
        self,
        backbone: nn.Module,
        distance: str = "squared_euclidean",
        alpha: float = 1.0,
        learn_alpha: bool = False,
        ten: TaskEmbeddingNetwork | None = None,
        aux_classes: int | None = None,
        feature_dim: int | None = None,
        distance_kwargs: dict | None = None,
    ):
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose one of {sorted(DISTANCES)}")
        if not alpha > 0:
            raise ValueError(f"alpha (the metric scale) must be > 0, got {alpha}")
        dim = feature_dim or getattr(backbone, "feature_dim", None)
        if dim is None:
            raise ValueError("pass feature_dim: the backbone has no feature_dim attribute")
        if ten is not None and ten.task_dim != dim:
            raise ValueError(f"the TEN takes {ten.task_dim}-d tasks but features are {dim}-d")
        self.backbone = backbone
        self.distance = distance
        self.distance_kwargs = dict(distance_kwargs or {})
        self.feature_dim = int(dim)
        self.alpha_init = float(alpha)
        self.learn_alpha = learn_alpha
        if learn_alpha:  # learned in log space: alpha = exp(log_alpha) stays > 0
            self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha)))
        else:
            self.register_buffer("fixed_alpha", torch.tensor(float(alpha)))
        self.ten = ten
        self.aux_head = nn.Linear(self.feature_dim, aux_classes) if aux_classes else None

    @property
    def alpha(self) -> torch.Tensor:
        """The metric scale: the fixed value, or ``exp(log_alpha)`` when learned."""
        return self.log_alpha.exp() if self.learn_alpha else self.fixed_alpha

    def describe(self) -> dict:
        """What a checkpoint must agree with: the parts and their settings."""
        return {
            "distance": self.distance,
            "distance_kwargs": self.distance_kwargs,
            "alpha_init": self.alpha_init,
            "learn_alpha": self.learn_alpha,
            "alpha_space": "log" if self.learn_alpha else "fixed",
            "task_conditioning": self.ten is not None,
            # gamma0, beta0 decayed by their own penalty only: a TEN checkpoint trained with
            # weight decay on them too (before this key) is not loaded as this model
            **({"film_decay": "own penalty only"} if self.ten is not None else {}),
            "aux_classes": None if self.aux_head is None else self.aux_head.out_features,
            "feature_dim": self.feature_dim,
            "parameters": sum(p.numel() for p in self.parameters()),
        }

    def embed(self, x: torch.Tensor, film=None) -> torch.Tensor:
        """Pooled features ``[B, D]``, FiLM-conditioned when ``film`` is given."""
        h = self.backbone(x) if film is None else self.backbone(x, film=film)
        if h.dim() == 4:
            h = h.mean((2, 3))
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    def task_film(self, support_emb: torch.Tensor):
        """FiLM parameters from unconditioned support embeddings ``[way, shot, D]``: the TEN
        applied to the mean of the class prototypes."""
        if self.ten is None:
            raise ValueError("this network has no task embedding network (ten=None)")
        return self.ten(prototypes(support_emb).mean(0, keepdim=True))

    def episode_logits(
        self,
        support: torch.Tensor,
        query: torch.Tensor,
    ) -> torch.Tensor:
        """Logits ``[way * n_query, way]`` of one episode: support
        ``[way, shot, ...]`` and query ``[way, n_query, ...]`` images, embedded
        together in one pass (as ``train_protonet`` does); with a TEN, the
        support is first embedded without conditioning to get the task's FiLM
        parameters."""
        way, shot = support.shape[:2]
        s, q = support.flatten(0, 1), query.flatten(0, 1)
        film = None
        if self.ten is not None:
            film = self.task_film(self.embed(s).float().view(way, shot, -1))
        emb = self.embed(torch.cat([s, q]), film).float()
        protos = prototypes(emb[: way * shot].view(way, shot, -1))
        return protonet_logits(
            emb[way * shot :],
            protos,
            self.distance,
            self.alpha,
            **self.distance_kwargs,
        )

    def penalty(self) -> torch.Tensor:
        """The TEN's L2 penalty on ``gamma0``, ``beta0`` (0 without a TEN)."""
        return self.ten.penalty() if self.ten is not None else self.alpha.new_zeros(())

    def aux_logits(self, x: torch.Tensor) -> torch.Tensor:
        """64-way (``aux_classes``-way) logits of the auxiliary head on unconditioned features."""
        if self.aux_head is None:
            raise ValueError("this network has no auxiliary head (aux_classes=None)")
        return self.aux_head(self.embed(x).float())


# ------------------------------------------------------------------- training


@dataclass
class TadamConfig:
    """How to train a :class:`TadamNet`. Defaults: the official TADAM code on miniImageNet
    5-shot (SGD, momentum 0.9, learning rate 0.1 with three drops by 10 after half the run,
    weight decay 5e-4 on convolution and linear weights, per-tensor gradient clipping at norm
    1, 30,000 steps of 5-way 5-shot episodes with 32 queries, here 6 per class; auxiliary
    batches of 64 images). The official code trains on two episodes per step; here one.
    """

    way: int = 5
    shot: int = 5
    query: int = 6
    max_episodes: int = 30_000
    episodes_per_epoch: int = 500
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    clip_norm: float | None = 1.0
    aux_batch: int = 64
    aux_rate: float = 0.9
    aux_n: int = 20
    aux_staircase: bool = False
    val_way: int = 5
    val_shot: int | None = None  # None: the training shot
    val_query: int = 15
    val_episodes: int = 500
    select_on: str = "accuracy"  # "accuracy" or "loss"
    patience: int | None = None
    seed: int = 0
    amp: bool | None = None  # None: on for CUDA
    extra: dict = field(default_factory=dict)  # free-form notes stored with the checkpoint

    def __post_init__(self) -> None:
        check_episodic(self)
        if self.aux_batch < 1:
            raise ValueError(f"aux_batch must be >= 1, got {self.aux_batch}")


def train_tadam(
    model: TadamNet,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    config: TadamConfig,
    checkpoint: str | os.PathLike | None = None,
    retrain: bool = False,
    device: str | torch.device | None = "auto",
    on_epoch_end: Callable[[int, dict], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on episodes of ``train_data`` (uint8 ``[classes, per_class, ...]``; its
    class index is the auxiliary label), keeping the epoch with the best validation score.

    Every step: with probability ``aux_probability(step)`` (only if the model has an auxiliary
    head) one SGD step on a batch of ``aux_batch`` base-class images through the head, with its
    own momentum, as the official code does; then one SGD step on an episode, loss = ProtoNet
    cross-entropy + the TEN penalty. Episodes come from a generator seeded with ``seed`` and
    auxiliary draws from another, so models with and without the auxiliary task meet the same
    episodes. History per epoch: the ``train_protonet`` keys, plus ``alpha``, ``near_zero``
    (mean ``near_zero_fraction`` of the epoch's episodes) and ``aux_steps``.
    """
    cfg = config
    if model.aux_head is not None and model.aux_head.out_features != train_data.shape[0]:
        raise ValueError(
            f"the auxiliary head has {model.aux_head.out_features} classes but train_data has "
            f"{train_data.shape[0]}; build TadamNet(aux_classes={train_data.shape[0]})"
        )
    device, amp, train_data, val_shot = prepare_episodic(
        model, train_data, val_data, cfg, device, channels_last=False
    )
    parts = _optimisers(model, cfg, device, amp)
    gen = torch.Generator().manual_seed(cfg.seed)
    aux_gen = torch.Generator().manual_seed(cfg.seed + 2)
    ckpt = checkpoints.Checkpoint(
        checkpoint,
        {"config": dataclasses.asdict(cfg), "model": model.describe()},
        {"model": model, **parts},
        {"episodes": gen, "aux": aux_gen},
    )
    labels = query_labels(cfg.way, cfg.query, device)

    def steps(state: dict, n: int, tick: Callable[[], object]) -> dict:
        sums = {"loss": 0.0, "acc": 0.0, "near_zero": 0.0, "aux": 0}
        for i in range(n):
            step = state["episode"] + i
            out = _step(model, train_data, labels, cfg, parts, gen, aux_gen, step, device, amp)
            for k in sums:
                sums[k] += out[k]
            tick()
        return sums

    def end_epoch(state: dict, sums: dict, seconds: float):
        val = evaluate_tadam(
            model,
            val_data,
            cfg.val_way,
            val_shot,
            cfg.val_query,
            cfg.val_episodes,
            cfg.seed + 1,
            device,
        )
        n = cfg.episodes_per_epoch
        record_epoch(
            state,
            n,
            sums["loss"],
            sums["acc"],
            val,
            lr=parts["opt"].param_groups[0]["lr"],
            alpha=model.alpha.item(),
            near_zero=sums["near_zero"] / n,
            aux_steps=sums["aux"],
            train_seconds=seconds,
        )
        return val, {"val_acc": f"{val.accuracy:.3f}", "alpha": f"{model.alpha.item():.3g}"}

    return train_episodes(
        model, _KEYS, ckpt, steps, end_epoch, cfg, retrain, on_epoch_end, progress
    )


def measure_tadam_seconds(
    model: TadamNet,
    train_data: torch.Tensor,
    config: TadamConfig,
    episodes: int = 3,
    device: str | torch.device | None = "auto",
) -> dict[str, float]:
    """Seconds per training episode and per auxiliary batch on this machine, measured on a
    copy of ``model`` after one warm-up step, and the predicted training time of the whole run
    (``max_episodes`` episodes and ``expected_aux_steps`` auxiliary batches; validation
    excluded)."""
    cfg = dataclasses.replace(config, aux_rate=1.0)  # every step trains an auxiliary batch
    probe = copy.deepcopy(model)
    device, amp = place(probe, cfg, device, channels_last=False)
    probe.train()
    data = train_data.to(device)
    parts = _optimisers(probe, cfg, device, amp)
    gen = torch.Generator().manual_seed(cfg.seed)
    labels = query_labels(cfg.way, cfg.query, device)
    times = {"episode": 0.0, "aux": 0.0}
    for i in range(episodes + 1):
        t = _step(probe, data, labels, cfg, parts, gen, gen, 0, device, amp, timings=True)
        if i > 0:
            times["episode"] += t["episode_s"] / episodes
            times["aux"] += t["aux_s"] / episodes
    aux_total = (
        expected_aux_steps(config.max_episodes, config.aux_rate, config.aux_n, config.aux_staircase)
        if model.aux_head is not None
        else 0.0
    )
    return {
        "episode_s": times["episode"],
        "aux_s": times["aux"] if model.aux_head is not None else 0.0,
        "expected_aux_steps": aux_total,
        "predicted_s": config.max_episodes * times["episode"] + aux_total * times["aux"],
    }


# ------------------------------------------------------------------- evaluation


def evaluate_tadam(
    model: TadamNet,
    data: torch.Tensor,
    way: int,
    shot: int,
    query: int = 15,
    episodes: int = 600,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    per_episode: bool | None = None,
    progress: bool = False,
) -> EvalResult:
    """Score ``episodes`` test episodes of ``data``: the episodes ``evaluate_embeddings`` draws
    with the same ``seed``, so every model of a comparison meets the same ones.

    Without a TEN (``per_episode`` None or False) the images are embedded once and
    ``evaluate_embeddings`` scores the episodes with the model's distance and ``alpha``. With a
    TEN each episode has its own FiLM parameters, so each is embedded on its own (support and
    queries, eval mode): about ``episodes * way * (2 shot + query)`` image passes.
    """
    check_episode(data.shape[0], data.shape[1], way, shot, query)
    device = resolve_device(device)
    if per_episode is None:
        per_episode = model.ten is not None
    if not per_episode:
        if model.ten is not None:
            raise ValueError("a task-conditioned model must be evaluated per episode")
        emb = embed(model, data, device=device)
        return evaluate_embeddings(
            emb,
            way,
            shot,
            query,
            episodes,
            seed,
            model.distance,
            model.alpha.item(),
            **model.distance_kwargs,
        )
    return _evaluate_per_episode(model, data, way, shot, query, episodes, seed, device, progress)


@torch.no_grad()
def _evaluate_per_episode(model, data, way, shot, query, episodes, seed, device, progress):
    from tqdm.auto import tqdm

    amp = device.type == "cuda"
    classes, items = _episode_indices(
        data.shape[0], data.shape[1], way, shot, query, episodes, seed
    )
    labels = query_labels(way, query, device)
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    accs, losses = [], []
    try:
        for e in tqdm(range(episodes), desc="test episodes", disable=not progress):
            x = data[classes[e][:, None], items[e]].to(device)
            with _autocast(device, amp):
                logits = model.episode_logits(x[:, :shot], x[:, shot:])
            logits = logits.float()
            losses.append(F.cross_entropy(logits, labels).item())
            accs.append((logits.argmax(-1) == labels).float().mean().item())
    finally:
        model.train(was_training)
    acc = torch.tensor(accs)
    loss = sum(losses) / len(losses)
    return EvalResult(acc.mean().item(), ci95(acc), loss, episodes, acc, way, shot, query)


def _episode_indices(n_cls, per_class, way, shot, query, episodes, seed):
    """The class and item indices ``evaluation.evaluate_embeddings`` draws for ``seed``
    (blocks of 1000 episodes from one generator)."""
    gen = torch.Generator().manual_seed(seed)
    blocks = [
        sample_indices(n_cls, per_class, way, shot + query, gen, episodes=min(1000, episodes - b))
        for b in range(0, episodes, 1000)
    ]
    return torch.cat([c for c, _ in blocks]), torch.cat([i for _, i in blocks])


# ------------------------------------------------------------------- internals


def _optimisers(model: TadamNet, cfg: TadamConfig, device, amp) -> dict:
    """SGD for the episode loss (weight decay on conv/linear weights only) and, with an
    auxiliary head, a second SGD with its own momentum for the auxiliary loss (backbone +
    head), both on the same learning-rate schedule. The TEN's ``gamma0`` and ``beta0`` are
    matrices but not weights of a layer: their own L2 penalty (:data:`FILM_PENALTY`) is
    their only decay, as in the official code."""
    head = set() if model.aux_head is None else {id(p) for p in model.aux_head.parameters()}
    main = [(n, p) for n, p in model.named_parameters() if id(p) not in head]

    def groups(named):
        decay = [p for n, p in named if _decayed(n, p)]
        rest = [p for n, p in named if not _decayed(n, p)]
        return [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ]

    parts = {
        "opt": torch.optim.SGD(groups(main), lr=cfg.lr, momentum=cfg.momentum),
        "scaler": torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda"),
        "aux_opt": None,
        "aux_scaler": None,
    }
    if model.aux_head is not None:
        bb = [(n, p) for n, p in model.backbone.named_parameters()]
        aux_opt = torch.optim.SGD(
            groups(bb) + [{"params": list(model.aux_head.parameters()), "weight_decay": 0.0}],
            lr=cfg.lr,
            momentum=cfg.momentum,
        )
        parts.update(
            aux_opt=aux_opt,
            aux_scaler=torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda"),
        )
    return parts


def _decayed(name: str, p: nn.Parameter) -> bool:
    """Whether weight decay applies: convolution and linear weights (more than one dimension),
    not the FiLM post-multipliers ``gamma0``, ``beta0``, which have their own penalty."""
    return p.dim() > 1 and name.split(".")[-1] not in ("gamma0", "beta0")


def _update(loss, opt, scaler, cfg, step) -> None:
    """One SGD step at the learning rate of ``step`` (``lr * lr_factor``), gradients clipped."""
    for group in opt.param_groups:
        group["lr"] = cfg.lr * lr_factor(step, cfg.max_episodes)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.clip_norm is not None:
        scaler.unscale_(opt)
        params = [p for group in opt.param_groups for p in group["params"]]
        clip_per_tensor_(params, cfg.clip_norm)  # per tensor, as TF-slim's clip_gradient_norms
    scaler.step(opt)
    scaler.update()


def _step(model, data, labels, cfg, parts, gen, aux_gen, step, device, amp, timings=False):
    """One training step (auxiliary batch if drawn, then the episode); returns its figures."""
    out = {"aux": 0}
    t0 = time.perf_counter()
    if model.aux_head is not None:
        p = aux_probability(step, cfg.max_episodes, cfg.aux_rate, cfg.aux_n, cfg.aux_staircase)
        coin = torch.rand((), generator=aux_gen).item()
        cls = torch.randint(0, data.shape[0], (cfg.aux_batch,), generator=aux_gen)
        item = torch.randint(0, data.shape[1], (cfg.aux_batch,), generator=aux_gen)
        if coin < p:
            x = data[cls.to(data.device), item.to(data.device)]
            with _autocast(device, amp):
                logits = model.aux_logits(x)
            aux_loss = F.cross_entropy(logits.float(), cls.to(device))
            _update(aux_loss, parts["aux_opt"], parts["aux_scaler"], cfg, step)
            out["aux"] = 1
    if timings:  # otherwise no step waits for the GPU
        sync(device)
    t1 = time.perf_counter()
    ep = sample_episode(data, cfg.way, cfg.shot, cfg.query, gen)
    with _autocast(device, amp):
        logits = model.episode_logits(ep.support, ep.query)
    logits = logits.float()
    loss, acc = protonet_loss(logits, labels)
    _update(loss + model.penalty(), parts["opt"], parts["scaler"], cfg, step)
    if timings:
        sync(device)
    alpha = model.alpha.item()
    d = -logits.detach() / alpha if alpha > 0 else logits.detach()
    out.update(loss=loss.item(), acc=acc.item(), near_zero=near_zero_fraction(d, labels, alpha))
    if timings:
        out.update(aux_s=t1 - t0, episode_s=time.perf_counter() - t1)
    return out


_KEYS = (*EPISODIC_KEYS, "alpha", "near_zero", "aux_steps", "train_seconds")
