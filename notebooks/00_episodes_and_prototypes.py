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
# # 0. Episodes and prototypes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/00_episodes_and_prototypes.ipynb)

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
# - what an *episode* is (its way, shot, support set and queries), and why few-shot networks
#   are trained on episodes;
# - how a Prototypical Network classifies a query: one *prototype* per class, and a softmax
#   over distances whose *temperature* sets how peaked the probabilities are;
# - how to train a first Prototypical Network on Omniglot and test it on characters it never
#   saw.
#
# **The question.** How can a network recognise classes it has never seen from one labelled
# image each, and how well does a first Prototypical Network {cite}`snell2017prototypical`
# do it after a few minutes of training?
#
# This chapter sets up what the rest of the book stands on, with the real data. It is also
# where the book's story starts. Trained the same way on miniImageNet's natural images, a
# fresh Prototypical Network stays near chance early in training. Scale its distances down,
# by multiplying them by $\alpha = 0.01$ or with the leaky distance LSED that shrinks the
# large ones, and it leaves that plateau at once. The chapters that follow explain why and
# test it; this one defines the terms, and its Exercise 1 tries $\alpha = 0.01$ on Omniglot.

# %% tags=["parameters"]
# Runtime: on Colab, pick Runtime > Change runtime type > GPU for the `full`
# profile (the papers' protocol); a CPU runtime runs the shorter `cpu` profile.
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
RETRAIN = False  # True trains again even when a finished checkpoint exists
EXERCISES = None  # True runs the quick exercises at the end

# %%
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from fewshot_utils import (
    data,
    diagrams,
    distances,
    episodes,
    plots,
    report_lsed,
)
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.display import show_source
from fewshot_utils.episodes import sample_episode
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import column, exercises_on, pick, start
from fewshot_utils.report_lsed import pca_plot
from fewshot_utils.training import TrainConfig, train_protonet

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device


# %% [markdown]
# ## The data
#
# **Omniglot** {cite}`lake2015human` holds 1623 handwritten characters from 50 alphabets, each
# drawn once by 20 people. Following {cite}`vinyals2016matching`, every character at each of
# four rotations counts as its own class, and the classes are split into 4112 training,
# 688 validation and 1692 test classes. The split is by character, not by alphabet, so one
# alphabet can have characters on both sides (counted below). `load_omniglot` returns a split
# as one uint8 tensor `[classes, 20, 28, 28]`: the 105x105 originals, resized and inverted so
# that ink is bright.

# %%
t0 = time.perf_counter()
omni = {split: data.load_omniglot(split) for split in ("train", "val", "test")}
print(f"loaded in {time.perf_counter() - t0:.1f} s")
for split, x in omni.items():
    print(f"{split:5s} {tuple(x.shape)} {x.dtype}")

# %% tags=["hide-input"]
print(report_lsed.omniglot_alphabet_overlap())

# %%
names = data.split_names("omniglot", "train")
rows = [0, 1, 2, 3, 4, 5, 6, 7]  # a character's four rotations, then the next
titles = [names[i] for i in rows]
fig = plots.image_grid(omni["train"][rows, :10], row_titles=titles, scale=0.8)
fig.suptitle("Omniglot training classes: 10 of the 20 drawers", fontsize=10)
plt.show()

# %% [markdown]
# **miniImageNet** {cite}`vinyals2016matching,ravi2017optimization` holds 100 ImageNet classes
# of 600 colour images each at 84x84, split 64 / 16 / 20 into training, validation and test
# classes. Here are six validation classes.

# %%
if data.has_miniimagenet():
    mini_val = data.load_miniimagenet("val")
    print(f"val {tuple(mini_val.shape)} {mini_val.dtype}")
    titles = data.split_names("miniimagenet", "val")[:6]
    fig = plots.image_grid(mini_val[:6, :8], row_titles=titles, scale=1.0)
    plt.show()
else:
    print(data.MINIIMAGENET_MISSING)

# %% [markdown]
# ## An episode
#
# An *episode* is one small classification task drawn at random from the classes of a split.
# Its *way* $N$ is the number of classes it draws. Its *shot* $K$ is the number of labelled
# images it gives of each class, and these $N \times K$ images are its *support set*. Its
# *queries* are $Q$ further images of each class, which the network must classify from the
# support set alone. A 5-way 1-shot episode is a five-class problem with a single example per
# class.
#
# **Why episodes?** Train as you test {cite}`vinyals2016matching`. At test time the network
# meets episodes of classes it never saw, with a handful of labelled images each. Episodic
# training makes every training step such a task, drawn from the training classes: the
# network practises exactly what it will be tested on. It cannot memorise the training
# classes either, because each episode numbers its classes afresh.
#
# The sampler draws the classes and the images with one `argsort` of random keys, so it is
# vectorised and reproducible from a `torch.Generator`:

# %%
show_source(episodes.sample_episode)

# %%
gen = torch.Generator().manual_seed(SEED)
ep = sample_episode(omni["test"], way=5, shot=1, query=5, generator=gen)
fig = plots.show_episode(ep.support, ep.query, scale=0.9)
title = "A 5-way 1-shot test episode: support (left), five queries per class"
fig.suptitle(title, fontsize=10)
plt.show()

# %% [markdown]
# ## Prototypes
#
# The whole method in one picture, from an episode's images to a query's class probabilities:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Flow chart of a Prototypical Network. An episode's support set (N classes of K images each) and its query images pass through the same embedding network. In the embedding space, the support embeddings of each class are averaged into that class's prototype, and a query's embedding is compared with every prototype by a distance d: the squared Euclidean distance, or LSED. Minus the distance times a scale alpha (an inverse temperature) gives the logits, and a softmax turns them into the query's class probabilities."}}
diagrams.protonet_pipeline()
plt.show()

# %% [markdown]
# A Prototypical Network embeds every image with a network $f_\phi$. The *prototype* of class
# $k$ is the mean of its support embeddings,
# $\mathbf{c}_k = \frac{1}{|S_k|}\sum_{\mathbf{x}_i \in S_k} f_\phi(\mathbf{x}_i)$. A query
# $\mathbf{z} = f_\phi(\mathbf{x})$ is compared with every prototype by a distance $d$, here
# the squared Euclidean distance. Its *logits* are its unnormalised class scores,
# $\ell_k = -\alpha\, d(\mathbf{z}, \mathbf{c}_k)$: the nearer the prototype, the higher the
# score. The *softmax* turns logits into probabilities, positive and summing to one:
#
# $$p(y = k \mid \mathbf{z}) = \frac{\exp(\ell_k)}{\sum_j \exp(\ell_j)}.$$
#
# The *temperature* sets how peaked these probabilities are. Here it enters as the factor
# $\alpha$ on the distances, the *scale* ($\alpha = 1/T$ for a temperature $T$): a large
# $\alpha$ (a low temperature) makes the softmax nearly one-hot, a small one (a high
# temperature) makes it flat. The book calls $\alpha$ the scale and says "temperature" only
# for $1/\alpha$. Prototypical Networks use $\alpha = 1$.
# Training minimises $-\log p(y = y_i \mid \mathbf{z})$ over the queries of each episode. In
# code, with `scale` for $\alpha$:

# %%
show_source(distances.prototypes)
show_source(distances.protonet_logits)

# %% [markdown]
# The network is Conv-4: four blocks of a 3x3 convolution with 64 filters, batch
# normalisation, ReLU and 2x2 max-pooling, which turns a 28x28 character into a 64-dimensional
# vector. Below, a 5-way 5-shot episode is embedded by an *untrained* Conv-4 and projected on
# its first two principal components (`pca_plot`, a plotting helper of the package). Even random
# convolutions separate some classes, and the prototypes (stars) sit at the class means.

# %%
torch.manual_seed(SEED)
net = conv4_for("omniglot").eval()
ep5 = sample_episode(omni["test"], way=5, shot=5, query=10, generator=gen)
fig, ax = plt.subplots(figsize=(5, 4))
pca_plot(net, ep5, "untrained: supports (o), queries (.), prototypes (*)", ax)
plt.show()

# %% [markdown]
# ## A first Prototypical Network
#
# We now train Conv-4 the Prototypical Networks way: 60-way 1-shot episodes with 5 queries per
# class, Adam with learning rate $10^{-3}$ halved every 2000 episodes, and after every 100
# episodes ("an epoch") a validation pass on 5-way episodes of the validation classes; the
# epoch with the lowest validation loss is kept. The profile sets how long we train (`smoke`
# only checks that the code runs, on a few classes; `cpu` is a short real run); chapter 3
# compares with the paper at full length.

# %%
SETTINGS = {  # name: (smoke, cpu, full)
    "classes": (40, None, None),
    "way": (10, 60, 60),
    "max_episodes": (20, 600, 5000),
    "episodes_per_epoch": (10, 100, 100),
    "val_episodes": (20, 100, 100),
    "test_episodes": (100, 10_000, 10_000),
}
settings = column(profile, SETTINGS)
train_x, val_x, test_x = omni["train"], omni["val"], omni["test"]
if settings["classes"]:  # smoke: a few classes only
    n_cls = settings["classes"]
    train_x, val_x, test_x = (x[:n_cls] for x in (train_x, val_x, test_x))
config = TrainConfig(
    way=settings["way"],
    shot=1,
    query=5,
    max_episodes=settings["max_episodes"],
    episodes_per_epoch=settings["episodes_per_epoch"],
    val_episodes=settings["val_episodes"],
    seed=SEED,
)
print(config)

