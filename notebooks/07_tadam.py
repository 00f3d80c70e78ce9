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
# # 7. TADAM: metric scaling and task conditioning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/07_tadam.ipynb)
#
# Chapters 1 and 2 met the problem that the LSED paper {cite}`shen2018lsed` solves by bending
# the distance: a Prototypical Network {cite}`snell2017prototypical` starts with distances so
# large that its softmax saturates and most gradients with respect to the query-prototype
# distances are zero. TADAM {cite}`oreshkin2018tadam` answers the same problem differently,
# and goes further:
#
# 1. **metric scaling**: multiply the distance by a scalar, $p(y = k \mid x) =
#    \mathrm{softmax}_k(-\alpha\, d(f(x), c_k))$, with $\alpha$ fixed or learned. Its Lemma 1
#    (chapter 1) says what $\alpha$ does to the gradient: small $\alpha$ pulls each query
#    towards its prototype and pushes it from *all* others; large $\alpha$ only involves the
#    own prototype and the nearest wrong one;
# 2. **task conditioning** (TC): a *task embedding network* (TEN) turns the mean of the class
#    prototypes into FiLM scales and shifts for every batch norm of the ResNet-12, so that the
#    features themselves depend on the task;
# 3. **auxiliary co-training** (AT): a 64-way classification head on the base classes,
#    trained on batches interleaved with the episodes, less and less often.
#
# This chapter builds the three on real miniImageNet, measures what $\alpha$ does to the
# fraction of near-zero gradients (chapter 2's statistic) and to the accuracy, beside LSED on
# the same episodes, and ends with the ablation of TADAM's Table 2 on 5-way 5-shot: baseline,
# $\alpha$, $\alpha$ + AT, $\alpha$ + TC and all three, with 95% intervals. The `full`
# profile follows the paper's schedule on a GPU; the `cpu` profile is a much reduced protocol
# that fits in half an hour on a laptop, and every number it prints is labelled as such.

# %%
# Set-up, the same cell in every chapter. Where fewshot_utils is missing (a fresh Colab
# runtime) it installs the book's package from REPOSITORY. DRIVE = True (on Colab) keeps the
# data, the mirror and the checkpoints on Google Drive: a disconnected run then resumes, and
# chapter 6 finds the networks chapter 5 trained. The VM's own disk is wiped with the runtime.
REPOSITORY = "https://github.com/fewshot-book/fewshot-book"  # from _config.yml
DRIVE = False

import importlib.util
import subprocess
import sys

if importlib.util.find_spec("fewshot_utils") is None:
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{REPOSITORY}"],
        capture_output=True,
        text=True,
    )
    if pip.returncode:
        raise RuntimeError(f"pip install git+{REPOSITORY} failed:\n{pip.stdout}{pip.stderr}")
    importlib.invalidate_caches()
if DRIVE:
    from fewshot_utils.colab import use_drive

    use_drive()

# %% tags=["parameters"]
# Runtime: on Colab, pick Runtime > Change runtime type > GPU for the `full` profile (the
# papers' protocol); a CPU runtime runs the shorter `cpu` profile.
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
RETRAIN = False  # True trains again even when a finished checkpoint exists

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from fewshot_utils import data, gradients, paper_numbers, plots, tadam
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.display import show_source, table
from fewshot_utils.distances import DISTANCES
from fewshot_utils.episodes import sample_episode
from fewshot_utils.evaluation import ci95, embed, paired_difference
from fewshot_utils.models import ResNet12
from fewshot_utils.profiles import column, start, time_estimate
from fewshot_utils.results import make_record, write_result
from fewshot_utils.tadam import TadamConfig, TadamNet, TaskEmbeddingNetwork

session = start(PROFILE, SEED)  # profile, device, torch.manual_seed(SEED), provenance line
profile, device = session.profile, session.device


# %% [markdown]
# ## 7.1 What each profile runs
#
# TADAM trains a ResNet-12 (widths 64-128-256-512, swish-1) on 84x84 miniImageNet with SGD
# (momentum 0.9, learning rate 0.1 divided by 10 three times after half the run, weight decay
# $5 \cdot 10^{-4}$, gradient clipping) for 30,000 steps of 5-way 5-shot episodes; chapter 4
# describes how to get miniImageNet. On two CPU cores one such step takes seconds, so the `cpu`
# profile shrinks everything it can while keeping the method intact: images averaged down to
# 42x42, a ResNet-12 of widths 16-32-64-128, a thousand training episodes per model with the
# same learning-rate schedule compressed to that length (so the second half runs at a learning
# rate of 0.01 and below), and a thousand test episodes instead of ten thousand.

