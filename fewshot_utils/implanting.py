"""Implanting (Lifchitz et al. 2019, stage 2): new task-specific neurons beside a frozen network.

For a new few-shot task, 16-channel convolutions (*implants*) are added beside every
convolution of the last residual block of a stage-1 ResNet-12. An implant's input is the
depth-wise concatenation of the base and implant activations of the previous layer
(Figure 4); the base network stays frozen, so the embedding becomes ``[base map, implant map]``
with ``d + 16`` channels. The implants are trained on the task's own support examples, on the
*leave-one-out* subtasks of eq. (11)-(12): every support example in turn is the query and the
others are the support, prototypes recomputed at every iteration from the current implants.

Cheap per task: nothing before the last block depends on the implants, so its output is
computed once per image (:func:`prefix_features`, shared by every task); the frozen base
stream of the last block runs once per task; each of the ``epochs`` iterations runs only the
small implant stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dense import _check_pooling, dense_scores, global_pool
from .episodes import check_episode, sample_indices
from .evaluation import EvalResult, ci95
from .models import ResBlock, ResNet12, activation_layer
from .profiles import resolve_device

__all__ = [
    "Implants",
    "base_block_states",
    "prefix_features",
    "ImplantConfig",
    "leave_one_out_loss",
    "train_implants",
    "implanted_maps",
    "task_accuracy",
    "ImplantingResult",
    "evaluate_implanting",
]


class Implants(nn.Module):
    """The implant stream beside a :class:`~fewshot_utils.models.ResBlock` (Figure 4).

    ``conv1`` sees the block input; ``conv2`` and ``conv3`` see ``[base, implant]``
    activations of the previous layer; like the base block, the third layer adds a 1x1-conv
    shortcut from the block input before the activation and the 2x2 max-pool.
    """

    def __init__(self, block: ResBlock, width: int = 16, activation: str = "swish"):
        super().__init__()
        cin, cout = block.conv1.in_channels, block.conv1.out_channels
        self.conv1 = nn.Conv2d(cin, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(cout + width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(cout + width, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width))
        self.act = activation_layer(activation)
        self.pool = nn.MaxPool2d(2)
        self.width = width

    def forward(
        self,
        x: torch.Tensor,
        a1: torch.Tensor,
        a2: torch.Tensor,
    ) -> torch.Tensor:
        """Implant map ``[B, width, h/2, w/2]`` from the block input ``x`` and
        the base activations ``a1``, ``a2`` after the block's first and second
        convolutions."""
        i1 = self.act(self.bn1(self.conv1(x)))
        i2 = self.act(self.bn2(self.conv2(torch.cat([a1, i1], 1))))
        i3 = self.bn3(self.conv3(torch.cat([a2, i2], 1)))
        return self.pool(self.act(i3 + self.shortcut(x)))


@torch.no_grad()
def base_block_states(block: ResBlock, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The frozen block's activations ``a1``, ``a2`` (after its first two conv-BN-act) and its
    output map, in eval mode; ``out`` equals ``block(x)``."""
    was = block.training
    block.eval()
    try:
        a1 = block.act(block.bn1(block.conv1(x)))
        a2 = block.act(block.bn2(block.conv2(a1)))
        h = block.bn3(block.conv3(a2))
        out = block.pool(block.act(h + block.shortcut(x)))
    finally:
        block.train(was)
    return a1, a2, out


@torch.no_grad()
def prefix_features(
    model: ResNet12,
    data: torch.Tensor,
    batch_size: int = 128,
    device: str | torch.device | None = "auto",
) -> torch.Tensor:
    """Input of the last block, ``[classes, per_class, c, h, w]`` (float32 on ``device``), of
    images ``[classes, per_class, ...]``: input normalisation and every block but the last,
    in eval mode. Computed once per image and shared by all tasks."""
    device = resolve_device(device)
    model.to(device)
    was = model.training
    model.eval()
    flat = data.reshape(-1, *data.shape[2:])
    out = []
    try:
        for s in range(0, flat.shape[0], batch_size):
            h = model.norm(flat[s : s + batch_size].to(device))
            for block in model.blocks[:-1]:
                h = block(h)
            out.append(h.float())
    finally:
        model.train(was)
    h = torch.cat(out)
    return h.view(data.shape[0], data.shape[1], *h.shape[1:])


