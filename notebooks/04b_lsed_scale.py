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
# # 4b. What LSED actually does: metric scale, embedding scale and the sparse phase
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/04b_lsed_scale.ipynb)

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
# - why LSED with $s = 0$ *is* a scale of $r$: four ways of writing one softmax give
#   the same logits, derived step by step and checked on real networks;
# - why LSED with $s = 4$ starts as that same scale, and when its kink at $s$ can
#   start to matter;
# - how five models that start alike but train differently (squared Euclidean, LSED, a fixed
#   scale, a learned one, a small last batch-norm scale) take LSED's gain apart, and
#   how to read their paired differences over training seeds.
#
# **The question.** LSED gets a Prototypical Network off its early plateau on miniImageNet
# sooner than squared Euclidean distance does. Is that gain a small scale $\alpha$, the small
# scale of the embeddings at the start, or the leaky kink at $s$ itself?
#
# [Chapter 2](02_lsed.ipynb) showed that LSED {cite}`shen2018lsed` removes the *early sparse
# gradients* of a fresh network (most gradients with respect to a distance near zero), and
# [chapter 4](04_protonet_miniimagenet.ipynb) that it leaves the plateau of the first
# training episodes sooner. But this *sparse phase* lasts only about a hundred iterations,
# and a network can learn its own scale: in chapter 2, LSED's raw distances *grow* over the
# first iterations while squared Euclidean's shrink. So what is LSED's gain made of? This
# chapter answers in two steps: a derivation, checked on the real networks, that four ways of
# writing the softmax are one; then five models trained side by side on the same episodes
# from the same seeds, whose differences separate the candidates.

# %% tags=["parameters"]
# Runtime: on Colab, pick Runtime > Change runtime type > GPU for the `full`
# profile (the papers' protocol); a CPU runtime runs the shorter `cpu` profile.
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
RETRAIN = False  # True trains again even when a finished checkpoint exists
EXERCISES = None  # True runs the quick exercises at the end

# %%
import matplotlib.pyplot as plt
import torch
from fewshot_utils import (
    data,
    effects,
    gradients,
    plots,
    report_protonet,
    scale,
    training,
)
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.display import show_source
from fewshot_utils.distances import protonet_logits, squared_euclidean
from fewshot_utils.episodes import sample_episode
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import exercises_on, start
from fewshot_utils.results import load_results
from IPython.display import Markdown, display

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device

