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
#
# Few-shot classification asks a network to recognise classes it has never seen from a
# handful of labelled examples. This chapter sets up everything the rest of the book stands
# on, with the real data: the two datasets, the *episode* that training and testing are made
# of, the *prototype* that represents a class, and a first Prototypical Network
# {cite}`snell2017prototypical` trained on Omniglot and tested on characters it never saw.

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
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from fewshot_utils import data, diagrams, distances, episodes, paper_numbers, plots
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.display import show_source
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import column, start
from fewshot_utils.results import make_record, write_result
from fewshot_utils.training import TrainConfig, train_protonet

session = start(PROFILE, SEED)  # profile, device, torch.manual_seed(SEED), provenance line
profile, device = session.profile, session.device


# %% [markdown]
# ## The data
#
# **Omniglot** {cite}`lake2015human` holds 1623 handwritten characters from 50 alphabets, each
# drawn once by 20 people. Following {cite}`vinyals2016matching`, every character at each of
# four rotations counts as its own class, and the characters are split (not the alphabets:
# one alphabet can have characters on both sides, as the cell below counts) into
# 4112 training, 688 validation and 1692 test classes. `load_omniglot` returns them as one
# uint8 tensor `[classes, 20, 28, 28]`: the 105x105 originals, resized and inverted so that
# ink is bright.

# %%
t0 = time.perf_counter()
omni = {split: data.load_omniglot(split) for split in ("train", "val", "test")}
print(f"loaded in {time.perf_counter() - t0:.1f} s")
for split, x in omni.items():
    print(f"{split:5s} {tuple(x.shape)} {x.dtype}")
alphabets = {
    split: {name.split("/")[0] for name in data.split_names("omniglot", split)} for split in omni
}
shared = sorted(alphabets["train"] & alphabets["test"])
gurmukhi = {
    split: sum(n.startswith("Gurmukhi/") for n in data.split_names("omniglot", split))
    for split in omni
}
print(
    f"{len(shared)} of the {len(alphabets['test'])} test alphabets also have characters in "
    f"training, e.g. Gurmukhi: {gurmukhi['train']} training and {gurmukhi['test']} test "
    "classes (a character's four rotations stay on one side)"
)

# %%
names = data.split_names("omniglot", "train")
rows = [0, 1, 2, 3, 4, 5, 6, 7]  # a character at its four rotations, then the next one
fig = plots.image_grid(omni["train"][rows, :10], row_titles=[names[i] for i in rows], scale=0.8)
fig.suptitle("Omniglot training classes: 10 of the 20 drawers of each", fontsize=10)
plt.show()

# %% [markdown]
# **miniImageNet** {cite}`vinyals2016matching,ravi2017optimization` holds 100 ImageNet classes
# of 600 colour images each at 84x84, split 64 / 16 / 20 into training, validation and test
# classes. Here are six validation classes.

# %%
if data.has_miniimagenet():
    mini_val = data.load_miniimagenet("val")
    print(f"val {tuple(mini_val.shape)} {mini_val.dtype}")
    fig = plots.image_grid(
        mini_val[:6, :8], row_titles=data.split_names("miniimagenet", "val")[:6], scale=1.0
    )
    plt.show()
else:
    print(data.MINIIMAGENET_MISSING)

# %% [markdown]
# ## An episode
#
# Training and testing are both made of *episodes*: draw $N$ classes (the *way*), and in each
# class $K$ labelled *support* images (the *shot*) and $Q$ *query* images to classify. A
# 5-way 1-shot episode is a five-class problem with a single example per class. The sampler
# draws the classes and the images with one `argsort` of random keys, so it is vectorised and
# reproducible from a `torch.Generator`:

# %%
show_source(episodes.sample_episode)

# %%
gen = torch.Generator().manual_seed(SEED)
ep = episodes.sample_episode(omni["test"], way=5, shot=1, query=5, generator=gen)
fig = plots.show_episode(ep.support, ep.query, scale=0.9)
fig.suptitle("A 5-way 1-shot test episode: support (left), five queries per class", fontsize=10)
plt.show()

