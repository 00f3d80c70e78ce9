"""tools/gpu_estimate.py: FLOPs per image from one small training step, scaled to the full
profiles' images, turned into GPU-hours at the assumed throughput."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_estimate  # noqa: E402


class _Conv(nn.Module):
    """One 3x3 convolution, 1 -> 4 channels, no bias: FLOPs known in closed form."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(x.float())


TINY = gpu_estimate.Net("tiny", _Conv, (1, 8, 8))
# forward 2 * 1 * 4 * 9 * 64 multiply-adds-as-two per image; backward the weight gradient, as
# many (the uint8 input needs no gradient)
TINY_FLOPS = 2 * (2 * 1 * 4 * 9 * 8 * 8)


def test_flops_per_image_is_the_closed_form():
    assert gpu_estimate.flops_per_image(TINY) == TINY_FLOPS


def test_estimate_scales_images_by_flops_and_divides_by_the_throughput(monkeypatch):
    monkeypatch.setattr(gpu_estimate, "NETS", {"tiny": TINY})
    monkeypatch.setattr(
        gpu_estimate,
        "JOBS",
        [
            gpu_estimate.Job("9", "a", "tiny", 1e9),
            gpu_estimate.Job("9", "b", "tiny", 2e9),
            gpu_estimate.Job("10", "c", "implants", 5e8),
        ],
    )
    monkeypatch.setattr(gpu_estimate, "implant_flops_per_image_epoch", lambda: 100.0)
    monkeypatch.setattr(gpu_estimate, "implant_cpu_flops_per_s", lambda: 1e6)
    monkeypatch.setattr(gpu_estimate, "cpu_flops_per_s", lambda net, batch: 2e6)
    r = gpu_estimate.estimate(tflops=4.0)
    nine, ten = r["chapters"]["9"], r["chapters"]["10"]
    assert nine["flops"] == 3e9 * TINY_FLOPS
    assert nine["gpu_hours"] == pytest.approx(3e9 * TINY_FLOPS / 4e12 / 3600)
    assert nine["cpu_hours"] == pytest.approx(3e9 * TINY_FLOPS / 2e6 / 3600)
    assert ten["flops"] == 5e10 and ten["cpu_hours"] == pytest.approx(5e10 / 1e6 / 3600)
    table = gpu_estimate.markdown(r)
    assert "GPU-hours at 4 TFLOP/s (estimate)" in table
    assert f"| {nine['gpu_hours']:.1f} |" in table


def test_implant_epoch_flops_leave_out_the_base_pass():
    per_epoch = gpu_estimate.implant_flops_per_image_epoch()
    block, h, labels = gpu_estimate._implant_task()
    counts = {}
    for epochs in (1, 3):
        with torch.utils.flop_counter.FlopCounterMode(display=False) as counter:
            gpu_estimate.implanting.train_implants(
                block, h, labels, 2, gpu_estimate.implanting.ImplantConfig(epochs=epochs)
            )
        counts[epochs] = counter.get_total_flops()
    assert counts[3] - counts[1] == pytest.approx(2 * 4 * per_epoch)  # linear in the epochs
    assert per_epoch > 0
