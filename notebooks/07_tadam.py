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

# %% [markdown]
# **What you will learn.**
#
# - what TADAM's *metric scaling* $\alpha$ does to the gradients of a fresh ResNet-12, beside
#   LSED, and how it is chosen on the validation classes;
# - how a *task embedding network* turns an episode's prototypes into FiLM layers, so that
#   the features depend on the task, and how an auxiliary 64-way task is trained alongside
#   the episodes;
# - how to read an ablation: each component against $\alpha$ alone, paired on the same test
#   tasks, and $\alpha$'s own gain over several training seeds.
#
# **The question.** TADAM {cite}`oreshkin2018tadam` adds three components to a Prototypical
# Network {cite}`snell2017prototypical`. Which of them make it more accurate on miniImageNet
# 5-way 5-shot, and by how much (the paper's Table 2)?
#
# Chapters 1 and 2 found that a fresh Prototypical Network starts with distances so large
# that its softmax *saturates*: most gradients with respect to the query-prototype distances
# are zero. TADAM's three components are:
#
# 1. **metric scaling**: every distance is multiplied by a constant $\alpha$ before the
#    softmax, $p(y = k \mid x) = \mathrm{softmax}_k(-\alpha\, d(f(x), c_k))$. This $\alpha$ is
#    the scale of chapters 1 to 4b (a small $\alpha$, a soft softmax); what it does to
#    the gradient, TADAM's Lemma 1, is the subject of [chapter 1](01_softmax_saturation.ipynb),
#    section 1.5;
# 2. **task conditioning** (TC): *FiLM* layers scale and shift the network's features, with
#    parameters that a *task embedding network* (TEN) computes from the episode's support
#    set (section 7.4);
# 3. **auxiliary co-training** (AT): an *auxiliary task*, ordinary 64-way classification of
#    the base classes, is trained on batches interleaved with the episodes, less and less
#    often (section 7.5).
#
# The `full` profile follows the paper's schedule on a GPU; the `cpu` profile runs a much
# reduced protocol (section 7.1 and [the protocols page](../book/protocols.md)).

# %% tags=["parameters"]
# Runtime: on Colab, pick Runtime > Change runtime type > GPU for the `full`
# profile (the papers' protocol); a CPU runtime runs the shorter `cpu` profile.
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
RETRAIN = False  # True trains again even when a finished checkpoint exists
EXERCISES = None  # True runs the quick exercises at the end

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import torch
from fewshot_utils import data, diagrams, gradients, plots, report_tadam, tadam
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.display import show_source
from fewshot_utils.distances import DISTANCES
from fewshot_utils.episodes import sample_episode
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import ResNet12
from fewshot_utils.profiles import column, exercises_on, start, time_estimate
from fewshot_utils.tadam import TadamConfig, TadamNet, TaskEmbeddingNetwork

# the profile, the device, torch.manual_seed(SEED) and a provenance line:
session = start(PROFILE, SEED)
profile, device = session.profile, session.device


# %% [markdown]
# ## 7.1 What each profile runs
#
# TADAM's network is the ResNet-12 of [chapter 5](05_dense_classification.ipynb), widths
# 64-128-256-512, with the *swish-1* activation $x\,\sigma(x)$ ($\sigma$ the logistic
# sigmoid), on 84x84 miniImageNet ([chapter 4](04_protonet_miniimagenet.ipynb) says how to get
# it). It trains for 30,000 steps of 5-way 5-shot episodes with SGD: momentum 0.9, learning
# rate 0.1 divided by 10 three times after half the run, weight decay $5 \cdot 10^{-4}$,
# gradient clipping. On two CPU cores one such step takes seconds, so the `cpu` profile keeps
# the method and shrinks the rest: images averaged down to 42x42, widths 16-32-64-128, a
# thousand training episodes per model on the same schedule compressed to that length (the
# second half at a learning rate of 0.01 and below), and a thousand test episodes instead of
# ten thousand.

