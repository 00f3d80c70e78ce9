"""Dense classification (Lifchitz et al. 2019, stage 1) and its few-shot tests.

Stage 1 trains an embedding network that returns a feature *map* ``[B, d, h, w]`` with a
cosine classifier on the base classes, on ordinary mini-batches (not episodes):

- ``gap``/``gmp``: the map is pooled (global average / max) into ``[B, d]`` and classified,
  eq. (6)-(8);
- ``dc`` (dense classification): the classifier is applied at every spatial location
  (a 1x1 convolution with normalised weights) and the cross-entropy of every location
  counts, eq. (9)-(10).

At test time (eq. 13-14) prototypes are the pooled support embeddings averaged per class;
a query is pooled (``gap``/``gmp``: nearest prototype by cosine similarity) or densely
classified (``dc``: ``softmax(tau * cos)`` at every location, averaged over locations).

Training resumes exactly from atomic checkpoints (:mod:`fewshot_utils.checkpoints`, as
:mod:`fewshot_utils.training` does).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints
from .distances import cosine_similarity
from .episodes import check_episode, sample_indices
from .evaluation import EvalResult, _autocast, ci95, equal_halves_ci95, image_accuracy
from .profiles import column
from .training import place, steps_per_s, train_epochs

__all__ = [
    "POOLINGS",
    "CosineClassifier",
    "global_pool",
    "stage1_logits",
    "stage1_loss",
    "dense_scores",
    "BatchTrainConfig",
    "BatchTrainResult",
    "train_classifier",
    "measure_iterations_per_s",
    "FewShotMaps",
    "evaluate_poolings",
    "base_accuracy",
    "activation_maps",
    "stage1_protocol",
    "stage1_config",
    "fc100_protocol",
    "fc100_config",
]

POOLINGS = ("gap", "gmp", "dc")


class CosineClassifier(nn.Module):
    """Scaled cosine classifier ``tau * <x / |x|, w_j / |w_j|>`` (eq. 7).

    ``[B, d]`` features give logits ``[B, c]``; a feature map ``[B, d, h, w]`` gives logits
    ``[B, c, h, w]``, one classification per location (eq. 9). ``tau`` is learnable unless
    ``learn_tau=False``.
    """

    def __init__(self, dim: int, classes: int, tau: float = 10.0, learn_tau: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * math.sqrt(2.0 / dim))
        t = torch.tensor(float(tau))
        if learn_tau:
            self.tau = nn.Parameter(t)
        else:
            self.register_buffer("tau", t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return self.tau * cosine_similarity(x, self.weight)
        if x.dim() == 4:  # channels last, then the classes back in dim 1
            cos = cosine_similarity(x.movedim(1, -1), self.weight)
            return self.tau * cos.movedim(-1, 1)
        msg = "expected features [B, d] or a map [B, d, h, w], got "
        raise ValueError(msg + str(tuple(x.shape)))


def global_pool(fmap: torch.Tensor, how: str) -> torch.Tensor:
    """Global average (``gap``) or max (``gmp``) pooling of ``[..., d, h, w]`` -> ``[..., d]``."""
    if how == "gap":
        return fmap.mean((-2, -1))
    if how == "gmp":
        return fmap.amax((-2, -1))
    raise ValueError(f"unknown pooling {how!r}; choose 'gap' or 'gmp'")


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")


def stage1_logits(fmap: torch.Tensor, classifier: nn.Module, pooling: str) -> torch.Tensor:
    """Logits ``[B, c]`` (``gap``/``gmp``) or ``[B, c, h, w]`` (``dc``) of a feature map."""
    _check_pooling(pooling)
    if pooling == "dc":
        return classifier(fmap)
    return classifier(global_pool(fmap, pooling))


def stage1_loss(
    fmap: torch.Tensor,
    classifier: nn.Module,
    labels: torch.Tensor,
    pooling: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy of a batch. For ``dc`` the loss is the mean
    over images *and locations* of the per-location cross-entropy: eq. 10
    divided by ``n * r``, so that the learning rate does not depend on the map
    size. With weight decay (on the network and on ``tau``) this is not the
    paper's objective: dividing the data term by ``r`` makes the decay ``r``
    times stronger relative to it. Its accuracy is that of the
    location-averaged probabilities (eq. 14 with the base weights)."""
    logits = stage1_logits(fmap, classifier, pooling)
    if pooling == "dc":
        b, _, h, w = logits.shape
        loss = F.cross_entropy(logits, labels.view(b, 1, 1).expand(b, h, w))
        pred = logits.softmax(1).mean((2, 3)).argmax(1)
    else:
        loss = F.cross_entropy(logits, labels)
        pred = logits.argmax(1)
    return loss, (pred == labels).float().mean()


