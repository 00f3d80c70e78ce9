"""Episodic training of Prototypical Networks, with checkpoints that resume exactly.

One epoch is ``episodes_per_epoch`` training episodes followed by a
validation pass (fixed validation episodes, the same every epoch, so the
curves are comparable). After every epoch the whole state - model,
optimiser, scheduler, episode generator, RNG states, history, best weights -
is written atomically to the checkpoint (:mod:`fewshot_utils.checkpoints`), so
an interrupted run resumes where it stopped and ends with exactly the weights
of an uninterrupted one (on the CPU; on a GPU in deterministic mode only, see
``profiles.set_deterministic``); a finished run is loaded instead of retrained
unless ``retrain=True``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoints
from .checkpoints import cpu_copy
from .distances import protonet_logits, protonet_loss
from .episodes import check_episode, query_labels, sample_episode
from .evaluation import _autocast, embed, evaluate_embeddings
from .profiles import column, resolve_device, time_estimate

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train_protonet",
    "adam",
    "prepare_episodic",
    "place",
    "train_episodes",
    "record_epoch",
    "train_epochs",
    "trainval_config",
    "retrain_on_trainval",
    "measure_episodes_per_s",
    "training_time_estimate",
    "clip_per_tensor_",
    "steps_per_s",
    "sync",
]


@dataclass
class TrainConfig:
    """What to train: episode shapes, schedule, distance, stopping rule.

    Defaults follow Prototypical Networks: Adam 1e-3 halved every 2000
    episodes, 100 episodes per epoch, validation on 5-way episodes with 15
    queries, model selection on validation loss.
    """

    way: int = 60
    shot: int = 1
    query: int = 5
    max_episodes: int = 10_000
    episodes_per_epoch: int = 100
    lr: float = 1e-3
    lr_halve_every: int = 2000
    distance: str = "squared_euclidean"
    distance_kwargs: dict = field(default_factory=dict)
    scale: float = 1.0
    val_way: int = 5
    val_shot: int | None = None  # None: the training shot
    val_query: int = 15
    val_episodes: int = 100
    select_on: str = "loss"  # "loss" (lower is better) or "accuracy"
    patience: int | None = None  # epochs without improvement before stopping
    seed: int = 0
    amp: bool | None = None  # None: on for CUDA
    alpha_lr: float | None = None  # a learned metric scale's own Adam rate (None: lr)

    def __post_init__(self) -> None:
        check_episodic(self)
        if self.alpha_lr is not None and not self.alpha_lr > 0:
            raise ValueError(f"alpha_lr must be > 0 (or None for lr), got {self.alpha_lr}")

    def signature(self) -> dict:
        """The configuration a checkpoint is matched on: every field, less ``alpha_lr`` while
        it is None (so that checkpoints written before the field existed still load)."""
        out = dataclasses.asdict(self)
        if out["alpha_lr"] is None:
            del out["alpha_lr"]
        return out


def adam(model: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """The Prototypical Networks optimiser: Adam at ``cfg.lr``. A learned metric scale (a
    parameter named ``log_alpha``, e.g. :class:`~fewshot_utils.scale.LearnedScale`) gets its
    own group at ``cfg.alpha_lr`` when set: Adam moves a parameter by about its rate per
    step, so at 1e-3 a log-scale could move by only about 0.5 in 500 steps."""
    named = list(model.named_parameters())
    scale = [p for n, p in named if n.split(".")[-1] == "log_alpha"]
    if cfg.alpha_lr is None or not scale:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rest = [p for n, p in named if n.split(".")[-1] != "log_alpha"]
    groups = [{"params": rest}, {"params": scale, "lr": cfg.alpha_lr}]
    return torch.optim.Adam(groups, lr=cfg.lr)


def check_episodic(config) -> None:
    """The checks of an episodic configuration (:class:`TrainConfig`, ``tadam.TadamConfig``):
    a known ``select_on``, and whole epochs of at least one episode."""
    if config.select_on not in ("loss", "accuracy"):
        raise ValueError(f"select_on must be 'loss' or 'accuracy', got {config.select_on!r}")
    if config.episodes_per_epoch < 1 or config.max_episodes < 1:
        raise ValueError("episodes_per_epoch and max_episodes must be >= 1")
    if config.max_episodes % config.episodes_per_epoch:
        raise ValueError(
            f"max_episodes ({config.max_episodes}) must be a multiple of episodes_per_epoch "
            f"({config.episodes_per_epoch}) so that every epoch is whole"
        )


@dataclass
class TrainResult:
    """The model (best validation weights loaded), its history and run facts."""

    model: nn.Module
    history: dict[str, list[float]]
    best_epoch: int
    episodes_done: int
    wall_time_s: float
    resumed: bool
    loaded: bool  # True when a finished checkpoint was loaded instead of training

    @property
    def episodes_per_s(self) -> float:
        """Training throughput, validation excluded."""
        t = sum(self.history["train_seconds"])
        return self.history["episode"][-1] / t if t else float("nan")

    @classmethod
    def from_state(cls, model: nn.Module, state: dict, resumed: bool, loaded: bool) -> TrainResult:
        """The result of an episodic loop's state (the keys of ``train_protonet``'s, which
        ``tadam.train_tadam`` shares)."""
        return cls(
            model=model,
            history=state["history"],
            best_epoch=state["best_epoch"],
            episodes_done=state["episode"],
            wall_time_s=state["wall_time_s"],
            resumed=resumed,
            loaded=loaded,
        )


def train_protonet(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    config: TrainConfig,
    checkpoint: str | os.PathLike | None = None,
    retrain: bool = False,
    device: str | torch.device | None = "auto",
    on_epoch_end: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    extends: str | os.PathLike | None = None,
) -> TrainResult:
    """Train ``model`` on episodes of ``train_data`` (uint8 ``[classes, per_class, ...]``),
    selecting the epoch with the best validation score on ``val_data``.

    With a ``checkpoint`` path: resumes an interrupted run, or loads a
    finished one without training (unless ``retrain``). ``extends``: the checkpoint of a
    shorter run of the same configuration (only ``max_episodes`` smaller); when it exists and
    ``checkpoint`` does not yet, training continues from it instead of starting over,
    which on the CPU gives exactly the weights and history of a run trained this long from
    the start (the same episodes and learning-rate schedule). On CUDA the dataset
    is moved to the GPU once and mixed precision is used; the model runs in
    channels_last memory format. A step leaves its loss and accuracy on the
    device: the host reads them once per epoch, so a GPU step never waits.
    """
    cfg = config
    device, amp, train_data, val_shot = prepare_episodic(model, train_data, val_data, cfg, device)
    optimiser = adam(model, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, cfg.lr_halve_every, gamma=0.5)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    gen = torch.Generator().manual_seed(cfg.seed)
    ckpt = checkpoints.Checkpoint(
        checkpoint,
        cfg.signature(),
        {"model": model, "optimiser": optimiser, "scheduler": scheduler, "scaler": scaler},
        {"episodes": gen},
    )
    labels = query_labels(cfg.way, cfg.query, device)
    learned = isinstance(getattr(model, "log_alpha", None), nn.Parameter)
    keys = (*_HISTORY_KEYS, "alpha") if learned else _HISTORY_KEYS  # a learned scale's path

    def steps(state: dict, n: int, tick: Callable[[], object]) -> list[float]:
        # float64 sums on the device: the same additions as of Python floats, without a
        # synchronising .item() per step
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        for _ in range(n):
            ep = sample_episode(train_data, cfg.way, cfg.shot, cfg.query, gen)
            loss, acc = _train_step(model, ep, labels, cfg, optimiser, scaler, device, amp)
            scheduler.step()
            sums += torch.stack([loss, acc]).double()
            tick()
        return sums.tolist()  # waits for the epoch's last step

    def end_epoch(state: dict, sums: list[float], seconds: float):
        val = evaluate_embeddings(
            embed(model, val_data, device=device, amp=amp),
            cfg.val_way,
            val_shot,
            cfg.val_query,
            cfg.val_episodes,
            cfg.seed + 1,
            cfg.distance,
            cfg.scale,
            **cfg.distance_kwargs,
        )
        record_epoch(
            state,
            cfg.episodes_per_epoch,
            *sums,
            val,
            # every validation pass draws the same episodes: two models' gaps get a paired CI
            val_per_episode=val.per_episode.tolist(),
            lr=scheduler.get_last_lr()[0],
            train_seconds=seconds,
            **({"alpha": model.log_alpha.exp().item()} if learned else {}),
        )
        return val, {"val_acc": f"{val.accuracy:.3f}"}

    return train_episodes(
        model, keys, ckpt, steps, end_epoch, cfg, retrain, on_epoch_end, progress, extends
    )


def prepare_episodic(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    config,
    device: str | torch.device | None,
    channels_last: bool = True,
) -> tuple[torch.device, bool, torch.Tensor, int]:
    """The start of an episodic run of ``config`` (:class:`TrainConfig`,
    ``tadam.TadamConfig``): check that the data holds its training and validation episodes,
    resolve the device and whether mixed precision is used, move ``model`` there (in
    channels_last memory format; only on the CPU unless ``channels_last``) and the training
    images too. Returns the device, the mixed-precision flag, the moved training images and
    the validation shot."""
    val_shot = config.val_shot or config.shot
    check_episode(*train_data.shape[:2], config.way, config.shot, config.query)
    check_episode(*val_data.shape[:2], config.val_way, val_shot, config.val_query)
    device, amp = place(model, config, device, channels_last)
    return device, amp, train_data.to(device), val_shot


def place(
    model: nn.Module, config, device: str | torch.device | None, channels_last: bool = True
) -> tuple[torch.device, bool]:
    """Move ``model`` to the resolved ``device``, in channels_last memory format (only on the
    CPU unless ``channels_last``); returns the device and whether ``config`` (any training
    configuration with ``amp``: None means on for CUDA) uses mixed precision there."""
    device = resolve_device(device)
    model.to(device)
    if channels_last or device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return device, device.type == "cuda" if config.amp is None else config.amp


def train_episodes(
    model: nn.Module,
    history_keys: Sequence[str],
    ckpt: checkpoints.Checkpoint,
    steps: Callable[[dict, int, Callable[[], object]], Any],
    end_epoch: Callable[[dict, Any, float], tuple[Any, dict]],
    config,
    retrain: bool = False,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    extends: str | os.PathLike | None = None,
) -> TrainResult:
    """:func:`train_epochs` of an episodic run: ``config`` (a :class:`TrainConfig` or
    ``tadam.TadamConfig``) gives the episodes, the epochs, the selection and the patience;
    ``history_keys`` the history's lists. Returns its :class:`TrainResult`."""
    state, resumed, loaded = train_epochs(
        model,
        _fresh_state(model, history_keys),
        ckpt,
        steps,
        end_epoch,
        total=config.max_episodes,
        epoch_steps=config.episodes_per_epoch,
        select_on=config.select_on,
        patience=config.patience,
        retrain=retrain,
        extends=extends,
        on_epoch_end=on_epoch_end,
        progress=progress,
    )
    return TrainResult.from_state(model, state, resumed=resumed, loaded=loaded)