# %% [markdown]
# (lsed-s0-is-a-temperature)=
# ## One softmax, four ways
#
# This section gathers the four ways of writing one softmax that the rest of the book refers
# to: **LSED with $s = 0$ is a scale of $r$.** Chapter 2 gave forms 1 and 2 in a line; forms
# 3 and 4 are new. The pieces, each from its chapter: the class probabilities
# $p_k = \mathrm{softmax}_k(-d_k)$ over the squared distances $d_k$ of a query to the
# prototypes ([chapter 0](00_episodes_and_prototypes.ipynb)); metric scaling,
# $\mathrm{softmax}_k(-\alpha d_k)$ with temperature $1/\alpha$
# ([chapter 1](01_softmax_saturation.ipynb)); LSED, $d_\mathrm{LSED} = d$ if $d \le s$, else
# $s + (d - s)\,r$ ([chapter 2](02_lsed.ipynb)). New here is batch normalisation: Conv-4,
# the book's embedding network, ends with a convolution, *batch normalisation*, ReLU and 2x2
# max-pooling, and batch normalisation first normalises each channel,
# $\hat x = (x - \mu)/\sigma$, then applies a learned map $\gamma \hat x + \beta$.
#
# **Form 1 is form 2.** With $s = 0$ every positive distance is above the threshold, so
# $d_\mathrm{LSED} = 0 + (d - 0)\,r = r\,d$ (and $d = 0$ gives 0 either way). Hence
#
# $$\mathrm{softmax}_k\big(-d_{\mathrm{LSED},k}\big) = \mathrm{softmax}_k\big(-r\,d_k\big):$$
#
# LSED($s = 0$, $r$) is metric scaling with $\alpha = r$, a temperature $T = 1/r$. Not
# approximately: the two are the same function of the embeddings, hence of the network's
# weights, at every step of training.
#
# **Form 3: the embeddings times $\sqrt r$.** Scaling every embedding by $\sqrt r$ scales
# every prototype by $\sqrt r$ too (a prototype is a mean), and
#
# $$\lVert \sqrt r\,\mathbf z - \sqrt r\,\mathbf c_k \rVert^2 = r\,\lVert \mathbf z -
#   \mathbf c_k \rVert^2 = r\,d_k .$$
#
# A temperature on squared distances is a scale on the embeddings.
#
# **Form 4: the last batch norm times $\sqrt r$.** ReLU and max-pooling are *positively
# homogeneous*: $\mathrm{relu}(k u) = k\,\mathrm{relu}(u)$ and $\max_i k u_i = k \max_i u_i$
# for $k > 0$, and flattening is linear. Multiplying the last $\gamma$ and $\beta$ by $k$
# multiplies that layer's output by $k$ (the normalised $\hat x$ does not depend on them), so
# it multiplies every embedding by $k$. With $k = \sqrt r$ this is form 3.
#
# So at one forward pass four models give the same logits:
#
# 1. LSED($s = 0$, $r$);
# 2. squared Euclidean with a metric scale $\alpha = r$;
# 3. squared Euclidean on the embeddings times $\sqrt r$;
# 4. squared Euclidean with the last batch norm's $\gamma$ and $\beta$ times $\sqrt r$.
#
# Two consequences carry the rest of the chapter. A positive factor on every distance never
# changes which prototype is nearest, so a temperature changes no *prediction*: it can act
# only through training. And forms 1 to 3 are one function of the same weights, so they also
# train identically; form 4 is the same function at other weights (a $\gamma$ ten times
# smaller for $r = 0.01$), and the optimiser moves those differently (the five models below).
#
# **And LSED with $s > 0$?** When all of a query's distances exceed $s$,
# $d_\mathrm{LSED} = r\,d + (1 - r)\,s$: the same temperature $r$ plus a constant, and a
# softmax ignores a constant added to all its inputs. The squared distances of a fresh
# network run to hundreds or thousands (chapter 1), far above the paper's miniImageNet
# setting $s = 4$, so at initialisation LSED($s = 4$, $r = 0.01$) *is* $\alpha = 0.01$. Its
# kink matters only once training brings distances down towards $s$.
#
# The code builds the four forms from one network, from `fewshot_utils.scale`:

# %%
show_source(scale.scale_last_batchnorm_)
show_source(scale.equivalent_logits)

# %% [markdown]
# ### Checked on the real networks
#
# A fresh Conv-4 on one real training episode of each dataset, with $r = 0.01$:
# miniImageNet 5-way 1-shot with 15 queries, and Omniglot 60-way 1-shot with 5 queries on the
# LSED paper's 576-d network. For each form we print the largest difference from form 1's
# logits, relative to the largest logit, and whether every query's predicted class agrees.
# First chapter 4's data, with its cuts:

# %%
# chapter 4's protocol: its data cuts, lengths and seeds
P = training.miniimagenet_protocol(profile)
train_x, val_x, test_x = data.load_miniimagenet_subsets(
    train=(P["train_classes"], P["per_class"]),
    val=(None, P["val_per_class"]),
    test=(None, P["test_per_class"]),
).values()
omni_train = data.load_omniglot("train")

# %%
probes = {
    "miniImageNet": (conv4_for("miniimagenet"), train_x, 5, 15),
    "Omniglot": (conv4_for("omniglot", last_pool=False), omni_train, 60, 5),
}
forms = {}
for name, (model, x, way, query) in probes.items():
    ep = sample_episode(x, way, 1, query, torch.Generator().manual_seed(SEED))
    forms[name] = scale.equivalent_logits(model, ep, r=0.01)