# %%
torch.manual_seed(SEED)
model = conv4_for("omniglot")
ckpt = checkpoint_dir() / f"ch00_protonet_omniglot_{profile}_seed{SEED}.pt"
# checkpoint: resume an interrupted run, or load a finished one unless RETRAIN
run = train_protonet(model, train_x, val_x, config, ckpt, RETRAIN, device)

# %% tags=["hide-input"]
print(report_lsed.training_summary(run))

# %%
fig = plots.learning_curves({"ProtoNet": run.history})
fig.suptitle("Omniglot: 60-way 1-shot training, 5-way validation", fontsize=10)
plt.show()

# %% [markdown]
# ## Testing on new characters
#
# The test classes are characters the network never saw. At test time the network is in
# evaluation mode, so an image's embedding does not depend on the episode it appears in: we
# embed every test image once and draw all test episodes over the cached embeddings.

# %%
show_source(evaluate_embeddings)

# %%
TEST_QUERY = 15  # queries per class in a test episode (training: config.query)
t0 = time.perf_counter()
test_emb = embed(run.model, test_x, device=device)
embed_time = time.perf_counter() - t0
tests = {}
for way in (5, 20):
    t0 = time.perf_counter()
    n_test = settings["test_episodes"]
    res = evaluate_embeddings(test_emb, way, 1, TEST_QUERY, n_test, seed=SEED)
    tests[way] = (res, time.perf_counter() - t0)
    print(f"{way}-way 1-shot: {res}")

# %% [markdown]
# Each "±" is a 95% interval over the *test episodes*: it says how far another draw of test
# tasks would move the number for this one trained network, not how far training again would
# ([the protocols page](../book/protocols.md) defines it). Each number is saved with its
# provenance as a results record (a `smoke` run writes none), and
# [the Results page](90_results.ipynb) sets it beside the paper's.

# %% tags=["hide-input"]
args = (config, run, embed_time, profile, device)
records = report_lsed.first_protonet_records(tests, *args)

# %% [markdown]
# Finally, one 5-way 1-shot test episode with the trained network's predictions: a green frame
# is a correct query, a red one is wrong and names the class it was given. Below it, the
# episode of the embedding plot above, before and after training.

# %%
ep = sample_episode(test_x, way=5, shot=1, query=6, generator=gen)
run.model.eval()
with torch.no_grad():
    sup = run.model(ep.support.flatten(0, 1).to(device)).float()
    qry = run.model(ep.query.flatten(0, 1).to(device)).float()
pred = distances.protonet_logits(qry, sup).argmax(1).cpu()
fig = plots.show_episode(ep.support, ep.query, predictions=pred, scale=0.9)
plt.show()

fig, axes = plt.subplots(1, 2, figsize=(9, 4))
pca_plot(conv4_for("omniglot").eval(), ep5, "untrained", axes[0])
pca_plot(run.model.cpu().eval(), ep5, "after training", axes[1])
plt.show()

# %% [markdown]
# After training, the classes of the same episode form tight clusters around their
# prototypes.