# %%
SETTINGS = {  # name: (smoke, cpu, full)
    "side": (21, 42, 84),  # image side in pixels
    "widths": ((8, 8, 16, 16), (16, 32, 64, 128), (64, 128, 256, 512)),
    "train_classes": (8, None, None),  # None: all the classes, or all the images
    "per_class": (20, None, None),
    "val_per_class": (20, 60, None),
    "test_per_class": (20, 100, None),
    "episodes": (2, 1000, 30_000),  # training episodes per model
    "episodes_per_epoch": (1, 100, 500),  # validation after each
    "val_episodes": (2, 50, 500),
    "test_episodes": (3, 1000, 10_000),
    "aux_batch": (8, 32, 64),  # images per auxiliary batch
    "sq_grid": ((0.1, 1.0), (0.01, 0.1, 1.0), (0.01, 0.1, 1.0, 10.0)),  # α, squared Euclidean
    "cos_grid": ((1.0,), (1.0, 10.0), (1.0, 5.0, 10.0, 20.0)),  # α, cosine
    "fresh_episodes": (2, 10, 50),  # episodes of the fresh network's gradients (7.2)
    "test_query": (15, 15, 15),
    "probe_episodes": (1, 2, 5),  # timed episodes per kind of model
    "seeds": ((0, 1), (0, 1, 2), (0,)),  # training seeds of the baseline and α (7.6)
}
settings = column(profile, SETTINGS)
WAY, SHOT, QUERY = 5, 5, 6  # training episodes: TADAM's 5-way 5-shot, 32 queries ~ 6 per class

# %% [markdown]
# The data, cut and downsampled to the profile's size:

# %%
t0 = time.perf_counter()
train_x, val_x, test_x = data.load_miniimagenet_subsets(
    train=(settings["train_classes"], settings["per_class"]),
    val=(None, settings["val_per_class"]),
    test=(None, settings["test_per_class"]),
).values()
if settings["side"] != train_x.shape[-1]:
    train_x, val_x, test_x = (
        tadam.downsample(x, settings["side"]) for x in (train_x, val_x, test_x)
    )
print(f"data ready in {time.perf_counter() - t0:.1f} s")
for name, x in (("train", train_x), ("val", val_x), ("test", test_x)):
    print(f"{name:5s} {tuple(x.shape)}")

# %% tags=["hide-input"]
if profile != "full":
    display(
        Markdown(
            f"**`{profile}` profile, a reduced protocol:** {settings['side']}x{settings['side']} "
            f"images (the paper: 84x84), ResNet-12 of widths "
            f"{'-'.join(map(str, settings['widths']))} (the paper: 64-128-256-512), "
            f"{settings['episodes']} training episodes per model (the paper: 30,000), "
            f"{settings['test_episodes']} test episodes on {test_x.shape[1]} images per test class. "
            "These are early-training numbers of small networks, not the paper's protocol."
        )
    )
fig = plots.image_grid(test_x[:5, :8], data.split_names("miniimagenet", "test")[:5])
fig.suptitle(
    f"miniImageNet test classes as this profile sees them ({settings['side']} px)", fontsize=10
)
plt.show()

# %% [markdown]
# ## 7.2 Metric scaling and the gradient
#
# With logits $-\alpha d_{ik}$, the gradient of query $i$'s loss with respect to its distance
# to prototype $k$ is $\alpha\,(\mathbb{1}\{k = y_i\} - p_{ik})$ (chapter 1). The factor
# $\alpha$ only rescales it; what saturates is the softmax factor
# $\mathbb{1}\{k = y_i\} - p_{ik}$, which goes to 0 for every $k$ when one $p_{ik}$ reaches 1.
# So we count a pair as *near-zero* when $|\partial \ell_i / \partial d_{ik}| / \alpha$ is
# below $10^{-5}$, the level chapter 2's histograms draw as zero (TADAM's Lemma 1 divides by
# $\alpha$ in the same way):

# %%
show_source(tadam.near_zero_fraction)

# %% [markdown]
# A learned $\alpha$ follows the gradient of the loss with respect to $\alpha$ itself. From
# $\ell_i = \alpha d_{iy_i} + \log \sum_k e^{-\alpha d_{ik}}$,
#
# $$\frac{\partial L}{\partial \alpha} = \frac{1}{N}\sum_i \Big(d_{iy_i} - \sum_k p_{ik}\,
# d_{ik}\Big),$$
#
# the distance to the own prototype minus its softmax-weighted mean: negative as long as the
# queries are nearer their own prototype than the softmax expects, so $\alpha$ grows until the
# softmax is as sharp as the embedding deserves, and shrinks while the softmax is sharper
# than that. The tests check this closed form against autograd and finite differences. At
# initialisation it is large and positive (printed below: the saturated softmax mostly weights
# a wrong prototype), and SGD with momentum at TADAM's learning rate would push a plain $\alpha$
# below zero within a few steps; we learn $\log \alpha$ instead, whose gradient is
# $\alpha\, \partial L / \partial \alpha$, so $\alpha$ stays positive.

# %%
show_source(tadam.alpha_gradient)

