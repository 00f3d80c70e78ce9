"""Run profiles: how much work a notebook does.

- ``smoke``: seconds, tiny subsets; checks that everything runs (CI). Never a result.
- ``cpu``: minutes on a laptop, real data, real but reduced training.
- ``full``: the papers' protocol, on a GPU.
- ``auto``: ``full`` when CUDA is available, else ``cpu``.

The profile comes from the notebook's papermill parameter ``PROFILE`` when it
is set, else from the environment variable ``FEWSHOT_PROFILE``, else ``auto``.
:func:`start` is every chapter's set-up: profile, device, seed, provenance line, clock, and
cuDNN's mode. A run resumed from a checkpoint ends with exactly the weights of an
uninterrupted one on the CPU; on a GPU only in deterministic mode (``FEWSHOT_DETERMINISTIC=1``
or ``start(..., deterministic=True)``), since cuDNN's fastest kernels are not deterministic.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

__all__ = [
    "PROFILES",
    "resolve_profile",
    "pick",
    "column",
    "resolve_device",
    "Session",
    "set_deterministic",
    "start",
    "COLAB_SESSION_HOURS",
    "format_duration",
    "time_estimate",
    "fastest_threads",
    "exercises_on",
]

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


def column(profile: str, table: dict[str, tuple]) -> dict:
    """The settings of ``profile`` from ``table`` (``{name: (smoke, cpu, full)}``): one line per
    setting shows how it grows from the smoke test to the paper's protocol."""
    bad = [name for name, values in table.items() if len(values) != len(PROFILES)]
    if bad:
        raise ValueError(f"every setting needs one value per profile {PROFILES}; not {bad}")
    i = PROFILES.index(pick(profile, smoke="smoke", cpu="cpu", full="full"))
    return {name: values[i] for name, values in table.items()}


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


@dataclass(frozen=True)
class Session:
    """What a notebook runs with, for its records' provenance, and when it started, for the
    wall time it prints at the end."""

    profile: str  # "smoke", "cpu" or "full", resolved
    device: torch.device
    seed: int
    started: float  # time.perf_counter() when start() was called
    deterministic: bool = False  # deterministic kernels (cuDNN, cuBLAS), see set_deterministic

    def elapsed(self) -> float:
        """Wall time since :func:`start`, in seconds."""
        return time.perf_counter() - self.started


def set_deterministic(deterministic: bool) -> None:
    """Deterministic kernels (``True``: the same seed gives the same weights on a GPU too, and
    a resumed run continues exactly; slower) or the fastest (``False``: cuDNN benchmarks its
    convolution algorithms for each shape, ``cudnn.benchmark``). CPU results are the same
    either way."""
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; read when CUDA starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: an operation without a deterministic kernel warns instead of stopping a run
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def start(
    profile: str | None,
    seed: int,
    device: str | torch.device | None = "auto",
    deterministic: bool | None = None,
) -> Session:
    """A chapter's set-up, the same in every chapter so that every run is comparable.

    Starts the clock, resolves the profile (:func:`resolve_profile`) and the device
    (:func:`resolve_device`), seeds torch's global generator with ``seed`` (and nothing
    else: the chapter's random draws start from there) and prints the provenance line
    ``profile ... | device ... | torch ...``, followed by the GPU's name on CUDA and whether
    its kernels are deterministic (:func:`set_deterministic`; ``deterministic`` None reads
    ``FEWSHOT_DETERMINISTIC``, default off: the fastest). An unknown profile raises
    ``ValueError`` before anything is seeded or printed.
    """
    started = time.perf_counter()
    resolved = resolve_profile(profile)
    dev = resolve_device(device)
    if deterministic is None:
        deterministic = os.environ.get("FEWSHOT_DETERMINISTIC", "0") == "1"
    set_deterministic(deterministic)
    torch.manual_seed(seed)
    print(f"profile {resolved} | device {dev} | torch {torch.__version__}")
    if dev.type == "cuda":
        print(torch.cuda.get_device_name(dev))
        print(
            "deterministic kernels: a resumed run continues exactly"
            if deterministic
            else "fastest cuDNN kernels, not deterministic: a run resumed from a checkpoint "
            "differs slightly from an uninterrupted one (FEWSHOT_DETERMINISTIC=1 to make it exact)"
        )
    return Session(resolved, dev, seed, started, deterministic)