# %% tags=["hide-input"]
report_protonet.forms_table(forms)

# %% [markdown]
# The four agree on both datasets: forms 1 and 2 exactly (they compute the same numbers),
# forms 3 and 4 to float32 rounding (a few $10^{-7}$ of the largest logit). On Omniglot this is
# more than a curiosity: the LSED paper's Omniglot setting is $s = 0$, $r = 0.01$, so
# [chapter 3](03_protonet_omniglot.ipynb)'s "LSED" model *is* squared Euclidean with a fixed
# scale $\alpha = 0.01$, and chapter 3's comparison is already the scale
# ablation on Omniglot. Only on miniImageNet ($s = 4$) can LSED part from a temperature, and
# only once distances come down to $s$.

# %% [markdown]
# ## Five models, side by side
#
# If the four forms are one softmax at the start, what separates them is training. The
# optimiser is Adam with a learning rate of $10^{-3}$, as in every chapter; Adam moves each
# weight by at most about its learning rate per step, whatever the size of its gradient, so
# a scale that starts at 0.1 can change ten times faster, relative to its size, than one that
# starts at 1. On miniImageNet 5-way 1-shot, with chapter 4's protocol, episodes and seeds (a training
# *seed* draws a model's initial weights and its training episodes), we train five models:
#
# | model | at the first step | during training |
# |---|---|---|
# | squared Euclidean | saturated: distances in the hundreds to thousands | the baseline |
# | LSED ($s = 4$, $r = 0.01$) | the scale $\alpha = 0.01$ | the kink, once distances fall below 4 |
# | fixed $\alpha = 0.01$ | the same as LSED | a temperature without the kink |
# | learned $\alpha$ | squared Euclidean ($\alpha = 1$) | $\alpha$ free to find its own temperature |
# | last BN $\gamma \times 0.1$ | the same as $\alpha = 0.01$ (form 4) | a small scale the optimiser moves freely |
#
# The learned $\alpha$ lives in log space and starts at 1, as in [chapter 7](07_tadam.ipynb),
# with its own Adam rate of 0.1: at the network's $10^{-3}$, 500 steps could move
# $\log\alpha$ by about 0.5 at most. The last model starts the last batch norm's $\gamma$ at
# $\sqrt{0.01} = 0.1$ instead of 1 ($\beta$ starts at 0). Each difference between two models
# answers one question: $\alpha = 0.01$ minus squared Euclidean is the temperature's gain,
# LSED minus $\alpha = 0.01$ is the kink's, and LSED minus the small-$\gamma$ model asks
# whether a small start, which training may undo, does as well. The first two models are
# chapter 4's: they load its checkpoints instead of training again.

# %%
R = training.LSED_MINIIMAGENET["r"]


def build(name: str, seed: int) -> torch.nn.Module:
    """The model ``name`` at initialisation: one Conv-4 per ``seed``."""
    torch.manual_seed(seed)
    net = conv4_for("miniimagenet")
    if name == "α learned":
        return scale.LearnedScale(net, alpha=1.0)
    if name == "BN γ × 0.1":
        return scale.scale_last_batchnorm_(net, R**0.5)
    return net


# name -> (distance, fixed metric scale, checkpoint stem, record method)
MODELS = {
    "squared Euclidean": (
        "squared_euclidean",
        1.0,
        "ch04_squared_euclidean_1shot",
        "squared_euclidean",
    ),
    "LSED": ("lsed", 1.0, "ch04_lsed_1shot", "lsed"),
    "α = 0.01": ("squared_euclidean", R, "ch04b_alpha0.01_1shot", "alpha_0.01"),
    "α learned": (
        "squared_euclidean",
        1.0,
        "ch04b_alphalearned_lr0.1_1shot",
        "alpha_learned",
    ),
    "BN γ × 0.1": (
        "squared_euclidean",
        1.0,
        "ch04b_bngamma0.1_1shot",
        "bn_gamma_0.1",
    ),
}