# %%
SETTINGS = {  # name: (smoke, cpu, full)
    "side": (21, 42, 84),  # image side in pixels
    "widths": ((8, 8, 16, 16), (16, 32, 64, 128), (64, 128, 256, 512)),
    # None: all the classes, or all the images
    "train_classes": (8, None, None),
    "per_class": (20, None, None),
    "val_per_class": (20, 60, None),
    "test_per_class": (20, 100, None),
    "episodes": (2, 1000, 30_000),  # training episodes per model
    "episodes_per_epoch": (1, 100, 500),  # validation after each
    "val_episodes": (2, 50, 500),
    "test_episodes": (3, 1000, 10_000),
    "aux_batch": (8, 32, 64),  # images per auxiliary batch
    # the grids of α: squared Euclidean, cosine
    "sq_grid": ((0.1, 1.0), (0.01, 0.1, 1.0), (0.01, 0.1, 1.0, 10.0)),
    "cos_grid": ((1.0,), (1.0, 10.0), (1.0, 5.0, 10.0, 20.0)),
    "fresh_episodes": (2, 10, 50),  # episodes of the fresh network (7.2)
    "test_query": (15, 15, 15),
    "probe_episodes": (1, 2, 5),  # timed episodes per kind of model
    "seeds": ((0, 1), (0, 1, 2), (0,)),  # training seeds, baseline and α (7.6)
}
settings = column(profile, SETTINGS)
# training episodes: TADAM's 5-way 5-shot, 32 queries ~ 6 per class
WAY, SHOT, QUERY = 5, 5, 6

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
fig = plots.image_grid(
    test_x[:5, :8], data.split_names("miniimagenet", "test")[:5]
)
fig.suptitle(
    f"miniImageNet test classes in this profile ({settings['side']} px)",
    fontsize=10,
)
plt.show()

# %% [markdown]
# ## 7.2 Metric scaling and the gradient
#
# With logits $-\alpha d_{ik}$, the gradient of query $i$'s loss with respect to its distance
# to prototype $k$ is $\alpha\,(\mathbb{1}\{k = y_i\} - p_{ik})$
# ([chapter 1](01_softmax_saturation.ipynb)). The factor $\alpha$ only rescales it; what
# saturates is the softmax factor $\mathbb{1}\{k = y_i\} - p_{ik}$, which goes to 0 for every
# $k$ once one $p_{ik}$ reaches 1. So a pair counts as *near-zero* when
# $|\partial \ell_i / \partial d_{ik}| / \alpha$ is below $10^{-5}$, the level chapter 2's
# histograms draw as zero (Lemma 1 divides by $\alpha$ in the same way):

# %%
show_source(tadam.near_zero_fraction)

# %% [markdown]
# TADAM fixes $\alpha$; it can also be learned, as [chapter 4b](04b_lsed_scale.ipynb) did for
# a Conv-4. A learned $\alpha$ follows the gradient of the loss with respect to $\alpha$
# itself. From $\ell_i = \alpha d_{iy_i} + \log \sum_k e^{-\alpha d_{ik}}$,
#
# $$\frac{\partial L}{\partial \alpha} = \frac{1}{N}\sum_i \Big(d_{iy_i} - \sum_k p_{ik}\,
# d_{ik}\Big),$$
#
# the distance to the own prototype minus its softmax-weighted mean: negative as long as the
# queries are nearer their own prototype than the softmax expects, so $\alpha$ grows until
# the softmax is as sharp as the embedding deserves, and shrinks while it is sharper than
# that. (The tests check this closed form against autograd and finite differences.) At
# initialisation it is large and positive, since the saturated softmax mostly weights a wrong
# prototype, and SGD at TADAM's learning rate would push a plain $\alpha$ below zero within
# a few steps; we learn $\log \alpha$ instead, whose gradient is
# $\alpha\, \partial L / \partial \alpha$, so $\alpha$ stays positive.

# %%
show_source(tadam.alpha_gradient)

# %% [markdown]
# ### At initialisation
#
# A fresh ResNet-12, the one every model of this chapter starts from, embeds a few training
# episodes. On the same distances we sweep $\alpha$ and count the near-zero gradients, for
# squared Euclidean distance, for cosine similarity (the distance $1 - \cos$), and for LSED
# with the paper's miniImageNet setting $s = 4$, $r = 0.01$ (at $\alpha = 1$).

