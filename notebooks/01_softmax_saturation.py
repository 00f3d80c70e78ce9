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
# Runtime: any; a CPU runtime is enough (nothing in this chapter trains for long).
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
EXERCISES = None  # True runs the quick exercises at the end

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from fewshot_utils import data, distances, gradients, saturation
from fewshot_utils.display import show_source, table
from fewshot_utils.episodes import query_labels, sample_episode
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import exercises_on, fastest_threads, pick, start
from tqdm.auto import tqdm

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device


# %% tags=["hide-input"]
# On a CPU shared with other jobs one thread can beat several on this chapter's small
# tensors: time both on a Conv-4 forward pass and keep the faster. The probe draws from a
# forked generator, so the chapter's random numbers do not depend on it.
def conv4_rate() -> float:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        net = conv4_for("miniimagenet").train()
        x = torch.randint(0, 256, (16, 3, 84, 84), dtype=torch.uint8)
        net(x)  # warm-up
        t0 = time.perf_counter()
        net(x)
    return 1 / (time.perf_counter() - t0)


rates = fastest_threads(conv4_rate, device)
if rates:
    print(
        f"Conv-4 probe, forward passes per s by threads: {rates}; using {torch.get_num_threads()}"
    )

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
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
for (name, toy), color in zip(toys.items(), ("C0", "C3")):
    axes[0].semilogx(lambdas, toy.p0, color=color, label=name)
    axes[1].semilogx(
        lambdas, toy.grad_d0, color=color, label=r"$\partial\ell/\partial d_0$"
    )
    axes[1].semilogx(
        lambdas,
        toy.grad_d1,
        color=color,
        ls="--",
        label=r"$\partial\ell/\partial d_1$",
    )