# A free Colab runtime lasts at most about 12 hours, and disconnects sooner when left idle.
COLAB_SESSION_HOURS = 12.0


def format_duration(seconds: float) -> str:
    """``seconds`` in the unit a reader plans with: "40 s", "12.5 min" or "3.2 h"."""
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"a duration must be a non-negative number of seconds, not {seconds}")
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def time_estimate(
    parts: dict[str, float],
    device: str | torch.device,
    elapsed_s: float = 0.0,
    not_estimated: str = "",
    limit_hours: float = COLAB_SESSION_HOURS,
) -> str:
    """What a chapter prints before it trains: each estimated part (``parts``: name ->
    seconds, from the chapter's warmed-up, synchronised measurement on ``device``), the total
    for the chapter (``elapsed_s`` already spent plus the parts), and a warning when that total
    exceeds a free Colab session (``limit_hours``), so that a reader does not start a run that
    the runtime will cut off. ``not_estimated`` names what comes on top (then the total is a
    lower bound, said as "at least"); the warning holds either way."""
    if not parts:
        raise ValueError("time_estimate needs at least one estimated part")
    total = elapsed_s + sum(parts.values())
    lines = [f"expected on {torch.device(device)}, measured on this machine:"]
    lines += [f"  {name}: {format_duration(s)}" for name, s in parts.items()]
    bound = "at least " if not_estimated else "about "
    lines.append(
        f"  the whole chapter: {bound}{format_duration(total)} "
        f"({format_duration(elapsed_s)} so far"
        + (f"; not estimated: {not_estimated})" if not_estimated else ")")
    )
    if total > limit_hours * 3600:
        lines.append(
            f"WARNING: this is more than a free Colab session (about {limit_hours:.0f} hours, "
            "and an idle runtime disconnects sooner). Set DRIVE = True in the set-up cell so "
            "that the checkpoints survive a disconnect, and run the chapter again after one: "
            "the training resumes from its last checkpoint."
        )
    return "\n".join(lines)


def fastest_threads(probe: Callable[[], float], device: str | torch.device) -> dict[int, float]:
    """On a CPU, time ``probe()`` (a rate: higher is faster) with all of torch's threads and
    with one, and keep the faster setting: on a CPU that other work keeps busy, one thread
    can win. Returns ``{threads: rate}``; ``{}`` (nothing changed) on a GPU or when torch
    already uses one thread.

    The choice is part of the result, not only of the speed: the thread count changes the
    rounding of a CPU run, so a network trained with one thread ends slightly elsewhere than
    one trained with two. Records name the count (``threads``, see
    :func:`fewshot_utils.results.make_record`); with ``OMP_NUM_THREADS=1`` there is nothing
    to choose."""
    if torch.device(device).type != "cpu" or torch.get_num_threads() == 1:
        return {}
    rates = {}
    for n in (torch.get_num_threads(), 1):
        torch.set_num_threads(n)
        rates[n] = probe()
    torch.set_num_threads(max(rates, key=rates.get))
    return rates


def exercises_on(flag: bool | None, profile: str) -> bool:
    """Whether a chapter runs its quick exercise cells: the notebook's ``EXERCISES`` parameter
    when set, else ``FEWSHOT_EXERCISES`` (``1``/``0``), else only in ``smoke``, where the tests
    execute them. A reader turns them on with ``EXERCISES = True``; a ``cpu`` or ``full``
    build leaves them off, so they add nothing to the book's run time."""
    if flag is not None:
        return bool(flag)
    env = os.environ.get("FEWSHOT_EXERCISES", "").strip()
    if env in ("0", "1"):
        return env == "1"
    if env:
        raise ValueError(f"FEWSHOT_EXERCISES must be 0 or 1, got {env!r}")
    return profile == "smoke"
