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
# # 6. Implanting
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/06_implanting.ipynb)

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
# - how stage 2 of Lifchitz et al. {cite}`lifchitz2019dense` grows a few new convolution
#   channels, *implants*, beside a frozen network and trains them on one new task's support
#   images, each support in turn playing the query;
# - why a task's implants train in about a second on a CPU: only the last block depends on
#   the task;
# - how to tell whether implants help: DC + IMP against DC and against a network simply
#   trained 16 channels wider (DC + WIDE), paired on the same tasks, and which pooling stage 2
#   should use (the paper's Tables 3 and 4).
#
# **The question.** Chapter 5's network is frozen after training on the base classes, and
# from a new task's handful of labelled images it learns only the prototypes. Does training a
# few new channels on those images make it more accurate, and by more than 16 extra channels
# trained in stage 1 would?
#
# *Stage 1* is chapter 5's training on the base classes, with a cosine classifier on globally
# average-pooled features (GAP) or at every location (DC, dense classification). *Stage 2*
# implants 16 new channels beside every convolution of the last residual block and trains
# them on the task's own supports, while the base network stays frozen: nothing learnt on the
# base classes is forgotten. This chapter reuses the networks chapter 5 trained (run chapter 5
# first, or they are trained here).

# %% tags=["parameters"]
# Runtime: on Colab, pick Runtime > Change runtime type > GPU for the `full`
# profile (the papers' protocol); a CPU runtime runs the shorter `cpu` profile.
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
SEED = 0
RETRAIN = False  # True trains the stage-1 networks again despite checkpoints
EXERCISES = None  # True runs the quick exercises at the end

# %%
import time

import matplotlib.pyplot as plt
import torch
from fewshot_utils import diagrams, implanting, stage1
from fewshot_utils import report_dense as rd
from fewshot_utils.dense import FewShotMaps, evaluate_poolings
from fewshot_utils.display import show_source
from fewshot_utils.evaluation import embed
from fewshot_utils.implanting import (
    ImplantConfig,
    evaluate_implanting,
    prefix_features,
    train_implants,
)
from fewshot_utils.models import ResNet12
from fewshot_utils.profiles import exercises_on, pick, start
from fewshot_utils.report_dense import paired
from IPython.display import Markdown, display

session = start(PROFILE, SEED)  # profile, device, seed, provenance line
profile, device = session.profile, session.device

# %% [markdown]
# ## Data and the stage-1 networks
#
# The same data as chapter 5: stage 1 on the first 500 images of each of the 64 base classes,
# tests on the 20 novel test classes. Three stage-1 networks: GAP- and DC-trained ResNet-12
# (chapter 5's checkpoints) and **DC + WIDE**, the DC network with its last residual block 16
# channels wider, trained the same way: the baseline that asks whether implants help only
# because they add channels.

# %%
# chapter 5's test images; the shots, tasks and implant epochs of this profile
st = stage1.test_settings(profile, 6)
d = stage1.load_stage1_data(profile, st)
proto, train_x, test_x = d.protocol, d.train, d.test
print(f"stage 1: {tuple(train_x.shape[:2])} (classes, images)")
print(f"test:    {tuple(test_x.shape[:2])}")

widths = tuple(proto["widths"])
wide = (*widths[:-1], widths[-1] + 16)
NETS = {  # name -> (stage-1 pooling, widths, checkpoint stem)
    "gap": ("gap", widths, "ch05_resnet12_gap"),
    "dc": ("dc", widths, "ch05_resnet12_dc"),
    "dc+wide": ("dc", wide, "ch06_resnet12wide_dc"),
}

# %% [markdown]
# A network chapter 5 has not left in the checkpoint folder is trained here; the folded cell
# measures how fast and predicts how long. It picks the faster of one or all threads, which
# also moves the last digits of what is trained here (a CPU splits its sums by thread), so
# each record names its `threads`.

# %% tags=["hide-input"]
rd.predict_implanting_networks_time(NETS, train_x, session, RETRAIN)

# %% [markdown]
# The three networks, loaded from their checkpoints (or trained, with the seed chapter 5
# uses, so that a network trained here is the one chapter 5 would have trained):