def train_epochs(
    model: nn.Module,
    state: dict,
    ckpt: checkpoints.Checkpoint,
    steps: Callable[[dict, int, Callable[[], object]], Any],
    end_epoch: Callable[[dict, Any, float], tuple[Any, dict]],
    *,
    total: int,
    epoch_steps: int,
    counter: str = "episode",
    select_on: str | None = None,
    patience: int | None = None,
    retrain: bool = False,
    extends: str | os.PathLike | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    desc: str = "training episodes",
) -> tuple[dict, bool, bool]:
    """The training loop of every trainer of the package (``train_protonet``,
    ``tadam.train_tadam``, ``dense.train_classifier``): epochs of ``epoch_steps`` steps (the
    last one cut to what remains of ``total``) until ``total`` steps are done, each ended by a
    validation, a checkpoint and ``on_epoch_end(epochs done, history)``.

    The trainer passes the work: ``steps(state, n, tick)`` trains ``n`` steps in train mode,
    calling ``tick()`` after each (the progress bar), and returns the epoch's figures;
    ``end_epoch(state, figures, seconds)`` validates, appends to ``state["history"]`` and
    returns the validation result and the progress bar's postfix. ``state`` is the loop's
    (``state[counter]`` counts the steps done, ``"history"``, ``"finished"``,
    ``"wall_time_s"``): a resumed run's replaces the fresh one, so the callables take it as an
    argument. With ``select_on`` (``"loss"`` or ``"accuracy"``), the weights of the best
    validation epoch are kept in the state (:func:`_fresh_state`) and loaded into ``model`` at
    the end; ``patience`` epochs without improvement stop the run early.

    ``ckpt`` (:class:`checkpoints.Checkpoint`) is written after every epoch: an existing one
    is resumed exactly, or loaded without training when finished, unless ``retrain``;
    ``extends`` continues a shorter finished run (see ``train_protonet``). Returns the final
    state, whether it was resumed, and whether a finished run was loaded.
    """
    resumed = False
    if ckpt.exists() and not retrain:
        state, resumed = ckpt.restore(), True
        if state["finished"]:
            if select_on is not None:
                model.load_state_dict(state["best_model"])
            return state, True, True
    elif extends is not None and Path(extends).exists() and not retrain:
        state, resumed = _continue(extends, ckpt), True
    start = time.perf_counter() - state["wall_time_s"]
    bar = checkpoints.progress(total, state[counter], progress, desc)
    while not state["finished"]:
        model.train()
        t0 = time.perf_counter()
        n = min(epoch_steps, total - state[counter])
        figures = steps(state, n, bar.update)
        seconds = time.perf_counter() - t0
        state[counter] += n
        val, postfix = end_epoch(state, figures, seconds)
        if select_on is not None:
            _update_best(state, model, select_on, val)
            postfix = {**postfix, "best_epoch": state["best_epoch"]}
        bar.set_postfix(postfix)
        state["finished"] = state[counter] >= total or (
            patience is not None and state["bad_epochs"] >= patience
        )
        state["wall_time_s"] = time.perf_counter() - start
        ckpt.save(state)
        if on_epoch_end is not None:
            on_epoch_end(len(state["history"][counter]), state["history"])
    bar.close()
    if select_on is not None:
        model.load_state_dict(state["best_model"])
    return state, resumed, False