# %% [markdown]
# ## Summary
#
# - An episode is a small few-shot task: $N$ classes (the way), $K$ labelled support images
#   of each (the shot) and queries to classify. Training on episodes of the training classes
#   trains the network for the task it is tested on.
# - A Prototypical Network represents each class by the mean of its support embeddings, its
#   prototype, and classifies a query by a softmax over its negative distances to the
#   prototypes, multiplied by $\alpha$.
# - The temperature ($1/\alpha$) sets how peaked that softmax is; Prototypical Networks use
#   $\alpha = 1$.
# - A few minutes of training on Omniglot give a network that classifies characters it never
#   saw far above chance; each number comes with a 95% interval over test episodes, which
#   does not cover another training run.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (about 2 min on 2 CPU cores).** Give the network a temperature: train it for
# its first 100 episodes with the distances multiplied by $\alpha = 0.01$
# (`TrainConfig(scale=0.01)`), beside the same 100 episodes at $\alpha = 1$, both from the
# same initial weights and episodes, with a validation pass every 20 episodes. Set
# `EXERCISES = True` in the parameters cell and run the cell below. Does the small $\alpha$
# help on Omniglot, as the introduction says it does on miniImageNet?
#
# :::{admonition} What you should see
# :class: dropdown
# No: on Omniglot $\alpha = 0.01$ learns *more slowly*. In our run (`cpu` profile, seed 0),
# after 100 episodes $\alpha = 1$ reached about 94% validation accuracy and $\alpha = 0.01$
# about 90%, with training accuracy 76% against 66%. A fresh Conv-4 maps Omniglot characters
# to only 64 dimensions, and their squared distances in a training episode are a few tens
# (median about 40), with differences of a few units: at $\alpha = 1$ the softmax is already
# graded. Multiplying them by 0.01 makes the 60-way softmax nearly uniform, and the loss
# pushes every wrong prototype almost equally. A temperature only helps when the distances are
# large enough to saturate the softmax, and why they are on miniImageNet is chapter 1's
# question.
# :::
#
# **Exercise 2.** Two queries of a 3-way episode are misclassified. Query A's squared
# distances to the prototypes are 110 (its own class), 100 and 130; query B's are 130 (its own
# class), 100 and 110. For each, compute the softmax probabilities and the gradient of the
# loss with respect to each logit, $p_k - \mathbb{1}\{k = y\}$, at $\alpha = 1$ and at
# $\alpha = 0.01$. Which $\alpha$ tells the network that B is the worse mistake?
#
# :::{admonition} What you should see
# :class: dropdown
# At $\alpha = 1$ both queries give the gradients $(-1, +1, 0)$ to within $10^{-4}$: the
# softmax puts all the probability on the nearest prototype, so the gradient says only "true
# prototype nearer, nearest wrong one farther", whatever the distances, and the third
# prototype gets nothing. At $\alpha = 0.01$ the probabilities are $(0.34, 0.38, 0.28)$ for A
# and $(0.28, 0.38, 0.34)$ for B, and the gradients $(-0.66, 0.38, 0.28)$ and
# $(-0.72, 0.38, 0.34)$: graded, larger for the worse mistake, and every prototype is moved.
# This is the *saturation* of chapter 1.
# :::
#
# **Exercise 3.** Expand $-\lVert \mathbf{z} - \mathbf{c}_k \rVert^2$ and show that, for the
# softmax, a Prototypical Network with the squared Euclidean distance is a linear classifier
# on the embedding {cite}`snell2017prototypical`. What are its weights and biases, and what
# does $\alpha$ do to them?
#
# :::{admonition} What you should see
# :class: dropdown
# $-\lVert \mathbf{z} - \mathbf{c}_k \rVert^2 = -\lVert \mathbf{z} \rVert^2 +
# 2\mathbf{c}_k^\top \mathbf{z} - \lVert \mathbf{c}_k \rVert^2$. The first term is the same
# for every class, and a softmax does not change when the same number is added to every
# logit, so the logits act as $\mathbf{w}_k^\top \mathbf{z} + b_k$ with
# $\mathbf{w}_k = 2\mathbf{c}_k$ and $b_k = -\lVert \mathbf{c}_k \rVert^2$. $\alpha$ multiplies
# both: the scale is the size of the classifier's weights. Chapter 5's cosine classifier
# is a linear classifier of this kind too, with its own scale $\tau$.
# :::
#
# **Exercise 4 (a few seconds on 2 CPU cores).** Test the trained network with more shots:
# run `evaluate_embeddings(test_emb, way, 5, TEST_QUERY, 1000, seed=SEED)` for `way` 5 and 20
# in a new cell and compare with the 1-shot numbers above.
#
# :::{admonition} What you should see
# :class: dropdown
# Five shots score higher than one at either way: the mean of five drawings is a better
# estimate of where the class lies than a single drawing. Twenty-way is harder than five-way
# at either shot, since each query has more classes to be confused with. The network was
# trained at 1 shot only; Prototypical Networks train at the shot they test.
# :::

# %% tags=["exercise"]
# Exercise 1 (about 2 min on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    n = pick(profile, smoke=10, cpu=100, full=100)  # training episodes
    first = dict(max_episodes=n, episodes_per_epoch=n // 5)  # 5 validations
    curves = {}
    for alpha in (1.0, 0.01):
        torch.manual_seed(SEED)  # the same initial weights, the same episodes
        net_a = conv4_for("omniglot")
        short = replace(config, scale=alpha, **first)
        r = train_protonet(net_a, train_x, val_x, short, progress=False)
        curves[f"α = {alpha:g}"] = r.history
    fig = plots.learning_curves(curves)
    fig.suptitle(f"the first {n} episodes at two temperatures", fontsize=10)
    plt.show()

# %% [markdown]
# ## What comes next
#
# Exercise 1 found no plateau on Omniglot, yet on miniImageNet a fresh Prototypical Network
# stays near chance early in training. Chapter 1, [the softmax saturation
# argument](01_softmax_saturation.ipynb), explains the difference: the squared distances of a
# fresh network grow with the dimension of its embedding, to hundreds or thousands on
# miniImageNet, and a softmax over such distances is *saturated*: one class gets all the
# probability and almost no gradient flows back (Exercise 2). A small enough $\alpha$ gets it
# out of the plateau; LSED (chapter 2) and the other papers' scales (chapters 5 to 7) turn the
# same knob.
