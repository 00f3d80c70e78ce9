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
# # 3. Prototypical Networks on Omniglot: squared Euclidean vs LSED
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/03_protonet_omniglot.ipynb)

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
# - how to compare two distances fairly: the same network, initial weights and training
#   episodes, and the same test episodes, so that the difference between the two models is
#   measured episode by episode (*paired*) and nothing but the distance differs;
# - what LSED changes on Omniglot, where the paper's setting makes it a fixed scale: not
#   how a trained network classifies, but how fast it trains;
# - how to set the numbers of a short training run beside a paper's, and what the 95% interval
#   of a test accuracy does and does not cover.
#
# **The question.** Trained on the real Omniglot, does a Prototypical Network learn better with
# LSED than with the squared Euclidean distance, as Shen and Liu's Table 1 reports, and is the
# gain larger than the uncertainty of our own measurement?

# %% tags=["parameters"]
# Runtime: on Colab, pick Runtime > Change runtime type > GPU for the `full`
# profile (the papers' protocol); a CPU runtime runs the shorter `cpu` profile.
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
RETRAIN = False  # True trains again even when a finished checkpoint exists
EXERCISES = None  # True runs the quick exercises at the end
TRAINVAL = None  # retrain on train + val for the best length; None: in `full`

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import torch
from fewshot_utils import data, distances, plots, report_protonet
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.episodes import sample_episode
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import column, exercises_on, pick, start
from fewshot_utils.training import (
    TrainConfig,
    measure_episodes_per_s,
    retrain_on_trainval,
    train_protonet,
    trainval_config,
)
from IPython.display import Markdown, display

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device

# %% [markdown]
# Chapters 1 and 2 showed why a fresh Prototypical Network {cite}`snell2017prototypical` is
# slow to start: its squared distances are so large that the softmax saturates and most of
# its gradient is zero, and the leaky squared Euclidean distance (LSED) of Shen and Liu
# {cite}`shen2018lsed` shrinks the large distances so that the gradient flows again. Chapter 2
# watched this over the first 16 training iterations. This chapter trains both distances for
# as long as the profile allows and tests them on characters they never saw, as the paper's
# Table 1 does on Omniglot {cite}`lake2015human`, where it reports a small gain for LSED: half
# a point in 20-way 1-shot, less in 5-shot.
#
# ## The data and the settings
#
# The data are the Omniglot splits of [chapter 0](00_episodes_and_prototypes.ipynb).
# `SETTINGS` holds one line per setting, its value in each profile `(smoke, cpu, full)`;
# [the protocols page](../book/protocols.md) sets them beside the papers' protocol.

# %%
TRAINVAL = profile == "full" if TRAINVAL is None else TRAINVAL
omni = {split: data.load_omniglot(split) for split in ("train", "val", "test")}
for split, x in omni.items():
    print(f"{split:8s} {tuple(x.shape)} {x.dtype}")

SETTINGS = {  # name: (smoke, cpu, full)
    "classes": (40, None, None),
    "way": (10, 60, 60),
    "runs": ((1,), (1,), (1, 5)),
    "max_episodes": (6, 3000, 1_000_000),
    "episodes_per_epoch": (3, 100, 100),
    "lr_halve_every": (2000, 1000, 2000),
    "val_episodes": (10, 100, 100),
    "patience": (None, None, 200),
    "test_episodes": (50, 10_000, 10_000),
}
settings = column(profile, SETTINGS)
subset = slice(settings["classes"])  # smoke: the first few classes only
train_x, val_x, test_x = (omni[s][subset] for s in ("train", "val", "test"))
METHODS = {"squared_euclidean": {}, "lsed": {"s": 0.0, "r": 0.01}}
NAMES = {"squared_euclidean": "ProtoNet", "lsed": "ProtoNet(LSED)"}

