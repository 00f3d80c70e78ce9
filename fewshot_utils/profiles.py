"""Run profiles: how much work a notebook does.

- ``smoke``: seconds, tiny subsets; checks that everything runs (CI). Never a result.
- ``cpu``: minutes on a laptop, real data, real but reduced training.
- ``full``: the papers' protocol, on a GPU.
- ``auto``: ``full`` when CUDA is available, else ``cpu``.

The profile comes from the notebook's papermill parameter ``PROFILE`` when it
is set, else from the environment variable ``FEWSHOT_PROFILE``, else ``auto``.
"""

from __future__ import annotations

import os
from typing import TypeVar

import torch

__all__ = ["PROFILES", "resolve_profile", "pick", "resolve_device"]

PROFILES = ("smoke", "cpu", "full")
T = TypeVar("T")


def resolve_profile(profile: str | None = None) -> str:
    """``profile`` (papermill parameter) > ``FEWSHOT_PROFILE`` > ``auto``, resolved to one of
    ``smoke``, ``cpu``, ``full``."""
    chosen = profile or os.environ.get("FEWSHOT_PROFILE") or "auto"
    chosen = chosen.strip().lower()
    if chosen == "auto":
        return "full" if torch.cuda.is_available() else "cpu"
    if chosen not in PROFILES:
        raise ValueError(
            f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)} or auto "
            "(set PROFILE in the notebook's parameters cell or FEWSHOT_PROFILE in the environment)"
        )
    return chosen


def pick(profile: str, **by_profile: T) -> T:
    """The value for ``profile`` among keyword arguments ``smoke=..., cpu=..., full=...``."""
    missing = [p for p in PROFILES if p not in by_profile]
    if missing:
        raise ValueError(f"pick() needs a value for every profile; missing {missing}")
    if profile not in by_profile:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return by_profile[profile]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU. Asking for CUDA without it falls back to
    the CPU with a warning instead of failing half-way through a notebook."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        import warnings

        warnings.warn("CUDA was requested but is not available; running on the CPU", stacklevel=2)
        return torch.device("cpu")
    return device