# %% [markdown]
# ### At initialisation
#
# A fresh ResNet-12 (the one every model of this chapter starts from) embeds a few training
# episodes; on the same distances we sweep $\alpha$ and count the near-zero gradients, for
# squared Euclidean distance, for cosine similarity (the distance $1 - \cos$), and for LSED
# with the paper's miniImageNet setting $s = 4$, $r = 0.01$ (at $\alpha = 1$).

# %%
LSED = {"s": 4.0, "r": 0.01}


def backbone(seed: int = SEED) -> ResNet12:
    """The chapter's ResNet-12, with the same initial weights for the same seed."""
    torch.manual_seed(seed)
    return ResNet12(settings["widths"])


fresh = TadamNet(backbone()).to(device)
gen = torch.Generator().manual_seed(SEED)
episodes = [
    sample_episode(train_x, WAY, SHOT, QUERY, gen) for _ in range(settings["fresh_episodes"])
]
with torch.no_grad():  # training-mode batch norm, as in a first training step
    embedded = [
        gradients.embed_episode(
            fresh, ep._replace(support=ep.support.to(device), query=ep.query.to(device))
        )
        for ep in episodes
    ]
dist = {}
for name, kw in (("squared_euclidean", {}), ("cosine", {}), ("lsed", LSED)):
    dist[name] = [DISTANCES[name](q, c, **kw).cpu() for q, c, _ in embedded]
labels = [y.cpu() for _, _, y in embedded]

# %% [markdown]
# The sweep: for each $\alpha$ on a logarithmic grid, the share of near-zero gradients,
# averaged over the episodes; and $\partial L / \partial \alpha$ at $\alpha = 1$.

# %%
alphas = torch.logspace(-3, 2, 31).tolist()


def sweep(name: str, alphas: list[float]) -> list[float]:
    """Mean near-zero fraction over the episodes, for each alpha."""
    return [
        sum(tadam.near_zero_fraction(d, y, a) for d, y in zip(dist[name], labels)) / len(labels)
        for a in alphas
    ]


fresh_sweep = {name: sweep(name, alphas) for name in ("squared_euclidean", "cosine")}
lsed_fresh = sweep("lsed", [1.0])[0]
d_sq = torch.cat(dist["squared_euclidean"])
print(
    f"fresh network: squared distances median {d_sq.median():.3g}, "
    f"max {d_sq.max():.3g}; feature dimension {fresh.feature_dim}"
)
grad_alpha = [
    tadam.alpha_gradient(d, y, 1.0).item() for d, y in zip(dist["squared_euclidean"], labels)
]
print(
    f"dL/dalpha at alpha = 1 (squared Euclidean), mean over the episodes: "
    f"{sum(grad_alpha) / len(grad_alpha):+.3g}"
)
print(
    f"near-zero fraction at alpha = 1: squared Euclidean "
    f"{100 * sweep('squared_euclidean', [1.0])[0]:.1f}%, cosine "
    f"{100 * sweep('cosine', [1.0])[0]:.1f}%, LSED {100 * lsed_fresh:.1f}%"
)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
for name, label in (("squared_euclidean", "squared Euclidean"), ("cosine", "cosine (1 - cos)")):
    ax.plot(alphas, [100 * f for f in fresh_sweep[name]], marker=".", label=label)
ax.axhline(100 * lsed_fresh, color="tab:green", ls="--", label="LSED s=4, r=0.01 (α = 1)")
ax.axvline(1.0, color="gray", lw=0.8)
ax.set(
    xscale="log",
    xlabel="metric scale α",
    ylabel="near-zero gradients (%)",
    title=f"fresh ResNet-12, {len(labels)} training episodes ({profile} profile)",
)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The same episodes as chapter 2's histograms, $\ln(|\partial \ell / \partial d| / \alpha +
# 10^{-5})$ for three values of $\alpha$ and for LSED (gradients from
# `gradients.episode_gradients`, the function chapter 2 uses):

# %%
panels = [("squared_euclidean", a, {}) for a in (0.01, 0.1, 1.0)] + [("lsed", 1.0, LSED)]
fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), constrained_layout=True)
for ax, (name, a, kw) in zip(axes, panels):
    snaps = []
    for q, c, y in embedded:
        _, snap = gradients.episode_gradients(q.cpu(), c.cpu(), y.cpu(), name, a, **kw)
        snaps.append(snap._replace(grads=snap.grads / a))
    title = f"{'LSED' if name == 'lsed' else 'squared Euclidean'}, α = {a:g}"
    gradients.gradient_histogram(ax, gradients.pool(snaps), title)
axes[0].legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 7.3 Training with a scaled metric
#
# Every model of the chapter is a `TadamNet`: the backbone, the distance, $\alpha$ (a buffer
# when fixed, $\exp$ of a parameter when learned) and, for the ablation, the TEN and the auxiliary head.
# The logits of an episode come from the same `distances.protonet_logits(scale=alpha)` as in
# every other chapter:

# %%
show_source(TadamNet.episode_logits)

