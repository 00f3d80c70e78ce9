"""fewshot_utils.plots: the data the figures draw (LSED curves, accuracy sweeps) and the
learning curve that starts at the untrained network."""

import math
from types import SimpleNamespace

import matplotlib
import pytest
import torch

from fewshot_utils.distances import lsed
from fewshot_utils.plots import accuracy_sweeps, lsed_curves, with_start

matplotlib.use("Agg")


def test_with_start_prepends_the_fresh_network_at_episode_0():
    history = {
        "episode": [20, 40],
        "train_loss": [1.5, 1.4],
        "train_acc": [0.3, 0.35],
        "val_loss": [1.6, 1.5],
        "val_acc": [0.31, 0.33],
        "val_ci95": [0.01, 0.01],
        "lr": [1e-3, 1e-3],
    }
    out = with_start(history, SimpleNamespace(loss=1.2, accuracy=0.2, ci95=0.02))
    assert out["episode"] == [0, 20, 40] and out["val_acc"] == [0.2, 0.31, 0.33]
    assert out["val_loss"][0] == 1.2 and out["val_ci95"][0] == 0.02
    assert math.isnan(out["train_loss"][0]) and math.isnan(out["train_acc"][0])
    assert out["train_acc"][1:] == history["train_acc"] and history["episode"] == [20, 40]


def test_lsed_curves_draw_lsed_itself():
    fig = lsed_curves({"squared": (0.0, 1.0), "leaky": (4.0, 0.1)}, s=4.0)
    left, right = fig.axes
    t, y = (torch.tensor(a, dtype=torch.float32) for a in left.lines[1].get_data())
    torch.testing.assert_close(y, lsed(t[:, None], torch.zeros(1, 1), 4.0, 0.1)[:, 0])
    d, y2 = (torch.tensor(a, dtype=torch.float32) for a in right.lines[0].get_data())
    torch.testing.assert_close(y2, d, rtol=1e-4, atol=1e-4)  # r = 1: the squared distance
    assert right.get_xscale() == "log" and left.lines[-1].get_xdata()[0] == pytest.approx(2.0)
    matplotlib.pyplot.close(fig)


def test_accuracy_sweeps_in_percent_with_log_axes_on_request():
    sweeps = {
        "s": {0.0: (0.30, 0.01), 4.0: (0.32, 0.02)},
        "r": {0.01: (0.32, 0.02), 1.0: (0.27, 0.01)},
    }
    fig = accuracy_sweeps(sweeps, log_x=["r"])
    ax_s, ax_r = fig.axes
    xs, ys = ax_s.lines[0].get_data()
    assert list(xs) == [0.0, 4.0] and list(ys) == pytest.approx([30.0, 32.0])
    assert ax_r.get_xscale() == "log" and ax_s.get_xscale() == "linear"
    assert ax_s.get_xlabel() == "s" and ax_s.get_ylabel() == "test accuracy (%)"
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="not given"):
        accuracy_sweeps(sweeps, log_x=["t"])
