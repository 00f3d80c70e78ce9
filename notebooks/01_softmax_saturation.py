# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: mystnb
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   mystnb:
#     render_markdown_format: myst
# ---

# %% [markdown]
# # 1. The softmax saturation argument
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/01_softmax_saturation.ipynb)

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
# - why the gradient of a Prototypical Network's loss with respect to each distance is 0 or
#   ±1 once the distances are large: the softmax *saturates*;
# - why squared distances grow with the embedding's dimension, and how much of a fresh
#   Conv-4's gradient is zero on Omniglot and miniImageNet;
# - what multiplying the distances by a constant $\alpha$ does to the gradient (TADAM's
#   Lemma 1).
#
# **The question.** Why does a freshly initialised Prototypical Network receive almost no
# useful gradient in its first training steps, and what does scaling its distances change?

# %% tags=["parameters"]
# Runtime: any; a CPU runtime is enough (nothing here trains for long).
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
EXERCISES = None  # True runs the quick exercises at the end

# %%
import math

import matplotlib.pyplot as plt
import torch
from fewshot_utils import data, distances, report_lsed, saturation
from fewshot_utils.display import show_source
from fewshot_utils.episodes import query_labels, sample_episode
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import exercises_on, pick, start
from tqdm.auto import tqdm

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device


# %% tags=["hide-input"]
rates = report_lsed.conv4_threads(device)  # one thread or all: the faster

# %% [markdown]
# ## 1.1 The gradient with respect to each distance
#
# A Prototypical Network {cite}`snell2017prototypical` classifies a *query* by the distances of
# its embedding to the class *prototypes*, the mean embeddings of each class's support images
# ([chapter 0](00_episodes_and_prototypes.ipynb) defines both). Write $\mathbf{z}$ for the
# query's embedding, $\mathbf{c}_k$ for the prototype of class $k$ among $N$, and
# $d_k = \lVert \mathbf{z} - \mathbf{c}_k \rVert^2$ for their *squared Euclidean distance*
# (SED). The class probabilities are a softmax over negative distances, and a query of class
# $y$ pays $\ell = -\log p_y$ (LSED paper {cite}`shen2018lsed`, eqs. 3-4):
#
# $$
# p_k = \frac{e^{-d_k}}{\sum_{j=1}^{N} e^{-d_j}}, \qquad
# \ell = -\log p_y = d_y + \log \sum_j e^{-d_j}.
# $$
#
# Differentiating the right-hand form gives the chapter in one line:
#
# $$
# \frac{\partial \ell}{\partial d_k} = \mathbb{1}\{k = y\} - p_k .
# $$
#
# Gradient descent shrinks the distance to the true prototype with weight $1 - p_y$ and grows
# every other with weight $p_k$. (The paper's eq. 5 has the opposite sign: it differentiates
# with respect to the logit $-d_k$.) The appendix checks the formula against autograd. In
# code, with the $\alpha$ of section 1.5 ($\alpha = 1$ here):

# %%
show_source(saturation.distance_gradient)

# %% [markdown]
# The softmax is *saturated* when it puts nearly all its probability on one prototype. Every
# gradient is then nearly 0 or ±1: a query already classified right sends back nothing, and a
# wrong one sends back ±1 however wrong it is. A gradient is *sparse* when most of its entries
# are zero in practice (below $10^{-5}$, as in the LSED paper's histograms); their fraction is
# the *sparsity*. Shen and Liu call this the *early sparse gradients* problem.

# %% [markdown]
# ## 1.2 Same ratio, different gradient (the paper's Figure 1)
#
# The paper's toy has one query of class 0 and two prototypes. The softmax is then a logistic
# function of the *difference* of the distances, $p_0 = \sigma(d_1 - d_0)$, so multiplying both
# distances by $\lambda$ keeps their ratio but multiplies their difference. $1/\lambda$ is the
# softmax's *temperature*, the number the logits are divided by: large distances act as a low
# temperature, which makes the softmax nearly one-hot. Two cases, $d_0 : d_1 = 1 : 2$ and
# $2 : 1$:

# %%
lambdas = torch.logspace(-2, 3, 400, dtype=torch.float64)
toy = saturation.two_prototype_example
toys = {
    "nearer its own prototype, d0 : d1 = 1 : 2": toy(1, 2, lambdas),
    "nearer the other one, d0 : d1 = 2 : 1": toy(2, 1, lambdas),
}

# %% tags=["hide-input"]
report_lsed.figure1(lambdas, toys)
plt.show()