# %% [markdown]
# `train_tadam` trains all of them with the same loop: the same episodes (one generator
# seeded with `SEED`), the same initial backbone, TADAM's optimiser and learning-rate
# schedule, checkpoints after every epoch (an interrupted run resumes), and the validation
# epoch with the best accuracy kept. The metric-scaling models: squared Euclidean and cosine
# with $\alpha$ fixed on a grid, and LSED. As in the official TADAM code, $\alpha$ is a fixed
# hyperparameter chosen on the *validation* classes from that grid, one per distance, and the
# ablation of section 7.6 uses the chosen value. (The official code uses the plain, not
# squared, Euclidean distance, with $\alpha$ from 0.5 to 20; we keep the squared distance of
# the rest of the book, whose scale needs smaller $\alpha$.) Learning $\alpha$ (from 1, in
# log space) is a separate experiment of ours, not the paper's, labelled as such.

# %%
cfg = TadamConfig(
    way=WAY,
    shot=SHOT,
    query=QUERY,
    max_episodes=settings["episodes"],
    episodes_per_epoch=settings["episodes_per_epoch"],
    aux_batch=settings["aux_batch"],
    val_way=5,
    val_query=15,
    val_episodes=settings["val_episodes"],
    seed=SEED,
)

# %% [markdown]
# The models, each a specification: distance, $\alpha$, whether $\alpha$ is learned, and
# whether task conditioning (TC) and the auxiliary task (AT) are on.


# %%
def spec(distance, alpha=1.0, learn=False, tc=False, at=False, kw=None):
    return dict(distance=distance, alpha=alpha, learn=learn, tc=tc, at=at, kw=kw or {})


SCALING = {f"sq, α = {a:g}": spec("squared_euclidean", a) for a in settings["sq_grid"]}
SCALING.update({f"cos, α = {a:g}": spec("cosine", a) for a in settings["cos_grid"]})
SCALING["LSED"] = spec("lsed", kw=LSED)
LEARNED = {  # a separate experiment: alpha learned from 1 (not the paper's protocol)
    "sq, α learned": spec("squared_euclidean", learn=True),
    "cos, α learned": spec("cosine", learn=True),
}
ABLATION_PARTS = {"α + AT": dict(at=True), "α + TC": dict(tc=True), "TADAM": dict(at=True, tc=True)}
MODELS = {**SCALING, **LEARNED}  # the ablation models join once alpha is chosen (7.6)

# %% [markdown]
# `build` turns a specification into a `TadamNet`, always from the same initial backbone:


# %%
def build(s: dict, seed: int = SEED) -> TadamNet:
    """The model of spec ``s``; the backbone's initial weights are the same for all."""
    bb = backbone(seed)
    ten = TaskEmbeddingNetwork(bb.feature_dim, settings["widths"]) if s["tc"] else None
    return TadamNet(
        bb,
        s["distance"],
        s["alpha"],
        s["learn"],
        ten,
        train_x.shape[0] if s["at"] else None,
        distance_kwargs=s["kw"],
    )


def slug(name: str) -> str:
    return name.replace("α", "alpha").replace(" ", "").replace(",", "_").replace("+", "_")


print(
    f"{len(MODELS) + len(ABLATION_PARTS)} models, {cfg.max_episodes} episodes each "
    f"({cfg.way}-way {cfg.shot}-shot {cfg.query}-query), validation every "
    f"{cfg.episodes_per_epoch} on {cfg.val_episodes} episodes"
)

# %% [markdown]
# Before training, the time it will take here: seconds per training episode and per
# auxiliary batch measured on this machine for each kind of model, and the images that
# validation and testing embed, at the measured embedding speed.

# %% tags=["hide-input"]
kinds = {
    "plain": spec("squared_euclidean"),
    "+ AT": spec("squared_euclidean", at=True),
    "+ TC": spec("squared_euclidean", tc=True),
    "+ AT + TC": spec("squared_euclidean", at=True, tc=True),
}
cost = {
    k: tadam.measure_tadam_seconds(build(s), train_x, cfg, settings["probe_episodes"], device)
    for k, s in kinds.items()
}
for k, c in cost.items():
    print(
        f"{k:10s} {c['episode_s']:.2f} s per episode, {c['aux_s']:.2f} s per auxiliary batch, "
        f"{c['expected_aux_steps']:.0f} expected auxiliary batches"
    )
probe = TadamNet(backbone())
t0 = time.perf_counter()
embed(probe, train_x[:4, :50], device=device)
img_s = (time.perf_counter() - t0) / 200
kind_of = lambda s: ("plain", "+ AT", "+ TC", "+ AT + TC")[s["at"] + 2 * s["tc"]]  # noqa: E731
every_model = [*MODELS.values(), *(spec("squared_euclidean", **p) for p in ABLATION_PARTS.values())]
train_s = sum(cost[kind_of(s)]["predicted_s"] for s in every_model)
epochs = cfg.max_episodes // cfg.episodes_per_epoch
per_ep_images = 5 * (2 * SHOT + 15)  # a task-conditioned episode embeds its support twice
eval_images = 0
for s in every_model:
    if s["tc"]:
        eval_images += (epochs * cfg.val_episodes + settings["test_episodes"]) * per_ep_images
    else:
        eval_images += epochs * val_x[:, :].flatten(0, 1).shape[0] + test_x.flatten(0, 1).shape[0]