# %% [markdown]
# ## Two distances, one network
#
# A Prototypical Network classifies a query by a softmax over its negative distances to the
# class prototypes. The two models here differ in that distance only: the squared Euclidean
# distance $d$, or LSED, which keeps $d$ up to a threshold $s$ and grows with a slope $r$
# above it ([chapter 2](02_lsed.ipynb) derives it). The paper's Omniglot setting, in `METHODS`
# above, is $s = 0$ and $r = 0.01$: every distance is multiplied by 0.01, so LSED is here a
# fixed scale $\alpha = 0.01$ ([chapter 4b](04b_lsed_scale.ipynb) shows the four equivalent
# forms). The nearest prototype stays the nearest, so a trained network classifies exactly
# alike with either distance: whatever gap we measure was made in training, where a softmax
# over distances 100 times smaller is far from saturated. (Chapters
# [1](01_softmax_saturation.ipynb) and [2](02_lsed.ipynb) measured how much of a fresh
# network's gradient is zero.) The network is the LSED paper's Conv-4 without its last
# max-pooling, which turns a 28x28 character into a 576-dimensional embedding. Chapter 0's
# network kept that pooling and embedded in 64 dimensions, where $\alpha = 0.01$ *slowed*
# training (its Exercise 1): squared distances of a few tens do not saturate a softmax.
# Squared distances grow with the dimension ([chapter 1](01_softmax_saturation.ipynb)), so in
# 576 dimensions the softmax starts nearer saturation, the case a small scale is meant for.
#
# ## The experiment
#
# Both distances train the same network from the same initial weights on the same training
# episodes. Training follows Prototypical Networks on Omniglot: 60-way episodes with 5 queries
# per class, Adam, and after every *epoch* of 100 training episodes a validation pass on 100
# fixed 5-way episodes of the validation classes; the weights with the lowest validation loss
# are kept. [The protocols page](../book/protocols.md) has the rest. This run trains:

# %% tags=["hide-input"]
display(Markdown(report_protonet.omniglot_plan(profile, settings, TRAINVAL)))

# %% [markdown]
# One function gives every model's training configuration:


# %%
def config_for(train_shot: int, distance: str) -> TrainConfig:
    """The training configuration of one model (selected on validation)."""
    return TrainConfig(
        way=settings["way"],
        shot=train_shot,
        query=5,
        max_episodes=settings["max_episodes"],
        episodes_per_epoch=settings["episodes_per_epoch"],
        lr_halve_every=settings["lr_halve_every"],
        distance=distance,
        distance_kwargs=METHODS[distance],
        val_way=5,
        val_query=15,
        val_episodes=settings["val_episodes"],
        select_on="loss",
        patience=settings["patience"],
        seed=SEED,
    )


for shot in settings["runs"]:
    print(config_for(shot, "lsed"))

# %% [markdown]
# Before training, a folded cell measures this machine's training speed and prints how long
# the training will take. On a CPU it also keeps one thread or all, whichever is faster: the
# count changes the last digits of a CPU run, so the records name it.


# %% tags=["hide-input"]
def probe(shot: int) -> float:
    """Measured training episodes per second of the ``shot``-shot configuration."""
    cfg = config_for(shot, "squared_euclidean")
    model = conv4_for("omniglot", last_pool=False)
    episodes = pick(profile, smoke=1, cpu=5, full=5)
    return measure_episodes_per_s(model, train_x, cfg, episodes, device=device)


print(
    report_protonet.omniglot_time_estimate(
        probe, settings, len(METHODS), TRAINVAL, session
    )
)

# %% [markdown]
# ## Training both distances
#
# `torch.manual_seed(SEED)` before each network gives both distances the same initial
# weights, and the configuration's seed gives them the same training episodes. A model whose
# finished checkpoint exists is loaded instead of trained again (`RETRAIN = True` trains it
# anyway).

# %%
runs, configs = {}, {}
for shot in settings["runs"]:
    for distance in METHODS:
        torch.manual_seed(SEED)  # the same initial weights for both distances
        name = f"ch03_{distance}_{shot}shot_{profile}_seed{SEED}.pt"
        ckpt = checkpoint_dir() / name
        configs[distance, shot] = config_for(shot, distance)
        run = train_protonet(
            conv4_for("omniglot", last_pool=False),
            train_x,
            val_x,
            configs[distance, shot],
            checkpoint=ckpt,
            retrain=RETRAIN,
            device=device,
        )
        runs[distance, shot] = run
        best = run.history["episode"][run.best_epoch - 1]
        print(
            f"{NAMES[distance]:15s} {shot}-shot: {run.episodes_done} episodes, "
            f"best after {best}, {run.wall_time_s / 60:.1f} min"
            + (" (loaded from its checkpoint)" if run.loaded else "")
        )

