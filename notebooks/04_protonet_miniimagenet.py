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
# # 4. Prototypical Networks on miniImageNet
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/04_protonet_miniimagenet.ipynb)
#
# On Omniglot the LSED paper {cite}`shen2018lsed` reports a small gain (chapter 3 measured a
# larger one after a short training run, where the faster starter is favoured): the characters
# are simple and 576-dimensional embeddings are short. miniImageNet is where the paper finds
# its largest gain: natural images, 1600-dimensional
# embeddings, squared distances in the thousands at initialisation, and a 5-way 1-shot test
# accuracy of 51.74% with LSED against 48.34% without. This chapter trains both on the real
# miniImageNet and asks whether we see the same.
#
# Running it for real needs a GPU: the `full` profile follows the protocol of Prototypical
# Networks {cite}`snell2017prototypical` (30-way 1-shot and 20-way 5-shot training episodes),
# which takes seconds per episode on a laptop CPU. The `cpu` profile trains a much shorter
# schedule and is labelled as such everywhere.

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
import os
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from fewshot_utils import data, paper_numbers, plots, training
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.evaluation import embed, evaluate_embeddings, paired_difference
from fewshot_utils.models import conv4_for
from fewshot_utils.profiles import start, time_estimate
from fewshot_utils.results import make_record, write_result

session = start(PROFILE, SEED)  # profile, device, torch.manual_seed(SEED), provenance line
profile, device = session.profile, session.device

# %% [markdown]
# ## Getting miniImageNet
#
# miniImageNet {cite}`vinyals2016matching` has no official direct download: it is built from
# ILSVRC-2012 images, and most people use the 84x84 release that accompanies the split of
# Ravi and Larochelle {cite}`ravi2017optimization`. `load_miniimagenet` accepts it in either of
# two forms inside the data directory (`FEWSHOT_DATA_DIR`, default `~/.cache/fewshot-book`):
#
# - a folder `miniimagenet/images/` holding the 60,000 JPEGs named as in the Ravi CSVs
#   (`n0153282900000005.jpg`, ...); the CSVs themselves ship with `fewshot_utils`;
# - or the archive `miniimagenet/miniimagenet.tar.gz` containing `miniimagenet/images/*.jpg`.
#
# On Colab, copy the archive from your Google Drive to
# `/root/.cache/fewshot-book/miniimagenet/miniimagenet.tar.gz` (or set `FEWSHOT_DATA_DIR`), or
# point `FEWSHOT_DATA_MIRROR` at a folder holding `miniimagenet/miniimagenet.tar.gz`. The first
# load decodes all three splits once (about half a minute) into uint8 caches; later loads take
# a fraction of a second. If the data is missing, this is the message you get:

# %%
saved = os.environ.pop("FEWSHOT_DATA_MIRROR", None)
try:
    with tempfile.TemporaryDirectory() as empty:
        data.load_miniimagenet("test", root=empty)
except data.DataError as err:
    print(err)
finally:
    if saved is not None:
        os.environ["FEWSHOT_DATA_MIRROR"] = saved

# %% [markdown]
# A folder with missing images, an image that is not 84x84 or a truncated archive each stop
# with an error naming the file and the fix; nothing half-decoded is ever cached.

# %%
t0 = time.perf_counter()
mini = {split: data.load_miniimagenet(split) for split in ("train", "val", "test")}
print(f"loaded in {time.perf_counter() - t0:.1f} s")
for split, x in mini.items():
    print(f"{split:5s} {tuple(x.shape)} {x.dtype}, {x.numel() / 2**20:.0f} MiB")
fig = plots.image_grid(mini["test"][:5, :8], data.split_names("miniimagenet", "test")[:5])
fig.suptitle("miniImageNet test classes (never seen in training)", fontsize=10)
plt.show()

# %% [markdown]
# ## The protocol
#
# Conv-4 (1600-d embeddings), Adam with learning rate $10^{-3}$ halved every 2000 episodes,
# validation on 5-way episodes of the 16 validation classes after every epoch, and the epoch
# with the lowest validation loss kept; in `full`, training stops after 200 epochs without a
# better validation loss, the patience of the Prototypical Networks code, as in chapter 3
# ([the protocols page](../book/protocols.md) sets out the whole protocol and what the `cpu`
# profile changes). LSED uses the paper's $s = 4$, $r = 0.01$ on miniImageNet. What each
# profile trains:

# %%
settings = training.miniimagenet_protocol(profile)
train_x = data.subset(mini["train"], settings["train_classes"], settings["per_class"])
val_x = data.subset(mini["val"], None, settings["val_per_class"])
test_x = data.subset(mini["test"], None, settings["test_per_class"])
METHODS = {"squared_euclidean": {}, "lsed": training.LSED_MINIIMAGENET}


def config_for(train_shot: int, distance: str, seed: int = SEED, episodes: int | None = None):
    """The training configuration of one model: ``seed`` draws its initial weights and its
    episodes; ``episodes`` overrides the profile's length (the long run)."""
    return training.miniimagenet_config(settings, train_shot, distance, seed, episodes)


for shot, (way, s, q) in settings["runs"].items():
    print(f"{shot}-shot model: {way}-way {s}-shot {q}-query training episodes")
print(
    f"up to {settings['max_episodes']} episodes per model, validation every "
    f"{settings['episodes_per_epoch']} on {settings['val_episodes']} episodes of "
    f"{val_x.shape[1]} images per class"
)

# %% tags=["hide-input"]
if profile == "cpu":
    display(
        Markdown(
            "**`cpu` profile:** 5-way 1-shot 5-query training episodes (the protocol uses 30-way "
            f"with 15 queries) and {settings['max_episodes']} episodes per model instead of tens "
            f"of thousands, tested on 300 of the 600 images per test class; the "
            "1-shot models also serve the 5-shot test. These are early-training numbers, not the "
            "paper's protocol: a short run favours the distance that starts faster, so the gap "
            "between the two distances here measures how far each has got, not where they end."
        )
    )

# %% [markdown]
# Before training, we measure how many episodes per second this machine trains and
# predict how long the run will take (an upper bound: early stopping may end it sooner).

# %% tags=["hide-input"]
planned = 0.0
for shot in settings["runs"]:
    cfg = config_for(shot, "squared_euclidean")
    rate = training.measure_episodes_per_s(conv4_for("miniimagenet"), train_x, cfg, episodes=3)
    planned += len(METHODS) * cfg.max_episodes / rate
    if shot == min(settings["runs"]):  # the seed repeats and the long run are 1-shot models
        longer = max(0, (settings["long_episodes"] or 0) - cfg.max_episodes)  # continues
        extra = (len(settings["seeds"]) - 1) * cfg.max_episodes + longer
        planned += len(METHODS) * extra / rate
    print(f"{cfg.way}-way {cfg.shot}-shot {cfg.query}-query: {rate:.2f} training episodes/s")
n_models = len(METHODS) * (
    len(settings["runs"]) + len(settings["seeds"]) - 1 + bool(settings["long_episodes"])
)
print(
    f"expected training time for {n_models} models: at most {planned / 60:.0f} min, plus validation"
)
print(
    time_estimate(
        {f"training {n_models} models (at most)": planned},
        device,
        session.elapsed(),
        not_estimated="validation, testing and figures",
    )
)

# %% [markdown]
# ## Training both distances


# %%
def checkpoint(distance: str, shot: int, seed: int, tag: str = "") -> Path:
    return checkpoint_dir() / f"ch04_{distance}_{shot}shot{tag}_{profile}_seed{seed}.pt"


def train(distance: str, shot: int, seed: int = SEED, episodes: int | None = None, tag=""):
    """Train (or load) one model; both distances of a seed start from the same weights. A
    longer run (``episodes``) continues the profile's run of the same seed when it exists:
    on the CPU exactly what training it this long from the start would give."""
    torch.manual_seed(seed)
    run = training.train_protonet(
        conv4_for("miniimagenet"),
        train_x,
        val_x,
        config_for(shot, distance, seed, episodes),
        checkpoint(distance, shot, seed, tag),
        RETRAIN,
        device,
        extends=checkpoint(distance, shot, seed) if episodes else None,
    )
    print(
        f"{distance:17s} {shot}-shot{tag} seed {seed}: {run.episodes_done} episodes, best "
        f"epoch {run.best_epoch}, {run.episodes_per_s:.2f} episodes/s, "
        f"{run.wall_time_s / 60:.1f} min{' (loaded)' if run.loaded else ''}"
    )
    return run


runs = {(d, shot): train(d, shot) for shot in settings["runs"] for d in METHODS}