# %%
LSED, SQ = {"s": 4.0, "r": 0.01}, "squared_euclidean"


def backbone(seed: int = SEED) -> ResNet12:
    """The chapter's ResNet-12: the same initial weights for the same seed."""
    torch.manual_seed(seed)
    return ResNet12(settings["widths"])


fresh = TadamNet(backbone()).to(device)
gen = torch.Generator().manual_seed(SEED)
embedded = []
with torch.no_grad():  # training-mode batch norm, as in a first training step
    for _ in range(settings["fresh_episodes"]):
        ep = sample_episode(train_x, WAY, SHOT, QUERY, gen)
        ep = ep._replace(
            support=ep.support.to(device), query=ep.query.to(device)
        )
        embedded.append(gradients.embed_episode(fresh, ep))
KW = {SQ: {}, "cosine": {}, "lsed": LSED}
dist = {
    n: [DISTANCES[n](q, c, **kw).cpu() for q, c, _ in embedded]
    for n, kw in KW.items()
}
labels = [y.cpu() for _, _, y in embedded]

# %% [markdown]
# The sweep: for each $\alpha$ on a logarithmic grid, the share of near-zero gradients,
# averaged over the episodes; and $\partial L / \partial \alpha$ at $\alpha = 1$.

# %%
alphas = torch.logspace(-3, 2, 31).tolist()


def sweep(name: str, alphas: list[float]) -> list[float]:
    """Mean near-zero fraction over the episodes, for each alpha."""
    pairs = list(zip(dist[name], labels))
    return [
        sum(tadam.near_zero_fraction(d, y, a) for d, y in pairs) / len(pairs)
        for a in alphas
    ]


fresh_sweep = {name: sweep(name, alphas) for name in (SQ, "cosine")}
at_1 = {name: sweep(name, [1.0])[0] for name in KW}
lsed_fresh = at_1["lsed"]
d_sq = torch.cat(dist[SQ])
grads = [
    tadam.alpha_gradient(d, y, 1.0).item() for d, y in zip(dist[SQ], labels)
]
dl_dalpha = sum(grads) / len(grads)
print(
    f"squared distances: median {d_sq.median():.3g}, max {d_sq.max():.3g} "
    f"({fresh.feature_dim} dimensions)\n"
    f"dL/dalpha at alpha = 1 (squared Euclidean): {dl_dalpha:+.3g}\n"
    f"near-zero at alpha = 1: squared Euclidean {100 * at_1[SQ]:.1f}%, "
    f"cosine {100 * at_1['cosine']:.1f}%, LSED {100 * at_1['lsed']:.1f}%"
)

# %% tags=["hide-input"]
report_tadam.plot_fresh_sweep(
    alphas, fresh_sweep, lsed_fresh, len(labels), profile
)

# %% [markdown]
# The same episodes as chapter 2's histograms, $\ln(|\partial \ell / \partial d| / \alpha +
# 10^{-5})$ for three values of $\alpha$ and for LSED (gradients from
# `gradients.episode_gradients`, the function chapter 2 uses):

# %% tags=["hide-input"]
report_tadam.plot_fresh_gradients(embedded, LSED)

# %% [markdown]
# ## 7.3 Training with a scaled metric
#
# Every model of the chapter is a `TadamNet`: the backbone, the distance, $\alpha$ (a buffer
# when fixed, $\exp$ of a parameter when learned) and, for the ablation, the TEN and the
# auxiliary head. The logits of an episode come from the same
# `distances.protonet_logits(scale=alpha)` as in every other chapter:

# %%
show_source(TadamNet.episode_logits)