# %% [markdown]
# ## Learning curves
#
# Loss and accuracy on the training episodes (60-way, averaged over each epoch) and on the
# validation episodes (5-way; the band is the 95% interval over them). The validation
# episodes are the same at every point and for both distances. The two losses are not on one
# scale (LSED's logits are 100 times smaller), so compare the accuracies, and look at the
# first points: that is where a saturated softmax should cost squared Euclidean the most.
# In the `cpu` profile the curves are early training:
# [how to read the `cpu` numbers](../book/intro.md#how-to-read-cpu-numbers).

# %%
for shot in settings["runs"]:
    curves = {NAMES[d]: runs[d, shot].history for d in METHODS}
    fig = plots.learning_curves(curves)
    fig.suptitle(
        f"Omniglot, {settings['way']}-way {shot}-shot training, {profile}"
    )
    plt.show()
h_sed, h_lsed = (runs[d, min(settings["runs"])].history for d in METHODS)
ahead = sum(b > a for a, b in zip(h_sed["val_acc"], h_lsed["val_acc"]))
print(
    f"ProtoNet(LSED) ahead on validation accuracy at {ahead} of "
    f"{len(h_sed['val_acc'])} points; after the first epoch: "
    f"{100 * h_sed['val_acc'][0]:.2f}% (ProtoNet) vs "
    f"{100 * h_lsed['val_acc'][0]:.2f}% (ProtoNet(LSED))"
)

# %% [markdown]
# In `full` the protocol's last step follows (`TRAINVAL`, see [the protocols
# page](../book/protocols.md)): each model is trained again from the same start on the
# training and validation classes together, for its best number of episodes, and those final
# weights are tested.

# %%
if TRAINVAL:
    for (distance, shot), run in list(runs.items()):
        torch.manual_seed(SEED)  # the same initial weights as the selected run
        name = f"ch03_{distance}_{shot}shot_{profile}_seed{SEED}_trainval.pt"
        ckpt = checkpoint_dir() / name
        selected_config = configs[distance, shot]
        configs[distance, shot] = trainval_config(selected_config, run)
        runs[distance, shot] = retrain_on_trainval(
            conv4_for("omniglot", last_pool=False),
            train_x,
            val_x,
            run,
            selected_config,
            checkpoint=ckpt,
            retrain=RETRAIN,
            device=device,
        )
        best = configs[distance, shot].max_episodes
        print(f"{NAMES[distance]} {shot}-shot retrained: {best} episodes")
else:
    print("TRAINVAL is off: the models selected on validation are tested.")

# %% [markdown]
# ## Testing on new characters
#
# Every model embeds the test images once, and the test episodes (15 queries per class) are
# drawn over the embeddings. One seed draws the same test episodes for every model, so the
# two distances are compared *paired*, as in chapter 2: the difference of their accuracies on
# each episode, averaged over the episodes, with its own 95% interval (the interval of
# [chapter 0](00_episodes_and_prototypes.ipynb)). That interval is usually much narrower than
# either accuracy's, because an episode that is hard for one model is hard for the other.
# Each model takes 5-way and 20-way tests, with 1 and 5 shots:

# %%
tests, test_time = {}, {}
shots = settings["runs"]  # cpu trains 1-shot models only, for both tests
for distance in METHODS:
    for test_shot in (1, 5):
        train_shot = test_shot if test_shot in shots else min(shots)
        run = runs[distance, train_shot]
        t0 = time.perf_counter()
        emb = embed(run.model, test_x, device=device)
        seconds_embed = time.perf_counter() - t0
        for way in (5, 20):
            t0 = time.perf_counter()
            res = evaluate_embeddings(
                emb,
                way,
                test_shot,
                15,
                settings["test_episodes"],
                seed=SEED,
                distance=distance,
                **METHODS[distance],
            )
            seconds = time.perf_counter() - t0
            tests[distance, way, test_shot] = res
            test_time[distance, way, test_shot] = (
                train_shot,
                seconds_embed,
                seconds,
            )
            print(f"{NAMES[distance]:15s} {way:2d}-way {test_shot}-shot: {res}")

# %% [markdown]
# Each result is saved as a record under `results/`, with its training configuration and
# history and the papers' numbers for the same test; [the Results page](90_results.ipynb)
# collects them (a `smoke` run writes none):


# %% tags=["hide-input"]
for line in report_protonet.write_omniglot_records(
    tests, test_time, configs, runs, TRAINVAL, profile, device
):
    print("   ", line)

