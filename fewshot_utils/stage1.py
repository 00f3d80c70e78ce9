"""The set-up chapters 5 and 6 share: stage 1's data, the test settings, the stage-1 networks.

Chapter 6 implants into the networks chapter 5 trained. Both must therefore cut miniImageNet
the same way (:func:`load_stage1_data`) and find the networks under the same checkpoint names
(:func:`stage1_network`); one function each keeps the two chapters from drifting apart.
Their records and tables (the book's machinery) are in :mod:`fewshot_utils.report_dense`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import data
from .checkpoints import checkpoint_dir
from .dense import (
    BatchTrainResult,
    fc100_config,
    fc100_protocol,
    stage1_config,
    stage1_protocol,
    train_classifier,
)
from .profiles import column

__all__ = [
    "test_settings",
    "Stage1Data",
    "load_stage1_data",
    "stage1_checkpoint",
    "stage1_network",
    "load_fc100",
]

_CH05 = {  # setting: (smoke, cpu, full); val_*: the validation tasks drawn during training
    "test_classes": (6, None, None),
    "test_per_class": (12, 100, None),
    "shots": ((1, 5), (1, 5, 10), (1, 5, 10)),
    "query": (5, 30, 30),
    "episodes": (20, 2000, 10_000),
    "val_classes": (5, None, None),
    "val_per_class": (10, 40, 100),
    "val_episodes": (10, 300, 600),
    "val_query": (3, 15, 15),
    "seeds": ((0, 1), (0, 1, 2), (0,)),  # training seeds of ResNet-12 GAP and DC
}
_CH06 = {  # the same test images as chapter 5; implanting needs >= 2 shots
    "test_classes": _CH05["test_classes"],
    "test_per_class": _CH05["test_per_class"],
    "query": _CH05["query"],
    "shots": ((2, 5), (5, 10), (5, 10)),
    "episodes": (20, 2000, 5000),
    "implant_tasks": (2, 50, 5000),
    "table3_tasks": (2, 50, 5000),
    "epochs": (2, 50, 50),
}


def test_settings(profile: str, chapter: int) -> dict:
    """The test settings of chapter ``chapter`` (5 or 6) in ``profile``: test images
    (``test_classes``, ``test_per_class``; None: all), shots, queries per class, tasks; for
    chapter 5 the validation tasks drawn during training and the training seeds of ResNet-12
    GAP and DC (their difference over seeds), for chapter 6 the implanted tasks
    (Table 4's and Table 3's) and the implants' epochs. ``full`` is the paper's protocol."""
    table = {5: _CH05, 6: _CH06}.get(chapter)
    if table is None:
        raise ValueError(f"chapter must be 5 or 6, got {chapter!r}")
    return column(profile, table)


@dataclass
class Stage1Data:
    """miniImageNet as chapters 5 and 6 cut it. ``train``: the first ``train_per_class``
    images of each base class (stage 1 trains on them); ``heldout``: base-class images from
    ``protocol["heldout"]`` (never trained on: Table 2's base-class tests); ``val`` (or None)
    and ``test``: novel classes. ``protocol`` is :func:`~fewshot_utils.dense.stage1_protocol`."""

    protocol: dict
    train: torch.Tensor
    heldout: torch.Tensor
    val: torch.Tensor | None
    test: torch.Tensor

    def summary(self) -> str:
        """One line per part: its name, classes and images per class."""
        parts = [("stage-1 training", self.train), ("held-out base", self.heldout)]
        parts += [("validation (novel)", self.val)] if self.val is not None else []
        parts += [("test (novel)", self.test)]
        return "\n".join(
            f"{name:19s} {x.shape[0]:3d} classes x {x.shape[1]:3d} images" for name, x in parts
        )


def load_stage1_data(profile: str, settings: dict, val: bool = False) -> Stage1Data:
    """Load the parts of :class:`Stage1Data` for ``profile``: the base classes of
    :func:`~fewshot_utils.dense.stage1_protocol`, the test (and, with ``val``, validation)
    classes cut as ``settings`` (:func:`test_settings`) says."""
    proto = stage1_protocol(profile)
    limits = {"train": (proto["train_classes"], None)}
    if val:
        limits["val"] = (settings["val_classes"], settings["val_per_class"])
    limits["test"] = (settings["test_classes"], settings["test_per_class"])
    splits = data.load_miniimagenet_subsets(**limits)
    base = splits["train"]
    lo, hi = proto["heldout"]
    if not proto["train_per_class"] <= lo < hi <= base.shape[1]:
        raise ValueError(
            f"held-out images {lo}..{hi} must follow the {proto['train_per_class']} training "
            f"images of each class and lie within its {base.shape[1]} images"
        )
    return Stage1Data(
        protocol=proto,
        train=data.subset(base, None, proto["train_per_class"]),
        heldout=base[:, lo:hi],
        val=splits.get("val"),
        test=splits["test"],
    )


def stage1_checkpoint(stem: str, profile: str, seed: int) -> Path:
    """Where a stage-1 network is kept: ``{stem}_{profile}_seed{seed}.pt`` in the checkpoint
    folder (chapter 5's stems start with ``ch05_``, and chapter 6 loads them)."""
    return checkpoint_dir() / f"{stem}_{profile}_seed{seed}.pt"


def stage1_network(
    network: Callable[[], nn.Module],
    pooling: str,
    stem: str,
    train: torch.Tensor,
    profile: str,
    seed: int = 0,
    retrain: bool = False,
    device: str | torch.device | None = "auto",
    validate: Callable | None = None,
    dataset: str = "miniimagenet",
) -> BatchTrainResult:
    """Stage 1 of ``network()`` with ``pooling`` ("gap" or "dc") on the ``train`` images, with
    :func:`~fewshot_utils.dense.stage1_config` (``dataset="fc100"``:
    :func:`~fewshot_utils.dense.fc100_config`, Table 5): loaded from :func:`stage1_checkpoint`
    when a finished run is there (unless ``retrain``), resumed or trained otherwise. The
    network is built after ``torch.manual_seed(seed)``: the same seed, the same initial
    weights, so that a chapter that trains a missing network gets the one the other trained."""
    configs = {"miniimagenet": stage1_config, "fc100": fc100_config}
    if dataset not in configs:
        raise ValueError(f"dataset must be one of {sorted(configs)}, got {dataset!r}")
    cfg = configs[dataset](profile, pooling, seed)
    torch.manual_seed(seed)
    ckpt = stage1_checkpoint(stem, profile, seed)
    return train_classifier(network(), train, cfg, ckpt, retrain, device, validate)


def load_fc100(profile: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """FC100's training and test classes, cut to ``per_class`` images of
    :func:`~fewshot_utils.dense.fc100_protocol`; None, with the reason printed, where CIFAR-100
    is not available (FC100 is then skipped, as on a machine offline)."""
    try:
        fc = {split: data.load_fc100(split) for split in ("train", "test")}
    except data.DataError as err:
        print(f"FC100 skipped: {err}")
        return None
    per_class = fc100_protocol(profile)["per_class"]
    return data.subset(fc["train"], None, per_class), data.subset(fc["test"], None, per_class)
