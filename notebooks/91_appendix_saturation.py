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
# # Appendix: the numerical checks of chapter 1
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/91_appendix_saturation.ipynb)

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
# [Chapter 1](01_softmax_saturation.ipynb) states several facts and uses them without stopping
# to check them. This appendix checks each one numerically, in the order the chapter uses
# them:
#
# 1. the gradient $\partial\ell/\partial d_k = \mathbb{1}\{k = y\} - p_k$ against autograd;
# 2. the edges of area II, found by bisection on the computed gradient, against the closed
#    form $d_1 \pm L$ and its width $\approx 2L/d_1$ on the $-\log d_0$ axis;
# 3. the mean and standard deviation of the squared distance of random vectors;
# 4. the largest possible sparsity, $1 - 2(1 - a)/N$ at accuracy $a$ (the saturation
#    ceiling);
# 5. a fresh network's distances in training and in evaluation mode;
# 6. TADAM's Lemma 1 on every parameter of a fresh Conv-4, in double precision.
#
# The unit tests ([`tests/test_saturation.py`](https://github.com/fewshot-book/fewshot-book/blob/main/tests/test_saturation.py)) check the same functions on small, hand-made
# cases; here they meet the chapter's settings.

# %% tags=["parameters"]
# Runtime: any; a CPU runtime is enough (nothing here trains for long).
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from fewshot_utils import data, distances, report_lsed, saturation
from fewshot_utils.display import table
from fewshot_utils.episodes import query_labels, sample_episode
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import pick, start
from tqdm.auto import tqdm

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device


# %% tags=["hide-input"]
rates = report_lsed.conv4_threads(device)  # one thread or all: the faster

# %% [markdown]
# ## 1. The gradient against autograd (chapter 1, section 1.1)
#
# Each random episode below has Gaussian embeddings whose scale sets how large the distances
# are. The loss is the package's `protonet_loss` with the distances as leaf tensors, so
# autograd differentiates the real loss; we compare the autograd gradient of the summed loss
# (one query's own loss per row) with the closed form, and with the LSED paper's eq. 5 as
# printed, $p_k - \mathbb{1}\{k = y\}$.

# %%
check_gen = torch.Generator().manual_seed(SEED)
rows, max_diff = [], 0.0
for way, dim, emb_scale in [
    (5, 64, 0.1),
    (5, 576, 0.5),
    (20, 576, 1.0),
    (5, 1600, 1.0),
    (60, 1600, 2.0),
    (30, 1600, 0.05),
]:
    support = emb_scale * torch.randn(way, 1, dim, generator=check_gen)
    query = emb_scale * torch.randn(way * 15, dim, generator=check_gen)
    labels = query_labels(way, 15)
    protos = distances.prototypes(support)
    d = distances.squared_euclidean(query, protos).requires_grad_()
    loss, _ = distances.protonet_loss(-d, labels)  # logits: negative distances
    (len(labels) * loss).backward()
    closed = saturation.distance_gradient(d.detach(), labels)
    diff = (d.grad - closed).abs().max().item()
    printed = (d.grad + closed).abs().max().item()  # eq. 5: p - 1{y = k}
    max_diff = max(max_diff, diff)
    rows.append([way, dim, emb_scale, d.median().item(), diff, printed])

# %% tags=["hide-input"]
header = ["way", "dim", "embedding scale", "median d"]
table(
    header + ["closed form: max |diff|", "eq. 5 as printed: max |diff|"],
    [
        [*map(str, r[:3]), f"{r[3]:.3g}", f"{r[4]:.1e}", f"{r[5]:.2f}"]
        for r in rows
    ],
)
print(f"largest |autograd - (1{{k = y}} - p_k)|: {max_diff:.1e} (float32)")