# %% [markdown]
# ## Our numbers beside the papers'
#
# Accuracies in % with their 95% intervals over the test episodes, and the paired difference.
# The LSED paper reports 20-way tests only; the Prototypical Networks paper's models had 64-d
# embeddings (the last pooling kept). In the `cpu` profile the models trained for a few
# thousand episodes: [how to read the `cpu` numbers](../book/intro.md#how-to-read-cpu-numbers).


# %% tags=["hide-input"]
diffs = report_protonet.omniglot_table(tests, settings, profile)

# %% [markdown]
# ## A test episode
#
# One 20-way 1-shot test episode of characters the networks never saw, with the predictions
# of ProtoNet(LSED): a green frame is a correct query, a red one is wrong and names the class
# (row) it was given.

# %%
gen = torch.Generator().manual_seed(SEED)
ep = sample_episode(test_x, way=20, shot=1, query=5, generator=gen)
truth = torch.arange(20).repeat_interleave(5)
preds = {}
for distance, kwargs in METHODS.items():
    model = runs[distance, 1].model.eval()
    with torch.no_grad():
        sup = model(ep.support.flatten(0, 1).to(device)).float()
        qry = model(ep.query.flatten(0, 1).to(device)).float()
    logits = distances.protonet_logits(qry, sup, distance, **kwargs)
    preds[distance] = logits.argmax(1).cpu()
    wrong = (preds[distance] != truth).sum()
    print(f"{NAMES[distance]:15s}: {wrong} of {len(truth)} queries wrong")
plots.show_episode(ep.support, ep.query, predictions=preds["lsed"], scale=0.55)
plt.show()

# %% [markdown]
# ## What we found
#
# In this run (the folded cell only formats the numbers above;
# [how to read the `cpu` numbers](../book/intro.md#how-to-read-cpu-numbers)):

# %% tags=["hide-input"]
findings = report_protonet.omniglot_findings(
    tests,
    diffs,
    ahead,
    len(h_sed["val_acc"]),
    profile,
    session.elapsed(),
    any(r.loaded for r in runs.values()),
)
display(Markdown(findings))

# %% [markdown]
# In the book's `cpu` run (its records are on [the Results page](90_results.ipynb)) LSED is
# ahead on validation from the first epoch and on
# every test, by far more than the paired interval, and its lead is largest in the hardest
# test (20-way 1-shot) and smallest with five shots, the paper's pattern. Two things limit
# what that says, and the box on [how to read the `cpu`
# numbers](../book/intro.md#how-to-read-cpu-numbers) explains both. A run of a few thousand
# episodes favours the distance that starts faster, which is LSED's claimed advantage, so the
# gap is a gap early in training, larger than the paper's at the end. And each distance
# trained one network from one seed: the interval covers the choice of test episodes, not
# another training run. Whether the gap exceeds the spread between training runs is the
# question chapter 4 measures.