@dataclass
class ImplantConfig:
    """Stage 2: implant width, AdamW for ``epochs`` full-batch iterations over the task's
    supports with ``tau`` fixed (the paper: 16 channels, 50 epochs, tau = 10), and the pooling
    of the leave-one-out subtasks' supports and queries (the paper's best: GAP and GAP,
    Table 3). Learning rate and weight decay are ours; the paper does not give them."""

    width: int = 16
    epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-2
    tau: float = 10.0
    support_pool: str = "gap"
    query_pool: str = "gap"

    def __post_init__(self) -> None:
        if self.support_pool not in ("gap", "gmp"):
            raise ValueError(f"support_pool must be 'gap' or 'gmp', got {self.support_pool!r}")
        _check_pooling(self.query_pool)
        if self.width < 1 or self.epochs < 1:
            raise ValueError("width and epochs must be >= 1")


def leave_one_out_loss(
    fmap: torch.Tensor,
    labels: torch.Tensor,
    way: int,
    support_pool: str = "gap",
    query_pool: str = "gap",
    tau: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (11) (pooled queries) or (12) (``query_pool="dc"``), averaged over
    subtasks and locations: every example ``i`` of the support maps ``fmap``
    ``[n, d, h, w]`` is the query of the subtask whose prototypes are the class
    means of the *other* pooled examples, scored by ``tau``-scaled cosine
    similarity. Needs >= 2 examples per class. Returns loss, accuracy."""
    n = fmap.shape[0]
    counts = torch.bincount(labels, minlength=way)
    if counts.min() < 2:
        raise ValueError(
            "leave-one-out subtasks need at least 2 support examples per class "
            "(the paper: implanting does not apply to 1-shot); "
            f"got per-class counts {counts.tolist()}"
        )
    onehot = F.one_hot(labels, way).to(fmap.dtype)  # [n, way]
    pooled = global_pool(fmap, support_pool)  # [n, d]
    sums = onehot.t() @ pooled  # [way, d]
    # [n, way, d]: the prototypes without example i
    protos = (sums[None] - onehot[:, :, None] * pooled[:, None]) / (
        counts[None, :, None] - onehot[:, :, None]
    )
    protos = F.normalize(protos, dim=-1)
    if query_pool == "dc":
        local = fmap.flatten(2).transpose(1, 2)  # [n, r, d]
        local = F.normalize(local, dim=-1)
        logits = tau * torch.einsum("nrd,nkd->nrk", local, protos)
        r = logits.shape[1]
        targets = labels.repeat_interleave(r)
        loss = F.cross_entropy(logits.reshape(n * r, way), targets)
        pred = logits.softmax(-1).mean(1).argmax(-1)
    else:
        q = F.normalize(global_pool(fmap, query_pool), dim=-1)
        logits = tau * torch.einsum("nd,nkd->nk", q, protos)
        loss = F.cross_entropy(logits, labels)
        pred = logits.argmax(-1)
    return loss, (pred == labels).float().mean()


def train_implants(
    block: ResBlock,
    support_prefix: torch.Tensor,
    labels: torch.Tensor,
    way: int,
    config: ImplantConfig,
    seed: int = 0,
    activation: str = "swish",
) -> tuple[Implants, dict[str, list[float]]]:
    """Train fresh implants beside the frozen last ``block`` on one task: ``support_prefix``
    ``[n, c, h, w]`` is the block input of the task's supports (:func:`prefix_features`).

    The base stream of the block runs once; each epoch runs the implant stream on all
    supports, recomputes the prototypes and takes one AdamW step on the leave-one-out loss.
    Returns the implants (eval mode) and the loss / accuracy per epoch.
    """
    cfg = config
    a1, a2, out = base_block_states(block, support_prefix)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        implants = Implants(block, cfg.width, activation).to(support_prefix.device)
    optimiser = torch.optim.AdamW(implants.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: dict[str, list[float]] = {"loss": [], "acc": []}
    implants.train()
    for _ in range(cfg.epochs):
        fmap = torch.cat([out, implants(support_prefix, a1, a2)], 1)
        loss, acc = leave_one_out_loss(fmap, labels, way, cfg.support_pool, cfg.query_pool, cfg.tau)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        history["loss"].append(loss.item())
        history["acc"].append(acc.item())
    implants.eval()
    return implants, history


@torch.no_grad()
def implanted_maps(
    block: ResBlock, implants: Implants | None, prefix: torch.Tensor
) -> torch.Tensor:
    """Embedding maps of the widened network, ``[n, d + width, h', w']`` (``[n, d, h', w']``
    without implants), from block inputs ``prefix`` ``[n, c, h, w]``."""
    a1, a2, out = base_block_states(block, prefix)
    if implants is None:
        return out
    was = implants.training
    implants.eval()
    try:
        return torch.cat([out, implants(prefix, a1, a2)], 1)
    finally:
        implants.train(was)


def task_accuracy(
    support: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    support_pool: str,
    query_pool: str,
    tau: float = 10.0,
) -> float:
    """Accuracy on one task: ``support`` maps ``[way, shot, d, h, w]``, ``queries`` ``[m, d, h,
    w]``; prototypes from pooled supports, queries pooled (eq. 13) or dense (eq. 14)."""
    protos = F.normalize(global_pool(support, support_pool).mean(1), dim=-1)  # [way, d]
    if query_pool == "dc":
        local = F.normalize(queries.flatten(2).transpose(1, 2), dim=-1)  # [m, r, d]
        scores = dense_scores(local @ protos.t(), tau)
    else:
        scores = F.normalize(global_pool(queries, query_pool), dim=-1) @ protos.t()
    return (scores.argmax(-1) == query_labels).float().mean().item()


@dataclass
class ImplantingResult:
    """Per test pooling: accuracy with implants and, on the same tasks, without; per-task
    times (implant training, and everything per task)."""

    implanted: dict[str, EvalResult]
    baseline: dict[str, EvalResult]
    train_seconds: list[float]
    task_seconds: list[float]
    final_train_acc: list[float]


def evaluate_implanting(
    model: ResNet12,
    prefix: torch.Tensor,
    way: int,
    shot: int,
    query: int,
    tasks: int,
    config: ImplantConfig,
    seed: int = 0,
    test_query_pools: tuple[str, ...] = ("gap", "gmp", "dc"),
    test_tau: float = 10.0,
    progress: bool = True,
) -> ImplantingResult:
    """Sample ``tasks`` ``way``-way ``shot``-shot tasks (``query`` queries per class) over
    block inputs ``prefix`` ``[classes, per_class, c, h, w]`` (:func:`prefix_features` of the
    test images); on each, train implants on the supports and score the queries with GAP
    supports and each of ``test_query_pools``, with and without the implants (paired)."""
    n_cls, per_class = prefix.shape[:2]
    check_episode(n_cls, per_class, way, shot, query)
    if shot < 2:
        raise ValueError("implanting needs shot >= 2 (leave-one-out subtasks); got shot=1")
    for qp in test_query_pools:
        _check_pooling(qp)
    block = model.blocks[-1]
    for p in model.parameters():
        p.requires_grad_(False)  # the base network is frozen
    gen = torch.Generator().manual_seed(seed)
    classes, items = sample_indices(n_cls, per_class, way, shot + query, gen, episodes=tasks)
    dev = prefix.device
    s_labels = torch.arange(way, device=dev).repeat_interleave(shot)
    q_labels = torch.arange(way, device=dev).repeat_interleave(query)
    acc = {k: {qp: [] for qp in test_query_pools} for k in ("implanted", "baseline")}
    train_s, task_s, final_acc = [], [], []
    from tqdm.auto import tqdm

    try:
        for t in tqdm(range(tasks), desc="implanted tasks", disable=not progress):
            t0 = time.perf_counter()
            x = prefix[classes[t].to(dev)[:, None], items[t].to(dev)]  # [way, shot+query, ...]
            sup = x[:, :shot].flatten(0, 1)
            qry = x[:, shot:].flatten(0, 1)
            with torch.enable_grad():
                implants, hist = train_implants(
                    block, sup, s_labels, way, config, seed + t, model.activation
                )
            train_s.append(time.perf_counter() - t0)
            final_acc.append(hist["acc"][-1])
            for kind, imp in (("implanted", implants), ("baseline", None)):
                s_maps = implanted_maps(block, imp, sup)
                q_maps = implanted_maps(block, imp, qry)
                s_maps = s_maps.view(way, shot, *s_maps.shape[1:])
                for qp in test_query_pools:
                    acc[kind][qp].append(
                        task_accuracy(s_maps, q_maps, q_labels, "gap", qp, test_tau)
                    )
            task_s.append(time.perf_counter() - t0)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)

    def result(values: list[float]) -> EvalResult:
        a = torch.tensor(values)
        return EvalResult(a.mean().item(), ci95(a), float("nan"), len(values), a, way, shot, query)

    return ImplantingResult(
        implanted={qp: result(v) for qp, v in acc["implanted"].items()},
        baseline={qp: result(v) for qp, v in acc["baseline"].items()},
        train_seconds=train_s,
        task_seconds=task_s,
        final_train_acc=final_acc,
    )
