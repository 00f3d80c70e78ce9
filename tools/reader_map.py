"""The landing page's figure: the book's argument in two panels (tools/book.sh runs this).

Left, the question of chapters 1 and 2: the softmax gradient a query sends to its own
prototype, ``|dl/dd0| = 1 - p0``, when both of its distances are multiplied by a common
scale (the two-prototype example of chapter 1, ``saturation.two_prototype_example``): at
small distances the gradient grades how well the query is placed; at the squared distances
of a fresh network (hundreds to thousands, chapter 2) it is all or nothing: a query on the
right side of the boundary, however narrowly, sends none. Right, the answer measured in
chapter 4: validation accuracy of ProtoNet with squared Euclidean distances and with LSED
over training, read from the records of chapter 4's long run, beside the paper's final test
accuracies. The build draws it from the records present when it starts.

The figure is written to ``book/_static/reader_map.png`` (not committed: every build draws
it from the records it has), the records' provenance printed in its lower right corner.

    python tools/reader_map.py [--results results] [--out book/_static/reader_map.png]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fewshot_utils import paper_numbers, saturation  # noqa: E402
from fewshot_utils.results import load_results  # noqa: E402

EXPERIMENT = "ch04_long_training"
METHODS = {"squared_euclidean": "ProtoNet (squared Euclidean)", "lsed": "ProtoNet (LSED)"}
PAPER = {  # LSED paper, Table 1, miniImageNet 5-way 1-shot
    "squared_euclidean": "shen2018lsed/table-1/protonet/miniimagenet/5w1s",
    "lsed": "shen2018lsed/table-1/protonet-lsed/miniimagenet/5w1s",
}


def long_run_records(results: Path) -> dict[str, dict]:
    """Chapter 4's long-run records (5-way 1-shot test, the learning history) by method,
    preferring the ``full`` profile's over the ``cpu`` profile's; smoke records never count."""
    found: dict[str, dict] = {}
    for rec in load_results(results):
        if rec.get("experiment") != EXPERIMENT:
            continue
        if rec.get("profile") == "smoke" or rec.get("method") not in METHODS:
            continue
        if rec.get("shot") != 1 or not rec.get("history"):
            continue
        old = found.get(rec["method"])
        if old is None or (old.get("profile") != "full" and rec.get("profile") == "full"):
            found[rec["method"]] = rec
    return found


def draw_saturation(ax) -> None:
    """The two-prototype example over five decades of distance scale."""
    scales = torch.logspace(-2, 4, 400)
    for d0, d1, ls in ((0.9, 1.0, "-"), (1.1, 1.0, "--")):
        ex = saturation.two_prototype_example(d0, d1, scales)
        nearer = "its own" if d0 < d1 else "the other"
        label = f"d(own) = {d0:g} × d(other), nearer {nearer}"
        ax.semilogx(ex.d1, ex.grad_d0.abs(), ls=ls, color="k", label=label)
    ax.axvspan(1e2, 1e4, color="C3", alpha=0.12, label="fresh network's squared distances (ch. 2)")
    ax.set(
        xlabel="distance to the other prototype, d(other)",
        ylabel="|∂loss/∂d(own)| = 1 − p(own)",
        title="Why (ch. 1-2)\nat large distances the gradient is all or nothing",
    )
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)


def draw_training(ax, records: dict[str, dict]) -> str:
    """Validation accuracy over training for each method; returns the provenance line."""
    if set(records) != set(METHODS):
        ax.text(
            0.5,
            0.5,
            "chapter 4's long run\nnot measured yet",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return "chapter 4's long-run records are missing (run chapter 4)"
    for i, (method, label) in enumerate(METHODS.items()):
        h = records[method]["history"]
        val = [100 * a for a in h["val_acc"]]
        ci = [100 * c for c in h["val_ci95"]]
        ax.plot(h["episode"], val, color=f"C{i}", marker="o", ms=3, label=f"{label}, validation")
        lo = [v - c for v, c in zip(val, ci)]
        hi = [v + c for v, c in zip(val, ci)]
        ax.fill_between(h["episode"], lo, hi, color=f"C{i}", alpha=0.15)
        paper = paper_numbers.by_id(PAPER[method]).accuracy
        ax.axhline(paper, color=f"C{i}", ls=":", lw=1.5, label=f"paper's final test: {paper:.2f}%")
    ax.axhline(20, color="grey", lw=1, label="chance (5-way)")
    rec = records["lsed"]
    stage = "" if rec["profile"] == "full" else ", early training"
    ax.set(
        xlabel="training episodes",
        ylabel="5-way 1-shot accuracy (%)",
        title=f"What LSED changes (ch. 4)\nminiImageNet, {rec['profile']} profile{stage}",
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return (
        f"records: chapter 4, {rec['profile']} profile, seed "
        f"{rec['config'].get('seed', 0)}, {rec['train_episodes']} training episodes, device "
        f"{rec['device']}, commit {str(rec['commit'])[:7]}"
    )


def draw(results: Path, out: Path) -> str:
    """Write the figure, its provenance printed in its corner, to ``out``; returns the
    provenance."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    draw_saturation(left)
    provenance = draw_training(right, long_run_records(results))
    right.text(
        0.99,
        0.02,
        provenance,
        transform=right.transAxes,
        ha="right",
        va="bottom",
        fontsize=6,
        color="grey",
        wrap=True,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_bytes() != buf.getvalue():  # unchanged: Sphinx re-reads nothing
        out.write_bytes(buf.getvalue())
    return provenance


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "_static" / "reader_map.png")
    args = parser.parse_args(argv)
    print(f"[reader map] {args.out}: {draw(args.results, args.out)}")


if __name__ == "__main__":
    main()
