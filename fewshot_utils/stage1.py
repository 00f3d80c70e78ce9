"""The set-up chapters 5 and 6 share: stage 1's data, the test settings, the stage-1 networks.

Chapter 6 implants into the networks chapter 5 trained. Both must therefore cut miniImageNet
the same way (:func:`load_stage1_data`) and find the networks under the same checkpoint names
(:func:`stage1_network`); one function each keeps the two chapters from drifting apart.

Chapter 5's records name their method (:func:`method_name`), the published cells they
reproduce (:func:`paper_cells`, ids of :func:`cell_id`) and their configuration
(:func:`record_config`) with the functions at the end of this module.
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
from .paper_numbers import existing
from .profiles import column

__all__ = [
    "test_settings",
    "Stage1Data",
    "load_stage1_data",
    "stage1_checkpoint",
    "stage1_network",
    "load_fc100",
    "LIFCHITZ",
    "NET_ROW",
    "TABLE1_TEST",
    "TABLE4_TEST",
    "cell_id",
    "method_name",
    "paper_cells",
    "record_config",
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


# --------------------------------------------------------------------------- chapter 5's records

LIFCHITZ = "lifchitz2019dense"  # the paper's key in fewshot_utils.paper_numbers
NET_ROW = {"c128f": "c128f", "resnet12": "resnet-12"}  # the network as Table 1 names its rows
# (support, query) pooling with which each table tests a network trained with GAP or DC:
TABLE1_TEST = {"gap": ("gap", "gap"), "dc": ("gmp", "gmp")}  # Table 1: DC tested with GMP
TABLE4_TEST = {"gap": ("gap", "gap"), "dc": ("gap", "dc")}  # Tables 4 and 5: DC queries
KINDS = ("novel", "base", "both")  # Table 2's classes


def cell_id(cell: str, shot: int, dataset: str = "miniimagenet") -> str:
    """The id of Lifchitz et al.'s published 5-way ``shot``-shot cell ``cell`` of
    :mod:`fewshot_utils.paper_numbers`, e.g. ``cell_id("table-4/dc", 5)``."""
    return f"{LIFCHITZ}/{cell}/{dataset}/5w{shot}s"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def method_name(net: str, pooling: str, combo: tuple[str, str], kind: str = "novel") -> str:
    """The ``method`` of a chapter-5 record: network, stage-1 pooling, then the support and
    query pooling of the test (``combo``); base- and both-classes results (Table 2) say so."""
    _check_kind(kind)
    name = f"{net}-{pooling}-support-{combo[0]}-query-{combo[1]}"
    return name if kind == "novel" else f"{name}-{kind}-classes"


def paper_cells(
    net: str, pooling: str, shot: int, combo: tuple[str, str], kind: str = "novel"
) -> list[str]:
    """Ids of the published miniImageNet cells that the result of network ``net`` trained with
    ``pooling``, tested ``combo`` on ``kind`` classes at ``shot`` shots, reproduces: Table 1
    (novel classes, tested as :data:`TABLE1_TEST`), Table 2 (ResNet-12, every combination,
    5-shot only) and Table 4 (ResNet-12, tested as :data:`TABLE4_TEST`). Only cells the paper
    prints are returned."""
    _check_kind(kind)
    sp, qp = combo
    ids = []
    if kind == "novel" and combo == TABLE1_TEST[pooling]:
        ids.append(f"table-1/{NET_ROW.get(net, net)}-{pooling}")
    if net == "resnet12":
        ids.append(f"table-2/{pooling}-{kind}-classes/test-{sp}-{qp}")
        if kind == "novel" and combo == TABLE4_TEST[pooling]:
            ids.append(f"table-4/{pooling}")
    return existing(cell_id(i, shot) for i in ids)


def record_config(data: Stage1Data, profile: str, net: str, pooling: str, seed: int = 0) -> dict:
    """The ``config`` of a chapter-5 miniImageNet record: :func:`stage1_config`'s fields, the
    network and its widths, and how many images per class ``data`` trains on, tests on (novel)
    and holds out (base)."""
    return {
        **stage1_config(profile, pooling, seed).__dict__,
        "network": net,
        "widths": list(data.protocol["widths"]) if net == "resnet12" else [64, 64, 128, 128],
        "train_per_class": data.train.shape[1],
        "test_per_class": data.test.shape[1],
        "heldout_base_per_class": data.heldout.shape[1],
    }