# %% [markdown]
# Near $\lambda = 1$ the gradients are graded. At $\lambda = 100$, same ratios, the query
# nearer its own prototype sends back $\sigma(-100) \approx 4 \times 10^{-44}$, and the other
# one sends back $\pm 1$, whatever its margin.

# %% [markdown]
# ## 1.3 Three areas of the loss (the paper's Figure 2(a))
#
# With two prototypes, $\ell = \log(1 + e^{d_0 - d_1})$ and
# $\partial\ell/\partial d_0 = \sigma(d_0 - d_1)$. The paper names three areas; we define them
# by the gradient, with a tolerance $\varepsilon = 10^{-2}$:
#
# - **I, linear**: gradient above $1 - \varepsilon$; $\ell \approx d_0 - d_1$, whose gradient
#   is a constant.
# - **III, saturated**: gradient below $\varepsilon$; $\ell \approx 0$, nothing is learned.
# - **II, non-linear**: in between, the only area where the gradient depends on the distances.
#
# Solving $\sigma(d_0 - d_1) = \varepsilon$ and $= 1 - \varepsilon$ gives the edges: area II is
# $|d_0 - d_1| < L = \log\frac{1-\varepsilon}{\varepsilon} \approx 4.6$, a band of fixed width
# $2L \approx 9.2$ distance units. On the paper's relative axis, $-\log d_0$, it is
# $\log\frac{d_1 + L}{d_1 - L} \approx 2L/d_1$ wide: it shrinks like $1/d_1$. (The appendix
# finds the same edges by bisection.) The figure shades area II for $d_1$ = 10, 100 and 1000:

# %%
EPS = 1e-2
L = math.log((1 - EPS) / EPS)  # area II: |d0 - d1| < L
print(f"L = {L:.3f}: area II is a band {2 * L:.2f} distance units wide")

# %% tags=["hide-input"]
report_lsed.figure2a(L, EPS)
plt.show()

# %% [markdown]
# From left to right $d_0$ shrinks: the loss falls linearly (area I), crosses the band, then
# drops into area III. The larger $d_1$, the thinner the band. So the gradient depends on how
# far apart a query's distances are compared with $L \approx 4.6$: tens of units apart, and
# nearly every pair is in area I or III.

# %% [markdown]
# ## 1.4 Why the distances of a fresh network are large
#
# Take random $\mathbf{x}, \mathbf{y} \in \mathbb{R}^D$ with independent coordinates of means
# $\mu_x, \mu_y$ and variances $\sigma_x^2, \sigma_y^2$. Each coordinate adds
# $\mathbb{E}(x_j - y_j)^2 = \sigma_x^2 + \sigma_y^2 + (\mu_x - \mu_y)^2$, so
#
# $$
# \mathbb{E}\,\lVert \mathbf{x} - \mathbf{y} \rVert^2
#   = D \left(\sigma_x^2 + \sigma_y^2 + (\mu_x - \mu_y)^2\right)
# $$
#
# grows linearly with the dimension. For Gaussian coordinates its standard deviation is
# $(\sigma_x^2 + \sigma_y^2)\sqrt{2D}$: the *differences* between a query's distances, which
# the softmax sees, grow like $\sqrt{D}$ and leave the band of width $2L$ behind. (A feature
# after batch normalisation and ReLU is roughly $\max(0, g)$ with $g \sim \mathcal{N}(0, 1)$, of
# variance $\frac12 - \frac1{2\pi}$; the appendix samples both cases.) Random 5-way 1-shot
# episodes with 15 queries per class and Gaussian embeddings show the consequence:

# %%
dims = [1, 4, 16, 64, 256, 576, 1600]
n_rand = pick(profile, smoke=5, cpu=50, full=200)  # episodes per dimension
rand_gen = torch.Generator().manual_seed(SEED)
rand_labels = query_labels(5, 15).expand(n_rand, -1)
rand_sparsity = []
for dim in dims:
    # per episode: 5 support embeddings (the prototypes), then 75 queries
    z = torch.randn(n_rand, 80, dim, generator=rand_gen, dtype=torch.double)
    d = distances.squared_euclidean(z[:, 5:], z[:, :5])
    grad = saturation.distance_gradient(d, rand_labels)
    rand_sparsity.append(saturation.sparsity(grad))
print("sparsity:", {f"D={D}": round(s, 3) for D, s in zip(dims, rand_sparsity)})