def _continue(path, ckpt: checkpoints.Checkpoint) -> dict:
    """Restore the finished shorter run at ``path`` (the same configuration but for a smaller
    ``max_episodes``) to train it on to ``ckpt``'s length; a clear error otherwise."""
    signature = ckpt.signature
    saved = checkpoints.saved_signature(path)
    if saved.get("max_episodes", math.inf) > signature["max_episodes"]:
        raise ValueError(
            f"extends={path} trained {saved.get('max_episodes')} episodes, not fewer than the "
            f"{signature['max_episodes']} asked for: load it directly instead"
        )
    state = checkpoints.load(
        path,
        {**signature, "max_episodes": saved["max_episodes"]},
        ckpt.stateful,
        ckpt.generators,
    )
    state["finished"] = False
    return state


def trainval_config(config: TrainConfig, selected: TrainResult) -> TrainConfig:
    """The configuration of the train + val retraining of :func:`retrain_on_trainval`:
    ``config`` for the episodes at ``selected``'s best epoch, as one epoch (the final weights
    are kept) and without early stopping."""
    if not 1 <= selected.best_epoch <= len(selected.history["episode"]):
        raise ValueError(
            f"the selected run has no best epoch to retrain for (best_epoch "
            f"{selected.best_epoch}, {len(selected.history['episode'])} epochs recorded)"
        )
    best = int(selected.history["episode"][selected.best_epoch - 1])
    return dataclasses.replace(config, max_episodes=best, episodes_per_epoch=best, patience=None)