eval_s = 1.3 * eval_images * img_s  # + episode overheads
print(f"embedding: {1 / img_s:.0f} images/s")
print(
    f"expected: training {train_s / 60:.1f} min, validation and test {eval_s / 60:.1f} min, "
    f"in all {(train_s + eval_s) / 60:.1f} min (plus the sections above)"
)
print(
    time_estimate({"training": train_s, "validation and test": eval_s}, device, session.elapsed())
)

# %%
runs = {}


def train(name: str, seed: int = SEED):
    s = MODELS[name]
    alpha = "" if s["learn"] or name in SCALING else f"_alpha{s['alpha']:g}"
    ckpt = checkpoint_dir() / f"ch07_{slug(name)}{alpha}_{profile}_seed{seed}.pt"
    c = dataclasses.replace(cfg, seed=seed)  # its episodes, as its initial weights
    run = tadam.train_tadam(build(s, seed), train_x, val_x, c, ckpt, RETRAIN, device)
    runs[name if seed == SEED else (name, seed)] = run
    print(
        f"{name:14s} {run.episodes_done} episodes, best epoch {run.best_epoch}, "
        f"alpha {run.model.alpha.item():.3g}, {run.episodes_per_s:.2f} episodes/s, "
        f"{run.wall_time_s / 60:.1f} min{' (loaded)' if run.loaded else ''}"
    )
    return run


for name in MODELS:
    train(name)

# %% [markdown]
# ### Test accuracy on the same episodes
#
# All models are scored on the same test episodes (5-way 5-shot, 15 queries per class),
# so differences can be taken episode by episode, with their own intervals.

# %%
tests, test_seconds = {}, {}


def test(name):  # a model's name, or (name, training seed)
    t0 = time.perf_counter()
    tests[name] = tadam.evaluate_tadam(
        runs[name].model,
        test_x,
        5,
        SHOT,
        settings["test_query"],
        settings["test_episodes"],
        seed=SEED,
        device=device,
    )
    test_seconds[name] = time.perf_counter() - t0
    return tests[name]


for name in MODELS:
    test(name)

# %% [markdown]
# The table: each model's validation accuracy (at the epoch kept), its test accuracy, the
# paired difference against squared Euclidean with $\alpha = 1$, the final $\alpha$, the
# share of near-zero gradients during training, and the wall time.


# %% tags=["hide-input"]
def near_zero_during(h: dict) -> float:
    return sum(h["near_zero"]) / len(h["near_zero"])


def val_accuracy(name: str) -> float:
    """Validation accuracy of model ``name`` at the epoch its checkpoint keeps."""
    return runs[name].history["val_acc"][runs[name].best_epoch - 1]


ref = tests["sq, α = 1"]
rows = []
for name in MODELS:
    r, h = tests[name], runs[name].history
    diff = 100 * (r.per_episode - ref.per_episode)
    rows.append(
        [
            name + (" *(learned, not the paper's)*" if MODELS[name]["learn"] else ""),
            f"{100 * val_accuracy(name):.2f}",
            f"{100 * r.accuracy:.2f} ± {100 * r.ci95:.2f}",
            "—" if name == "sq, α = 1" else f"{diff.mean():+.2f} ± {ci95(diff):.2f}",
            f"{runs[name].model.alpha.item():.3g}",
            f"{100 * near_zero_during(h):.1f}",
            f"{runs[name].wall_time_s / 60:.1f} + {test_seconds[name] / 60:.1f}",
        ]
    )
display(
    Markdown(
        f"**{profile} profile**: {cfg.max_episodes} training episodes per model, "
        f"{settings['test_episodes']} test episodes; validation: best of "
        f"{cfg.max_episodes // cfg.episodes_per_epoch} epochs of {cfg.val_episodes} "
        "episodes on the 16 validation classes"
    )
)
table(
    [
        "model",
        "validation acc. (%)",
        "5-way 5-shot test acc. (%)",
        "vs sq, α = 1 (paired)",
        "final α",
        "near-zero grads in training (%)",
        "wall time, train + test (min)",
    ],
    rows,
)

# %% [markdown]
# ### Choosing $\alpha$ on validation
#
# The paper's $\alpha$ is the grid value with the best validation accuracy, per distance; the
# test accuracies above play no part in the choice. The validation estimate has its own noise
# (its interval is printed), so neighbouring grid values that differ by less than that are a
# tie broken by chance.