# %% [markdown]
# ## Prototypes
#
# The whole method in one picture, from an episode's images to a query's class probabilities:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Flow chart of a Prototypical Network. An episode's support set (N classes of K images each) and its query images pass through the same embedding network. In the embedding space, the support embeddings of each class are averaged into that class's prototype, and a query's embedding is compared with every prototype by a distance d: the squared Euclidean distance, or LSED. Minus the distance times a temperature alpha gives the logits, and a softmax turns them into the query's class probabilities."}}
diagrams.protonet_pipeline()
plt.show()

# %% [markdown]
# A Prototypical Network embeds every image with a network $f_\phi$ and represents class $k$ by
# the mean of its support embeddings, the prototype
# $\mathbf{c}_k = \frac{1}{|S_k|}\sum_{\mathbf{x}_i \in S_k} f_\phi(\mathbf{x}_i)$. A query
# $\mathbf{z} = f_\phi(\mathbf{x})$ gets the softmax over negative distances,
#
# $$p(y = k \mid \mathbf{z}) = \frac{\exp(-d(\mathbf{z}, \mathbf{c}_k))}{\sum_j \exp(-d(\mathbf{z}, \mathbf{c}_j))},$$
#
# with $d$ the squared Euclidean distance, and training minimises $-\log p(y = y_i \mid
# \mathbf{z})$ over the queries of each episode. In code:

# %%
show_source(distances.prototypes)
show_source(distances.protonet_logits)

# %% [markdown]
# The network is Conv-4: four blocks of a 3x3 convolution with 64 filters, batch
# normalisation, ReLU and 2x2 max-pooling, which turns a 28x28 character into a 64-dimensional
# vector. Below, a 5-way 5-shot episode is embedded by an *untrained* Conv-4 and projected on
# its first two principal components: even random convolutions separate some classes, and the
# prototypes (stars) sit at the class means.

# %%
torch.manual_seed(SEED)
net = conv4_for("omniglot").eval()
ep5 = episodes.sample_episode(omni["test"], way=5, shot=5, query=10, generator=gen)


def pca_plot(net: torch.nn.Module, ep: episodes.Episode, title: str, ax) -> None:
    """Support, query and prototype embeddings of one episode on two principal axes."""
    with torch.no_grad():
        sup = net(ep.support.flatten(0, 1)).view(*ep.support.shape[:2], -1)
        qry = net(ep.query.flatten(0, 1)).view(*ep.query.shape[:2], -1)
    allz = torch.cat([sup.flatten(0, 1), qry.flatten(0, 1)])
    mean = allz.mean(0)
    _, _, v = torch.pca_lowrank(allz - mean, q=2, center=False)
    proj = lambda z: (z - mean) @ v  # noqa: E731
    protos = distances.prototypes(sup)
    for k in range(sup.shape[0]):
        ax.scatter(*proj(qry[k]).T, s=12, color=f"C{k}", alpha=0.5)
        ax.scatter(*proj(sup[k]).T, s=25, color=f"C{k}", marker="o", edgecolor="k")
        ax.scatter(*proj(protos[k : k + 1]).T, s=250, color=f"C{k}", marker="*", edgecolor="k")
    ax.set(title=title, xticks=[], yticks=[])


fig, ax = plt.subplots(figsize=(5, 4))
pca_plot(net, ep5, "untrained Conv-4: supports (o), queries (.), prototypes (*)", ax)
plt.show()