def retrain_on_trainval(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    selected: TrainResult,
    config: TrainConfig,
    checkpoint: str | os.PathLike | None = None,
    retrain: bool = False,
    device: str | torch.device | None = "auto",
    progress: bool = True,
) -> TrainResult:
    """The last step of the Prototypical Networks protocol (``protocols.md``): after model
    selection on validation, train ``model`` (freshly initialised, as the selected run was)
    on the training and validation classes together, ``torch.cat([train_data, val_data])``,
    for the number of episodes at the best epoch of ``selected`` (the run of ``config`` on
    ``train_data``), and keep its final weights: no classes are left to choose an epoch with.

    The run is :func:`trainval_config`: ``config`` with ``max_episodes`` set to those
    episodes, as one epoch (so the weights kept are the last ones) and no early stopping; the
    same seed, learning-rate schedule and episode shapes. Its single validation pass, on
    ``val_data``, has seen those classes in training and means nothing. Checkpointed like
    :func:`train_protonet`.
    """
    cfg = trainval_config(config, selected)
    if train_data.shape[1:] != val_data.shape[1:]:
        raise ValueError(
            f"train and val images differ in shape: {tuple(train_data.shape[1:])} vs "
            f"{tuple(val_data.shape[1:])}"
        )
    trainval = torch.cat([train_data, val_data])
    return train_protonet(
        model, trainval, val_data, cfg, checkpoint, retrain, device, progress=progress
    )


