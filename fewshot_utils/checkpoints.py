"""Checkpoints that resume a training run exactly, shared by every training loop.

A checkpoint is one file holding everything a loop needs to continue as if it had never
stopped: a *signature* (what was trained: the configuration, and for some loops a description
of the network), the loop's own *state* (counters, history, best weights...), the state dicts
of every *stateful* object (networks, optimisers, schedulers, gradient scalers), the states of
the loop's random generators and of torch's global RNGs. :func:`pack` builds it,
:func:`save_atomic` writes it so that a crash never leaves a half-written file, and
:func:`load` checks the signature, restores every object and generator in place and returns
the loop's state. A :class:`Checkpoint` holds the four for one run.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

__all__ = [
    "Stateful",
    "Checkpoint",
    "checkpoint_dir",
    "save_atomic",
    "cpu_copy",
    "pack",
    "load",
    "saved_weights",
    "saved_signature",
    "progress",
]


class Stateful(Protocol):
    """Anything with ``state_dict`` / ``load_state_dict``: a module, optimiser, scheduler or
    gradient scaler."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state_dict: dict) -> Any: ...


@dataclass
class Checkpoint:
    """One training run's checkpoint: the file (None: the run keeps none), the ``signature``
    it must match, and the objects and generators it saves and restores (:func:`pack`)."""

    path: str | os.PathLike | None
    signature: dict
    stateful: dict[str, Stateful | None]
    generators: dict[str, torch.Generator]

    def exists(self) -> bool:
        """True when the file is there to resume or load."""
        return self.path is not None and Path(self.path).exists()

    def restore(self) -> dict:
        """:func:`load` the file: every object and generator restored, the loop's state
        returned."""
        return load(self.path, self.signature, self.stateful, self.generators)

    def save(self, state: dict) -> None:
        """Write ``state`` with everything else atomically (nothing without a path)."""
        if self.path is not None:
            save_atomic(pack(self.signature, state, self.stateful, self.generators), self.path)


def checkpoint_dir() -> Path:
    """``FEWSHOT_CHECKPOINT_DIR``, else ``<data dir>/checkpoints``."""
    from .data import data_dir  # imported here: ``data`` pulls in PIL, training does not need it

    env = os.environ.get("FEWSHOT_CHECKPOINT_DIR")
    return Path(env).expanduser() if env else data_dir() / "checkpoints"


