# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/95_performance.ipynb)
#
# How fast does `fewshot_utils` train and evaluate a Prototypical Network
# {cite}`snell2017prototypical`, beside the code one would otherwise write or install? This
# page shows one run of `benchmarks/bench_performance.py` on one machine: the same episode
# shapes, the same Conv-4, the same real data for every implementation, each measured in a
# process of its own (so that its peak memory is its own).
#
# - **fewshot_utils**: `train_protonet` (episodes indexed straight out of one uint8 tensor,
#   channels_last on the CPU) and `embed` + `evaluate_embeddings` (every test image embedded
#   once, the episodes scored over the cached embeddings); **fewshot_utils_bf16** (training):
#   the same with `TrainConfig(amp=True)`, bfloat16 autocast with the distances in float32.
#   It is an opt-in that the chapters do not use on a CPU, shown for what bfloat16 units
#   (such as Intel's AMX) can add; it is not counted for the goals below;
# - **reference**: in the style of the original ProtoNet code: PIL images through a
#   `DataLoader` with an episodic batch sampler, `ToTensor` and `Normalize` on every image of
#   every episode, every test episode embedded again;
# - **easyfsl**: its `TaskSampler` and `PrototypicalNetworks` on the same PIL dataset, and
#   **easyfsl_tensors**, the same with a dataset that hands out normalised tensors;
# - **learn2learn**: its `MetaDataset`/`TaskDataset` pipeline, where it installs;
# - **reembed** (evaluation): `fewshot_utils`' own network re-embedding each episode's images
#   from the same uint8 tensor, i.e. re-embedding without any data-pipeline cost;
# - **ceiling** (training): the same network's forward, backward and Adam step on one episode
#   batch already in memory, repeated: what the arithmetic alone costs.
#
# The page only reads the figures the script wrote (`results/benchmarks/performance.json`,
# with the machine, versions, commit and date); it never runs the benchmark itself. To
# measure again: `python benchmarks/bench_performance.py` (see the [README](https://github.com/fewshot-book/fewshot-book/blob/main/README.md)).

# %% tags=["hide-input"]
# Set-up, the same in every chapter: on a fresh Colab runtime it installs the
# book's package. DRIVE = True keeps data and checkpoints on Google Drive, so a
# disconnected run resumes and chapter 6 finds the networks chapter 5 trained.
REPOSITORY = "https://github.com/fewshot-book/fewshot-book"  # from _config.yml
DRIVE = False

import importlib.util
import subprocess
import sys

if importlib.util.find_spec("fewshot_utils") is None:
    pip = [sys.executable, "-m", "pip", "install", "-q", f"git+{REPOSITORY}"]
    subprocess.run(pip, check=True)  # a failure shows pip's own error above
    importlib.invalidate_caches()
if DRIVE:
    from fewshot_utils.colab import use_drive

    use_drive()

# %% tags=["parameters"]
# Runtime: any; a CPU runtime is enough (nothing in this chapter trains).
# PROFILE is unused: this page reads measured figures and runs no benchmark.
PROFILE = None
# the JSON written by benchmarks/bench_performance.py; None: results/
FIGURES = None

# %%
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from fewshot_utils.colab import results_folder
from IPython.display import Markdown, display

bench_dir = (
    results_folder(REPOSITORY) / "benchmarks"
)  # on Colab, a clone's results/
path = Path(FIGURES) if FIGURES else bench_dir / "performance.json"
perf = json.loads(path.read_text()) if path.exists() else None

# %% [markdown]
# Where, when and on what the figures were measured:

# %% tags=["hide-input"]
if perf is None:
    display(
        Markdown(
            f"No measurement found at `{path}`: run `python benchmarks/bench_performance.py` "
            "on an otherwise idle machine to write it."
        )
    )
else:
    m = perf["machine"]
    display(
        Markdown(
            f"**Measured** {perf['date']} ({perf['mode']} mode) at commit `{perf['commit'][:12]}`"
            f" on {m['cpu']}, {m['cores']} cores, {m['memory_gb']:.0f} GB, no GPU used; "
            f"torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}. "
            f"Load average before / after: {perf['loadavg_before'][0]:.2f} / "
            f"{perf['loadavg_after'][0]:.2f}. Versions: "
            + ", ".join(f"{k} {v}" for k, v in perf["versions"].items() if v)
            + f". Whole run: {perf['wall_s'] / 60:.1f} min."
        )
    )