axes[0].set(
    ylabel=r"$p_0 = p(y=0\mid z)$", title="probability of the true class"
)
axes[1].set(
    ylabel="gradient",
    title="gradients w.r.t. the two distances (colours as left)",
)
for ax in axes:
    ax.set(xlabel=r"factor $\lambda$ on both distances")
    ax.axvline(1, color="grey", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle(
    "Figure 1 of the LSED paper: same ratio $d_0/d_1$, different gradient",
    fontsize=11,
)
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
D1_VALUES = (10.0, 100.0, 1000.0)
x_axis = torch.linspace(-8.0, 2.3, 4001, dtype=torch.float64)  # -log d0
d0 = torch.exp(-x_axis)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for d1, color in zip(D1_VALUES, ("C0", "C1", "C2")):
    loss = torch.nn.functional.softplus(d0 - d1)  # -log sigma(d1 - d0)
    axes[0].semilogy(
        x_axis, loss.clamp_min(1e-12), color=color, label=f"$d_1$ = {d1:g}"
    )
    axes[1].plot(
        x_axis, torch.sigmoid(d0 - d1), color=color, label=f"$d_1$ = {d1:g}"
    )
    for ax in axes:  # area II: d1 - L < d0 < d1 + L
        ax.axvspan(
            -math.log(d1 + L),
            -math.log(max(d1 - L, 1e-9)),
            color=color,
            alpha=0.2,
        )
for level in (EPS, 1 - EPS):
    axes[1].axhline(level, color="k", lw=0.7, ls="--")
axes[0].set(ylabel=r"$\ell = -\log p_0$", ylim=(1e-12, 1e4), title="the loss")
axes[1].set(
    ylabel=r"$\partial\ell/\partial d_0$",
    title=r"the gradient; dashed: $\varepsilon$, $1-\varepsilon$",
)
for ax in axes:
    ax.set(xlabel=r"$-\log d_0$  (left: far from its prototype; right: close)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="shaded: area II", title_fontsize=8)
fig.suptitle(
    "Figure 2(a) of the LSED paper: area I left of each band, area III right",
    fontsize=11,
)
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
summaries = {}
for key, runs in measured.items():
    per_episode = [
        saturation.episode_statistics(
            r["d"], r["grad"], r["labels"], r["dim"], EPS
        )
        for r in runs
    ]
    summaries[key] = {
        k: sum(s[k] for s in per_episode) / len(runs) for k in per_episode[0]
    }
table(
    [
        "network",
        "episodes",
        "mean d",
        "accuracy",
        "sparsity",
        "area I",
        "area II",
        "area III",
    ],
    [
        [
            name,
            f"{len(measured[name, way])} × {way}-way",
            f"{s['mean d']:.0f}",
            f"{s['accuracy']:.2f}",
            f"{s['sparsity']:.3f}",
            *(f"{s[area]:.3f}" for area in ("I", "II", "III")),
        ]
        for (name, way), s in summaries.items()
    ],
)

# %% [markdown]
# The table (means over episodes; accuracy at initialisation) answers section 1.3's
# question. A fresh network puts its queries hundreds of units from the prototypes on
# Omniglot and over a thousand on miniImageNet, and most of its gradients are below
# $10^{-5}$. A few percent at most lie in area II; the rest are 0 or $\pm 1$. Training
# episodes are sparser still. The histograms are the first row of the paper's Figures 4 and 6
# (zero gradients pile up at $\ln 10^{-5} \approx -11.5$):

# %% tags=["hide-input"]
LN_RANGE = (
    -11.75,
    0.25,
)  # ln(1e-5) ... ln(1), the range of chapter 2's histograms
fig, axes = plt.subplots(
    len(FIVE_WAY), 2, figsize=(11, 3.2 * len(FIVE_WAY)), squeeze=False
)
for row, key in enumerate(FIVE_WAY):
    g = torch.cat([r["grad"].flatten() for r in measured[key]])
    d = torch.cat([r["d"].flatten() for r in measured[key]])
    axes[row, 0].hist(
        gradients.log_abs_gradient(g), bins=60, range=LN_RANGE, color="C0"
    )
    axes[row, 0].set(
        xlabel=r"$\ln(|\partial\ell/\partial d| + 10^{-5})$",
        ylabel="count (log scale)",
        yscale="log",
        title=f"{key[0]}: {100 * saturation.sparsity(g):.1f}% of gradients below 1e-5",
    )
    axes[row, 1].hist(d, bins=60, color="C1")
    axes[row, 1].axvline(
        d.median(), color="k", ls="--", lw=1, label=f"median {d.median():.0f}"
    )
    axes[row, 1].set(
        xlabel="squared distance d",
        ylabel="count",
        title=f"{key[0]}: distances",
    )
    axes[row, 1].legend(fontsize=8)
fig.suptitle("Fresh Conv-4, training mode, 5-way 1-shot episodes", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# Last, the networks beside the random vectors:

# %% tags=["hide-input"]
relu_var = saturation.relu_gaussian_moments()[1]
fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
D_line = torch.logspace(0, math.log10(1600), 50)
axes[0].loglog(
    D_line,
    saturation.expected_squared_distance(D_line),
    label="random N(0, 1): formula",
)
axes[0].loglog(
    D_line,
    saturation.expected_squared_distance(D_line, relu_var, relu_var),
    label="random ReLU of N(0, 1): formula",
)
axes[1].semilogx(
    dims, rand_sparsity, "o-", ms=3, label="random Gaussian episodes"
)
for name, marker in zip(NETWORKS, ("s", "D", "^")):
    s, D = summaries[name, 5], measured[name, 5][0]["dim"]
    axes[0].plot(
        D, s["mean d"], marker, color="C3", ms=7, label=f"{name}, fresh Conv-4"
    )
    axes[1].plot(
        D,
        s["sparsity"],
        marker,
        color="C3",
        ms=7,
        label=f"{name}, fresh Conv-4",
    )
axes[0].set(
    ylabel="mean squared query-prototype distance",
    title="distances grow with D",
)
axes[1].set(
    ylabel="sparsity (fraction below 1e-5)",
    ylim=(-0.02, 1.02),
    title="5-way 1-shot episodes",
)
for ax in axes:
    ax.set(xlabel="dimension D of the embedding")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
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
fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
nearest_wrong = int(
    d_i[0].masked_fill(torch.arange(5) == y_i, math.inf).argmin()
)
for k in d_i[0].argsort().tolist():
    kind = (
        "true"
        if k == y_i
        else ("nearest wrong" if k == nearest_wrong else "other")
    )
    label = f"prototype {k} ({kind}), d = {d_i[0, k]:.0f}"
    ax.semilogx(
        alpha_fine,
        w_curve[:, k],
        color=f"C{k}",
        lw=2.5 if kind == "true" else 1.2,
        label=label,
    )
    ax.plot(
        alpha_fine[0], w_small[0, k], "<", color=f"C{k}", ms=8, clip_on=False
    )
    ax.plot(
        alpha_fine[-1], w_large[0, k], ">", color=f"C{k}", ms=8, clip_on=False
    )
ax.axvline(1, color="k", ls="--", lw=0.8)
ax.set(
    xlabel=r"$\alpha$ (dashed: 1, plain ProtoNet)",
    ylabel=r"weight $w_{ik}(\alpha)$",
)
ax.set_title(
    "one query; arrows: Lemma 1's limits, α → 0 (left) and α → ∞ (right)",
    fontsize=10,
)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
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
fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for key, values in sweep.items():
    label = f"{key[0]}, {key[1]}-way"
    axes[0].semilogx(alpha_sweep, [v[0] for v in values], label=label)
    axes[1].semilogx(alpha_sweep, [v[1] for v in values], label=label)
for ax in axes:
    ax.axvline(1.0, color="k", ls="--", lw=0.8)
    ax.set(
        xlabel=r"metric scale $\alpha$ (dashed: 1, plain ProtoNet)",
        ylim=(-0.02, 1.02),
    )
    ax.grid(alpha=0.3, which="both")
axes[0].set(
    ylabel=r"fraction of $|w_{ik}| < 10^{-5}$",
    title="zero gradients (sparsity)",
)
axes[1].set(
    ylabel=rf"fraction in area II ($\varepsilon$ = {EPS:g})",
    title="graded gradients",
)
axes[0].legend(fontsize=8)
fig.suptitle(
    r"Fresh Conv-4, the measured distances, softmax over $-\alpha d$",
    fontsize=11,
)
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