def dense_scores(cos: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (14): per-location cosine similarities ``[..., r, k]`` -> class
    scores ``[..., k]``, the location average of ``softmax(tau * cos)`` over
    the ``k`` classes."""
    return (tau * cos).softmax(-1).mean(-2)


# --------------------------------------------------------------------------- training


@dataclass
class BatchTrainConfig:
    """Stage 1 on ordinary mini-batches. Defaults: the paper's miniImageNet protocol (8000
    iterations of batch 200, SGD with Nesterov momentum, tau initialised at 10); learning
    rate, weight decay and schedule (x0.1 at 50% and 75%) are ours: the paper does not give
    them."""

    pooling: str = "dc"
    iterations: int = 8000
    batch_size: int = 200
    optimiser: str = "sgd"  # "sgd" (Nesterov, miniImageNet) or "adam" (FC100)
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of the run; lr x0.1 at each
    tau: float = 10.0
    iterations_per_chunk: int = 500  # checkpoint (and validation) every this many
    seed: int = 0
    amp: bool | None = None  # None: on for CUDA

    def __post_init__(self) -> None:
        _check_pooling(self.pooling)
        if self.optimiser not in ("sgd", "adam"):
            raise ValueError(f"optimiser must be 'sgd' or 'adam', got {self.optimiser!r}")
        if self.iterations < 1 or self.batch_size < 1 or self.iterations_per_chunk < 1:
            raise ValueError("iterations, batch_size and iterations_per_chunk must be >= 1")
        self.milestones = tuple(float(m) for m in self.milestones)


@dataclass
class BatchTrainResult:
    """Trained network and classifier (final weights), history and run facts."""

    model: nn.Module
    classifier: CosineClassifier
    history: dict[str, list[float]]
    iterations_done: int
    wall_time_s: float
    resumed: bool
    loaded: bool

    @property
    def images_per_s(self) -> float:
        t = sum(self.history["train_seconds"])
        return self.history["images"][-1] / t if t else float("nan")


def train_classifier(
    model: nn.Module,
    train_data: torch.Tensor,
    config: BatchTrainConfig,
    checkpoint: str | os.PathLike | None = None,
    retrain: bool = False,
    device: str | torch.device | None = "auto",
    validate: Callable[[nn.Module, CosineClassifier], float] | None = None,
    progress: bool = True,
) -> BatchTrainResult:
    """Stage 1: train ``model`` (images -> feature map) and a :class:`CosineClassifier` over
    the classes of ``train_data`` (uint8 ``[classes, per_class, ...]``) on shuffled
    mini-batches (every image once per pass, passes reshuffled), with ``config.pooling``.

    Every ``iterations_per_chunk`` iterations ``validate(model, classifier)`` (if given) is
    recorded and the whole state is checkpointed atomically: an interrupted run resumes
    exactly, a finished one is loaded (unless ``retrain``). On CUDA the data moves to the GPU
    once and mixed precision is used; on the CPU the network runs channels_last.
    """
    cfg = config
    n_cls, per_class = train_data.shape[:2]
    if n_cls < 2 or per_class < 1:
        raise ValueError(
            f"train_data must be [classes >= 2, per_class, ...], got {train_data.shape}"
        )
    dim = getattr(model, "feature_dim", None)
    if dim is None:
        raise ValueError("model must have a feature_dim attribute (the channels of its map)")
    classifier = CosineClassifier(dim, n_cls, cfg.tau)
    device, amp = place(model, cfg, device, channels_last=False)
    classifier.to(device)
    flat = train_data.reshape(n_cls * per_class, *train_data.shape[2:]).to(device)
    labels_all = torch.arange(n_cls, device=device).repeat_interleave(per_class)
    params = list(model.parameters()) + list(classifier.parameters())
    optimiser = _optimiser(params, cfg)
    steps = [int(round(m * cfg.iterations)) for m in cfg.milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, steps, gamma=0.1)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {
        "iteration": 0,
        "order": torch.randperm(flat.shape[0], generator=gen),
        "position": 0,
        "history": {
            k: []
            for k in (
                "iteration",
                "images",
                "train_loss",
                "train_acc",
                "tau",
                "lr",
                "val_acc",
                "train_seconds",
            )
        },
        "finished": False,
        "wall_time_s": 0.0,
    }
    ckpt = checkpoints.Checkpoint(
        checkpoint,
        dataclasses.asdict(cfg),
        {
            "model": model,
            "classifier": classifier,
            "optimiser": optimiser,
            "scheduler": scheduler,
            "scaler": scaler,
        },
        {"batches": gen},
    )

    def steps(state: dict, n: int, tick: Callable[[], object]) -> tuple[float, float]:
        tot_loss = tot_acc = 0.0
        for _ in range(n):
            idx = _next_batch(state, cfg.batch_size, gen).to(device)
            loss, acc = _step(
                model, classifier, flat[idx], labels_all[idx], cfg, optimiser, scaler, device, amp
            )
            scheduler.step()
            tot_loss += loss
            tot_acc += acc
            tick()
        return tot_loss / n, tot_acc / n

    def end_epoch(state: dict, means: tuple[float, float], seconds: float):
        h = state["history"]
        h["iteration"].append(state["iteration"])
        h["images"].append(state["iteration"] * cfg.batch_size)
        h["train_loss"].append(means[0])
        h["train_acc"].append(means[1])
        h["tau"].append(float(classifier.tau.detach()))
        h["lr"].append(scheduler.get_last_lr()[0])
        h["train_seconds"].append(seconds)
        h["val_acc"].append(float(validate(model, classifier)) if validate else float("nan"))
        return None, {"loss": f"{h['train_loss'][-1]:.3f}", "val_acc": f"{h['val_acc'][-1]:.3f}"}

    state, resumed, loaded = train_epochs(
        nn.ModuleList([model, classifier]),  # both in train mode for every chunk
        state,
        ckpt,
        steps,
        end_epoch,
        total=cfg.iterations,
        epoch_steps=cfg.iterations_per_chunk,
        counter="iteration",
        retrain=retrain,
        progress=progress,
        desc="training iterations",
    )
    return _batch_result(model, classifier, state, resumed=resumed, loaded=loaded)


def measure_iterations_per_s(
    model: nn.Module,
    train_data: torch.Tensor,
    config: BatchTrainConfig,
    iterations: int = 3,
    device: str | torch.device | None = "auto",
) -> float:
    """Training iterations per second of ``config`` here, on a copy of ``model``, after one
    warm-up iteration: multiply by the planned iterations to predict a run's duration."""
    cfg = config
    probe = copy.deepcopy(model)
    device, amp = place(probe, cfg, device, channels_last=False)
    n_cls, per_class = train_data.shape[:2]
    classifier = CosineClassifier(probe.feature_dim, n_cls, cfg.tau).to(device)
    optimiser = _optimiser(list(probe.parameters()) + list(classifier.parameters()), cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    gen = torch.Generator().manual_seed(cfg.seed)

    def step() -> None:
        cls = torch.randint(n_cls, (cfg.batch_size,), generator=gen)
        item = torch.randint(per_class, (cfg.batch_size,), generator=gen)
        x = train_data[cls, item].to(device)
        _step(probe, classifier, x, cls.to(device), cfg, optimiser, scaler, device, amp)

    return steps_per_s(step, iterations, device)


def _optimiser(params, cfg: BatchTrainConfig) -> torch.optim.Optimizer:
    if cfg.optimiser == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )


def _next_batch(state: dict, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """The next ``batch_size`` indices of the shuffled order, reshuffling after each pass."""
    parts, need = [], batch_size
    while need:
        order, pos = state["order"], state["position"]
        take = order[pos : pos + need]
        parts.append(take)
        need -= take.numel()
        state["position"] = pos + take.numel()
        if state["position"] >= order.numel():
            state["order"] = torch.randperm(order.numel(), generator=gen)
            state["position"] = 0
    return torch.cat(parts)


def _step(model, classifier, x, y, cfg, optimiser, scaler, device, amp) -> tuple[float, float]:
    with _autocast(device, amp):
        fmap = model(x)
    loss, acc = stage1_loss(fmap.float(), classifier, y, cfg.pooling)
    optimiser.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimiser)
    scaler.update()
    return loss.item(), acc.item()


def _batch_result(model, classifier, state, resumed: bool, loaded: bool) -> BatchTrainResult:
    history, done, wall = state["history"], state["iteration"], state["wall_time_s"]
    return BatchTrainResult(model, classifier, history, done, wall, resumed, loaded)


# --------------------------------------------------------------------------- testing


@dataclass
class FewShotMaps:
    """What the test needs of every image, computed once: its GAP and GMP vectors and its
    L2-normalised local features ``[classes, per_class, r, d]`` (for dense classification)."""

    gap: torch.Tensor
    gmp: torch.Tensor
    local: torch.Tensor

    @classmethod
    def from_maps(cls, maps: torch.Tensor) -> FewShotMaps:
        if maps.dim() != 5:
            raise ValueError(
                f"expected maps [classes, per_class, d, h, w], got {tuple(maps.shape)}"
            )
        local = F.normalize(maps.flatten(3).transpose(2, 3), dim=-1)
        return cls(global_pool(maps, "gap"), global_pool(maps, "gmp"), local.contiguous())

    def query(self, pooling: str) -> torch.Tensor:
        """Normalised query representation: ``[..., d]`` pooled or ``[..., r, d]`` local."""
        _check_pooling(pooling)
        return self.local if pooling == "dc" else F.normalize(getattr(self, pooling), dim=-1)


