"""Estimated GPU-hours of each training chapter's `full` profile, from FLOP counts.

For every network a chapter trains, ``torch.utils.flop_counter.FlopCounterMode`` counts the
floating-point operations of one training step's forward and backward pass on a batch of two
images (the convolutions' FLOPs grow linearly with the batch, so a step of ``n`` images costs
``n / 2`` times as much; two images, not one, because batch normalisation in training mode
needs more than one). That per-image cost times the images the chapter's `full` profile pushes
through the network (steps x images per step, from the chapters' `full` settings, copied
below) gives the chapter's training FLOPs; divided by an assumed GPU throughput, its
GPU-hours. What is not counted: the distances, softmax and classifier heads (small next to
the convolutions), the optimiser's updates, validation and test passes (forward only), data
movement, and Python overheads. Maximum episode counts are used where early stopping may end
a run sooner. So these are estimates, to be replaced by measured times
(``tools/gpu_check.py``) once a GPU has run the chapters.

For reference the script also measures this machine's CPU: a warmed-up training step of each
network on a small batch, timed, gives the CPU's rate in FLOP/s and the hours the same work
would take on it.

    python tools/gpu_estimate.py                 # the table, as in the README
    python tools/gpu_estimate.py --tflops 20     # another assumed GPU throughput
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fewshot_utils import implanting, tadam  # noqa: E402
from fewshot_utils.models import C128F, ResNet12, conv4_for  # noqa: E402

# Colab's free GPU is an NVIDIA T4: 65 TFLOP/s peak in fp16 on its tensor cores. Small
# convolutional networks reach a fraction of a peak; we assume 8 TFLOP/s sustained in mixed
# precision, about an eighth of it.
ASSUMED_TFLOPS = 8.0
RESNET12 = (64, 128, 256, 512)


@dataclass(frozen=True)
class Net:
    """A network a chapter trains, and the shape of one input image."""

    name: str
    build: Callable[[], nn.Module]
    image: tuple[int, int, int]  # channels, height, width


NETS = {
    n.name: n
    for n in [
        Net("Conv-4 Omniglot 576-d", lambda: conv4_for("omniglot", last_pool=False), (1, 28, 28)),
        Net("Conv-4 miniImageNet", lambda: conv4_for("miniimagenet"), (3, 84, 84)),
        Net("C128F", C128F, (3, 84, 84)),
        Net("ResNet-12", lambda: ResNet12(RESNET12), (3, 84, 84)),
        Net("ResNet-12 wide", lambda: ResNet12((*RESNET12[:-1], RESNET12[-1] + 16)), (3, 84, 84)),
        Net("ResNet-12 FC100", lambda: ResNet12(RESNET12), (3, 32, 32)),
    ]
}


@dataclass(frozen=True)
class Job:
    """Part of a chapter's `full` training: ``images`` images through ``net``, forward and
    backward, in all (steps x images per step x models)."""

    chapter: str
    what: str
    net: str  # a key of NETS, or "implants" (chapter 6's per-task training)
    images: float


def _protonet(way: int, shot: int, query: int) -> int:
    return way * (shot + query)


_TADAM_EPISODES = 30_000  # chapter 7, full: 30,000 episodes of 5-way 5-shot, 6 queries a class
_TADAM_AUX = tadam.expected_aux_steps(_TADAM_EPISODES) * 64  # auxiliary images (batch 64)
_TADAM_STEP = _protonet(5, 5, 6)
_IMPLANT_EPOCHS = 50

# Each chapter's `full` settings (the notebooks' `pick(..., full=...)`), as images.
JOBS = [
    # chapter 2: Figure 8's 13 models (7 values of s, 7 of r, (4, 0.01) shared), 30-way 1-shot
    # 15-query, at most 60,000 episodes each, less the two it shares with chapter 4 (squared
    # Euclidean and LSED s = 4, r = 0.01); the gradient captures (100 steps) are left out
    Job(
        "2",
        "11 models x 60,000 episodes (2 more shared with chapter 4)",
        "Conv-4 miniImageNet",
        11 * 60_000 * _protonet(30, 1, 15),
    ),
    # chapter 3: two distances x (1-shot, 5-shot), 60-way with 5 queries, at most 1,000,000
    # episodes each (early stopping, patience 200 epochs of 100, ends them much sooner)
    Job(
        "3",
        "2 x 1-shot, at most 1,000,000 episodes",
        "Conv-4 Omniglot 576-d",
        2 * 1_000_000 * _protonet(60, 1, 5),
    ),
    Job(
        "3",
        "2 x 5-shot, at most 1,000,000 episodes",
        "Conv-4 Omniglot 576-d",
        2 * 1_000_000 * _protonet(60, 5, 5),
    ),
    # then each of the four retrained on train + val for its best number of episodes (the
    # protocol's last step), at most as many again
    Job(
        "3",
        "the 4 retrained on train + val, at most as long",
        "Conv-4 Omniglot 576-d",
        2 * 1_000_000 * (_protonet(60, 1, 5) + _protonet(60, 5, 5)),
    ),
    # chapter 4: two distances x (30-way 1-shot, 20-way 5-shot), 15 queries, 60,000 episodes
    Job(
        "4",
        "2 x 30-way 1-shot, 60,000 episodes",
        "Conv-4 miniImageNet",
        2 * 60_000 * _protonet(30, 1, 15),
    ),
    Job(
        "4",
        "2 x 20-way 5-shot, 60,000 episodes",
        "Conv-4 miniImageNet",
        2 * 60_000 * _protonet(20, 5, 15),
    ),
    # chapter 4b: fixed alpha, learned alpha and a small last-BN gamma, one seed in full, 30-way
    # 1-shot, 60,000 episodes (squared Euclidean and LSED are chapter 4's models)
    Job(
        "4b",
        "3 models x 60,000 episodes (2 more shared with chapter 4)",
        "Conv-4 miniImageNet",
        3 * 60_000 * _protonet(30, 1, 15),
    ),
    # chapter 5: GAP and DC for each network, 8,000 iterations of batch 200; FC100: GAP and DC,
    # 12,500 iterations of batch 512 on 32x32 images
    Job("5", "2 x 8,000 iterations of 200", "C128F", 2 * 8000 * 200),
    Job("5", "2 x 8,000 iterations of 200", "ResNet-12", 2 * 8000 * 200),
    Job("5", "FC100: 2 x 12,500 iterations of 512", "ResNet-12 FC100", 2 * 12_500 * 512),
    # chapter 6: DC + WIDE (8,000 iterations of 200), then implants trained per task for 50
    # epochs on its supports: 5,000 5-shot and 5,000 10-shot tasks (Table 4), 3 x 5,000 5-shot
    # (Table 3); the networks of chapter 5 are reused
    Job("6", "DC + WIDE, 8,000 iterations of 200", "ResNet-12 wide", 8000 * 200),
    Job(
        "6",
        "implants: 20,000 5-shot and 5,000 10-shot tasks x 50 epochs",
        "implants",
        (20_000 * 25 + 5_000 * 50) * _IMPLANT_EPOCHS,
    ),
    # chapter 7: 14 models of 30,000 episodes (9 on the alpha grid, 2 learned alpha, 3
    # ablation); TC embeds the support a second time (2 models), AT adds the expected
    # auxiliary batches of 64 (2 models)
    Job("7", "14 models x 30,000 episodes", "ResNet-12", 14 * _TADAM_EPISODES * _TADAM_STEP),
    Job(
        "7", "task conditioning: support again (2 models)", "ResNet-12", 2 * _TADAM_EPISODES * 5 * 5
    ),
    Job("7", "auxiliary task: expected batches of 64 (2 models)", "ResNet-12", 2 * _TADAM_AUX),
]


def _training_step(model: nn.Module, x: torch.Tensor) -> None:
    out = model(x)
    out.float().square().mean().backward()


def flops_per_image(net: Net) -> float:
    """FLOPs of one training step's forward and backward pass, per image (batch of two)."""
    torch.manual_seed(0)
    model = net.build().train()
    x = torch.randint(0, 256, (2, *net.image), dtype=torch.uint8)
    with FlopCounterMode(display=False) as counter:
        _training_step(model, x)
    return counter.get_total_flops() / 2