# %% [markdown]
# Each model's training configuration is chapter 4's, with its metric scale; `train` loads a
# finished checkpoint (the first two models' are chapter 4's own) or trains and saves one.


# %%
ALPHA_LR = 0.1  # the learned log α's own Adam rate


def config(name: str, seed: int):
    distance, alpha = MODELS[name][:2]
    scaled = {"scale": alpha} if alpha != 1 else {}
    if name == "α learned":
        scaled["alpha_lr"] = ALPHA_LR
    return training.miniimagenet_config(P, 1, distance, seed, **scaled)


def checkpoint(name: str, seed: int):
    return checkpoint_dir() / f"{MODELS[name][2]}_{profile}_seed{seed}.pt"


def train(name: str, seed: int):
    ckpt = checkpoint(name, seed)
    cfg = config(name, seed)
    run = training.train_protonet(
        build(name, seed),
        train_x,
        val_x,
        cfg,
        checkpoint=ckpt,
        retrain=RETRAIN,
        device=device,
        progress=False,
    )
    loaded = " (loaded)" if run.loaded else ""
    print(
        f"{name:18s} seed {seed}: {run.episodes_done} episodes, "
        f"best epoch {run.best_epoch}, {run.wall_time_s / 60:.1f} min{loaded}"
    )
    return run


# the training iterations replayed below
ITERS = [0, 10, 25, 50, 100] if profile != "smoke" else [0, 2]

# %% [markdown]
# The time this takes here, measured on a few training episodes, then the models, trained or
# loaded:

# %% tags=["hide-input"]
rate = training.measure_episodes_per_s(
    build("squared Euclidean", SEED),
    train_x,
    config("squared Euclidean", SEED),
    episodes=3,
    device=device,
)
missing = sum(not checkpoint(n, s).exists() for s in P["seeds"] for n in MODELS)
print(
    report_protonet.lsed_scale_time_estimate(
        rate, missing, len(MODELS), P["max_episodes"], max(ITERS), session
    )
)

# %%
runs = {}
for seed in P["seeds"]:
    for name in MODELS:
        runs[name, seed] = train(name, seed)

# %% [markdown]
# ### The sparse phase and the scale the softmax sees
#
# Over the first iterations of training (seed `SEED`), two measurements, replayed exactly as
# training makes them (`gradients.capture_training_gradients`, chapter 2): the share of
# near-zero gradients, where the softmax factor $|\mathbb{1}\{k = y\} - p_k|$ of a
# query-prototype pair is below $10^{-5}$ (as in chapters 2 and 7), and the median distance
# the softmax sees, minus its logit: $\alpha d$, $d_\mathrm{LSED}$, or $d$ of the scaled
# embeddings.

# %%
snaps = {}
for name in MODELS:
    cfg = config(name, SEED)
    stem = f"ch04b_capture_{MODELS[name][2]}_{profile}_seed{SEED}.pt"
    cache = checkpoint_dir() / stem
    snaps[name] = gradients.capture_training_gradients(
        build(name, SEED), train_x, cfg, ITERS, device, cache
    )

# %% [markdown]
# Left: the share of near-zero gradients at each replayed iteration; right: the median
# distance the softmax sees, on a log scale. At iteration 0 the derivation fixes what to
# expect. LSED, $\alpha = 0.01$ and the small-$\gamma$ model compute one softmax, so their
# shares of near-zero gradients coincide (on the right, LSED sits higher by the constant
# $(1 - r)s \approx 4$, which the softmax ignores), and the learned $\alpha$ starts on
# squared Euclidean's points. Everything after iteration 0 is training.


# %% tags=["hide-input"]
alphas = {name: m[1] for name, m in MODELS.items()}  # the fixed metric scales
report_protonet.sparse_phase_figure(snaps, alphas, ITERS)
plt.show()