# %% [markdown]
# `train_tadam` trains all of them with the same loop: the same episodes (one generator
# seeded with `SEED`), the same initial backbone, TADAM's optimiser and learning-rate
# schedule, a checkpoint after every epoch (an interrupted run resumes), and the validation
# epoch with the best accuracy kept. As in the official TADAM code, $\alpha$ is a fixed
# hyperparameter chosen on the *validation* classes from a grid, one per distance. (The
# official code uses the plain, not squared, Euclidean distance with $\alpha$ from 0.5 to 20;
# we keep the squared distance of the rest of the book, whose scale needs smaller $\alpha$.)
# Beside the grid: LSED at $\alpha = 1$, and $\alpha$ learned from 1 in log space, an
# experiment of ours, not the paper's.

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
# Each model is a specification: distance, $\alpha$, whether $\alpha$ is learned, and
# whether task conditioning (TC) and the auxiliary task (AT) are on. `build` turns one into a
# `TadamNet`, always from the same initial backbone.


# %%
def spec(distance, alpha=1.0, learn=False, tc=False, at=False, kw=None):
    return dict(
        distance=distance, alpha=alpha, learn=learn, tc=tc, at=at, kw=kw or {}
    )


SCALING = {f"sq, α = {a:g}": spec(SQ, a) for a in settings["sq_grid"]}
SCALING.update(
    {f"cos, α = {a:g}": spec("cosine", a) for a in settings["cos_grid"]}
)
SCALING["LSED"] = spec("lsed", kw=LSED)
# a separate experiment: α learned from 1 (not the paper's protocol)
LEARNED = {
    "sq, α learned": spec(SQ, learn=True),
    "cos, α learned": spec("cosine", learn=True),
}
ABLATION_PARTS = {
    "α + AT": dict(at=True),
    "α + TC": dict(tc=True),
    "TADAM": dict(at=True, tc=True),
}
MODELS = {**SCALING, **LEARNED}  # the ablation joins once α is chosen (7.6)


def build(s: dict, seed: int = SEED) -> TadamNet:
    """The model of spec ``s``, from the same initial backbone for all."""
    bb, w = backbone(seed), settings["widths"]
    ten = TaskEmbeddingNetwork(bb.feature_dim, w) if s["tc"] else None
    aux = train_x.shape[0] if s["at"] else None
    args = (s["distance"], s["alpha"], s["learn"], ten, aux)
    return TadamNet(bb, *args, distance_kwargs=s["kw"])


# %% [markdown]
# Before training, the time it will take here, from the seconds per training episode and per
# auxiliary batch measured on this machine for each kind of model, and the embedding speed:

# %% tags=["hide-input"]
make = lambda at, tc: build(spec(SQ, at=at, tc=tc))  # noqa: E731
specs = [*MODELS.values(), *(spec(SQ, **p) for p in ABLATION_PARTS.values())]
splits = (train_x, val_x, test_x)
parts = report_tadam.chapter_estimate(
    make, specs, splits, cfg, settings, SEED, device
)
print(time_estimate(parts, device, session.elapsed()))

# %% [markdown]
# The training loop names each run's checkpoint after its model, its $\alpha$ where it was
# chosen on validation (the ablation models), the profile and the training seed:


# %%
runs = {}


def seed_key(name: str, seed: int):
    """How runs, tests and records name a model: name, or (name, new seed)."""
    return name if seed == SEED else (name, seed)


def train(name: str, seed: int = SEED):
    s = MODELS[name]
    stem = report_tadam.checkpoint_stem(name, s, name in SCALING, profile, seed)
    c = dataclasses.replace(cfg, seed=seed)  # its episodes, as its weights
    model, ckpt = build(s, seed), checkpoint_dir() / stem
    run = tadam.train_tadam(model, train_x, val_x, c, ckpt, RETRAIN, device)
    runs[seed_key(name, seed)] = run
    done = f"{run.episodes_done} episodes, best epoch {run.best_epoch}"
    loaded = " (loaded)" * run.loaded
    print(f"{name:14s} {done}, α {run.model.alpha.item():.3g}{loaded}")
    return run


for name in MODELS:
    train(name)

# %% [markdown]
# ### Test accuracy on the same episodes
#
# All models are scored on the same test episodes (5-way 5-shot, 15 queries per class), so
# differences can be taken episode by episode, with their own intervals.