# %% [markdown]
# ## A first Prototypical Network
#
# We now train Conv-4 the Prototypical Networks way: 60-way 1-shot episodes with 5 queries per
# class, Adam with learning rate $10^{-3}$ halved every 2000 episodes, and after every 100
# episodes ("an epoch") a validation pass on 5-way episodes of the validation classes; the
# epoch with the lowest validation loss is kept. How long we train depends on the profile:
# `smoke` only checks that the code runs, on a few classes; `cpu` is a short real run; `full`
# is a longer one (the paper-scale comparison is chapter 3).

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
    train_x, val_x, test_x = (x[: settings["classes"]] for x in (train_x, val_x, test_x))
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
t0 = time.perf_counter()
run = train_protonet(model, train_x, val_x, config, checkpoint=ckpt, retrain=RETRAIN, device=device)
train_time = run.wall_time_s
print(
    f"{'loaded finished run' if run.loaded else 'trained'}: {run.episodes_done} episodes, "
    f"best epoch {run.best_epoch}, {run.episodes_per_s:.2f} training episodes/s, "
    f"{train_time:.0f} s of training ({time.perf_counter() - t0:.1f} s in this call)"
)

# %%
fig = plots.learning_curves({"ProtoNet": run.history})
fig.suptitle("Omniglot, 60-way 1-shot training; validation on 5-way 1-shot", fontsize=10)
plt.show()

# %% [markdown]
# ## Testing on new characters
#
# The test classes are characters the network never saw (some of their alphabets have other
# characters in the training split, as counted above). Because the network is in
# evaluation mode at test time, an image's embedding does not depend on the episode it appears
# in, so we embed every test image once and draw all test episodes over the cached embeddings:

# %%
show_source(evaluate_embeddings)

# %%
TEST_QUERY = 15  # queries per class in a test episode (training episodes have config.query)
t0 = time.perf_counter()
test_emb = embed(run.model, test_x, device=device)
embed_time = time.perf_counter() - t0
tests = {}
for way in (5, 20):
    t0 = time.perf_counter()
    res = evaluate_embeddings(test_emb, way, 1, TEST_QUERY, settings["test_episodes"], seed=SEED)
    tests[way] = (res, time.perf_counter() - t0)
    print(f"{way}-way 1-shot: {res}  [{tests[way][1]:.1f} s, after {embed_time:.1f} s embedding]")

# %% [markdown]
# These numbers come from this run and its profile, printed above. Each "±" is the 95%
# interval over the *test episodes*: it says how much another draw of test tasks would move
# the number for this one trained network, not how much training again (another seed, another
# machine's floating-point order) would. A rebuild of the book on another machine moved the
# accuracies of these chapters by several of these half-widths, so only differences well beyond
# that say something about the method.

# %%
SNELL = "snell2017prototypical/table-1/prototypical-networks/omniglot"
published = {way: paper_numbers.by_id(f"{SNELL}/{way}w1s").accuracy for way in tests}
display(
    Markdown(
        "A short run does not reach Prototypical Networks' "
        + " and ".join(f"{published[w]:.1f}% ({w}-way 1-shot)" for w in tests)
        + " {cite}`snell2017prototypical`, which took tens of thousands of episodes. Each number is "
        "saved with its provenance as a results record (a `smoke` run writes none); the record's "
        f"`query` is the test episodes' {TEST_QUERY} queries per class, its `config` the training "
        f"configuration ({config.query} queries per class)."
    )
)

# %%
for way, (res, seconds) in tests.items():
    record = make_record(
        experiment="ch00_first_protonet",
        dataset="omniglot",
        method="squared_euclidean",
        result=res,
        profile=profile,
        device=device,
        wall_time_s=train_time + embed_time + seconds,
        config={**config.__dict__, "backbone": "conv4-64"},  # training: config.query queries
        train_query=config.query,
        train_episodes=run.episodes_done,
        best_epoch=run.best_epoch,
        protonet_paper_accuracy=published[way] / 100,
    )
    print(write_result(record) or f"{profile} profile: record not written")

# %% [markdown]
# Finally, one 5-way 1-shot test episode with the trained network's predictions: a green frame
# is a correct query, a red one is wrong and names the class it was given.

# %%
ep = episodes.sample_episode(test_x, way=5, shot=1, query=6, generator=gen)
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
# prototypes. The next chapter asks why this training is slower to start than it could be: the
# squared Euclidean distances of a fresh network are huge, and a softmax over huge distances
# passes almost no gradient back.