# %% [markdown]
# ### Learning curves (seed `SEED`)
#
# Loss and accuracy of the five models over training, on training episodes (solid) and on
# validation episodes (dashed, with a 95% interval). Compare accuracies: a loss depends on
# the model's temperature. In the `cpu` profile this is early training:
# [how to read the `cpu` numbers](../book/intro.md#how-to-read-cpu-numbers).

# %%
fig = plots.learning_curves({name: runs[name, SEED].history for name in MODELS})
title = f"miniImageNet 5-way 1-shot, {P['max_episodes']} training episodes"
fig.suptitle(f"{title} ({profile} profile)", fontsize=10)
plt.show()

# %% [markdown]
# ### Where the learned α goes
#
# The learned $\alpha$ after each epoch of training, for every seed, against the fixed
# $\alpha = 0.01$ (dashed) and the start, 1 (dotted):

# %% tags=["hide-input"]
histories = {s: runs["α learned", s].history for s in P["seeds"]}
report_protonet.learned_alpha_figure(histories, R, ALPHA_LR)
plt.show()
learned = [runs["α learned", s].model.alpha for s in P["seeds"]]
print(
    "learned α at the selected epoch: " + ", ".join(f"{a:.3g}" for a in learned)
)

# %% [markdown]
# ### Test accuracy over training seeds
#
# Every model is tested on the same 5-way 1-shot test episodes (chapter 4's), drawn from the
# test classes, which no model saw in training. Two models are compared by a *paired
# difference* (chapter 4): their accuracies on the same test episode subtracted episode by
# episode, then averaged, so that an episode that is hard for both cancels out. Each line
# of the table below is a paired difference against squared Euclidean, per seed, then the
# mean and the spread over seeds.

# %%
# chapter 4's test tasks: 5-way 1-shot, 15 queries, the same for every model
TASKS = (5, 1, 15, P["test_episodes"], SEED)
tests = {}
for (name, seed), run in runs.items():
    cfg = config(name, seed)
    emb = embed(run.model, test_x, device=device)
    tests[name, seed] = evaluate_embeddings(
        emb, *TASKS, cfg.distance, cfg.scale, **cfg.distance_kwargs
    )

# %% [markdown]
# Each result is written to `results/` as a record ([the Results page](90_results.ipynb)
# collects them), then the table: per seed, the test accuracy and the paired difference
# against squared Euclidean.

# %% tags=["hide-input"]
methods = {name: m[3] for name, m in MODELS.items()}  # the records' methods
report_protonet.write_lsed_scale_records(
    runs, tests, config, methods, profile, device
)
gaps = report_protonet.lsed_scale_table(tests, MODELS, P, profile)


# %% [markdown]
# ## What this says
#
# Each question is a paired difference between two of the models above, on the same test
# episodes and averaged over the training seeds, with a 95% interval that adds the spread
# between seeds to that of the test episodes (`effects.measure`, the results page's
# implementation). Every difference is judged by the rule of [the Results
# page](90_results.ipynb) (`effects.verdict`); none of these has a published number, so an
# interval above or below zero reads *positive* or *negative* and one that holds zero *not
# resolved*. The count of seeds on which it is positive is given beside it, for each
# explanation alike.

# %% tags=["hide-input"]
records = load_results()  # read once: the effects and chapter 4's long run
found = report_protonet.lsed_scale_effects(records, profile)
display(Markdown(effects.markdown_table(list(found.values()))))
paths = {s: runs["α learned", s].history["alpha"] for s in P["seeds"]}
findings = report_protonet.lsed_scale_findings(
    found, paths, records, P, profile, SEED, ALPHA_LR
)
display(Markdown(findings))