# %%
tests, test_seconds = {}, {}


def test(key):  # a model's name, or (name, training seed)
    t0 = time.perf_counter()
    tasks = (test_x, 5, SHOT, settings["test_query"], settings["test_episodes"])
    tests[key] = tadam.evaluate_tadam(
        runs[key].model, *tasks, seed=SEED, device=device
    )
    test_seconds[key] = time.perf_counter() - t0
    return tests[key]


for name in MODELS:
    test(name)

# %% [markdown]
# The table: each model's validation accuracy (at the epoch kept), its test accuracy, the
# paired difference against squared Euclidean with $\alpha = 1$, the final $\alpha$, the
# share of near-zero gradients during training, and the wall time.


# %% tags=["hide-input"]
board = report_tadam.Scores(runs, tests, test_seconds)
gap, accuracy, val_accuracy = board.gap, board.accuracy, board.val_accuracy
report_tadam.models_table(MODELS, board)

# %% [markdown]
# ### Choosing $\alpha$ on validation
#
# The paper's $\alpha$ is the grid value with the best validation accuracy, per distance; the
# test accuracies above play no part in the choice. The validation estimate has its own noise
# (its interval is printed): grid values closer than that are a tie broken by chance.

# %%
ALPHA = {}
for distance in (SQ, "cosine"):
    grid = [n for n, s in SCALING.items() if s["distance"] == distance]
    chosen = max(grid, key=val_accuracy)
    ALPHA[distance] = SCALING[chosen]["alpha"]
    ci = {n: runs[n].history["val_ci95"][runs[n].best_epoch - 1] for n in grid}
    scores = [
        f"{n}: {100 * val_accuracy(n):.2f} ± {100 * ci[n]:.2f}" for n in grid
    ]
    print(f"{'; '.join(scores)}  -> α = {ALPHA[distance]:g}")

# %% [markdown]
# How $\alpha$ moved during training (learned models) and how much of the gradient the
# softmax left near zero, epoch by epoch:

# %% tags=["hide-input"]
report_tadam.plot_training(MODELS, runs)

# %% [markdown]
# Every model's result is written to `results/` as a record, with the row of TADAM's Table 2
# it stands for; [the Results page](90_results.ipynb) collects them. The ablation of 7.6 uses
# squared Euclidean with the $\alpha$ just chosen, `ALPHA_SQ`.

# %% tags=["hide-input"]
ALPHA_SQ = ALPHA[SQ]
ABLATION = {  # TADAM Table 2 rows -> our models (squared Euclidean, ALPHA_SQ)
    "baseline": "sq, α = 1",
    "α": f"sq, α = {ALPHA_SQ:g}",
    "α + AT": "α + AT",
    "α + TC": "α + TC",
    "α + AT + TC": "TADAM",
}
facts = dict(profile=profile, device=device, widths=settings["widths"])
facts.update(image_side=settings["side"], test_per_class=test_x.shape[1])
chapter = (MODELS, SCALING, ABLATION, cfg, board, facts)


def record(key):  # a model's name, or (name, training seed)
    report_tadam.write_record(key, SEED, *chapter)


for name in MODELS:
    record(name)
for name, parts in ABLATION_PARTS.items():  # the ablation's models (7.6)
    MODELS[name] = spec(SQ, ALPHA_SQ, **parts)

# %% [markdown]
# ## 7.4 Task conditioning
#
# A Prototypical Network embeds an image the same way whatever the task. *Task conditioning*
# (TC) makes the features depend on the episode. A *task embedding network* (TEN) reads the
# task from the support set and sets the parameters of *FiLM* layers (feature-wise linear
# modulation: each channel of a layer's output is multiplied by its own scale $\gamma$ and
# shifted by its own $\beta$), one after every batch norm of the ResNet-12:

# %% tags=["hide-input"] mystnb={"image": {"alt": "TADAM's task conditioning in two rows. Top: the support set is embedded by the ResNet-12 without conditioning, the mean of its class prototypes is the task representation, and the task embedding network (small residual MLPs h and g for each convolution) turns it into FiLM parameters: gamma equals 1 plus gamma-zero times h, beta equals beta-zero times g, where the learned scalars gamma-zero and beta-zero start at 0. Bottom: support and query images pass through the same ResNet-12, where every convolution is followed by batch norm, then FiLM (gamma times the features plus beta), then the activation; the conditioned features give prototypes, distances and a softmax."}}
diagrams.tadam_ten_film()
plt.show()

# %% [markdown]
# The task representation is the mean $\bar c$ of the class prototypes computed by the
# *unconditioned* network. For every convolution of the ResNet-12 (4 blocks of 3), two small
# residual MLPs $h$ and $g$ map it to the FiLM parameters
#
# $$\gamma = 1 + \gamma_0\, h(\bar c), \qquad \beta = \beta_0\, g(\bar c), \qquad
# \text{BN}(x) \mapsto \gamma \odot \text{BN}(x) + \beta.$$
#
# $\gamma_0$ and $\beta_0$ are learned scalars, one pair per convolution, that start at 0 and
# pay an L2 penalty (weight 0.01): a fresh TEN leaves the network exactly as it is, and the
# task dependence grows only as far as it pays. The support is then embedded again,
# conditioned, to make the prototypes, and the queries with it.

# %%
show_source(TaskEmbeddingNetwork.forward)
show_source(TaskEmbeddingNetwork.penalty)

# %% [markdown]
# A fresh TEN is the identity: the conditioned features of a validation episode equal the
# unconditioned ones.

# %%
check = build(MODELS["TADAM"]).to(device).eval()
ep = sample_episode(val_x, 5, SHOT, 4, torch.Generator().manual_seed(SEED))
with torch.no_grad():
    s_img, q_img = (
        ep.support.flatten(0, 1).to(device),
        ep.query.flatten(0, 1).to(device),
    )
    film = check.task_film(check.embed(s_img).view(5, SHOT, -1))
    same = torch.equal(check.embed(q_img, film), check.embed(q_img))
n_ten, n_bb = (
    sum(p.numel() for p in m.parameters()) for m in (check.ten, check.backbone)
)
layers = len(film) * len(film[0])
print(f"TEN: {n_ten:,} parameters, {layers} FiLM layers (backbone: {n_bb:,})")
print(f"a fresh TEN leaves the features unchanged: {same}")

# %% [markdown]
# ## 7.5 Auxiliary co-training
#
# The auxiliary task (AT) is ordinary 64-way classification of the base classes through a
# linear head on the pooled, unconditioned features. Before each episode an auxiliary batch
# is trained with a probability that decays exponentially with the training step $t$ of $T$,
# $0.9^{20 t / T}$ (the official code uses 20 constant stages starting at 0.9); it has its own
# momentum, as in the official code.

# %% tags=["hide-input"]
report_tadam.plot_aux_schedule(cfg.max_episodes)

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
report_tadam.ablation_table(ABLATION, board)

# %%
fig = plots.learning_curves(
    {row: runs[name].history for row, name in ABLATION.items()}
)
fig.suptitle(
    f"ablation models, miniImageNet 5-way 5-shot ({profile} profile)",
    fontsize=10,
)
plt.show()
tc = runs["TADAM"].model.ten
print("TEN post-multipliers after training (blocks x convolutions):")
for name, p in (("gamma0", tc.gamma0), ("beta0 ", tc.beta0)):
    print(
        name, [[round(v, 3) for v in row] for row in p.detach().cpu().tolist()]
    )

# %% [markdown]
# ### Over training seeds: does α's gain survive a new network?
#
# Every row above is one trained network tested on many tasks: its interval covers the choice
# of tasks, not of the initial weights and episodes, which chapter 4 found to move a gap by
# about 2 points. So the baseline and $\alpha$ are trained again from other seeds (the same
# $\alpha$, the same test tasks); [the Results page](90_results.ipynb) pairs them seed by
# seed.

# %%
PAIR = [ABLATION["baseline"], ABLATION["α"]]
OTHERS = [seed for seed in settings["seeds"] if seed != SEED]
for seed in OTHERS:
    for name in PAIR:
        train(name, seed)
        test(seed_key(name, seed))
        record(seed_key(name, seed))

