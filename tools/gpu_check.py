"""GPU check: every training chapter's `full` training step, for a short fixed number of steps.

For each chapter's training (the `full` profile's networks and episode or batch shapes, data
already on the GPU, mixed precision): a warmed-up, synchronised measurement of steps per
second; a short training run with a checkpoint that is interrupted after its first epoch and
resumed, then loaded as finished; an evaluation pass; the peak GPU memory; and the `full`
profile's training time extrapolated from the rate (training steps only: validation, tests
and implanting are not counted, so it is a lower bound of the chapter's time). Prints a table
and writes ``results/benchmarks/gpu_check.json`` (``--json`` to choose). About 8 minutes on
one GPU. Random uint8 images of the real shapes stand in for the data: speed and memory do
not depend on the pixels, and the check needs no dataset.

    python tools/gpu_check.py            # on a GPU
    python tools/gpu_check.py --dry-run  # anywhere: tiny shapes, seconds, nothing written
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fewshot_utils import dense, tadam  # noqa: E402
from fewshot_utils.evaluation import embed, evaluate_embeddings  # noqa: E402
from fewshot_utils.models import ResNet12, conv4_for  # noqa: E402
from fewshot_utils.results import run_commit  # noqa: E402
from fewshot_utils.training import TrainConfig, measure_episodes_per_s, train_protonet  # noqa: E402


@dataclass
class Check:
    """One chapter's training: its name, the `full` profile's steps (per network x networks,
    from the chapter's `full` settings: an upper bound where early stopping may end sooner)."""

    name: str
    kind: str  # "protonet", "tadam" or "dense"
    full_steps: int
    shape: dict  # the full profile's shapes
    dry: dict  # tiny shapes for --dry-run


CHECKS = [
    Check(
        "ch03 Omniglot Conv-4, 60-way 1-shot 5-query",
        "protonet",
        4 * 1_000_000,
        dict(dataset="omniglot", classes=4112, per_class=20, side=28, way=60, shot=1, query=5),
        dict(dataset="omniglot", classes=12, per_class=20, side=28, way=5, shot=1, query=2),
    ),
    Check(
        "ch02/04 miniImageNet Conv-4, 30-way 1-shot 15-query",
        "protonet",
        4 * 60_000,
        dict(dataset="miniimagenet", classes=64, per_class=600, side=84, way=30, shot=1, query=15),
        dict(dataset="miniimagenet", classes=8, per_class=20, side=84, way=3, shot=1, query=2),
    ),
    Check(
        "ch05/06 ResNet-12 dense classification, batch 200",
        "dense",
        5 * 8000,
        dict(widths=(64, 128, 256, 512), classes=64, per_class=500, side=84, batch=200),
        dict(widths=(4, 8, 8, 8), classes=6, per_class=12, side=21, batch=8),
    ),
    Check(
        "ch07 TADAM ResNet-12, 5-way 5-shot, aux batch 64",
        "tadam",
        10 * 30_000,
        dict(
            widths=(64, 128, 256, 512),
            classes=64,
            per_class=600,
            side=84,
            way=5,
            shot=5,
            query=6,
            aux=64,
        ),
        dict(
            widths=(8, 8, 16, 16), classes=6, per_class=20, side=21, way=3, shot=2, query=2, aux=4
        ),
    ),
]


class _Interrupt(Exception):
    pass


def _interrupt_after_first_epoch(epoch: int, history: dict) -> None:
    if epoch == 1:
        raise _Interrupt


def _images(s: dict, device, channels: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (s["classes"], s["per_class"], channels, s["side"], s["side"])
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g).to(device)


def _resume(train, ckpt: Path) -> tuple[bool, bool]:
    """Train until the first epoch ends (interrupted there), resume to the end, then load the
    finished run: (resumed, loaded) of the last two calls."""
    try:
        train(ckpt, _interrupt_after_first_epoch)
    except _Interrupt:
        pass
    resumed = train(ckpt, None)
    loaded = train(ckpt, None)
    return resumed.resumed and not resumed.loaded, loaded.loaded


def run_check(c: Check, dry: bool, steps: int, device, folder: Path) -> dict:
    s = c.dry if dry else c.shape
    ckpt = folder / f"{c.kind}-{len(list(folder.iterdir()))}.pt"
    t0 = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if c.kind == "protonet":
        channels = 1 if s["dataset"] == "omniglot" else 3
        x = _images(s, device, channels)
        model = conv4_for(s["dataset"])
        cfg = TrainConfig(
            way=s["way"],
            shot=s["shot"],
            query=s["query"],
            max_episodes=2 * steps,
            episodes_per_epoch=steps,
            val_way=5,
            val_query=15 if not dry else 2,
            val_episodes=steps,
        )
        rate = measure_episodes_per_s(model, x, cfg, episodes=steps, device=device)

        def train(path, hook):
            return train_protonet(
                model, x, x, cfg, checkpoint=path, device=device, on_epoch_end=hook, progress=False
            )

        resumed, loaded = _resume(train, ckpt)
        emb = embed(model, x, device=device)
        acc = evaluate_embeddings(emb, 5, 1, 2 if dry else 15, steps, 0).accuracy
    elif c.kind == "tadam":
        x = _images(s, device, 3)
        w = s["widths"]
        model = tadam.TadamNet(
            ResNet12(w), ten=tadam.TaskEmbeddingNetwork(w[-1], w), aux_classes=s["classes"]
        )
        cfg = tadam.TadamConfig(
            way=s["way"],
            shot=s["shot"],
            query=s["query"],
            max_episodes=2 * steps,
            episodes_per_epoch=steps,
            val_episodes=steps,
            val_way=s["way"],
            val_query=s["query"],
            aux_batch=s["aux"],
        )
        t = tadam.measure_tadam_seconds(model, x, cfg, episodes=steps, device=device)
        rate = 1.0 / (t["episode_s"] + t["aux_s"])  # every step with an auxiliary batch

        def train(path, hook):
            return tadam.train_tadam(
                model, x, x, cfg, checkpoint=path, device=device, on_epoch_end=hook, progress=False
            )

        resumed, loaded = _resume(train, ckpt)
        acc = tadam.evaluate_tadam(
            model, x, s["way"], s["shot"], s["query"], steps, 0, device
        ).accuracy
    else:
        x = _images(s, device, 3)
        model = ResNet12(s["widths"])
        cfg = dense.BatchTrainConfig(
            iterations=2 * steps, batch_size=s["batch"], iterations_per_chunk=steps
        )
        rate = dense.measure_iterations_per_s(model, x, cfg, iterations=steps, device=device)
        first = dense.train_classifier(
            model, x, cfg, checkpoint=ckpt, device=device, progress=False
        )
        again = dense.train_classifier(
            model, x, cfg, checkpoint=ckpt, device=device, progress=False
        )
        resumed, loaded = not first.loaded, again.loaded
        embed(model, x[:, :4], device=device)  # the evaluation's embedding pass
        acc = None  # scored from those maps by the chapters (dense.evaluate_poolings)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "check": c.name,
        "steps_per_s": rate,
        "full_steps": c.full_steps,
        "full_hours": c.full_steps / rate / 3600,
        "peak_gpu_gib": peak,
        "resumed": resumed,
        "loaded_finished": loaded,
        "eval_accuracy": acc,
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on any device")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per check")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.dry_run and device.type != "cuda":
        print("no GPU: run with --dry-run to check the script itself")
        return 2
    torch.backends.cudnn.benchmark = True  # as profiles.start does by default
    steps = args.steps or (2 if args.dry_run else 20)
    rows = []
    if args.dry_run:
        print("dry run: tiny shapes, so the rates and hours below predict nothing")
    with tempfile.TemporaryDirectory() as tmp:
        for c in CHECKS:
            row = run_check(c, args.dry_run, steps, device, Path(tmp))
            rows.append(row)
            peak = "" if row["peak_gpu_gib"] is None else f", peak {row['peak_gpu_gib']:.1f} GiB"
            print(
                f"{c.name}: {row['steps_per_s']:.2f} steps/s{peak}, full training "
                f"~{row['full_hours']:.1f} h (<= {c.full_steps} steps), resume "
                f"{'ok' if row['resumed'] and row['loaded_finished'] else 'FAILED'}, "
                f"{row['seconds']:.0f} s"
            )
    out = {
        "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": run_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "steps": steps,
        "checks": rows,
    }
    path = args.json or (None if args.dry_run else ROOT / "results/benchmarks/gpu_check.json")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"written {path}")
    ok = all(r["resumed"] and r["loaded_finished"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