# %%
ALPHA = {}
for distance in ("squared_euclidean", "cosine"):
    grid = [n for n, s in SCALING.items() if s["distance"] == distance]
    chosen = max(grid, key=val_accuracy)
    ALPHA[distance] = SCALING[chosen]["alpha"]
    print(
        f"{distance}: "
        + ", ".join(
            f"α = {SCALING[n]['alpha']:g}: {100 * val_accuracy(n):.2f} ± "
            f"{100 * runs[n].history['val_ci95'][runs[n].best_epoch - 1]:.2f}"
            for n in grid
        )
        + f"  -> α = {ALPHA[distance]:g}"
    )

# %% [markdown]
# How $\alpha$ moved during training (learned models) and how much of the gradient the
# softmax left near zero, epoch by epoch:

# %% tags=["hide-input"]
fig, (ax_a, ax_z) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
for i, name in enumerate(MODELS):
    h = runs[name].history
    if MODELS[name]["learn"]:
        ax_a.plot([0] + h["episode"], [1.0] + h["alpha"], marker="o", color=f"C{i}", label=name)
    ax_z.plot(
        h["episode"], [100 * f for f in h["near_zero"]], marker="o", color=f"C{i}", label=name
    )
ax_a.set(xlabel="training episodes", ylabel="α", yscale="log", title="learned α")
ax_z.set(
    xlabel="training episodes",
    ylabel="near-zero gradients (%)",
    title="near-zero gradients, mean over each epoch",
)
for ax in (ax_a, ax_z):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Every model's result is written to `results/` as a record (chapter 90 collects them), with
# the row of TADAM's Table 2 it stands for. The ablation of 7.6 uses squared Euclidean with
# the $\alpha$ just chosen (`ALPHA_SQ`).

# %% tags=["hide-input"]
records = {}
ALPHA_SQ = ALPHA["squared_euclidean"]
ABLATION = {  # TADAM Table 2 rows -> our models, squared Euclidean with alpha chosen above
    "baseline": "sq, α = 1",
    "α": f"sq, α = {ALPHA_SQ:g}",
    "α + AT": "α + AT",
    "α + TC": "α + TC",
    "α + AT + TC": "TADAM",
}
PAPER_ROW = {
    "baseline": "baseline",
    "α": "alpha",
    "α + AT": "alpha+at",
    "α + AT + TC": "tadam-alpha+at+tc",
}


def paper_cell(row: str) -> str:
    """Id of TADAM's Table 2 cell (5-way 5-shot) for ablation ``row``."""
    return paper_numbers.by_id(f"oreshkin2018tadam/table-2/{PAPER_ROW[row]}/miniimagenet/5w5s").id


PAPER_ID: dict[str, list[str]] = {}  # model -> the cells of Table 2 it stands for (α + TC: none)
for row, model in ABLATION.items():
    if row in PAPER_ROW:
        PAPER_ID.setdefault(model, []).append(paper_cell(row))


def record(key):  # a model's name, or (name, training seed)
    name, seed = (key, SEED) if isinstance(key, str) else key
    run, res, s = runs[key], tests[key], MODELS[name]
    rec = make_record(
        experiment="ch07_tadam",
        dataset="miniimagenet",
        method=slug(name),
        result=res,
        profile=profile,
        device=device,
        wall_time_s=run.wall_time_s + test_seconds[key],
        config={
            **dataclasses.replace(cfg, seed=seed).__dict__,
            "model": run.model.describe(),
            "backbone": f"resnet12-{'-'.join(map(str, settings['widths']))}",
            "image_side": settings["side"],
            "test_per_class": test_x.shape[1],
        },
        train_episodes=run.episodes_done,
        final_alpha=run.model.alpha.item(),
        alpha_choice="learned"
        if s["learn"]
        else ("validation grid" if name in SCALING else "chosen on validation"),
        val_accuracy=val_accuracy(key),
        near_zero_train=near_zero_during(run.history),
        ablation_rows=[row for row, model in ABLATION.items() if model == name],
        paper_rows=PAPER_ID.get(name, []),
        train_seed=seed,
    )
    records[key] = rec
    print(f"{name:14s}", write_result(rec) or f"{profile} profile: record not written")


for name in MODELS:
    record(name)
for name, parts in ABLATION_PARTS.items():  # the ablation's models, trained in 7.6
    MODELS[name] = spec("squared_euclidean", ALPHA_SQ, **parts)

# %% [markdown]
# ## 7.4 Task conditioning
#
# TADAM's TEN makes the feature extractor depend on the task. The task representation is the
# mean of the class prototypes computed by the *unconditioned* network; for every convolution
# of the ResNet-12 (4 blocks of 3), two small residual MLPs map it to FiLM parameters
# {cite}`oreshkin2018tadam`
#
# $$\gamma = 1 + \gamma_0\, h(\bar c), \qquad \beta = \beta_0\, g(\bar c), \qquad
# \text{BN}(x) \mapsto \gamma \odot \text{BN}(x) + \beta,$$
#
# where the scalars $\gamma_0$, $\beta_0$ start at 0 with an L2 penalty (weight 0.01): a fresh
# TEN leaves the network exactly as it is, and the task dependence grows only as far as it
# pays. The support is then embedded again, conditioned, to make the prototypes, and the
# queries with it.