# %% [markdown]
# ## Summary
#
# - **LSED with $s = 0$ is a scale of $r$.** LSED($s = 0$, $r$), metric scaling with
#   $\alpha = r$, embeddings times $\sqrt r$ and the last batch norm's $\gamma$, $\beta$ times
#   $\sqrt r$ give the same logits; fresh Conv-4s agree to float rounding. On Omniglot, where
#   the paper sets $s = 0$, LSED is a scale, and chapter 3's gain is a scale's.
# - A temperature changes no prediction, only the gradients: it acts through training. Forms
#   that agree at the first step part when the optimiser moves weights of a different size,
#   as a last $\gamma$ started at 0.1 instead of 1.
# - On miniImageNet ($s = 4$) LSED starts as the scale $\alpha = 0.01$ plus a constant,
#   because a fresh network's squared distances are far above 4; its kink can matter only
#   once training brings distances down towards $s$.
# - Five models trained on the same episodes from the same seeds split LSED's gain into a
#   temperature part ($\alpha = 0.01$ minus squared Euclidean) and a kink part (LSED minus
#   $\alpha = 0.01$), with a small start and a learned temperature beside them; "What this
#   says" above judges each by one rule, a 95% interval over test episodes and seeds.

# %% [markdown]
# ## Exercises
#
# The first two run in about a minute on the chapter's networks: set `EXERCISES = True` in
# the parameters cell and run the cells below.
#
# **Exercise 1 (about 8 s on 2 CPU cores).** Check the four forms at other temperatures,
# $r = 0.1$ and $r = 10^{-4}$, on the miniImageNet probe, and compare LSED with $s = 4$
# against $\alpha = r$ by their *probabilities* (their logits differ by the constant
# $(1 - r)s$). Print the smallest squared distance of the episode too.
#
# :::{admonition} What you should see
# :class: dropdown
# The four forms agree to float rounding at every $r$: nothing in the derivation depended on
# the value of $r$. LSED($s = 4$) and $\alpha = r$ give the same probabilities to rounding,
# because the smallest squared distance of a fresh network is in the hundreds, far above 4:
# at initialisation the kink is never reached.
# :::
#
# **Exercise 2 (about 60 s on 2 CPU cores).** Take the trained $\alpha = 0.01$ model (seed
# `SEED`) and re-test it with its distances multiplied by $\alpha = 1$ (plain squared
# Euclidean), 0.1 and 0.01, on the chapter's first 1000 test tasks (all 50 in `smoke`).
# Compare the accuracies with the model's own on those tasks, and look at the test loss.
#
# :::{admonition} What you should see
# :class: dropdown
# The same accuracy at every $\alpha$, equal to the model's own: a positive factor on every
# distance leaves the nearest prototype nearest. The loss changes (at $\alpha = 1$ it is
# much larger), since the temperature sets how confident the model is, not which
# class it picks. So the gaps in the test table are entirely what each temperature did to
# the weights during training.
# :::
#
# **Exercise 3.** Because batch normalisation normalises, no weight before the last batch
# norm can change the scale of the embeddings: only its $\gamma$ and $\beta$ can. The
# $\alpha = 0.01$ model could undo its temperature exactly by growing them tenfold (form 4
# backwards). If Adam moves a weight by at most about its learning rate, $10^{-3}$, per step,
# how many steps does it need to take $\gamma$ from 1 to 10? How many does the
# $\gamma \times 0.1$ model need to take its $\gamma$ from 0.1 back to 1? What does that say
# about the 500 training episodes of the `cpu` profile?
#
# :::{admonition} What you should see
# :class: dropdown
# About 9,000 steps against about 900. In 500 steps $\gamma$ moves by at most 0.5, and the
# effective scale is $\alpha\gamma^2$: the $\alpha = 0.01$ model stays between about
# $0.01 \times 0.5^2$ and $0.01 \times 1.5^2$, 0.0025 to 0.02, while the small-$\gamma$
# model can bring its $\gamma$ from 0.1 to 0.6, an effective $\alpha$ of up to 0.36. The two start as one softmax, but only the first is a
# fixed temperature over a short run; the second is a small start that training can undo.
# :::
#
# **Exercise 4 (about 5 min on 2 CPU cores).** Train LSED with $s = 0$, $r = 0.01$ from seed
# `SEED`, beside the $\alpha = 0.01$ model: after `import dataclasses`,
# `cfg = dataclasses.replace(config("LSED", SEED), distance_kwargs={"s": 0.0, "r": R})`,
# then `training.train_protonet(build("LSED", SEED), train_x, val_x, cfg, device=device)`
# (no checkpoint: nothing is saved). Compare its `history["val_acc"]` with
# `runs["α = 0.01", SEED].history["val_acc"]`. (The time is estimated from the chapter's
# own `cpu` training: one model of 500 episodes took 4 to 6 minutes on 2 cores.)
#
# :::{admonition} What you should see
# :class: dropdown
# The same validation accuracies, epoch by epoch: forms 1 and 2 are one function of the
# weights, so the same episodes and the same initial weights give the same training. On the
# CPU they agree to the last digit, since $-1 \cdot (d \cdot r)$ and $-r \cdot d$ round
# alike.
# :::