def save_atomic(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``:
    ``path`` is either its old content or the complete new one, never a half-written file,
    and the temporary file is removed whether the write succeeds or fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached, contiguous CPU copy of a module's ``state_dict``: a snapshot that later
    training steps (in place, possibly on the GPU, possibly channels_last) cannot change."""
    return {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for k, v in state_dict.items()
    }


def pack(
    signature: dict,
    state: dict,
    stateful: dict[str, Stateful | None],
    generators: dict[str, torch.Generator],
) -> dict:
    """Everything needed to resume: ``signature`` (compared by :func:`load`), the loop's
    ``state`` (by reference: save it right away), a copy of the state dict of every object of
    ``stateful`` (None entries, absent parts such as an optional optimiser, are kept as None),
    the states of ``generators``, of torch's CPU and CUDA RNGs, and the torch version."""
    return {
        "signature": signature,
        "state": state,
        "stateful": {name: _snapshot(obj) for name, obj in stateful.items()},
        "generators": {name: g.get_state() for name, g in generators.items()},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "torch_version": torch.__version__,
    }


def load(
    path: str | os.PathLike,
    signature: dict,
    stateful: dict[str, Stateful | None],
    generators: dict[str, torch.Generator],
) -> dict:
    """Read the checkpoint at ``path`` (written by ``save_atomic(pack(...))``), check that it
    was trained with ``signature``, restore every object of ``stateful`` (None entries are
    skipped) and every generator of ``generators`` in place, and torch's RNGs; return the
    loop's state. A run resumes on another device in both directions (everything is read to
    the CPU and moved by ``load_state_dict``): a CPU run's gradient scaler, saved disabled and
    empty, starts afresh on CUDA; a CUDA run's scaler state is ignored on the CPU.

    Raises RuntimeError when the file is unreadable (truncated, or not such a checkpoint),
    ValueError when its signature differs (listing the differing keys as ``(saved, now)``) or
    when it holds the weights of another network.
    """
    ck = _read(path)
    if ck["signature"] != signature:
        diff = _differences(ck["signature"], signature)
        raise ValueError(
            f"checkpoint {path} was trained with another configuration (saved, now): {diff}. "
            "Use another checkpoint path, or pass retrain=True to overwrite it."
        )
    saved = ck["stateful"]
    missing = [n for n, obj in stateful.items() if obj is not None and saved.get(n) is None]
    if missing:
        raise ValueError(
            f"checkpoint {path} holds no state for {missing}: it comes from another training "
            "set-up; use another checkpoint path, or pass retrain=True to overwrite it"
        )
    for name, obj in stateful.items():
        if obj is None:
            continue
        if isinstance(obj, nn.Module):
            try:
                obj.load_state_dict(saved[name])
            except RuntimeError as e:  # missing, unexpected or differently shaped tensors
                raise ValueError(
                    f"checkpoint {path} holds weights of another network ({name}: {e}); use "
                    "another checkpoint path, or pass retrain=True to overwrite it"
                ) from e
        elif isinstance(obj, torch.amp.GradScaler):
            _load_scaler(obj, saved[name], path, name)
        else:
            try:
                obj.load_state_dict(saved[name])
            except (RuntimeError, ValueError, KeyError) as e:
                raise ValueError(
                    f"checkpoint {path} holds a state of {name} this run cannot use "
                    f"({type(e).__name__}: {e}); use another checkpoint path, or pass "
                    "retrain=True to overwrite it"
                ) from e
    for name, g in generators.items():
        g.set_state(ck["generators"][name])
    torch.set_rng_state(ck["torch_rng"])
    if ck["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ck["cuda_rng"])
    return ck["state"]


def saved_weights(path: str | os.PathLike, name: str = "model") -> dict:
    """The state dict of the module ``name`` in the checkpoint at ``path``, without checking
    a signature or restoring anything: for reusing a network another chapter trained (its
    last weights; loops that select a best epoch keep those in their state)."""
    return _read(path)["stateful"][name]


def progress(total: int, initial: int = 0, enabled: bool = True, desc: str = "training"):
    """A tqdm progress bar (``tqdm.auto``: a widget in Jupyter, text elsewhere) of ``total``
    steps, starting at ``initial`` (the steps a resumed run has already done); silent when
    not ``enabled``."""
    from tqdm.auto import tqdm  # imported here: tqdm.auto probes for Jupyter widgets

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled)


# --------------------------------------------------------------------------- internals


def _load_scaler(scaler: torch.amp.GradScaler, saved: dict, path, name: str) -> None:
    """Restore a gradient scaler across devices. A run without mixed precision (any CPU run)
    saves a disabled scaler's empty state: resumed on CUDA, where the scaler is enabled, it
    starts from its initial scale (``load_state_dict`` would raise on the empty state). A CUDA
    run's scaler state resumed on the CPU goes to a disabled scaler, which ignores it."""
    if not saved:
        if scaler.is_enabled():
            print(
                f"checkpoint {path}: {name} was saved "
                "without mixed precision (a CPU run); resuming with mixed precision, it starts "
                "from its initial scale"
            )
        return
    scaler.load_state_dict(saved)


_FIELDS = {"signature", "state", "stateful", "generators", "torch_rng", "cuda_rng"}


def _snapshot(obj: Stateful | None) -> dict | None:
    """A state dict that later steps cannot change: modules as :func:`cpu_copy`; optimisers,
    schedulers and scalers deep-copied as they are (their tensors keep device and layout)."""
    if obj is None:
        return None
    if isinstance(obj, nn.Module):
        return cpu_copy(obj.state_dict())
    return copy.deepcopy(obj.state_dict())


def saved_signature(path: str | os.PathLike) -> dict:
    """The configuration the checkpoint at ``path`` was trained with (what :func:`load`
    compares), e.g. to continue a finished run for longer."""
    return _read(path)["signature"]


def _read(path: str | os.PathLike) -> dict:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated file raises several kinds
        raise RuntimeError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); delete it, or pass "
            "retrain=True to start over"
        ) from e
    if not isinstance(ck, dict) or not _FIELDS <= ck.keys():
        raise RuntimeError(
            f"checkpoint {path} is unreadable (not a checkpoint of this version of "
            "fewshot_utils); delete it, or pass retrain=True to start over"
        )
    return ck


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _differences(saved: dict, now: dict, prefix: str = "") -> dict[str, tuple]:
    """``{key: (saved value, current value)}`` of every key whose values differ; nested dicts
    are compared key by key, under dotted keys (``"config.lr"``)."""
    diff = {}
    for k in [*now, *(k for k in saved if k not in now)]:
        a, b = saved.get(k, _ABSENT), now.get(k, _ABSENT)
        if isinstance(a, dict) and isinstance(b, dict):
            diff.update(_differences(a, b, f"{prefix}{k}."))
        elif a != b:
            diff[f"{prefix}{k}"] = (a, b)
    return diff