# %% [markdown]
# Sparsity climbs with the dimension, towards a ceiling below 1: a misclassified query always
# keeps $+1$ on its true prototype and $-1$ on the nearest wrong one (the appendix derives the
# ceiling).
#
# ### A fresh Conv-4 on real data
#
# Real embeddings are not independent, so we measure. The networks are the LSED paper's,
# Conv-4 without its last pooling on Omniglot (576-d) and Conv-4 on miniImageNet (1600-d),
# plus the standard 64-d Omniglot Conv-4. Each episode of training classes is embedded by its
# own **freshly initialised network in training mode**, as in the first training step. (In
# evaluation mode a fresh network's batch normalisation does not normalise and the distances
# are far smaller; the appendix measures both.) We use the paper's 5-way 1-shot episodes with
# 15 queries per class, and the Prototypical Networks training episodes: 60-way on Omniglot,
# 30-way on miniImageNet.

# %%
OMNI, MINI = "Omniglot 576-d", "miniImageNet 1600-d"  # the paper's networks
omniglot_train = data.load_omniglot("train")  # memory-mapped
NETWORKS = {  # name: (images, conv4_for arguments)
    "Omniglot 64-d": (omniglot_train, dict(dataset="omniglot", last_pool=True)),
    OMNI: (omniglot_train, dict(dataset="omniglot", last_pool=False)),
}
if data.has_miniimagenet():
    mini = data.load_miniimagenet("train")
    NETWORKS[MINI] = (mini, dict(dataset="miniimagenet", last_pool=True))
else:  # the miniImageNet measurements are skipped
    print(data.MINIIMAGENET_MISSING)
n_ep = pick(profile, smoke=2, cpu=20, full=100)
n_big = pick(profile, smoke=1, cpu=4, full=30)
CONFIGS = [  # (network, way, queries per class, episodes); all 1-shot
    ("Omniglot 64-d", 5, 15, n_ep),
    (OMNI, 5, 15, n_ep),
    (OMNI, 60, 5, n_ep),
    (MINI, 5, 15, n_ep),
    (MINI, 30, pick(profile, smoke=5, cpu=15, full=15), n_big),
]
CONFIGS = [c for c in CONFIGS if c[0] in NETWORKS]
FIVE_WAY = [(name, 5) for name in (OMNI, MINI) if name in NETWORKS]


# %% [markdown]
# One training-mode forward pass embeds an episode; the gradients follow from section 1.1:


# %%
def embed_episode(net, ep) -> tuple[torch.Tensor, torch.Tensor]:
    """Query embeddings and prototypes of one episode, embedded in one batch."""
    way, shot = ep.support.shape[:2]
    x = torch.cat([ep.support.flatten(0, 1), ep.query.flatten(0, 1)])
    emb = net(x.to(device))
    support = emb[: way * shot].view(way, shot, -1)
    return emb[way * shot :], distances.prototypes(support)


measured = {}  # (network, way) -> one dict per episode
for ci, (name, way, n_query, episodes) in enumerate(CONFIGS):
    images, kwargs = NETWORKS[name]
    gen = torch.Generator().manual_seed(SEED + ci)
    labels = query_labels(way, n_query)
    measured[name, way] = []
    for e in tqdm(range(episodes), desc=f"{name}, {way}-way", leave=False):
        torch.manual_seed(SEED + e)  # a fresh initialisation per episode
        net = conv4_for(**kwargs).to(device).train()
        ep = sample_episode(images, way, 1, n_query, gen)
        with torch.no_grad():
            q, c = embed_episode(net, ep)
        d = distances.squared_euclidean(q, c).double().cpu()
        grad = saturation.distance_gradient(d, labels)
        run = dict(d=d, labels=labels, grad=grad, dim=q.shape[1])
        measured[name, way].append(run)

# %% tags=["hide-input"]
summaries = report_lsed.saturation_table(measured, EPS)

# %% [markdown]
# The table (means over episodes; accuracy at initialisation) answers section 1.3's
# question. A fresh network puts its queries hundreds of units from the prototypes on
# Omniglot and over a thousand on miniImageNet, and most of its gradients are below
# $10^{-5}$. A few percent at most lie in area II; the rest are 0 or $\pm 1$. Training
# episodes are sparser still. The histograms are the first row of the paper's Figures 4 and 6
# (zero gradients pile up at $\ln 10^{-5} \approx -11.5$):

# %% tags=["hide-input"]
report_lsed.fresh_histograms(measured, FIVE_WAY)
plt.show()

# %% [markdown]
# Last, the networks beside the random vectors:

# %% tags=["hide-input"]
args = (dims, rand_sparsity, list(NETWORKS), summaries, measured)
report_lsed.dimension_figure(*args)
plt.show()

# %% [markdown]
# More coordinates, larger distances. The networks need not sit on the random curves (a real
# query resembles its own class), but in 576 or 1600 dimensions a fresh network's softmax is
# saturated.