# %% tags=["hide-input"]
report_tadam.seeds_table(PAIR, [SEED, *OTHERS], board, seed_key)

# %% [markdown]
# ## 7.7 What we found
#
# Computed from this run (the code only formats the numbers above):

# %% tags=["hide-input"]
near_zero = (*sweep(SQ, [1.0, 0.01]), lsed_fresh)
elapsed = session.elapsed()
report_tadam.findings(
    near_zero, ALPHA, ABLATION, board, elapsed, device, profile
)

# %% [markdown]
# ## Summary
#
# - Metric scaling multiplies every distance by $\alpha$ before the softmax: $\alpha$ is the
#   scale of chapters 1 to 4b. It rescales the gradient, and through the softmax factor
#   decides how much of it is near zero; on a fresh ResNet-12 the count of near-zero
#   gradients shows how much saturation a smaller $\alpha$, or LSED, removes.
# - TADAM fixes $\alpha$ and chooses it on the validation classes. A learned $\alpha$ follows
#   $\partial L / \partial \alpha$, the distance to the own prototype minus its
#   softmax-weighted mean, and is best learned in log space.
# - Task conditioning: a TEN turns the mean of the unconditioned prototypes into FiLM scales
#   $\gamma = 1 + \gamma_0 h(\bar c)$ and shifts $\beta = \beta_0 g(\bar c)$ after every batch
#   norm; with $\gamma_0 = \beta_0 = 0$ at the start, a fresh TEN changes nothing.
# - The auxiliary task trains a 64-way head on the base classes, on batches drawn with a
#   probability that decays from 1 to $0.9^{20} \approx 0.12$.
# - An ablation pairs each component with $\alpha$ alone on the same test tasks; one trained
#   network's interval covers the test tasks only, so $\alpha$'s gain over the baseline is
#   measured again over training seeds.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (about 40 s on 2 CPU cores).** Re-test the $\alpha$ model of the ablation
# (squared Euclidean, $\alpha$ chosen on validation) at other values of $\alpha$, without
# training it again: the cell below embeds the test classes once and scores the chapter's
# test episodes at $\alpha$ from 0.001 to 100. Set `EXERCISES = True` in the parameters cell
# and run it. What changes with $\alpha$, and what does not? Where is the test loss lowest?
#
# :::{admonition} What you should see
# :class: dropdown
# The accuracy is the same at every $\alpha$, and at the trained $\alpha$ it is the
# ablation's: the predicted class is the nearest prototype, the largest of $-\alpha d_{ik}$
# for any $\alpha > 0$. Only the loss changes. It is convex in $\alpha$: near $\ln 5 \approx
# 1.61$ for a tiny $\alpha$ (every probability near 1/5), large for a big one (confident
# mistakes), and lowest where $\partial L / \partial \alpha$ of 7.2 is zero on these
# episodes. So $\alpha$ changes a trained network's confidence, not its decisions: its effect
# on accuracy comes through training, through the gradients of 7.2.
# :::
#
# **Exercise 2 (about 4 min on 2 CPU cores).** Train $\alpha$ + AT again with the official
# code's staircase schedule of 7.5: `c = dataclasses.replace(cfg, aux_staircase=True)`, then
# `run = tadam.train_tadam(build(MODELS["α + AT"]), train_x, val_x, c, None, device=device)`
# (no checkpoint, so the chapter's stays as it is); then `runs["stairs"] = run`,
# `test("stairs")` and `gap("stairs", "α + AT")` pair it with the chapter's $\alpha$ + AT on
# the same test episodes. How many auxiliary batches did it train
# (`sum(run.history["aux_steps"])`), and does the schedule matter?
#
# :::{admonition} What you should see
# :class: dropdown
# The staircase expects about $0.395\,T$ auxiliary batches against $0.417\,T$ for the smooth
# decay (`tadam.expected_aux_steps`), some 5% fewer, spread over the run in the same way, so
# expect a small difference. If its interval excludes zero, remember that it compares one
# training seed of each: the interval covers the test tasks, not the training.
# :::
#
# **Exercise 3.** At initialisation $\gamma_0 = \beta_0 = 0$. Show that the gradients of the
# loss with respect to the weights of the MLPs $h$ and $g$ are then zero, while those with
# respect to $\gamma_0$ and $\beta_0$ are not. What does the network train in its first
# steps, and what does the penalty on $\gamma_0$, $\beta_0$ do?
#
# :::{admonition} What you should see
# :class: dropdown
# $\gamma = 1 + \gamma_0 h(\bar c)$ gives $\partial \gamma / \partial \theta_h = \gamma_0\,
# \partial h / \partial \theta_h = 0$ at $\gamma_0 = 0$, and likewise for $\beta$ and $g$;
# but $\partial L / \partial \gamma_0 = \sum (\partial L / \partial \gamma)\, h(\bar c)$,
# which is not zero. So the first steps train the backbone as the $\alpha$ model would, plus
# $\gamma_0$ and $\beta_0$; the MLPs receive gradient only in proportion to how far
# $\gamma_0$ and $\beta_0$ have moved. The L2 penalty pulls them back towards 0, so the
# conditioning grows only where its gradient outweighs the penalty: compare the values
# printed in 7.6.
# :::
#
# **Exercise 4.** The cosine distance $1 - \cos$ lies in $[0, 2]$, and in $[0, 1]$ when the
# features are non-negative. What is the largest probability a 5-way softmax can give a
# query at $\alpha = 1$? Which $\alpha$ lets it reach 0.99?
#
# :::{admonition} What you should see
# :class: dropdown
# The best case is distance 0 to the own prototype and the maximum to the four others:
# $p = e^{m\alpha} / (e^{m\alpha} + 4)$ with $m$ the largest distance. At $\alpha = 1$ that is
# 0.65 for $m = 2$ and 0.40 for $m = 1$; reaching 0.99 needs $e^{m\alpha} = 396$, so
# $\alpha \approx 3$ or $6$. At $\alpha = 1$ the cosine softmax can never be confident: the
# opposite of saturation. This is why the cosine grid lies higher than squared Euclidean's,
# and why a learned cosine $\alpha$ tends to rise (7.3).
# :::