# %% [markdown]
# ## Is LSED ahead early in training?
#
# The paper's Figure 9 shows LSED's training and validation accuracy above squared
# Euclidean's after the first epoch and throughout. Here are our curves; the shaded band is
# the 95% interval of each validation point (validation episodes are the same for both
# models and every epoch, so the gap between them gets the paired interval).

# %%
for shot in settings["runs"]:
    fig = plots.learning_curves(
        {
            "ProtoNet": runs["squared_euclidean", shot].history,
            "ProtoNet(LSED)": runs["lsed", shot].history,
        }
    )
    fig.suptitle(f"miniImageNet, models trained for {shot}-shot ({profile} profile)", fontsize=10)
    plt.show()

# %% [markdown]
# The same validation points in numbers, and the gap after the first epoch with its paired
# interval (the same validation episodes for both models):

# %% tags=["hide-input"]
shot = min(settings["runs"])
h_sed, h_lsed = runs["squared_euclidean", shot].history, runs["lsed", shot].history
rows = [
    "| after episodes | ProtoNet val acc | ProtoNet(LSED) val acc | LSED - SED |",
    "|---:|---:|---:|---:|",
]
for i, ep in enumerate(h_sed["episode"]):
    a, b = 100 * h_sed["val_acc"][i], 100 * h_lsed["val_acc"][i]
    ca, cb = 100 * h_sed["val_ci95"][i], 100 * h_lsed["val_ci95"][i]
    rows.append(f"| {ep} | {a:.2f} ± {ca:.2f} | {b:.2f} ± {cb:.2f} | {b - a:+.2f} |")
display(Markdown("\n".join(rows)))
if not all("val_per_episode" in h for h in (h_sed, h_lsed)):
    raise RuntimeError(
        "these checkpoints predate per-episode validation accuracies (needed for "
        "the paired gap): rerun with RETRAIN = True"
    )
first_gap, first_ci = (  # the same validation episodes for both models: paired
    100 * v for v in paired_difference(h_lsed["val_per_episode"][0], h_sed["val_per_episode"][0])
)
print(
    f"after the first epoch ({h_sed['episode'][0]} episodes) LSED - SED validation accuracy = "
    f"{first_gap:+.2f} ± {first_ci:.2f} points (paired over the same validation episodes)"
)

# %% [markdown]
# ## Test accuracy
#
# Each model embeds the test images once (all 600 per class in `full`, the first 300 per class
# in `cpu`); the test episodes (5-way, 15 queries per class) are then drawn over the
# embeddings, the same episodes for every model, so the
# difference between the two distances can be measured episode by episode, with its own
# interval.


# %%
def test(run, distance: str, shots=(1, 5)) -> tuple[dict, float]:
    """Embed the test images once with ``run``'s model, then score the same test episodes
    (seed SEED) for each test shot. Returns {shot: (EvalResult, seconds)} and the seconds
    the embedding took."""
    t0 = time.perf_counter()
    emb = embed(run.model, test_x, device=device)
    embed_s = time.perf_counter() - t0
    out = {}
    for shot in shots:
        t1 = time.perf_counter()
        res = evaluate_embeddings(
            emb, 5, shot, 15, settings["test_episodes"], SEED, distance, **METHODS[distance]
        )
        out[shot] = res, time.perf_counter() - t1
    return out, embed_s


# %% [markdown]
# Each result is printed and written to `results/` as a record, with the published number it
# reproduces (from `fewshot_utils.paper_numbers`), the training history and the wall time;
# `test_and_record` below does both and returns {test shot: result}.

# %% tags=["hide-input"]
PAPER_ROWS = {  # LSED paper Table 1 and Prototypical Networks, in fewshot_utils.paper_numbers
    ("lsed_paper", "squared_euclidean"): "shen2018lsed/table-1/protonet",
    ("lsed_paper", "lsed"): "shen2018lsed/table-1/protonet-lsed",
    ("protonet_paper", "squared_euclidean"): "snell2017prototypical/table-2/prototypical-networks",
}


def paper(which: str, distance: str, shot: int) -> float:
    """A published 5-way accuracy as a fraction."""
    cell = paper_numbers.by_id(f"{PAPER_ROWS[which, distance]}/miniimagenet/5w{shot}s")
    return cell.accuracy / 100