def _implant_task() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Chapter 6's full ResNet-12's last block and the block input of a 2-way 2-shot task."""
    torch.manual_seed(0)
    model = ResNet12(RESNET12).eval()
    with torch.no_grad():
        h = model.norm(torch.randint(0, 256, (4, 3, 84, 84), dtype=torch.uint8))
        for block in model.blocks[:-1]:
            h = block(h)
    return model.blocks[-1], h, torch.tensor([0, 0, 1, 1])


def implant_flops_per_image_epoch() -> float:
    """FLOPs of one implant epoch (the implant stream, forward and backward) per support image:
    two epochs minus one, so the task's single base pass of the block drops out; a 2-way
    2-shot task (the cost is linear in the supports)."""
    block, h, labels = _implant_task()
    counts = []
    for epochs in (1, 2):
        with FlopCounterMode(display=False) as counter:
            implanting.train_implants(block, h, labels, 2, implanting.ImplantConfig(epochs=epochs))
        counts.append(counter.get_total_flops())
    return (counts[1] - counts[0]) / 4


def implant_cpu_flops_per_s(epochs: int = 10) -> float:
    """This CPU's rate on implant epochs: a task of ``epochs`` epochs minus a task of one,
    timed after a warm-up task."""
    block, h, labels = _implant_task()
    seconds = []
    for n in (1, 1, epochs):  # the first is the warm-up
        t0 = time.perf_counter()
        implanting.train_implants(block, h, labels, 2, implanting.ImplantConfig(epochs=n))
        seconds.append(time.perf_counter() - t0)
    return implant_flops_per_image_epoch() * 4 * (epochs - 1) / max(seconds[2] - seconds[1], 1e-9)


def cpu_flops_per_s(net: Net, batch: int, steps: int = 2) -> float:
    """This CPU's rate on ``net``'s training step at ``batch`` images: FLOPs per second over
    ``steps`` timed steps after one warm-up step."""
    torch.manual_seed(0)
    model = net.build().train().to(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (batch, *net.image), dtype=torch.uint8)
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        _training_step(model, x)
    return flops_per_image(net) * batch * steps / (time.perf_counter() - t0)


def estimate(tflops: float = ASSUMED_TFLOPS, cpu_batch: int = 8) -> dict:
    """Per chapter: training FLOPs, GPU-hours at ``tflops``, CPU-hours at this CPU's measured
    rate; and the per-image FLOPs and CPU rates used."""
    per_image = {name: flops_per_image(net) for name, net in NETS.items()}
    cpu_rate = {name: cpu_flops_per_s(net, cpu_batch) for name, net in NETS.items()}
    per_image["implants"] = implant_flops_per_image_epoch()
    cpu_rate["implants"] = implant_cpu_flops_per_s()
    chapters: dict[str, dict] = {}
    for job in JOBS:
        flops = job.images * per_image[job.net]
        ch = chapters.setdefault(job.chapter, {"flops": 0.0, "cpu_hours": 0.0, "parts": []})
        ch["flops"] += flops
        ch["cpu_hours"] += flops / cpu_rate[job.net] / 3600
        ch["parts"].append(f"{job.what} ({job.net})")
    for ch in chapters.values():
        ch["gpu_hours"] = ch["flops"] / (tflops * 1e12) / 3600
    return {"tflops": tflops, "per_image": per_image, "cpu_rate": cpu_rate, "chapters": chapters}


def markdown(result: dict) -> str:
    """The README's table."""
    lines = [
        f"| chapter | `full` training | PFLOP | GPU-hours at {result['tflops']:g} TFLOP/s "
        "(estimate) | CPU-hours here (measured rate) |",
        "|---|---|---:|---:|---:|",
    ]
    for chapter, ch in result["chapters"].items():
        lines.append(
            f"| {chapter} | {'; '.join(ch['parts'])} | {ch['flops'] / 1e15:,.0f} | "
            f"{ch['gpu_hours']:.1f} | {ch['cpu_hours']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflops", type=float, default=ASSUMED_TFLOPS, help="assumed GPU rate")
    parser.add_argument("--cpu-batch", type=int, default=8, help="images per timed CPU step")
    args = parser.parse_args(argv)
    result = estimate(args.tflops, args.cpu_batch)
    for name, f in result["per_image"].items():
        print(
            f"{name:22s} {f / 1e9:8.3f} GFLOP per image per training step (forward+backward), "
            f"CPU {result['cpu_rate'][name] / 1e9:.1f} GFLOP/s"
        )
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