# %%
show_source(TaskEmbeddingNetwork.forward)
show_source(TaskEmbeddingNetwork.penalty)

# %%
check = build(MODELS["TADAM"]).to(device).eval()
ep = sample_episode(val_x, 5, SHOT, 4, torch.Generator().manual_seed(SEED))
with torch.no_grad():
    s_img, q_img = ep.support.to(device), ep.query.to(device)
    film = check.task_film(check.embed(s_img.flatten(0, 1)).view(5, SHOT, -1))
    same = torch.equal(check.embed(q_img.flatten(0, 1), film), check.embed(q_img.flatten(0, 1)))
n_ten = sum(p.numel() for p in check.ten.parameters())
print(
    f"TEN: {n_ten:,} parameters for {len(film) * len(film[0])} FiLM layers "
    f"(backbone {sum(p.numel() for p in check.backbone.parameters()):,}); "
    f"fresh TEN leaves the features unchanged: {same}"
)

# %% [markdown]
# ## 7.5 Auxiliary co-training
#
# The auxiliary task is ordinary 64-way classification of the base classes through a linear
# head on the pooled, unconditioned features. Before each episode an auxiliary batch is
# trained with a probability that decays exponentially with the training step $t$ of $T$,
# $0.9^{20 t / T}$ (the official code uses 20 constant stages starting at 0.9); it has its own
# momentum, as in the official code.

# %%
T = cfg.max_episodes
steps = list(range(T))
fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
ax.plot(steps, [tadam.aux_probability(t, T) for t in steps], label="0.9^(20 t / T)")
ax.plot(
    steps,
    [tadam.aux_probability(t, T, staircase=True) for t in steps],
    label="official code (20 stages)",
)
ax.set(
    xlabel="training step t",
    ylabel="P(auxiliary batch)",
    ylim=(0, 1.05),
    title=f"auxiliary task schedule, T = {T}: {tadam.expected_aux_steps(T):.0f} batches expected",
)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 7.6 The ablation (TADAM Table 2, 5-way 5-shot)
#
# The baseline (squared Euclidean, $\alpha = 1$) and $\alpha$ (the grid value chosen on
# validation in 7.3, fixed) are models of section 7.3; here are the three others, with the
# same fixed $\alpha$, trained on the same episodes from the same initial backbone.

# %%
for name in ABLATION_PARTS:
    train(name)
for name in ABLATION_PARTS:
    test(name)
    record(name)

# %% [markdown]
# The ablation against the paper's Table 2, each row paired against the baseline on the same
# test episodes:

# %% tags=["hide-input"]
base = tests["sq, α = 1"]
rows = []
for row, name in ABLATION.items():
    r, run = tests[name], runs[name]
    diff = 100 * (r.per_episode - base.per_episode)
    rows.append(
        [
            row,
            f"{100 * r.accuracy:.2f} ± {100 * r.ci95:.2f}",
            "—" if row == "baseline" else f"{diff.mean():+.2f} ± {ci95(diff):.2f}",
            f"{run.model.alpha.item():.3g}",
            f"{sum(run.history['aux_steps'])}",
            f"{run.wall_time_s / 60:.1f} + {test_seconds[name] / 60:.1f}",
            f"{paper_numbers.by_id(paper_cell(row)).accuracy:.1f}"
            if row in PAPER_ROW
            else "not in our sources",
        ]
    )
display(
    Markdown(
        f"**{profile} profile** ({'the paper protocol' if profile == 'full' else 'reduced, see 7.1'}): "
        f"{cfg.max_episodes} training episodes per model, {settings['test_episodes']} test "
        "episodes, the same for every row"
    )
)
table(
    [
        "TADAM Table 2 row",
        "ours (%)",
        "vs baseline (paired)",
        "final α",
        "auxiliary batches",
        "wall time, train + test (min)",
        "paper (%)",
    ],
    rows,
)

# %%
fig = plots.learning_curves({row: runs[name].history for row, name in ABLATION.items()})
fig.suptitle(f"ablation models, miniImageNet 5-way 5-shot ({profile} profile)", fontsize=10)
plt.show()
tc = runs["TADAM"].model.ten
print("TEN post-multipliers after training (blocks x convolutions):")
for name, p in (("gamma0", tc.gamma0), ("beta0 ", tc.beta0)):
    print(name, [[round(v, 3) for v in row] for row in p.detach().cpu().tolist()])

# %% [markdown]
# ### Over training seeds: does α's gain survive a new network?
#
# Every row above is one trained network tested on many tasks: its interval covers the choice
# of tasks, not of the initial weights and episodes, which chapter 4 found to move a gap by
# about 2 points. So the baseline and $\alpha$ are trained again from other seeds (the same
# $\alpha$, the same test tasks); the Results page pairs them seed by seed.