# the cpu models trained a fraction of the protocol: their comparisons are early training
STAGE = "protocol" if profile == "full" else "early training"


def test_and_record(
    run,
    distance,
    train_shot,
    seed=SEED,
    experiment="ch04_protonet_miniimagenet",
    shots=(1, 5),
    episodes=None,
):
    """:func:`test` ``run``'s model on each test shot, print and record each result."""
    results, embed_s = test(run, distance, shots)
    for test_shot, (res, seconds) in results.items():
        print(
            f"{distance:17s} seed {seed} 5-way {test_shot}-shot: {res} ({embed_s:.1f} s "
            f"embedding, {res.episodes / seconds:.0f} episodes/s)"
        )
        config = config_for(train_shot, distance, seed, episodes).__dict__
        record = make_record(
            experiment=experiment,
            dataset="miniimagenet",
            method=distance,
            result=res,
            profile=profile,
            device=device,
            wall_time_s=run.wall_time_s + embed_s + seconds,
            config={**config, "backbone": "conv4-1600", "test_per_class": test_x.shape[1]},
            train_shot=train_shot,
            train_seed=seed,
            train_episodes=run.episodes_done,
            best_epoch=run.best_epoch,
            train_episodes_per_s=run.episodes_per_s,
            training_stage=STAGE,
            history={k: v for k, v in run.history.items() if k != "val_per_episode"},
            paper_accuracy=paper("lsed_paper", distance, test_shot),  # every seed reproduces it
        )
        print("  ", write_result(record) or f"{profile} profile: record not written")
    return {shot: res for shot, (res, _) in results.items()}


# %% [markdown]
# Every model is tested on the test shots it was trained for (in `cpu`, the 1-shot models
# also serve the 5-shot test):

# %%
tests = {}
for distance in METHODS:
    for train_shot in settings["runs"]:
        shots = [
            t
            for t in (1, 5)
            if (t if t in settings["runs"] else min(settings["runs"])) == train_shot
        ]
        for test_shot, res in test_and_record(
            runs[distance, train_shot], distance, train_shot, shots=shots
        ).items():
            tests[distance, test_shot] = res

# %% [markdown]
# Both distances side by side, with their paired difference and the published numbers:

# %% tags=["hide-input"]
rows = [
    "| 5-way test | model trained | ours: ProtoNet | ours: ProtoNet(LSED) | "
    "LSED - SED (paired) | LSED paper: ProtoNet / LSED | ProtoNet paper |",
    "|---|---|---:|---:|---:|---:|---:|",
]
for test_shot in (1, 5):
    a, b = tests["squared_euclidean", test_shot], tests["lsed", test_shot]
    d, dci = (100 * v for v in paired_difference(b.per_episode, a.per_episode))
    verdict = "beyond its test-episode interval" if abs(d) > dci else "within its interval"
    train_shot = test_shot if test_shot in settings["runs"] else min(settings["runs"])
    way, shot, _ = settings["runs"][train_shot]
    trained = (
        f"{way}-way {shot}-shot"
        + (" (**not** a 5-shot model)" if shot != test_shot else "")
        + (f", {STAGE}" if STAGE != "protocol" else "")
    )
    rows.append(
        f"| {test_shot}-shot | {trained} | {100 * a.accuracy:.2f} ± {100 * a.ci95:.2f} | "
        f"{100 * b.accuracy:.2f} ± {100 * b.ci95:.2f} | {d:+.2f} ± {dci:.2f} ({verdict}) | "
        f"{100 * paper('lsed_paper', 'squared_euclidean', test_shot):.2f} / "
        f"{100 * paper('lsed_paper', 'lsed', test_shot):.2f} | "
        f"{100 * paper('protonet_paper', 'squared_euclidean', test_shot):.2f} |"
    )
display(
    Markdown(
        f"**{profile} profile**, {settings['test_episodes']} test episodes each\n\n"
        + "\n".join(rows)
    )
)

# %% [markdown]
# Every "±" above is a 95% interval over the *test episodes* (for the difference, paired over
# the same episodes): it covers the choice of test tasks for these two trained networks, not
# the randomness of training. A rebuild of the same commit with the same seed on another
# machine moved these accuracies, and the paired gap, by several of their half-widths. So
# "beyond its test-episode interval" says these two networks differ; whether the distances
# differ by more than training runs do needs repeats over training seeds: the next section.