# %% [markdown]
# ## The table
#
# Episodes per second are the median of the timed windows (after warm-up episodes);
# "fewshot_utils x" is how many times faster `fewshot_utils` is; "of ceiling" is the
# fraction of the in-memory forward + backward rate reached. For the evaluation, the
# implementations that re-embed every episode were timed on a few hundred episodes and their
# time for 10,000 is extrapolated; `fewshot_utils` ran all 10,000, embedding included.

# %% tags=["hide-input"]
TITLES = {
    "train_omniglot": "Training, Omniglot 60-way 5-shot 5-query",
    "train_miniimagenet": "Training, miniImageNet 5-way 1-shot 15-query",
    "eval_omniglot": "Evaluation, Omniglot 20-way 1-shot 15-query",
}


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def task_table(name, rows):
    lines = [
        "| implementation | episodes/s | fewshot_utils x | of ceiling | 10,000 episodes | peak memory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for impl, r in rows.items():
        if r.get("status") != "ok":
            why = str(
                r.get("reason") or r.get("error") or r.get("status")
            ).replace("|", "/")
            lines.append(f"| {impl} | {why} | | | | |")
            continue
        t10k = ""
        if "seconds_for_10000" in r:
            t10k = f"{r['seconds_for_10000']:,.1f} s" + (
                " (extrap.)" if r["extrapolated"] else ""
            )
        cf = (
            f"{100 * r['ceiling_fraction']:.0f}%"
            if "ceiling_fraction" in r
            else ""
        )
        lines.append(
            f"| {impl} | {r['episodes_per_s']:,.2f} | {fmt(r.get('fewshot_utils_speedup'), '.2f')}"
            f" | {cf} | {t10k} | {r['peak_rss_mb']:,.0f} MB |"
        )
    notes = sorted({r["patch"] for r in rows.values() if r.get("patch")})
    out = f"**{TITLES[name]}**\n\n" + "\n".join(lines)
    if notes:
        out += "\n\nNote: " + " ".join(notes)
    return out


if perf is not None:
    for name, rows in perf["tasks"].items():
        display(Markdown(task_table(name, rows)))
    lm = perf.get("load_miniimagenet") or {}
    if lm.get("status") == "ok":
        display(
            Markdown(
                f"Loading the full miniImageNet (all three splits, {lm['data_mb']:,.0f} MB of uint8 "
                f"images from the decoded cache): {lm['seconds']:.1f} s, peak memory "
                f"{lm['peak_rss_mb']:,.0f} MB."
            )
        )

# %% [markdown]
# ## The figure
#
# Episodes per second (evaluation on a logarithmic axis); the dashed line is the ceiling of
# each training task.

# %% tags=["hide-input"]
if perf is not None:
    names = list(perf["tasks"])
    fig, axes = plt.subplots(
        1, len(names), figsize=(5 * len(names), 4.2), squeeze=False
    )
    for ax, name in zip(axes[0], names):
        rows = {
            k: r
            for k, r in perf["tasks"][name].items()
            if r.get("status") == "ok" and k != "ceiling"
        }
        labels = list(rows)
        values = [rows[k]["episodes_per_s"] for k in labels]
        colors = [
            "tab:green" if k.startswith("fewshot_utils") else "tab:gray"
            for k in labels
        ]
        ax.barh(labels, values, color=colors)
        ax.invert_yaxis()
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:,.2f}", va="center", fontsize=8)
        ceiling = perf["tasks"][name].get("ceiling", {})
        top = max(values)
        if ceiling.get("status") == "ok":
            top = max(top, ceiling["episodes_per_s"])
            ax.axvline(
                ceiling["episodes_per_s"],
                ls="--",
                color="k",
                lw=1,
                label="ceiling",
            )
            ax.legend(loc="lower right", fontsize=8)
        if perf["tasks"][name] and TITLES[name].startswith("Evaluation"):
            # rates 10-100x apart: a logarithmic axis, labelled in plain numbers
            ax.set_xscale("log")
            ax.set_xlim(min(values) / 2, top * 8)
            ax.xaxis.set_major_formatter(
                matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
            )
            ax.set_xlabel("episodes per second (log scale)")
        else:
            ax.set_xlim(0, top * 1.3)
            ax.set_xlabel("episodes per second")
        ax.set_title(TITLES[name], fontsize=10)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## The goals