# %% [markdown]
# The closed form agrees with autograd to float32 rounding in every episode; the printed sign
# is off by twice the largest gradient of the episode (it is the derivative with respect to
# the logit $-d_k$).
#
# ## 2. The edges of area II (section 1.3)
#
# `area_boundaries` finds where the toy's gradient $\partial\ell/\partial d_0$ crosses
# $\varepsilon$ and $1 - \varepsilon$ by bisection on the computed gradient, without the
# formula. The chapter derives the edges $d_1 - L$ and $d_1 + L$ with
# $L = \log\frac{1-\varepsilon}{\varepsilon}$ (for $d_1 > L$; below, a perfect match $d_0 = 0$
# still keeps a gradient above $\varepsilon$ and there is no area III):

# %%
EPS = 1e-2
L = math.log((1 - EPS) / EPS)
rows = []
for d1 in (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0):
    sat, lin = (edge.item() for edge in saturation.area_boundaries(d1, EPS))
    off = max(abs(sat - (d1 - L)), abs(lin - (d1 + L)))  # from the closed form
    rows.append([d1, sat, lin, lin - sat, math.log(lin / sat), off])

# %% tags=["hide-input"]
table(
    [
        "d1",
        "area II from d0 =",
        "to d0 =",
        "width (distance)",
        "width (−log d0 axis)",
        "|bisection − (d1 ∓ L)|",
    ],
    [
        [
            f"{r[0]:g}",
            *(f"{v:.4f}" for v in r[1:4]),
            f"{r[4]:.5f}",
            f"{r[5]:.1e}",
        ]
        for r in rows
    ],
)
print(f"eps = {EPS:g}: 2L = {2 * L:.4f}")

# %% [markdown]
# The bisection lands on $d_1 \pm L$ (last column) and the band is $2L$ wide in distance units
# at every $d_1$. Its width on the paper's log axis, for every $d_1$ of a sweep and two
# tolerances, against $2L/d_1$:

# %% tags=["hide-input"]
d1_sweep = torch.logspace(0, 4, 33, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
for eps, color in ((1e-2, "C0"), (1e-3, "C1")):
    w = saturation.area_two_width(d1_sweep, eps)
    finite = torch.isfinite(w)
    ax.loglog(
        d1_sweep[finite],
        w[finite],
        "o",
        ms=4,
        color=color,
        label=rf"bisection, $\varepsilon$={eps:g}",
    )
    line = 2 * math.log((1 - eps) / eps) / d1_sweep[finite]
    ax.loglog(d1_sweep[finite], line, color=color, lw=1, label=r"$2L/d_1$")
ax.set(
    xlabel=r"$d_1$",
    ylabel=r"width of area II on the $-\log d_0$ axis",
    title="area II shrinks like 1/d1",
)
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# ## 3. Random vectors (section 1.4)
#
# For independent coordinates, $\mathbb{E}\lVert \mathbf{x} - \mathbf{y}\rVert^2 =
# D(\sigma_x^2 + \sigma_y^2 + (\mu_x - \mu_y)^2)$, and for Gaussian ones the standard deviation
# is $(\sigma_x^2 + \sigma_y^2)\sqrt{2D}$. ReLU of a unit Gaussian has mean $1/\sqrt{2\pi}$
# and variance $\frac12 - \frac1{2\pi}$ (the two vectors share the mean, so only the variances
# count). We sample pairs:

# %%
n_pairs = pick(profile, smoke=500, cpu=5000, full=10_000)
rand_gen = torch.Generator().manual_seed(SEED)
relu_var = saturation.relu_gaussian_moments()[1]
rows = []
for dim in (64, 576, 1600):
    x, y = torch.randn(2, n_pairs, dim, generator=rand_gen, dtype=torch.double)
    g = ((x - y) ** 2).sum(1)  # Gaussian coordinates
    r = ((x.relu() - y.relu()) ** 2).sum(1)  # ReLU of Gaussian coordinates
    mean_g = saturation.expected_squared_distance(dim)
    std_g = saturation.gaussian_squared_distance_std(dim)
    mean_r = saturation.expected_squared_distance(dim, relu_var, relu_var)
    rows.append([f"N(0, 1), D = {dim}", mean_g, g.mean(), std_g, g.std()])
    rows.append([f"ReLU, D = {dim}", mean_r, r.mean(), None, r.std()])

# %% tags=["hide-input"]
table(
    [
        "coordinates",
        "formula: mean",
        "sampled: mean",
        "formula: std",
        "sampled: std",
    ],
    [
        [r[0], *("" if v is None else f"{float(v):.1f}" for v in r[1:])]
        for r in rows
    ],
)

# %% [markdown]
# The sampled means and standard deviations match the formulas to sampling error.
#
# ## 4. The saturation ceiling (section 1.4 and exercise 2)
#
# When the softmax is fully saturated, $p$ is one-hot on each query's nearest prototype. A
# query classified right then sends back nothing: all its $N$ gradients are 0. A query
# classified wrong cannot: its true prototype gets $1 - p_y \ge p_{j^*} \ge 1/N$ and its
# nearest (wrong) prototype $-p_{j^*}$, so at most $N - 2$ of its gradients vanish, and in
# the limit the two that remain are exactly $+1$ and $-1$. With accuracy $a$ the sparsity is
# therefore at most $a + (1-a)\frac{N-2}{N} = 1 - \frac{2(1-a)}{N}$, for any distances, with
# equality at full saturation. Random prototypes are right with probability $1/N$. We check
# the bound on each of the chapter's random episodes (the same draws), and that it is reached
# exactly once the distances are multiplied by a factor that saturates every query: 100 over
# the smallest gap between a query's two nearest distances, so that the nearest prototype
# outweighs the next by $e^{100}$ or more:

# %%
dims = [1, 4, 16, 64, 256, 576, 1600]
n_rand = pick(profile, smoke=5, cpu=50, full=200)
rand_gen = torch.Generator().manual_seed(SEED)  # the chapter's random episodes
rand_labels = query_labels(5, 15)
sparsity_by_dim, worst_gap = [], 0.0
for dim in dims:
    z = torch.randn(n_rand, 80, dim, generator=rand_gen, dtype=torch.double)
    d = distances.squared_euclidean(z[:, 5:], z[:, :5])
    for d_e in d:
        acc = (d_e.argmin(1) == rand_labels).double().mean().item()
        ceiling = saturation.saturated_sparsity(acc, 5)
        grad = saturation.distance_gradient(d_e, rand_labels)
        assert saturation.sparsity(grad) <= ceiling + 1e-12, (dim, acc)
        two_nearest = d_e.topk(2, dim=1, largest=False).values
        factor = 100 / (two_nearest[:, 1] - two_nearest[:, 0]).min()
        saturated = saturation.distance_gradient(factor * d_e, rand_labels)
        gap = abs(saturation.sparsity(saturated) - ceiling)
        worst_gap = max(worst_gap, gap)
    grad = saturation.distance_gradient(d, rand_labels.expand(n_rand, -1))
    sparsity_by_dim.append(saturation.sparsity(grad))
print(f"sparsity <= 1 - 2(1 - a)/K in all {n_rand * len(dims)} episodes")
print(f"saturated: largest |sparsity - ceiling| = {worst_gap:.1e}")

# %% tags=["hide-input"]
rand_ceiling = saturation.saturated_sparsity(1 / 5, 5)
fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
ax.semilogx(dims, sparsity_by_dim, "o-", label="random 5-way 1-shot episodes")
ax.axhline(
    rand_ceiling,
    color="k",
    ls="--",
    lw=1,
    label=f"ceiling at accuracy 1/5: {rand_ceiling:.2f}",
)
ax.set(
    xlabel="dimension D",
    ylabel="sparsity (fraction below 1e-5)",
    ylim=(-0.02, 1.02),
)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The bound holds in every episode, the saturated episodes reach it, and as the dimension
# grows the random episodes' sparsity climbs towards the ceiling of random prototypes.
#
# ## 5. Training mode and evaluation mode (section 1.4)
#
# In training mode batch normalisation uses the statistics of the batch, here one episode; in
# evaluation mode it uses its running statistics, which a fresh network has at mean 0 and
# variance 1, so it does not normalise. The same episode, the same fresh network, both modes:


# %%
def embed_episode(net, ep) -> tuple[torch.Tensor, torch.Tensor]:
    """Query embeddings and prototypes of one episode, embedded in one batch."""
    way, shot = ep.support.shape[:2]
    x = torch.cat([ep.support.flatten(0, 1), ep.query.flatten(0, 1)])
    emb = net(x.to(device))
    support = emb[: way * shot].view(way, shot, -1)
    return emb[way * shot :], distances.prototypes(support)


omniglot_train = data.load_omniglot("train")
omniglot_576 = dict(dataset="omniglot", last_pool=False)
NETWORKS = {"Omniglot 576-d": (omniglot_train, omniglot_576)}
if data.has_miniimagenet():
    NETWORKS["miniImageNet 1600-d"] = (
        data.load_miniimagenet("train"),
        dict(dataset="miniimagenet"),
    )
else:
    print(data.MINIIMAGENET_MISSING)
rows = []
for name, (images, kwargs) in NETWORKS.items():
    torch.manual_seed(SEED)
    net = conv4_for(**kwargs).to(device)
    ep = sample_episode(images, 5, 1, 15, torch.Generator().manual_seed(SEED))
    medians = []
    for mode in (net.train, net.eval):
        mode()
        with torch.no_grad():
            d = distances.squared_euclidean(*embed_episode(net, ep))
        medians.append(d.median().item())
    rows.append([name, f"{medians[0]:.1f}", f"{medians[1]:.3g}"])
table(["one 5-way episode", "median d: training mode", "evaluation mode"], rows)

# %% [markdown]
# The first training step sees the training-mode distances; evaluation mode would hide the
# saturation.
#
# ## 6. TADAM's Lemma 1 on a real network (section 1.5)
#
# A fresh Omniglot Conv-4 (576-d) in training mode, one 5-way 1-shot episode with 15 queries
# per class, and all its parameters as $\phi$, in double precision so that rounding does not
# hide how fast the limits are reached. For each $\alpha$, autograd differentiates the actual
# loss `protonet_loss(protonet_logits(..., scale=alpha))`, summed over the queries and divided
# by $\alpha$. The limits are the distance gradients $\partial d_{ik}/\partial\phi$ weighted
# by `lemma1_limit_weights`, also by autograd (one backward pass of the distance matrix with
# the weights as its output gradient). We also spot-check the identity
# $\frac1\alpha \partial J/\partial\phi = \sum_{ik} w_{ik}(\alpha)\,\partial d_{ik}/\partial\phi$.

# %%
t0 = time.perf_counter()
torch.manual_seed(SEED)
net = conv4_for("omniglot", last_pool=False).to(device).double().train()
params = [p for p in net.parameters() if p.requires_grad]
lemma_gen = torch.Generator().manual_seed(SEED + 100)
lemma_ep = sample_episode(omniglot_train, 5, 1, 15, lemma_gen)
lemma_labels = query_labels(5, 15, device=device)
q, c = embed_episode(net, lemma_ep)  # with the graph: the parameters are phi
d_lemma = distances.squared_euclidean(q, c)


def flat_grad(output, grad_output=None) -> torch.Tensor:
    """d output / d phi as one flat vector (the graph is kept)."""
    grads = torch.autograd.grad(output, params, grad_output, retain_graph=True)
    return torch.cat([g.flatten() for g in grads]).double()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# %% [markdown]
# The two limits, then $\frac1\alpha\partial J/\partial\phi$ for each $\alpha$:

# %%
d_fixed, y = d_lemma.detach(), lemma_labels
w_small, w_large = saturation.lemma1_limit_weights(d_fixed, y)
limit_small = flat_grad(d_lemma, w_small)
limit_large = flat_grad(d_lemma, w_large)
n_alphas = pick(profile, smoke=7, cpu=19, full=37)
alphas = torch.logspace(-7, 2, n_alphas, dtype=torch.float64)
err_small, err_large, identity_err = [], [], []
for i, alpha in enumerate(tqdm(alphas.tolist(), desc="Lemma 1", leave=False)):
    logits = distances.protonet_logits(q, c, scale=alpha)
    loss, _ = distances.protonet_loss(logits, y)
    scaled = flat_grad(len(y) * loss) / alpha  # (1/alpha) dJ/dphi
    if i % 3 == 0:  # the identity, at every third alpha
        w = saturation.distance_gradient(d_fixed, y, alpha) / alpha
        identity_err.append(relative(scaled, flat_grad(d_lemma, w)))
    err_small.append(relative(scaled, limit_small))
    err_large.append(relative(scaled, limit_large))
wrong = (d_fixed.argmin(1) != y).cpu()
n_params = sum(p.numel() for p in params)
print(f"{n_params:,} parameters; {int(wrong.sum())} of {len(y)} queries wrong")
print(f"{n_alphas} values of alpha in {time.perf_counter() - t0:.1f} s")
print(f"identity: largest relative difference {max(identity_err):.1e}")

# %% [markdown]
# The relative difference of $\frac1\alpha\partial J/\partial\phi$ to each limit, and to the
# identity:

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
ax.loglog(alphas, err_small, "o-", label=r"to the $\alpha \to 0$ limit")
ax.loglog(alphas, err_large, "s-", label=r"to the $\alpha \to \infty$ limit")
ax.loglog(
    alphas[::3],
    np.maximum(identity_err, 1e-17),
    "x:",
    color="grey",
    label="to the identity",
)
ax.set(
    xlabel=r"$\alpha$",
    ylabel=r"relative difference of $\frac{1}{\alpha}\,\partial J/\partial\phi$",
    title="all Conv-4 parameters, one 5-way 1-shot episode",
)
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.show()
table(
    [
        "α",
        "‖(1/α)∂J/∂φ − limit α→0‖ / ‖limit‖",
        "‖(1/α)∂J/∂φ − limit α→∞‖ / ‖limit‖",
    ],
    [
        [f"{a:.0e}", f"{es:.2e}", f"{el:.2e}"]
        for a, es, el in zip(alphas.tolist(), err_small, err_large)
    ],
)

# %% tags=["hide-input"]
small_a = (alphas < 1e-3).numpy()  # where the alpha -> 0 expansion holds
rate = np.polyfit(
    np.log10(alphas.numpy()[small_a]), np.log10(np.array(err_small)[small_a]), 1
)[0]
reached = [a for a, e in zip(alphas.tolist(), err_large) if e < 1e-6]
off_limit = (
    (saturation.distance_gradient(d_lemma.detach(), lemma_labels) - w_large)
    .abs()
    .amax(1)
)
print(
    f"alpha -> 0: the relative difference falls by 10^{rate:.2f} per decade of alpha (fitted "
    f"below 1e-3), down to {min(err_small):.1e}"
)
print(
    "alpha -> inf: below 1e-6 from alpha = "
    + (
        f"{min(reached):.2g} on"
        if reached
        else "beyond the range computed here"
    )
)
print(
    f"at alpha = 1 (plain ProtoNet) the weights of {int((off_limit < 1e-2).sum())} of the "
    f"{len(lemma_labels)} queries are within 0.01 of their alpha -> inf limit"
)

# %% [markdown]
# Both limits of Lemma 1 are reached on the real network. Towards small $\alpha$ the relative
# difference falls by about a factor 10 per decade of $\alpha$: $p_{ik}(\alpha) - 1/N$ is
# linear in $\alpha$ near 0 (its slope is $-(d_{ik} - \bar d_i)/N$, with $\bar d_i$ the
# query's mean distance). Towards large $\alpha$ it collapses once $\alpha$ times the gaps
# between the distances is well above 1, since $p_{ik} \le e^{-\alpha(d_{ik} - d_{ij^*})}$
# decays exponentially. At $\alpha = 1$ most queries' weights are already at the
# $\alpha \to \infty$ limit, as chapter 1 says of plain ProtoNet.