# %% [markdown]
# ## Over training seeds
#
# The interval above covers the test tasks, not training. To see how much training itself
# moves the comparison, both distances are trained again from other seeds (other initial
# weights and other training episodes; both distances of one seed share them) and tested on
# the *same* test episodes. The spread of the per-seed gaps is what a reader should compare
# the gap with.

# %%
seed_tests = {(d, SEED): tests[d, 1] for d in METHODS}
for seed in settings["seeds"][1:]:
    for distance in METHODS:
        run = train(distance, 1, seed)
        seed_tests[distance, seed] = test_and_record(run, distance, 1, seed)[1]

# %% [markdown]
# The per-seed gaps, and their mean and standard deviation over seeds:

# %% tags=["hide-input"]
rows = [
    "| training seed | ProtoNet | ProtoNet(LSED) | LSED - SED (paired over test episodes) |",
    "|---:|---:|---:|---:|",
]
gaps = []
for seed in settings["seeds"]:
    a, b = seed_tests["squared_euclidean", seed], seed_tests["lsed", seed]
    d, dci = (100 * v for v in paired_difference(b.per_episode, a.per_episode))
    gaps.append(d)
    rows.append(
        f"| {seed} | {100 * a.accuracy:.2f} ± {100 * a.ci95:.2f} | "
        f"{100 * b.accuracy:.2f} ± {100 * b.ci95:.2f} | {d:+.2f} ± {dci:.2f} |"
    )
if len(gaps) > 1:
    sd = statistics.stdev(gaps)
    rows.append(
        f"| mean over {len(gaps)} seeds (± sd) | | | {statistics.mean(gaps):+.2f} (sd {sd:.2f}) |"
    )
display(
    Markdown(
        f"**{profile} profile**, 5-way 1-shot test, {settings['test_episodes']} test "
        f"episodes, models of {settings['max_episodes']} training episodes"
        + (f", {STAGE}" if STAGE != "protocol" else "")
        + "\n\n"
        + "\n".join(rows)
    )
)

# %% [markdown]
# ## Does squared Euclidean leave the plateau?
#
# A short run may stop before the squared Euclidean model has started to learn. Trained longer
# (seed `SEED`, both distances, the same episodes), do its curves leave the plateau, and does
# the gap close? The dotted lines are the paper's final 5-way 1-shot *test* accuracies (Table 1),
# reached after tens of thousands of 30-way episodes: a reference, not a target for these
# curves.

# %%
long_runs = {}
if settings["long_episodes"]:
    long_runs = {d: train(d, 1, SEED, settings["long_episodes"], "_long") for d in METHODS}
    fig = plots.learning_curves(
        {
            "ProtoNet": long_runs["squared_euclidean"].history,
            "ProtoNet(LSED)": long_runs["lsed"].history,
        },
        references={
            f"{name}, paper's final test": 100 * paper("lsed_paper", d, 1)
            for name, d in (("ProtoNet", "squared_euclidean"), ("ProtoNet(LSED)", "lsed"))
        },
    )
    fig.suptitle(
        f"miniImageNet 5-way 1-shot, {settings['long_episodes']} training episodes "
        f"({profile} profile)",
        fontsize=10,
    )
    plt.show()

# %% [markdown]
# Where the long run's validation accuracy went, and the test gap after it (the same test
# episodes as above):

# %% tags=["hide-input"]
if long_runs:
    long_tests = {
        d: test_and_record(
            long_runs[d],
            d,
            1,
            experiment="ch04_long_training",
            shots=(1,),
            episodes=settings["long_episodes"],
        )[1]
        for d in METHODS
    }
    h = long_runs["squared_euclidean"].history
    print(
        f"ProtoNet validation accuracy: {100 * h['val_acc'][0]:.1f}% after {h['episode'][0]} "
        f"episodes, {100 * max(h['val_acc']):.1f}% at best (after "
        f"{h['episode'][h['val_acc'].index(max(h['val_acc']))]}), "
        f"{100 * h['val_acc'][-1]:.1f}% after {h['episode'][-1]}"
    )
    # the same validation episodes at every epoch: last against first, paired
    moved, moved_ci = (
        100 * v for v in paired_difference(h["val_per_episode"][-1], h["val_per_episode"][0])
    )
    left = moved > moved_ci
    print(
        f"ProtoNet, last validation - first: {moved:+.2f} ± {moved_ci:.2f} points (paired): "
        + ("it has left the plateau" if left else "it has not left the plateau")
    )
    d, dci = (
        100 * v
        for v in paired_difference(
            long_tests["lsed"].per_episode, long_tests["squared_euclidean"].per_episode
        )
    )
    print(
        f"test after {settings['long_episodes']} episodes: ProtoNet "
        f"{100 * long_tests['squared_euclidean'].accuracy:.2f}%, ProtoNet(LSED) "
        f"{100 * long_tests['lsed'].accuracy:.2f}%, LSED - SED {d:+.2f} ± {dci:.2f} points "
        f"(after {settings['max_episodes']}: {gaps[0]:+.2f})"
    )

