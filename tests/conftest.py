"""Shared fixtures: an isolated offline data directory, and the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The decoded caches `python -m fewshot_utils.data prepare` writes, relative to the data dir.
REAL_CACHES = (
    "omniglot/omniglot_28.npy",
    "miniimagenet/train_84.npy",
    "miniimagenet/val_84.npy",
    "miniimagenet/test_84.npy",
)


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    """An empty data directory (``FEWSHOT_DATA_DIR``), no mirror, and no network: any
    torchvision download raises ``OSError``. Returns the directory (not yet created)."""
    import torchvision.datasets.utils as tv_utils

    def no_network(*args, **kwargs):
        raise OSError("network access is disabled in the tests")

    home = tmp_path / "data"
    monkeypatch.setenv("FEWSHOT_DATA_DIR", str(home))
    monkeypatch.delenv("FEWSHOT_DATA_MIRROR", raising=False)
    monkeypatch.setattr(tv_utils, "download_url", no_network)
    return home


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The data directory holding the real datasets; skips the test unless every decoded
    cache exists there or ``FEWSHOT_DATA_MIRROR`` is set (then the first use decodes)."""
    from fewshot_utils.data import data_dir

    root = data_dir()
    if all((root / c).exists() for c in REAL_CACHES) or os.environ.get("FEWSHOT_DATA_MIRROR"):
        return root
    pytest.skip(f"real data not available: no caches in {root} and FEWSHOT_DATA_MIRROR unset")


class Interrupted(Exception):
    """Raised by the callback of :func:`interrupted` to cut a training run short."""


@pytest.fixture
def interrupted():
    """``interrupted(train, epochs, *args, **kwargs)``: ``train(*args, **kwargs)`` cut after
    its ``epochs``-th epoch by an ``on_epoch_end`` callback (what an interrupted run leaves in
    its checkpoint); fails unless the run reached that epoch."""

    def run(train, epochs: int, *args, **kwargs) -> None:
        def stop(epoch: int, history: dict) -> None:
            if epoch == epochs:
                raise Interrupted

        with pytest.raises(Interrupted):
            train(*args, on_epoch_end=stop, **kwargs)

    return run


@pytest.fixture
def assert_same_run():
    """``assert_same_run(a, b)``: two training results with the same history (wall-clock
    seconds aside) and ``torch.equal`` weights, as an uninterrupted run and a resumed one."""
    import torch

    def check(a, b) -> None:
        timing = {"train_seconds"}
        assert {k: v for k, v in a.history.items() if k not in timing} == {
            k: v for k, v in b.history.items() if k not in timing
        }
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    return check