# %%
def seed_key(name: str, seed: int):
    """How runs, tests and records name a model: ``name``, or (name, seed) for a new seed."""
    return name if seed == SEED else (name, seed)


PAIR = [ABLATION["baseline"], ABLATION["α"]]
OTHERS = [seed for seed in settings["seeds"] if seed != SEED]
for seed in OTHERS:
    for name in PAIR:
        train(name, seed)
        test(seed_key(name, seed))
        record(seed_key(name, seed))

# %% tags=["hide-input"]
rows = []
for seed in [SEED, *OTHERS]:
    base_r, alpha_r = (tests[seed_key(n, seed)] for n in PAIR)
    mean, hw = paired_difference(alpha_r.per_episode, base_r.per_episode)
    accs = [f"{100 * r.accuracy:.2f}" for r in (base_r, alpha_r)]
    rows.append([str(seed), *accs, f"{100 * mean:+.2f} ± {100 * hw:.2f}"])
table(["training seed", "baseline (%)", "α (%)", "α − baseline (paired, 95%)"], rows)

# %% [markdown]
# ## 7.7 What we found
#
# Computed from this run (the code only formats the numbers above):

# %% tags=["hide-input"]
sq1 = tests["sq, α = 1"]
cos_chosen = f"cos, α = {ALPHA['cosine']:g}"


def gap(a: str, b: str = "sq, α = 1") -> str:
    """Test accuracy of model ``a`` minus model ``b``, paired on the same episodes."""
    mean, hw = paired_difference(tests[a].per_episode, tests[b].per_episode)
    return f"{100 * mean:+.2f} ± {100 * hw:.2f}"


def paper_gap(row: str, base: str = "baseline") -> str:
    """The same difference in TADAM's Table 2 (5-shot), from paper_numbers."""
    diff = paper_numbers.by_id(paper_cell(row)).accuracy
    return f"{diff - paper_numbers.by_id(paper_cell(base)).accuracy:+.1f}"


total_min = session.elapsed() / 60
z1, z_small = sweep("squared_euclidean", [1.0, 0.01])
best = max(ABLATION, key=lambda row: tests[ABLATION[row]].accuracy)
lines = [
    f"- At initialisation, {100 * z1:.1f}% of the squared Euclidean gradients are near zero at "
    f"α = 1 and {100 * z_small:.1f}% at α = 0.01; LSED on the same episodes: "
    f"{100 * lsed_fresh:.1f}%. "
    + (
        "Here both a smaller α and LSED reduce the near-zero share."
        if z_small < z1 and lsed_fresh < z1
        else "Here they do not both reduce it: see the sweep in 7.2."
    ),
    f"- Metric scaling, as the paper does it (α fixed, chosen on validation): squared Euclidean "
    f"α = {ALPHA_SQ:g}, {gap(ABLATION['α'])} points against α = 1 on the same test episodes "
    f"(the paper: {paper_gap('α')}); cosine α = {ALPHA['cosine']:g} "
    f"({100 * tests[cos_chosen].accuracy:.2f}%).",
    f"- Learned α (our separate experiment): from 1 to "
    f"{runs['sq, α learned'].model.alpha.item():.3g} for squared Euclidean "
    f"({gap('sq, α learned')} points against α = 1) and to "
    f"{runs['cos, α learned'].model.alpha.item():.3g} for cosine. It follows ∂L/∂α of 7.2: it "
    "falls while the own prototype is not nearer than the softmax-weighted mean and rises on "
    "the bounded cosine distance.",
    f"- LSED vs squared Euclidean at α = 1, same episodes: {gap('LSED')} points.",
    f"- The ablation, each against α alone (the paper: +AT {paper_gap('α + AT', 'α')}, all "
    f"three {paper_gap('α + AT + TC', 'α')}): +AT {gap('α + AT', ABLATION['α'])}, "
    f"+TC {gap('α + TC', ABLATION['α'])}, +AT+TC {gap('TADAM', ABLATION['α'])} points; "
    f"TADAM against the baseline {gap('TADAM')} (the paper: {paper_gap('α + AT + TC')}). The "
    f"best row here is *{best}*.",
    f"- The whole notebook took {total_min:.1f} min on {device}.",
]
if profile != "full":
    accs = [100 * r.accuracy for r in tests.values()]
    lines.append(
        f"- **{profile} profile:** after {cfg.max_episodes} episodes of a small ResNet-12 on "
        f"{settings['side']}x{settings['side']} images every model is between "
        f"{min(accs):.1f}% and {max(accs):.1f}% (chance: 20%). These are the first steps of "
        "training: the paired differences above say which variant *learns faster* on these "
        "episodes, not where it ends. The `full` profile on a GPU is the comparison with "
        "Table 2."
    )
display(Markdown("\n".join(lines)))