def measure_episodes_per_s(
    model: nn.Module,
    train_data: torch.Tensor,
    config: TrainConfig,
    episodes: int = 5,
    device: str | torch.device | None = "auto",
) -> float:
    """Training episodes per second of ``config`` on this machine, measured on a copy of
    ``model`` (the model itself is untouched) after one warm-up episode; multiply by the
    planned episodes to predict a run's duration before starting it."""
    cfg = config
    probe = copy.deepcopy(model)
    device, amp = place(probe, cfg, device)
    data = train_data.to(device)
    optimiser = adam(probe, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    gen = torch.Generator().manual_seed(cfg.seed)
    labels = query_labels(cfg.way, cfg.query, device)

    def step() -> None:
        ep = sample_episode(data, cfg.way, cfg.shot, cfg.query, gen)
        _train_step(probe, ep, labels, cfg, optimiser, scaler, device, amp)

    return steps_per_s(step, episodes, device)


def training_time_estimate(
    model: nn.Module,
    train_data: torch.Tensor,
    config: TrainConfig,
    runs: int,
    device: str | torch.device | None = "auto",
    elapsed_s: float = 0.0,
    not_estimated: str = "",
    episodes: int = 3,
) -> tuple[float, str]:
    """What a chapter prints before it trains ``runs`` models of ``config``: the training
    speed measured on a copy of ``model`` (:func:`measure_episodes_per_s`, ``episodes``
    after a warm-up), and :func:`~fewshot_utils.profiles.time_estimate`'s text for ``runs``
    times ``config.max_episodes`` episodes at that speed, an upper bound (early stopping may
    end a run sooner). Returns the rate (episodes per second) and the text."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    rate = measure_episodes_per_s(model, train_data, config, episodes, device)
    shape = f"{config.way}-way {config.shot}-shot {config.query}-query"
    part = {f"training {runs} models (at most)": runs * config.max_episodes / rate}
    text = time_estimate(part, resolve_device(device), elapsed_s, not_estimated)
    return rate, f"{shape} episodes: {rate:.2f} training episodes/s\n{text}"


def steps_per_s(step: Callable[[], object], steps: int, device: torch.device) -> float:
    """Calls of ``step`` per second over ``steps`` calls after one warm-up call (which pays
    for first-call costs), waiting for the GPU work they queue before reading the clock."""
    step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)  # the queued steps count too
    return steps / (time.perf_counter() - t0)


def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a GPU); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def clip_per_tensor_(parameters, max_norm: float) -> None:
    """Scale each gradient whose L2 norm exceeds ``max_norm`` down to it, tensor by tensor
    (TF-slim's ``clip_gradient_norms``, which TADAM uses): the same values as
    ``clip_grad_norm_([p], max_norm)`` for every ``p``, in two fused ``foreach`` kernels
    instead of a few kernels per tensor."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    norms = torch._foreach_norm(grads, 2.0)
    coefs = [torch.clamp(max_norm / (n + 1e-6), max=1.0) for n in norms]
    torch._foreach_mul_(grads, coefs)


# --------------------------------------------------------------------------- internals


def _train_step(model, ep, labels, cfg, optimiser, scaler, device, amp):
    """One optimiser step on one episode; returns its loss and accuracy as 0-d tensors on the
    device (detached), which the caller reads when it needs them."""
    with _autocast(device, amp):
        emb = model(torch.cat([ep.support.flatten(0, 1), ep.query.flatten(0, 1)]))
    emb = emb.float()  # distances in float32: squared distances overflow float16
    n_support = cfg.way * cfg.shot
    protos = emb[:n_support].view(cfg.way, cfg.shot, -1).mean(1)
    logits = protonet_logits(
        emb[n_support:], protos, cfg.distance, cfg.scale, **cfg.distance_kwargs
    )
    loss, acc = protonet_loss(logits, labels)
    optimiser.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimiser)
    scaler.update()
    return loss.detach(), acc.detach()


EPISODIC_KEYS = ("episode", "train_loss", "train_acc", "val_loss", "val_acc", "val_ci95", "lr")
"""The history lists every episodic run records per epoch (``tadam.train_tadam`` adds its own)."""
_HISTORY_KEYS = (*EPISODIC_KEYS, "train_seconds", "val_per_episode")


def _fresh_state(model: nn.Module, history_keys: Sequence[str] = _HISTORY_KEYS) -> dict:
    """The state of an episodic loop before its first episode (``train_protonet``'s, and
    ``tadam.train_tadam``'s with its longer history)."""
    return {
        "episode": 0,
        "history": {k: [] for k in history_keys},
        "best_model": cpu_copy(model.state_dict()),
        "best_score": None,
        "best_epoch": 0,
        "bad_epochs": 0,
        "finished": False,
        "wall_time_s": 0.0,
    }


def record_epoch(state: dict, n: int, loss_sum: float, acc_sum: float, val, **more) -> None:
    """Append an episodic epoch to ``state["history"]``: the episodes done, the mean training
    loss and accuracy of its ``n`` episodes (from their sums), the validation loss, accuracy
    and interval of ``val``, then ``more`` (history key: value)."""
    h = state["history"]
    h["episode"].append(state["episode"])
    h["train_loss"].append(loss_sum / n)
    h["train_acc"].append(acc_sum / n)
    h["val_loss"].append(val.loss)
    h["val_acc"].append(val.accuracy)
    h["val_ci95"].append(val.ci95)
    for key, value in more.items():
        h[key].append(value)


def _update_best(state: dict, model: nn.Module, select_on: str, val) -> None:
    """Keep the weights of the best validation epoch (``select_on``: ``"loss"``, lower is
    better, or ``"accuracy"``) and count the epochs since, for early stopping."""
    score = val.loss if select_on == "loss" else -val.accuracy
    if state["best_score"] is None or score < state["best_score"]:
        state["best_score"] = score
        state["best_epoch"] = len(state["history"]["episode"])
        state["best_model"] = cpu_copy(model.state_dict())
        state["bad_epochs"] = 0
    else:
        state["bad_epochs"] += 1


LSED_MINIIMAGENET = {"s": 4.0, "r": 0.01}
"""The LSED paper's setting on miniImageNet."""


def miniimagenet_protocol(profile: str) -> dict:
    """Chapter 4's Prototypical Network settings on miniImageNet for ``profile``, shared by the
    chapters that train the same models (so that they share checkpoints): data cuts, training
    episode shapes per trained shot (``runs``: shot -> (way, shot, query)), length, validation,
    test episodes, training seeds, and the length of the long run (``long_episodes``)."""
    return column(profile, _MINIIMAGENET)


_MINIIMAGENET = {  # smoke, cpu, full
    "train_classes": (8, None, None),
    "per_class": (40, None, None),
    "runs": ({1: (5, 1, 5)}, {1: (5, 1, 5)}, {1: (30, 1, 15), 5: (20, 5, 15)}),
    "max_episodes": (6, 500, 60_000),
    "episodes_per_epoch": (3, 100, 100),
    "val_per_class": (30, 100, None),
    "val_episodes": (10, 300, 600),
    "patience": (None, None, 200),
    "test_per_class": (40, 300, None),
    "test_episodes": (50, 10_000, 10_000),
    "seeds": ((0, 1), (0, 1, 2), (0,)),
    "long_episodes": (9, 1000, None),
}


def miniimagenet_config(
    protocol: dict,
    train_shot: int,
    distance: str,
    seed: int = 0,
    episodes: int | None = None,
    **overrides,
) -> TrainConfig:
    """The :class:`TrainConfig` of one model of :func:`miniimagenet_protocol`: ``seed`` draws
    its initial weights and episodes, ``episodes`` overrides the length (the long run), and
    ``overrides`` set other fields (e.g. a fixed metric ``scale``)."""
    way, shot, query = protocol["runs"][train_shot]
    kwargs = LSED_MINIIMAGENET if distance == "lsed" else {}
    return TrainConfig(
        way=way,
        shot=shot,
        query=query,
        max_episodes=episodes or protocol["max_episodes"],
        episodes_per_epoch=protocol["episodes_per_epoch"],
        distance=distance,
        distance_kwargs=dict(kwargs),
        val_way=5,
        val_query=15,
        val_episodes=protocol["val_episodes"],
        patience=protocol["patience"],
        seed=seed,
        **overrides,
    )