# %% tags=["exercise"]
# Exercise 1 (about 40 s on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    model = runs[ABLATION["α"]].model
    emb = embed(model, test_x, device=device)  # the test classes, embedded once
    for a in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0):
        r = evaluate_embeddings(
            emb, 5, SHOT, 15, settings["test_episodes"], SEED, SQ, a
        )
        print(
            f"α = {a:<6g} accuracy {100 * r.accuracy:.2f}%, loss {r.loss:.3f}"
        )
    print(
        f"trained at α = {model.alpha.item():.3g}: {accuracy(ABLATION['α'])}%"
    )

# %% [markdown]
# ## What comes next
#
# This is the last chapter of the lessons, so here is the argument of the book in one
# paragraph. A Prototypical Network classifies by a softmax over distances (chapter 0). A
# fresh network's squared distances are large, so its softmax starts saturated and most of
# its gradient is zero (chapter 1); LSED, or any small enough scale (a high enough
# temperature), gives the gradient back from the first iteration (chapter 2). Trained
# networks show what that buys: a network that leaves the early plateau sooner, most of all
# on miniImageNet (chapters 3 and 4), and most of LSED's gain is its scale (chapter 4b).
# LSED's compressed distances, the cosine classifier's $\tau$ (chapters 5 and 6) and TADAM's
# $\alpha$ are the same knob; the other two papers add more on top of it, and whether each
# addition helps is what their chapters measured. [The Results page](90_results.ipynb) gathers every chapter's
# records. Look there for TADAM's lines in "The papers' claims, as effects": $\alpha$ minus
# the baseline, paired over the training seeds of 7.6, and each component against $\alpha$,
# each with a verdict against the paper's difference. "TADAM, Table 2" then sets each of our
# rows beside the paper's number.