# %% [markdown]
# Two test episodes with the LSED model's predictions (green: right, red: wrong, with the
# class it was given):

# %%
from fewshot_utils.distances import protonet_logits  # noqa: E402
from fewshot_utils.episodes import sample_episode  # noqa: E402

gen = torch.Generator().manual_seed(SEED)
model = runs["lsed", min(settings["runs"])].model.eval()
for _ in range(2):
    ep = sample_episode(test_x, way=5, shot=1, query=4, generator=gen)
    with torch.no_grad():
        sup = model(ep.support.flatten(0, 1).to(device)).float()
        qry = model(ep.query.flatten(0, 1).to(device)).float()
    pred = protonet_logits(qry, sup, "lsed", **METHODS["lsed"]).argmax(1).cpu()
    plots.show_episode(ep.support, ep.query, predictions=pred, scale=1.1)
    plt.show()

# %% [markdown]
# ## What we found
#
# Computed from this run (the code only formats the numbers above):

# %% tags=["hide-input"]
ahead = sum(b > a for a, b in zip(h_sed["val_acc"], h_lsed["val_acc"]))
a1, b1 = tests["squared_euclidean", 1], tests["lsed", 1]
gap, gap_ci = (100 * v for v in paired_difference(b1.per_episode, a1.per_episode))
display(
    Markdown(
        f"- In this **{profile}** run, ProtoNet(LSED) was ahead of ProtoNet on validation at "
        f"{ahead} of {len(h_sed['val_acc'])} validation points; after the first epoch the gap was "
        f"{first_gap:+.2f} ± {first_ci:.2f} points (paired).\n"
        f"- 5-way 1-shot test: {100 * a1.accuracy:.2f}% vs {100 * b1.accuracy:.2f}%, a paired "
        f"difference of {gap:+.2f} ± {gap_ci:.2f} points over the test episodes (not over "
        f"training runs); the paper reports "
        f"{100 * (paper('lsed_paper', 'lsed', 1) - paper('lsed_paper', 'squared_euclidean', 1)):+.2f}.\n"
        + (
            f"- Over {len(gaps)} training seeds the same gap was {statistics.mean(gaps):+.2f} on "
            f"average, with a standard deviation of {statistics.stdev(gaps):.2f} points between "
            f"seeds (per seed: {', '.join(f'{g:+.2f}' for g in gaps)}).\n"
            if len(gaps) > 1
            else ""
        )
        + (
            f"- Trained for {settings['long_episodes']} episodes instead of "
            f"{settings['max_episodes']}: ProtoNet {100 * long_tests['squared_euclidean'].accuracy:.2f}%"
            f", ProtoNet(LSED) {100 * long_tests['lsed'].accuracy:.2f}% on the same test episodes "
            "(learning curves above). ProtoNet's validation accuracy after "
            f"{h['episode'][-1]} episodes against after {h['episode'][0]}: {moved:+.2f} ± "
            f"{moved_ci:.2f} points, so "
            + (
                "it has left the plateau.\n"
                if left
                else f"within {settings['long_episodes']} episodes it has not left the plateau.\n"
            )
            if long_runs
            else ""
        )
        + (
            "- **Early training.** These networks saw a few hundred 5-way episodes, not the "
            "protocol's tens of thousands of 30-way ones, and the 5-shot test uses the 1-shot "
            "models. A short run favours the distance that starts faster: a gap here measures how "
            "far ProtoNet has got while LSED is already learning, not the paper's gap at the end "
            "of training. The `full` profile on a GPU is the comparison with Table 1."
            if profile != "full"
            else "- These are `full`-protocol numbers, comparable with Table 1."
        )
    )
)