# %% tags=["exercise"]
# Exercise 1 (about 8 s on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    model, x, way, query = probes["miniImageNet"]
    ep = sample_episode(x, way, 1, query, torch.Generator().manual_seed(SEED))
    for r in (0.1, 1e-4):
        logits = scale.equivalent_logits(model, ep, r=r)
        ref = logits["LSED(s = 0, r)"]
        for form, value in logits.items():
            err = ((value - ref).abs().max() / ref.abs().max()).item()
            print(f"r = {r:g}, {form}: {err:.1e}")
        with torch.no_grad():
            q, c, _ = gradients.embed_episode(model.train(), ep)
        kink = protonet_logits(q, c, "lsed", s=4.0, r=r).softmax(-1)
        temp = protonet_logits(q, c, "squared_euclidean", r).softmax(-1)
        gap = (kink - temp).abs().max().item()
        d_min = squared_euclidean(q, c).min().item()
        print(f"r = {r:g}, LSED(s = 4) vs α = r: probabilities {gap:.1e} apart")
        print(f"  smallest squared distance {d_min:.0f}\n")

# %% tags=["exercise"]
# Exercise 2 (about 60 s on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    few = min(
        1000, P["test_episodes"]
    )  # a whole block: the chapter's first tasks
    first = (*TASKS[:3], few, SEED)
    emb = embed(runs["α = 0.01", SEED].model, test_x, device=device)
    own = tests["α = 0.01", SEED].per_episode[:few].mean().item()
    print(f"α = 0.01 model, its own test: accuracy {100 * own:.2f}%")
    for alpha in (1.0, 0.1, 0.01):
        res = evaluate_embeddings(emb, *first, "squared_euclidean", alpha)
        acc = f"accuracy {100 * res.accuracy:.2f}%"
        print(f"  re-tested at α = {alpha:g}: {acc}, loss {res.loss:.3g}")

# %% [markdown]
# ## What comes next
#
# A fresh Prototypical Network's softmax is saturated early in training, and a small enough
# scale (a high enough temperature) gets it out of the plateau; this chapter showed that LSED
# is that scale at the start (exactly so with $s = 0$), so the question becomes how to set
# the scale. Part III turns to the two other papers: both carry the same knob, and each
# adds ideas of its own, which their chapters test. Chapter 5, [dense
# classification](05_dense_classification.ipynb) {cite}`lifchitz2019dense`, trains a cosine
# classifier, whose score $\tau \cos\theta$ is a cosine times a learned scale $\tau$: the
# cosine is bounded, so $\tau$ alone sets how peaked the softmax can be, the same
# scale knob as $\alpha$ and $r$. On top of it the chapter puts a classifier at every
# location of the feature map; chapters 6 and 7 then grow new convolutions for each task and
# condition the features on the task, with TADAM's $\alpha$ chosen on validation.