#
# The targets set for this machine: training at least 3x the fastest peer and at least 80%
# of the ceiling; 10,000 evaluation episodes at least 20x faster than re-embedding every
# episode (judged against the fastest re-embedding, which is `fewshot_utils`' own network on
# the same tensors). "At the ceiling" is the most a training loop with the same arithmetic
# could reach: the ceiling's rate over the fastest peer's. Where it is below the goal, no
# data pipeline can meet the goal; only doing less arithmetic per episode could.

# %% tags=["hide-input"]
if perf is not None:
    goals, summary = perf["goals"], perf["summary"]
    lines = [
        "| task | measured | goal | met | at the ceiling |",
        "|---|---:|---:|---|---:|",
    ]

    def yes(b):
        return "yes" if b else "**no**"

    for name in ("train_omniglot", "train_miniimagenet"):
        s = summary.get(name, {})
        if "vs_fastest_peer" in s:
            lines.append(
                f"| {TITLES[name]}: vs the fastest peer ({s['fastest_peer']}) | "
                f"{s['vs_fastest_peer']:.2f}x | {goals['train_vs_fastest_peer']:.0f}x | "
                f"{yes(s['vs_fastest_peer'] >= goals['train_vs_fastest_peer'])} | "
                + (
                    f"{s['ceiling_vs_fastest_peer']:.2f}x |"
                    if "ceiling_vs_fastest_peer" in s
                    else "|"
                )
            )
        if "ceiling_fraction" in s:
            lines.append(
                f"| {TITLES[name]}: fraction of the ceiling | {100 * s['ceiling_fraction']:.0f}% | "
                f"{100 * goals['train_ceiling_fraction']:.0f}% | "
                f"{yes(s['ceiling_fraction'] >= goals['train_ceiling_fraction'])} | 100% |"
            )
    s = summary.get("eval_omniglot", {})
    if "vs_fastest_reembedding" in s:
        lines.append(
            f"| 10,000 evaluation episodes vs re-embedding ({s['fastest_reembedding']}) | "
            f"{s['vs_fastest_reembedding']:.1f}x | {goals['eval_vs_reembed']:.0f}x | "
            f"{yes(s['vs_fastest_reembedding'] >= goals['eval_vs_reembed'])} | |"
        )
    display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Where the time goes in evaluation
#
# `benchmarks/bench_evaluation.py` times the 10,000-episode Omniglot test (20-way 1-shot,
# 15 queries, Conv-4, embedding included) and each of the speed-ups of `fewshot_utils`'
# evaluation switched off and on: the batch norm folded into the convolutions of an inference
# copy of the network, the episodes' indices drawn by a partial selection (the very same
# indices as the full sort it replaces) and chunks of episodes that stay in the CPU caches.
# A measurement may also list the distance computed as one fused matrix product
# (`baddbmm`): it was measured, gained nothing, and was dropped.

# %% tags=["hide-input"]
evals = sorted(bench_dir.glob("evaluation_*threads.json"))
for p in evals:
    ev = json.loads(p.read_text())
    env, tgt = ev["environment"], ev["target"]
    v = ev["variants"][0]
    lines = [
        f"**{env['threads']} thread(s)** (commit `{env.get('commit', '?')[:12]}`, load average "
        f"{env['loadavg_before'][0]:.2f}): embedding {v['images']:,} images {v['embed_s']:.2f} s, "
        f"{v['episodes']:,} episodes {v['evaluate_s']:.2f} s, "
        f"total {tgt['estimated_s']:.2f} s for {tgt['episodes']:,} episodes "
        f"(target {tgt['seconds']:.0f} s: {'met' if tgt['met'] else 'missed'})",
        "",
        "| speed-up | before | after | factor |",
        "|---|---:|---:|---:|",
    ]
    for a in ev.get("speedups", []):
        lines.append(
            f"| {a['name']} | {a['before_s']:.2f} s | {a['after_s']:.2f} s | {a['factor']:.2f}x |"
        )
    display(Markdown("\n".join(lines)))
if not evals:
    display(
        Markdown("No `evaluation_*threads.json` in `results/benchmarks/` yet.")
    )

# %% [markdown]
# ## Reading the figures
#
# Evaluation is where the design pays most: a test image's embedding does not depend on the
# episode it appears in (the network is in eval mode), so the test images are embedded once
# each, not once for every episode that draws them. Training cannot share work
# between episodes: every episode needs its own forward and backward pass, so no pipeline can
# beat the ceiling, and the room left to a faster library is the data pipeline (PIL images,
# per-image transforms, collation) and the memory layout of the convolutions. The ratios
# above are exactly that room, measured.