@dataclass
class _Grid:
    combos: list[tuple[str, str]]
    novel: dict = field(default_factory=dict)
    base: dict = field(default_factory=dict)
    both: dict = field(default_factory=dict)


def _scores(q: torch.Tensor, protos: torch.Tensor, dense: bool, tau: float) -> torch.Tensor:
    """Class scores of queries ``q`` (``[e, n, d]`` pooled or ``[e, n, r, d]`` local,
    normalised) against normalised class vectors ``protos`` ``[e, k, d]`` or ``[k, d]``."""
    if protos.dim() == 2:
        protos = protos.expand(q.shape[0], *protos.shape)
    if dense:
        return dense_scores(torch.einsum("enrd,ekd->enrk", q, protos), tau)
    return torch.einsum("end,ekd->enk", q, protos)


def _rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of ``x`` ``[classes, per_class, ...]`` seen as ``[classes * per_class,
    ...]``: one contiguous copy per row (much faster than broadcast fancy indexing)."""
    return x.reshape(x.shape[0] * x.shape[1], -1).index_select(0, rows)


def evaluate_poolings(
    novel: FewShotMaps,
    way: int,
    shot: int,
    query: int = 30,
    episodes: int = 10_000,
    seed: int = 0,
    combos: Sequence[tuple[str, str]] = (("gap", "gap"), ("gap", "dc")),
    tau: float = 10.0,
    base: FewShotMaps | None = None,
    base_weight: torch.Tensor | None = None,
    max_chunk_bytes: int = 2**28,
) -> dict[str, dict[tuple[str, str], EvalResult]]:
    """Few-shot tasks over precomputed :class:`FewShotMaps`, scored for every
    ``(support pooling, query pooling)`` in ``combos`` on the *same* tasks (paired).

    Support pooling is ``gap`` or ``gmp``; prototypes are the per-class means of the pooled
    supports (eq. 1), compared by cosine similarity; query pooling ``dc`` uses eq. (14)
    with scale ``tau``. Returns ``{"novel": {combo: EvalResult}}``; with ``base`` (held-out
    images of the base classes) and ``base_weight`` (the stage-1 classifier weights
    ``[c, d]``) also ``"base"`` and ``"both"``, as Gidaris & Komodakis.

    ``"base"``: every held-out image classified among all ``c`` base classes by the weights.
    That needs no task (the weights are fixed), so it is computed exactly, once per image,
    with the Wilson interval over the images (:func:`base_accuracy`). ``"both"``: each task's
    ``way x query`` base queries and its novel queries classified together among the
    ``c + way`` weights and prototypes. Its tasks keep drawing the same few held-out images,
    so the spread over tasks is only Monte-Carlo error: its interval is the Wilson interval
    of the accuracy over the distinct images that can be queries (held-out base images and
    novel images), as if each were measured once.
    """
    n_cls, per_class = novel.gap.shape[:2]
    check_episode(n_cls, per_class, way, shot, query)
    for sp, qp in combos:
        if sp not in ("gap", "gmp"):
            raise ValueError(f"support pooling must be 'gap' or 'gmp', got {sp!r}")
        _check_pooling(qp)
    if (base is None) != (base_weight is None):
        raise ValueError("pass both base (held-out base images) and base_weight, or neither")
    gen = torch.Generator().manual_seed(seed)
    blocks = [
        sample_indices(n_cls, per_class, way, shot + query, gen, min(1000, episodes - b))
        for b in range(0, episodes, 1000)
    ]
    classes = torch.cat([c for c, _ in blocks])
    items = torch.cat([i for _, i in blocks])
    dev = novel.gap.device
    labels = torch.arange(way, device=dev).repeat_interleave(query)
    if base is not None:
        b_cls, b_per = base.gap.shape[:2]
        check_episode(b_cls, b_per, way, 1, query - 1)  # way classes, query images each
        if base_weight.shape != (b_cls, novel.gap.shape[-1]):
            raise ValueError(
                f"base_weight must be [{b_cls}, {novel.gap.shape[-1]}] (base classes, feature "
                f"dim), got {tuple(base_weight.shape)}"
            )
        bgen = torch.Generator().manual_seed(seed + 1)
        bblocks = [
            sample_indices(b_cls, b_per, way, query, bgen, min(1000, episodes - b))
            for b in range(0, episodes, 1000)
        ]
        b_classes = torch.cat([c for c, _ in bblocks])
        b_items = torch.cat([i for _, i in bblocks])
        w = F.normalize(base_weight.float().to(dev), dim=-1)
    r, d = novel.local.shape[-2:]
    per_ep = way * (shot + query) * r * d * 4 * (4 if base is not None else 2)
    chunk = max(1, min(episodes, max_chunk_bytes // per_ep))
    out: dict[str, dict] = {"novel": {c: [] for c in combos}}
    if base is not None:
        out["base"] = {}  # computed exactly over the images below, not per task
        out["both"] = {c: [] for c in combos}
    for s in range(0, episodes, chunk):
        ci, ii = classes[s : s + chunk].to(dev), items[s : s + chunk].to(dev)
        e = ci.shape[0]
        flat = ci[..., None] * per_class + ii  # [e, way, shot + query] rows of [classes * n]
        sel = flat[:, :, :shot].reshape(-1)
        qsel = flat[:, :, shot:].reshape(-1)
        if base is not None:
            bc, bi = b_classes[s : s + chunk].to(dev), b_items[s : s + chunk].to(dev)
            bsel = (bc[..., None] * b_per + bi).reshape(-1)
            b_labels = bc.repeat_interleave(query, dim=1)  # [e, way * query], true base class
        for sp, qp in combos:
            sup = _rows(getattr(novel, sp), sel).view(e, way, shot, -1)
            protos = F.normalize(sup.mean(2), dim=-1)  # [e, way, d]
            q = _rows(novel.query(qp), qsel).view(e, way * query, *novel.query(qp).shape[2:])
            dense = qp == "dc"
            if base is None:
                pred = _scores(q, protos, dense, tau).argmax(-1)
                out["novel"][sp, qp].append((pred == labels).float().mean(1))
                continue
            # joint label space: [base weights (c), novel prototypes (way)]
            bq = _rows(base.query(qp), bsel).view(e, way * query, *base.query(qp).shape[2:])
            allq = torch.cat([q, bq], 1)
            joint = torch.cat([w.expand(e, *w.shape), protos], 1)
            if dense:
                cos = torch.einsum("enrd,ekd->enrk", allq, joint)
                novel_s = dense_scores(cos[:, : q.shape[1], :, w.shape[0] :], tau)
                both_s = dense_scores(cos, tau)
            else:
                cos = torch.einsum("end,ekd->enk", allq, joint)
                novel_s = cos[:, : q.shape[1], w.shape[0] :]
                both_s = cos
            out["novel"][sp, qp].append((novel_s.argmax(-1) == labels).float().mean(1))
            truth = torch.cat([labels.expand(e, -1) + w.shape[0], b_labels], 1)
            hit = (both_s.argmax(-1) == truth).float()  # novel queries, then as many base
            out["both"][sp, qp].append(hit.view(e, 2, -1).mean(2))  # [e, (novel, base)]
    result: dict[str, dict[tuple[str, str], EvalResult]] = {}
    for kind, by_combo in out.items():
        result[kind] = {}
        for combo, accs in by_combo.items():
            acc = torch.cat(accs).cpu()
            halves = acc if kind == "both" else None
            acc = acc.mean(1) if kind == "both" else acc  # both: halves weighted equally
            result[kind][combo] = EvalResult(
                acc.mean().item(), ci95(acc), float("nan"), episodes, acc, way, shot, query
            )
            if halves is not None:
                sizes = (n_cls * per_class, base.gap.shape[0] * base.gap.shape[1])
                result[kind][combo] = _over_images(result[kind][combo], halves, sizes)
    if base is not None:
        for combo in combos:
            result["base"][combo] = base_accuracy(base, base_weight, combo[1], tau)
    return result


def _over_images(both: EvalResult, halves: torch.Tensor, sizes: tuple[int, int]) -> EvalResult:
    """``both`` (a mean over tasks) with the interval its images support: each task weights
    its novel and base queries equally, so the accuracy is the mean of two proportions over
    two different image sets (``sizes``: novel, base), and its variance a quarter of the sum
    of theirs (:func:`~fewshot_utils.evaluation.equal_halves_ci95`)."""
    p_novel, p_base = halves.mean(0).tolist()
    hw = equal_halves_ci95(p_novel, sizes[0], p_base, sizes[1])
    low, high = max(0.0, both.accuracy - hw), min(1.0, both.accuracy + hw)
    interval = f"over {sizes[0]:,} novel and {sizes[1]:,} base images, halves weighted equally"
    return replace(both, ci95=hw, ci_low=low, ci_high=high, interval=interval)


@torch.no_grad()
def base_accuracy(
    base: FewShotMaps, base_weight: torch.Tensor, query_pool: str, tau: float = 10.0
) -> EvalResult:
    """Accuracy of the stage-1 classifier on held-out base images, computed exactly: every
    image of ``base`` ``[classes, per_class, ...]`` is classified once among the ``classes``
    weights ``base_weight`` (pooled by ``query_pool``, or densely with eq. 14 and ``tau``).
    The result counts images (``unit="images"``) with the Wilson interval."""
    _check_pooling(query_pool)
    b_cls, b_per = base.gap.shape[:2]
    w = F.normalize(base_weight.float().to(base.gap.device), dim=-1)
    q = base.query(query_pool).flatten(0, 1).unsqueeze(0)  # one "task" holding every image
    pred = _scores(q, w, query_pool == "dc", tau)[0].argmax(-1)
    truth = torch.arange(b_cls, device=pred.device).repeat_interleave(b_per)
    return image_accuracy(pred == truth)


@torch.no_grad()
def activation_maps(
    model: nn.Module,
    images: torch.Tensor,
    class_vectors: torch.Tensor,
    targets: torch.Tensor,
    tau: float = 10.0,
    size: int | None = None,
) -> torch.Tensor:
    """Class activation maps (Figure 3): at every location of each image's feature map, the
    probability ``softmax(tau * cos(phi_k(x), v_j))_j`` (eq. 9) of its class ``targets[i]``
    among ``class_vectors`` ``[k, d]`` (stage-1 weights or prototypes); ``[n, h, w]``, or
    upsampled bilinearly to ``size`` x ``size``."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        fmap = model(images.to(device)).float()
    finally:
        model.train(was)
    cos = torch.einsum(
        "bdhw,kd->bkhw",
        F.normalize(fmap, dim=1),
        F.normalize(class_vectors.float().to(device), dim=1),
    )
    prob = (tau * cos).softmax(1)
    cam = prob[torch.arange(len(targets)), targets.to(device)]
    if size is not None:
        cam = F.interpolate(cam[:, None], size=(size, size), mode="bilinear", align_corners=False)[
            :, 0
        ]
    return cam.cpu()