# %% [markdown]
# ## Summary
#
# - A fair comparison of two distances trains the same network from the same initial weights
#   on the same episodes and tests both on the same test episodes; the paired difference then
#   has an interval much narrower than either accuracy's.
# - On Omniglot, LSED with the paper's $s = 0$ is a fixed scale $\alpha = r = 0.01$: it
#   classifies a trained embedding exactly as squared Euclidean does, so any gap comes from
#   training.
# - Trained for the `cpu` profile's 3000 episodes, LSED is ahead from the first epoch, most in
#   20-way 1-shot and least with five shots, as in the paper's Table 1, but by more than the
#   paper's gap: a short run measures how fast each distance starts.
# - A test accuracy's 95% interval covers the test tasks drawn for one trained network, not
#   the randomness of training.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (about 40 s on 2 CPU cores).** Train squared Euclidean with a fixed
# scale $\alpha = 0.01$ (`TrainConfig(scale=0.01)`, TADAM's metric scale of chapter 1)
# for one epoch, from the chapter's initial weights and episodes, and compare its training
# loss and validation accuracy with the first epoch of the chapter's two models. Set
# `EXERCISES = True` in the parameters cell and run the cell below.
#
# :::{admonition} What you should see
# :class: dropdown
# The tempered run and ProtoNet(LSED) agree to every printed digit: with $s = 0$, the LSED
# logits $-(0 + d \cdot 0.01)$ and the tempered ones $-0.01\,d$ are the same numbers, so the
# two runs take the same steps. (If the LSED model was loaded from a checkpoint trained with
# another number of CPU threads, the last digits can differ: the sums round differently.)
# ProtoNet, at scale $\alpha = 1$, is behind after its first epoch. Whatever LSED gains on
# Omniglot, a plain scale gains too.
# :::
#
# **Exercise 2 (about 1 min on 2 CPU cores).** Test the chapter's two 1-shot models on harder
# and easier tasks than the table's: 50-way 1-shot and 20-way 10-shot, 1000 episodes each.
# Embed the test set once per model (`embed(runs[d, 1].model, test_x)`) and call
# `evaluate_embeddings` with the chapter's `METHODS[d]`, then compute the paired differences.
#
# :::{admonition} What you should see
# :class: dropdown
# The table already shows the pattern: the gap grows with the way (20-way against 5-way) and
# shrinks with the shots. Expect a larger gap at 50-way, where each query has more wrong
# prototypes to be confused with, and a smaller one at 10 shots, where a prototype averages
# away more of the embedding's noise and both models come close to 100%.
# :::
#
# **Exercise 3 (about 35 min on 2 CPU cores).** Measure what the chapter could not: the spread
# between training runs. Set `SEED = 1` (other initial weights, training and test episodes),
# point the environment variable `FEWSHOT_RESULTS_DIR` at a scratch folder so that the seed-0
# records stay, and run the chapter again. Compare the two seeds' paired gaps.
#
# :::{admonition} What you should see
# :class: dropdown
# If the two gaps differ by more than their paired intervals, the test-episode interval
# understates how uncertain the comparison is, because it ignores training. Chapter 4 makes
# this comparison over three seeds on miniImageNet, where the gap moves between seeds by far
# more than its interval.
# :::
#
# **Exercise 4.** Two models' per-episode accuracies have the same standard deviation
# $\sigma$ and correlation $\rho$ over $n$ episodes. Show that the paired interval of their
# difference is $\sqrt{2(1 - \rho)}$ times the interval $h$ of either accuracy, and that the
# unpaired one, which ignores the pairing, is $\sqrt 2\, h$. Use the 20-way 1-shot row of the
# table to estimate $\rho$.
#
# :::{admonition} What you should see
# :class: dropdown
# The difference of one episode has variance $\sigma^2 + \sigma^2 - 2\rho\sigma^2 =
# 2(1 - \rho)\sigma^2$, so its interval is $1.96\sqrt{2(1-\rho)}\,\sigma/\sqrt n =
# \sqrt{2(1-\rho)}\,h$; without the pairing the covariance term is dropped, leaving
# $\sqrt 2\, h$. With $h_d$ the paired half-width, $\rho = 1 - (h_d / h)^2 / 2$: a paired
# interval half as wide as the accuracies' means $\rho \approx 0.88$. The two models find the
# same episodes hard.
# :::

# %% tags=["exercise"]
# Exercise 1 (about 40 s on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    torch.manual_seed(SEED)  # the chapter's initial weights
    cfg = dataclasses.replace(
        config_for(1, "squared_euclidean"),
        scale=0.01,  # the scale α
        max_episodes=settings["episodes_per_epoch"],  # one epoch
    )
    net = conv4_for("omniglot", last_pool=False)
    tempered = train_protonet(net, train_x, val_x, cfg, device=device)
    histories = {
        "α = 0.01": tempered.history,
        "LSED": h_lsed,
        "ProtoNet": h_sed,
    }
    for name, h in histories.items():
        print(
            f"{name:9s} after {h['episode'][0]} episodes: training loss "
            f"{h['train_loss'][0]:.6f}, validation accuracy "
            f"{100 * h['val_acc'][0]:.3f}%"
        )

# %% [markdown]
# ## What comes next
#
# Omniglot is the easy case: simple characters, 576-dimensional embeddings, and an LSED that
# is nothing but a scale. [Chapter 4](04_protonet_miniimagenet.ipynb) makes the same
# comparison on natural images, miniImageNet, where the embeddings have 1600 dimensions, a
# fresh network's squared distances run to thousands, and LSED uses $s = 4$, so that small
# distances keep their full size. It also trains each distance from several seeds, to measure
# the spread between training runs that this chapter left open.