# %% [markdown]
# ## 1.5 Metric scaling: TADAM's $\alpha$ and its Lemma 1
#
# TADAM {cite}`oreshkin2018tadam` multiplies the distances by $\alpha$ before the softmax,
# $p_{ik} = \operatorname{softmax}_k(-\alpha d_{ik})$ with $d_{ik}$ the distance of query $i$
# to prototype $k$: *metric scaling*, a temperature of $1/\alpha$. With the loss summed
# over the queries,
# $J = \sum_i \left[\alpha d_{i y_i} + \log \sum_k e^{-\alpha d_{ik}}\right]$, the chain
# rule through the network's parameters $\phi$ gives
#
# $$
# \frac{1}{\alpha}\frac{\partial J}{\partial \phi}
#   = \sum_i \sum_k w_{ik}(\alpha)\, \frac{\partial d_{ik}}{\partial \phi},
#   \qquad w_{ik}(\alpha) = \mathbb{1}\{k = y_i\} - p_{ik},
# $$
#
# the weights of section 1.1, computed on $\alpha d$. Lemma 1 gives the two limits. As
# $\alpha \to 0$, $p_{ik} \to 1/N$:
#
# $$
# \lim_{\alpha\to 0} \frac{1}{\alpha}\frac{\partial J}{\partial \phi}
#   = \sum_i \left[\frac{N-1}{N} \frac{\partial d_{i y_i}}{\partial \phi}
#     - \frac{1}{N}\sum_{k \ne y_i} \frac{\partial d_{ik}}{\partial \phi}\right]:
# $$
#
# every wrong prototype is pushed equally, near or far. As $\alpha \to \infty$, $p_{ik}$
# becomes one-hot on the nearest prototype $j_i^* = \arg\min_k d_{ik}$:
#
# $$
# \lim_{\alpha\to\infty} \frac{1}{\alpha}\frac{\partial J}{\partial \phi}
#   = \sum_i \left[\frac{\partial d_{i y_i}}{\partial \phi}
#     - \frac{\partial d_{i j_i^*}}{\partial \phi}\right]:
# $$
#
# only the true and the nearest prototype count, and a query already right counts for
# nothing. That is the saturated softmax: only $\alpha d$ enters it, so **large distances act
# as a large $\alpha$**. The appendix checks both limits on every parameter of a fresh Conv-4;
# here we follow the weights of one misclassified query of a measured Omniglot episode:


# %%
def weights(d, labels, alpha: float) -> torch.Tensor:
    """Lemma 1's weights w_ik(alpha): section 1.1's gradients on alpha * d."""
    return saturation.distance_gradient(d, labels, alpha) / alpha


run = measured[OMNI, 5][0]
wrong = (run["d"].argmin(1) != run["labels"]).nonzero().flatten()
i = int(wrong[0]) if len(wrong) else 0  # a misclassified query, if any
d_i, y_i = run["d"][i : i + 1], run["labels"][i : i + 1]
alpha_fine = torch.logspace(-6, 1, 300, dtype=torch.float64)
w_curve = torch.cat([weights(d_i, y_i, a) for a in alpha_fine.tolist()])
w_small, w_large = saturation.lemma1_limit_weights(d_i, y_i)  # the limits

# %% tags=["hide-input"]
limits = (w_small, w_large)
report_lsed.lemma1_figure(d_i, y_i, alpha_fine, w_curve, limits)
plt.show()

# %% [markdown]
# At $\alpha = 1$, plain ProtoNet, the weights are at or near the $\alpha \to \infty$ limit.
# They become graded only when $\alpha$ times the gaps between the distances is a few units,
# and flatten to $(N-1)/N$ and $-1/N$ below that. How small must $\alpha$ be on real episodes?
# The measured distances tell us:


# %%
def episodes_of(key) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances [episodes, queries, way] and labels measured for ``key``."""
    d = torch.stack([r["d"] for r in measured[key]])
    return d, torch.stack([r["labels"] for r in measured[key]])


alpha_sweep = torch.logspace(-5, 1, 61, dtype=torch.float64)
sweep = {}  # (network, way) -> [(sparsity, share in area II) per alpha]
for key in [k for k in measured if k[0] in (OMNI, MINI)]:
    d, y = episodes_of(key)
    sweep[key] = []
    for a in alpha_sweep.tolist():
        w = weights(d, y, a)
        area2 = (saturation.classify_areas(w, EPS) == 2).double().mean().item()
        sweep[key].append((saturation.sparsity(w), area2))

# %% tags=["hide-input"]
report_lsed.alpha_sweep_figure(alpha_sweep, sweep, EPS)
plt.show()

# %% [markdown]
# Shrinking $\alpha$ removes the saturation once $\alpha$ times the spread of a query's
# distances is a few units: at a few hundredths on Omniglot, a few thousandths on
# miniImageNet. Much smaller buys nothing: the weights flatten towards Lemma 1's uniform $1/N$.
# A good $\alpha$ lies in between and depends on the scale of the distances, which changes as
# the network trains.

# %% [markdown]
# ## Summary
#
# - $\partial\ell/\partial d_k = \mathbb{1}\{k = y\} - p_k$ is graded only in area II, where a
#   query's distances differ by less than $L \approx 4.6$.
# - The softmax sees differences of distances, not ratios: scaling all distances up lowers its
#   temperature and saturates it, leaving gradients of 0 or ±1.
# - Squared distances grow linearly with the dimension, their spread like $\sqrt{D}$: a fresh
#   Conv-4 in 576 or 1600 dimensions starts saturated, most of its gradient zero.
# - TADAM's Lemma 1: $\alpha \to \infty$ keeps only the true and the nearest prototype (where
#   plain ProtoNet starts), $\alpha \to 0$ pushes every wrong prototype equally; an $\alpha$ in
#   between (here $10^{-2}$ to $10^{-3}$) gives graded gradients.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (about 5 s on 2 CPU cores).** Multiply every measured distance by
# $\lambda = 10$, as if the embeddings had ten times as many coordinates, and find the largest
# $\alpha$ of the sweep with a 5-way sparsity below 1%, with and without the factor. Set
# `EXERCISES = True` in the parameters cell and run the cell below.
#
# :::{admonition} What you should see
# :class: dropdown
# The threshold moves ten times lower: only $\alpha\lambda$ enters the softmax. A constant
# $\alpha$ tuned for one network is wrong for a wider one, or for the same one once training
# has shrunk its distances.
# :::
#
# **Exercise 2.** Let the softmax be one-hot on each query's nearest prototype. Show that the
# sparsity of an $N$-way episode is then $1 - 2(1-a)/N$ at accuracy $a$, and that no distances
# give more. What is it for random prototypes ($a = 1/N$) at $N = 5$?
#
# :::{admonition} What you should see
# :class: dropdown
# A right query has all $N$ gradients 0. A wrong one has $1 - p_y \ge p_{j^*} \ge 1/N$ on its
# true and nearest prototypes, so at most $N - 2$ zeros, exactly $N - 2$ when saturated:
# $a + (1-a)\frac{N-2}{N} = 1 - \frac{2(1-a)}{N}$, 0.68 at $a = 1/5$, $N = 5$. The appendix
# checks it numerically.
# :::
#
# **Exercise 3.** Treat two vectors of 1600 independent ReLU features as Gaussian with the
# ReLU's variance. Estimate the standard deviation of their squared distance (section 1.4),
# compare it with the band $2L \approx 9.2$ of area II, and guess the $\alpha$ that shrinks it
# to the band.
#
# :::{admonition} What you should see
# :class: dropdown
# $\sigma_x^2 + \sigma_y^2 = 2(\frac12 - \frac1{2\pi}) \approx 0.68$, so the standard
# deviation is about $0.68\sqrt{3200} \approx 39$ (sampling gives about 49: ReLU features are
# not Gaussian), four to five times the band: saturated. $\alpha \approx 0.2$ shrinks it to the
# band. Real miniImageNet distances spread far wider (section 1.4's histogram), hence the
# sweep's smaller $\alpha$.
# :::

# %% tags=["exercise"]
# Exercise 1 (about 5 s on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    for key in FIVE_WAY:
        d, y = episodes_of(key)
        for lam in (1.0, 10.0):
            ok = [
                a
                for a in alpha_sweep.tolist()
                if saturation.sparsity(weights(lam * d, y, a)) < 0.01
            ]
            largest = max(ok, default=math.nan)
            print(f"{key[0]}, λ = {lam:g}: below 1% for α ≤ {largest:.2g}")

# %% [markdown]
# ## What comes next
#
# A fresh Prototypical Network's softmax is saturated early in training, and a small enough
# scale $\alpha$ (a high enough temperature) gets it out of saturation. TADAM's $\alpha$
# does it with a constant. Chapter 2,
# [the leaky squared Euclidean distance](02_lsed.ipynb), is Shen and Liu's answer: shrink only
# the distances above a threshold. The other two papers (chapters 5 to 7) carry the same
# knob, a scale $\tau$ or $\alpha$, and add ideas of their own.