# %%
nets = {}
for name, (pooling, w, stem) in NETS.items():
    net = lambda w=w: ResNet12(widths=w)  # noqa: E731
    nets[name] = r = stage1.stage1_network(
        net, pooling, stem, train_x, profile, SEED, RETRAIN, device
    )
    print(
        f"{name:8s} widths {'-'.join(map(str, w))}: "
        f"{r.iterations_done} iterations, {r.wall_time_s / 60:.1f} min"
        f"{' (loaded)' if r.loaded else ''}, "
        f"tau {float(r.classifier.tau.detach()):.2f}"
    )

# %% tags=["hide-input"]
rd.implanting_cpu_note(d, st, profile)

# %% [markdown]
# ## Implants
#
# The last residual block with its implants, as `Implants` computes it: the frozen base stream
# above, the implant stream trained on the task below.

# %% tags=["hide-input"] mystnb={"image": {"alt": "The last residual block of ResNet-12 drawn as two parallel streams. The top, base stream of three convolutions is frozen after stage 1. The bottom, implant stream of three 16-channel convolutions is trained in stage 2 on the new task's support images: its first convolution reads the block input, and each later one reads the channel-wise concatenation of the base and implant activations of the layer below, while the base stream never sees the implants. The block's output is the concatenation of the base map and the 16-channel implant map."}}
diagrams.implant_block()
plt.show()

# %% [markdown]
# For a block input $\mathbf{x}$ with base activations $\mathbf{a}_1, \mathbf{a}_2$ after
# the block's first two convolutions, the implant stream computes
# $\mathbf{a}'_1 = \mathrm{act}(\mathrm{BN}(\mathrm{conv}'_1(\mathbf{x})))$,
# $\mathbf{a}'_2 = \mathrm{act}(\mathrm{BN}(\mathrm{conv}'_2([\mathbf{a}_1, \mathbf{a}'_1])))$,
# and the third layer on $[\mathbf{a}_2, \mathbf{a}'_2]$ with a shortcut, as the base block;
# the embedding is the concatenation of the base and implant maps (Figure 4). Only the
# implants are trained.

# %%
show_source(implanting.Implants.forward)

# %% [markdown]
# The leave-one-out loss (eq. 11; eq. 12 when the query is densely classified): for every
# support example $i$, prototypes from the *other* examples, $\mathbf{p}_j^{(i)} =
# \frac{1}{|S_j \setminus \{i\}|}\sum_{l \in S_j \setminus \{i\}}\phi_{\theta,\theta'}(\mathbf{x}'_l)$,
# and the cross-entropy of $\sigma([s_\tau(\phi_{\theta,\theta'}(\mathbf{x}'_i),
# \mathbf{p}^{(i)}_j)]_j)$. All $n'$ subtasks come out of one pass over the supports: the
# class sums minus the example itself. A class needs a second support to stay in the subtask
# where its first is held out, so implanting needs at least 2 shots.
#
# $s_\tau$ is chapter 5's cosine classifier, $\tau$ times the cosine, and its scale $\tau$ is
# the scale knob of the whole book: the same knob as TADAM's $\alpha$ and LSED's slope
# $r$, it sets how peaked the softmax is. Stage 1 learnt $\tau$ (printed above); stage 2 fixes
# $\tau = 10$, so the logits of a subtask lie in $[-10, 10]$.

# %%
show_source(implanting.leave_one_out_loss)

# %% [markdown]
# ## Making a task cheap
#
# The implants sit in the last block, so everything before it is the same for every task:
# `prefix_features` runs it once per test image. Per task, the frozen base stream of the last
# block runs once on the task's images, and each of the 50 epochs runs only the 16-channel
# implant stream on the supports.

# %%
t0 = time.perf_counter()
prefix = prefix_features(nets["dc"].model, test_x, device=device)
prefix_s = time.perf_counter() - t0
n_images = test_x.shape[0] * test_x.shape[1]
print(f"block inputs {tuple(prefix.shape[2:])} of {n_images} test images")
print(f"in {prefix_s:.1f} s, once for all tasks")
tau_dc = float(nets["dc"].classifier.tau.detach())


def implant(
    shot,
    tasks,
    seed=SEED,
    net=nets["dc"],
    maps=prefix,
    test_tau=tau_dc,
    progress=True,
    **stage2,
):
    """DC + IMP on ``tasks`` 5-way ``shot``-shot tasks over block inputs
    ``maps``: implants trained on each task's supports (``stage2``: settings of
    ImplantConfig, e.g. its poolings), the queries scored with and without
    them, on the same tasks."""
    config = ImplantConfig(epochs=st["epochs"], **stage2)
    return evaluate_implanting(
        *(net.model, maps, 5, shot, st["query"], tasks, config, seed),
        test_tau=test_tau,
        progress=progress,
    )