# --------------------------------------------------------------------------- protocol


def stage1_protocol(profile: str) -> dict:
    """Stage-1 miniImageNet settings of a profile, shared by chapters 5 and 6 (so that
    chapter 6 loads the networks chapter 5 trained from the same checkpoints).

    ``full``: the paper (ResNet-12 64-128-256-512, 8000 iterations of batch 200, SGD
    Nesterov, tau from 10), on 500 images of each base class: the other 100 are held out
    for the base-class tests of Table 2. ``cpu``: a quarter of the width and a few hundred
    iterations of batch 64. ``smoke``: a few iterations on a handful of images.
    """
    return column(profile, _STAGE1)


_STAGE1 = {  # smoke, cpu, full
    "widths": ((4, 8, 8, 8), (16, 32, 64, 128), (64, 128, 256, 512)),
    "train_classes": (6, None, None),
    "train_per_class": (12, 500, 500),
    "iterations": (2, 240, 8000),
    "batch_size": (8, 64, 200),
    "chunk": (1, 80, 500),
    "heldout": ((500, 520), (500, 530), (500, 600)),
}


def stage1_config(profile: str, pooling: str, seed: int = 0) -> BatchTrainConfig:
    """The :class:`BatchTrainConfig` of :func:`stage1_protocol` for ``pooling``."""
    p = stage1_protocol(profile)
    return BatchTrainConfig(
        pooling=pooling,
        iterations=p["iterations"],
        batch_size=p["batch_size"],
        iterations_per_chunk=p["chunk"],
        seed=seed,
    )


def fc100_protocol(profile: str) -> dict:
    """Stage-1 FC100 settings of a profile (Table 5), shared by chapters 5 and 6: ``full`` is
    the paper's 12,500 iterations of batch 512 (Adam, tau from 100); ``cpu`` a few hundred
    iterations of batch 64; ``smoke`` a few images per class. ``per_class`` cuts the
    training and test classes (None: all 600 images)."""
    return column(profile, _FC100)


_FC100 = {  # smoke, cpu, full
    "iterations": (2, 300, 12_500),
    "batch_size": (8, 64, 512),
    "per_class": (20, None, None),
}


def fc100_config(profile: str, pooling: str, seed: int = 0) -> BatchTrainConfig:
    """The :class:`BatchTrainConfig` of :func:`fc100_protocol` for ``pooling``."""
    p = fc100_protocol(profile)
    return BatchTrainConfig(
        pooling=pooling,
        iterations=p["iterations"],
        batch_size=p["batch_size"],
        optimiser="adam",
        lr=1e-3,
        tau=100.0,
        seed=seed,
        iterations_per_chunk=max(1, p["iterations"] // 5),
    )