# %% [markdown]
# Two implanted tasks, timed, predict how long the implanted tasks of this chapter take:

# %% tags=["hide-input"]
rd.predict_implanting_time(implant, st, session)  # times two implanted tasks

# %% [markdown]
# ## Table 4: GAP, DC, DC + WIDE, DC + IMP
#
# The stage-1 rows need no per-task training: each network embeds the test images once and
# is scored on many tasks (GAP supports; GAP queries for the GAP network, DC queries for the
# DC ones, as in the paper). DC + IMP trains implants on every task (GAP supports and queries
# in stage 2, the paper's choice), then tests with GAP supports and DC queries; on the same
# tasks we also score the DC network without implants, so the gain is measured pair by pair.

# %%
QUERY_POOL = {"gap": "gap", "dc": "dc", "dc+wide": "dc"}
table4, t4_seconds = {}, {}
for name, run in nets.items():
    t0 = time.perf_counter()
    maps = FewShotMaps.from_maps(embed(run.model, test_x, device=device))
    combo = ("gap", QUERY_POOL[name])  # (support, query) pooling
    tau = float(run.classifier.tau.detach())
    for shot in st["shots"]:
        table4[name, shot] = evaluate_poolings(
            maps,
            5,
            shot,
            st["query"],
            st["episodes"],
            seed=SEED,
            combos=[combo],
            tau=tau,
        )["novel"][combo]
    t4_seconds[name] = time.perf_counter() - t0

# %% [markdown]
# DC + IMP: implants trained on every task, for each shot (the progress bar counts the tasks):

# %%
implant_runs = {}
for shot in st["shots"]:
    implant_runs[shot] = r = implant(shot, st["implant_tasks"])
    n, seconds = len(r.task_seconds), sum(r.task_seconds)
    train_s = sum(r.train_seconds) / n
    print(f"{shot}-shot: {n} tasks implanted in {seconds:.0f} s")
    print(f"  {seconds / n:.2f} s per task ({train_s:.2f} s training implants)")

# %% [markdown]
# Table 4 beside the paper's, then the two differences that matter, each paired on the same
# tasks: DC + IMP against DC (the implants' gain) and DC + WIDE against DC (the gain of 16
# more channels trained in stage 1). `paired(a, b)` writes `b - a` with its 95% interval.

# %% tags=["hide-input"]
rd.show_table4(table4, implant_runs, st, profile)

# %% [markdown]
# Two things to read in these rows. In the `cpu` profile the stage-1 rows rest on thousands
# of tasks and DC + IMP on tens, so its interval is several times wider: the paired
# difference on the same tasks is what says whether implants moved the accuracy. And DC + WIDE
# is a *different network* trained from scratch: after a short run, a gap of a few points
# between two such networks says how much it depends on width and initialisation, not that
# widening hurts (the paper finds WIDE within a point of DC).

# %% [markdown]
# ## Table 3: pooling in stage 2
#
# Which pooling should the leave-one-out subtasks use: GAP, GMP (global max pooling) or DC
# (the query classified at every location)? Rows: support and query pooling during implant
# training; columns: query pooling at test time (supports always GAP). 5-way 5-shot, the same
# tasks in every row.

# %%
# Table 3's rows: (support, query) pooling of the leave-one-out subtasks
STAGE2 = [("gmp", "gmp"), ("gmp", "dc"), ("gap", "gap"), ("gap", "dc")]
TEST_POOL = ("gap", "gmp", "dc")  # its columns: query pooling at test time
shot = st["shots"][0]
table3 = {}
for sp, qp in STAGE2:
    if (sp, qp) == ("gap", "gap") and st["table3_tasks"] == st["implant_tasks"]:
        table3[sp, qp] = implant_runs[shot]  # the same tasks and training
        continue
    pools = dict(support_pool=sp, query_pool=qp)
    table3[sp, qp] = implant(shot, st["table3_tasks"], **pools)

# %% [markdown]
# Table 3 beside the paper's, with the DC network without implants as the last row (the same
# tasks):

# %% tags=["hide-input"]
rd.show_table3(table3, shot, st, profile)

# %% [markdown]
# The rows share their tasks, so their differences can be taken task by task, which removes
# the task-to-task variation the rows have in common:

# %%
ref = table3["gap", "gap"]
for (sp, qp), r in table3.items():
    if (sp, qp) != ("gap", "gap"):
        print(f"stage 2 {sp.upper()}/{qp.upper()} - GAP/GAP:")
        for t in TEST_POOL:
            diff = paired(ref.implanted[t], r.implanted[t])
            print(f"  test {t.upper()} {diff}")
print("GAP/GAP - no implants:")
for t in TEST_POOL:
    print(f"  test {t.upper()} {paired(ref.baseline[t], ref.implanted[t])}")

# %% [markdown]
# What the implants learn on one task: the leave-one-out loss and accuracy over the epochs.

# %%
s0 = st["shots"][0]
x_one = prefix[:5, :s0].flatten(0, 1)  # first s0 images of the first 5 classes
labels_one = torch.arange(5, device=prefix.device).repeat_interleave(s0)
block = nets["dc"].model.blocks[-1]
cfg_one = ImplantConfig(epochs=st["epochs"])  # tau = 10
_, hist = train_implants(block, x_one, labels_one, 5, cfg_one, seed=SEED)

# %% tags=["hide-input"]
rd.plot_implant_curves(hist, st["shots"][0], profile)

# %% [markdown]
# ## Results records
#
# The folded cell saves every number above as a results record with its provenance, for
# [the Results page](90_results.ipynb) (a `smoke` run writes none).


# %% tags=["hide-input"]
args = (nets, NETS, QUERY_POOL, table4, t4_seconds, d, session)
written = rd.write_table4_records(*args)
spent = nets["dc"].wall_time_s + prefix_s  # before the implanted tasks
written += rd.write_implanting_records(
    implant_runs, table3, spent, st, d, session
)
rd.print_written(written, profile)

# %% [markdown]
# ## FC100 (Table 5)
#
# FC100 needs CIFAR-100 (see chapter 5); without it this section says so and stops. With it,
# the folded cell repeats the miniImageNet steps on the DC network chapter 5 trained on FC100
# (trained here if its checkpoint is missing), with that network's learnt $\tau$.

# %% tags=["hide-input"]
# DC and DC + IMP on FC100, printed and filed as above (skipped without CIFAR-100)
written += rd.fc100_implanting(implant, widths, st, session)

# %% [markdown]
# ## What we found
#
# Computed from this run (the code only formats the numbers above):

# %% tags=["hide-input"]
args = (implant_runs, table3, table4, prefix_s, st, session)
display(Markdown(rd.implanting_findings(*args)))

# %% [markdown]
# ## Summary
#
# - Stage 2 implants a few channels (16) beside every convolution of the last residual block.
#   Each implant reads the base and implant activations below it, the base network stays
#   frozen, and the embedding is the base map with the implant map beside it.
# - The implants are trained on one task's supports alone, by a leave-one-out loss: each
#   support in turn is the query, classified against the prototypes of the others. Implanting
#   therefore needs at least 2 shots.
# - Only the last block depends on the task, so the layers before it run once per image and a
#   task's implants train in about a second on a CPU.
# - Whether implants help is a paired question: DC + IMP against DC on the same tasks, and
#   DC + WIDE as the control for "16 more channels"; Table 3 asks which pooling stage 2 uses.
# - Stage 2's cosine classifier fixes its scale at $\tau = 10$: the book's scale knob
#   again, chosen by hand here, learnt in stage 1.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (about 40 s on 2 CPU cores).** Turn the scale knob of stage 2. Train the
# implants of the chapter's one task at $\tau = 1$ and $\tau = 100$ beside its $\tau = 10$
# curves, then implant a few tasks at each $\tau$ and compare the gain over DC on the same
# tasks. Set `EXERCISES = True` in the parameters cell and run the cell below.
#
# :::{admonition} What you should see
# :class: dropdown
# The curves follow from the softmax. At $\tau = 1$ the logits lie in $[-1, 1]$: even a
# perfectly placed support gets at most $e/(e + 4e^{-1}) \approx 0.65$ of the probability in a
# 5-way subtask, so the loss cannot fall below $\log(1 + 4e^{-2}) \approx 0.43$, and every
# support keeps sending a gradient. At $\tau = 100$ the softmax saturates: the loss drops to
# almost nothing as soon as each subtask is right, and a support that is right stops sending
# any gradient, with 25 images to fit. $\tau = 10$ lies between. The gains over ten tasks
# carry intervals of a few points: read their sign, not their size (the printed interval says
# how wide). We have not measured them on the `cpu` profile.
# :::
#
# **Exercise 2 (about 3 to 4 min on 2 CPU cores).** Widen the implants from 16 to 64
# channels: `r64 = implant(s0, st["implant_tasks"], width=64)` runs the chapter's first
# Table 4 tasks again with wider implants. Compare `paired(implant_runs[s0].implanted["dc"],
# r64.implanted["dc"])` and both runs' gains over DC. The time is an estimate: the chapter's
# cost per task (printed above) times the growth of the implants' convolutions, about five
# times. Does width trained per task do more than the 16 channels DC + WIDE got in stage 1?
#
# :::{admonition} What to look for
# :class: dropdown
# More channels fit the leave-one-out subtasks faster (the final training accuracy, printed
# with each run, rises), but they are fitted to the same 25 images, so the test gain need not
# grow and can shrink. Compare the two gains task by task (`paired`), not by their intervals.
# :::
#
# **Exercise 3.** Stage 2 fixes $\tau$ while stage 1 learns it. Suppose stage 2 learnt $\tau$
# too, on a task whose leave-one-out subtasks are all classified correctly. What happens to
# $\tau$, to the softmax and to the gradient reaching the implants?
#
# :::{admonition} What you should see
# :class: dropdown
# When every subtask is right, a larger $\tau$ makes every true class's probability larger,
# so the loss falls as $\tau$ grows, without any change to the features: $\tau$ keeps growing.
# The softmax saturates, the correct subtasks stop sending gradient (chapter 1's area III),
# and the implants stop learning from them. With 25 images this comes early; fixing
# $\tau = 10$ keeps the knob where the softmax is still graded.
# :::
#
# **Exercise 4.** In a 5-way 5-shot task, how many leave-one-out subtasks are there, and how
# many supports make each prototype? Why is the held-out image's own class at a disadvantage,
# and what does that say about the leave-one-out accuracy as an estimate of test accuracy?
#
# :::{admonition} What you should see
# :class: dropdown
# 25 subtasks, one per support. The held-out image's own prototype averages the other 4
# supports of its class, every other prototype all 5. Its own prototype is the noisier one, so
# each subtask is a little harder than the test task, whose prototypes all average 5: the
# leave-one-out accuracy slightly underestimates what the same features do at 5 shots (at
# 2 shots, one support per prototype against two, much more so).
# :::

# %% tags=["exercise"]
# Exercise 1 (about 40 s on 2 CPU cores): set EXERCISES = True above to run it
if exercises_on(EXERCISES, profile):
    curves = {10.0: hist}  # the chapter's run above
    for tau in (1.0, 100.0):
        cfg_tau = ImplantConfig(epochs=st["epochs"], tau=tau)
        task = (block, x_one, labels_one, 5)  # the one task above, 5-way
        _, curves[tau] = train_implants(*task, cfg_tau, seed=SEED)
    fig, ax = plt.subplots(1, 2, figsize=(8, 2.8))
    for tau, h in sorted(curves.items()):
        ax[0].plot(h["loss"], label=f"τ = {tau:g}")
        ax[1].plot([100 * a for a in h["acc"]])
    ax[0].set(title="leave-one-out loss", xlabel="epoch", yscale="log")
    ax[1].set(title="leave-one-out accuracy (%)", xlabel="epoch")
    ax[0].legend()
    plt.show()
    n = pick(profile, smoke=2, cpu=10, full=10)  # implanted tasks per tau
    for tau in sorted(curves):
        r = implant(st["shots"][0], n, tau=tau, progress=False)
        gain = paired(r.baseline["dc"], r.implanted["dc"])
        print(f"τ = {tau:g}: DC+IMP - DC {gain}")

# %% [markdown]
# ## What comes next
#
# Implants adapt the network to a task by training on it, a second or so per task. Chapter 7,
# [TADAM](07_tadam.ipynb) {cite}`oreshkin2018tadam`, adapts it without any training at test
# time: a task embedding computed from the task's prototypes conditions the features in one
# forward pass. TADAM also scales its distances by a metric scale $\alpha$, the same
# scale knob as $\tau$ here, and co-trains on an auxiliary 64-way task. The chapter asks
# which of the three makes it more accurate.
