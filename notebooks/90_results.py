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
# # Results: every reproduced number beside the paper's
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fewshot-book/fewshot-book/blob/main/notebooks/90_results.ipynb)
#
# The chapters before this one each train and test a model and save every number they
# measure as a record under `results/`, with its provenance: the profile it ran in, the
# device, the wall time and the git commit of the code. This chapter runs nothing: it reads
# every record and puts it beside the published number it reproduces, for each table of the
# three papers, LSED {cite}`shen2018lsed` (Table 1), dense classification and implanting
# {cite}`lifchitz2019dense` (Tables 1-5) and TADAM {cite}`oreshkin2018tadam` (Table 2).
#
# Two rules make the tables honest. A number the book has not measured yet is shown as
# *not measured yet*, never filled with the paper's. And every number says which profile
# produced it: `cpu` numbers come from real data but from training shortened to fit a laptop,
# so they are **not** the paper's protocol, and a gap to the paper there says how far a short
# schedule gets, not whether the paper holds; only `full` numbers follow the protocol.

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

# %% tags=["parameters"]
# Runtime: any; this chapter trains nothing (a CPU runtime is enough).
PROFILE = None  # "smoke", "cpu", "full" or "auto"; None reads FEWSHOT_PROFILE
RESULTS = None  # folder of the records; None: results/ (cloned on Colab)

# %%
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
from fewshot_utils import effects, paper_numbers, reproduction
from fewshot_utils.colab import results_folder
from fewshot_utils.display import show_source
from fewshot_utils.profiles import resolve_profile
from fewshot_utils.results import load_results, results_dir
from IPython.display import Markdown, display

profile = resolve_profile(PROFILE)
print(
    f"profile {profile}: the same in every profile, "
    "expected run time a few seconds"
)

# %% [markdown]
# The records: one JSON file per measured number, written by the chapters.

# %%
# A pip install (Colab) has no results/: then those of a clone of REPOSITORY.
folder = Path(RESULTS) if RESULTS else results_folder(REPOSITORY)
records = load_results(folder)
shown = (
    folder.name if folder == results_dir() else folder
)  # no machine-specific path
if not records:
    print(f"no records in {shown}/: every number below is 'not measured yet'")
by_profile = Counter(r["profile"] for r in records)
print(
    f"{len(records)} records in {shown}/: "
    + (", ".join(f"{n} {p}" for p, n in sorted(by_profile.items())) or "none")
)


# %% [markdown]
# ## The papers' claims, as effects
#
# A short `cpu` run cannot reach a paper's absolute numbers, so "ours − paper" below is far
# outside its interval almost everywhere: true, and uninformative. What a short run *can* test
# is each paper's claim: the sign and the size of a difference between two models. Each line
# is one claim: the paper's difference, ours as a **paired** difference on the same test tasks
# with its 95% interval (over the test tasks, and, where a model was trained with several
# seeds, over the seeds too: a test-task interval says nothing about how much another
# initialisation or episode order would move a model), and a verdict in words, by one rule
# for every claim that compares size as well as sign:
#
# - *agrees*: the paper's difference lies inside our interval, and zero does not;
# - *not resolved: holds the paper's and zero*: the interval is too wide to tell;
# - *same sign, larger* or *same sign, smaller*: our interval excludes zero and the paper's
#   value;
# - *opposite sign*: our interval excludes zero, on the other side of it;
# - *not resolved, smaller than the paper's*: our interval holds zero but not the paper's
#   value.
#
# Each verdict then says how many models stand behind it. With one trained model per side
# it reads *one training seed: seed spread not measured*: the interval covers the test
# tasks only, so it cannot say whether another training run would agree. A test that is not
# the paper's experiment (for example 1-shot models tested at 5 shots) is marked as such.

# %%
show_source(effects.measure)

# %% tags=["hide-input", "full-width"]
effect_lines = [
    e
    for claim in effects.CLAIMS
    for e in [effects.measure(claim, records, p) for p in ("full", "cpu")]
    if e.difference is not None or e.profile == "cpu"
]
display(Markdown(effects.markdown_table(effect_lines)))
verdicts = Counter(
    effects.verdict(e).split(";")[0].split(" (")[0] for e in effect_lines
)
print("; ".join(f"{n} {v}" for v, n in verdicts.most_common()))

# %% [markdown]
# ## How a record finds its published number
#
# The published numbers live in one place, `fewshot_utils.paper_numbers`, one entry per cell
# of each table (transcribed from the papers; the unit tests check every number against the
# paper files). A record names the cells it reproduces in its `paper_rows` field; a record
# without one is matched by the published number its chapter compared with
# (`paper_accuracy`), in the same dataset, way and shot. Several tables print the same
# experiment (ResNet-12 with global average pooling, 5-shot, is 76.40 in Tables 1, 2 and 4
# of the dense-classification paper), so one record can fill several cells; two different
# experiments that print the same number are an error the record must resolve by naming its
# cell.

# %%
show_source(reproduction.record_cells)

# %% [markdown]
# Each line below is one published cell and one record that reproduces it (a cell measured in
# both profiles has two lines, `full` first). *ours* is our accuracy with its 95% confidence
# interval over the test episodes; *ours − paper* is the difference in percentage points with
# the 95% interval of the difference: ours and the paper's, where the paper prints one, added
# in quadrature. The last columns are the provenance of our number; the full record, with the
# whole configuration, is the JSON file named after it under `results/`.

# %% tags=["hide-input"]
comparisons = reproduction.compare(records)
by_table = {
    key: [c for c in comparisons if (c.paper.paper, c.paper.table) == key]
    for key in paper_numbers.TABLES
}


def show_table(paper: str, table: str) -> None:
    """The caption, how many cells are measured, and the table."""
    lines = by_table[paper, table]
    done = {c.paper.id for c in lines if c.record is not None}
    cells = {c.paper.id for c in lines}
    profiles = Counter(
        c.record["profile"] for c in lines if c.record is not None
    )
    counts = ", ".join(f"{n} {p}" for p, n in sorted(profiles.items())) or "no"
    display(
        Markdown(
            f"**{paper_numbers.TABLES[paper, table]}.** {len(done)} of {len(cells)} cells measured "
            f"({counts} lines).\n\n" + reproduction.markdown_table(lines)
        )
    )


# %% [markdown]
# ## LSED, Table 1
#
# ProtoNet with squared Euclidean distance against ProtoNet(LSED), on Omniglot 20-way and
# miniImageNet 5-way (chapters 3 and 4).

# %% tags=["hide-input", "full-width"]
show_table("shen2018lsed", "Table 1")

# %% [markdown]
# ## Dense classification, Table 1
#
# Stage 1 only: a cosine classifier trained with global average pooling (GAP) or dense
# classification (DC), on the small C128F network and on ResNet-12 (chapter 5).

# %% tags=["hide-input", "full-width"]
show_table("lifchitz2019dense", "Table 1")

# %% [markdown]
# ## Dense classification, Table 2
#
# Stage 1 only, 5-way 5-shot with ResNet-12: how support and query features are pooled at
# test time (GMP: global max-pooling), on the novel classes, the base classes, and both
# together (chapter 5).

# %% tags=["hide-input", "full-width"]
show_table("lifchitz2019dense", "Table 2")

# %% [markdown]
# ## Dense classification, Table 3
#
# Implanting (stage 2), 5-way 5-shot: the pooling used while training the implants and at
# test time (chapter 6).

# %% tags=["hide-input", "full-width"]
show_table("lifchitz2019dense", "Table 3")

# %% [markdown]
# ## Dense classification, Table 4
#
# The ablation on miniImageNet: GAP, DC, DC with the last block widened by 16 channels
# (WIDE), and DC with implants (IMP, which needs at least two shots) (chapters 5 and 6).

# %% tags=["hide-input", "full-width"]
show_table("lifchitz2019dense", "Table 4")

# %% [markdown]
# ## Dense classification, Table 5
#
# The same ablation on FC100 (chapters 5 and 6).

# %% tags=["hide-input", "full-width"]
show_table("lifchitz2019dense", "Table 5")

# %% [markdown]
# ## TADAM, Table 2
#
# The ablation of TADAM's three ingredients on miniImageNet and FC100: metric scaling α,
# auxiliary co-training (AT) and task conditioning (TC), against a ResNet-12 Prototypical
# Network (chapter 7).

# %% tags=["hide-input", "full-width"]
show_table("oreshkin2018tadam", "Table 2")

# %% [markdown]
# ## Ours minus the paper's
#
# One point per measured line, with the 95% interval of the difference; a table with no
# measured cell yet has no panel, and each panel's title counts its cells measured.

# %% tags=["hide-input"]
measured_tables = [
    key for key, lines in by_table.items() if any(c.record for c in lines)
]
if measured_tables:
    heights = [
        0.45 * max(sum(c.record is not None for c in by_table[k]), 2) + 1.3
        for k in measured_tables
    ]
    fig, axes = plt.subplots(
        len(measured_tables),
        1,
        figsize=(8, sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, key in zip(axes[:, 0], measured_tables):
        reproduction.plot_differences(
            by_table[key], ax=ax, title=paper_numbers.TABLES[key]
        )
    fig.tight_layout()
    plt.show()
missing = [
    paper_numbers.TABLES[k].split(":")[0]
    for k in by_table
    if k not in measured_tables
]
print("no cell measured yet: " + ("; ".join(missing) if missing else "none"))

# %% [markdown]
# ## Records that reproduce no published cell
#
# The book also measures things the papers print no number for: chapter 0's first ProtoNet,
# the 5-way Omniglot tests of chapter 3 (the LSED paper reports 20-way only), chapter 2's
# grid over LSED's parameters. Every record appears here or in a table above.

# %% tags=["hide-input", "full-width"]
others = reproduction.unmatched(records)
if others:
    display(Markdown(reproduction.records_table(others)))
else:
    print("none")

# %% [markdown]
# ## What the records say
#
# Counted from the records above, not typed:

# %% tags=["hide-input"]
n_cells = len(paper_numbers.PAPER_NUMBERS)
measured = {
    prof: {
        c.paper.id
        for c in comparisons
        if c.record and c.record["profile"] == prof
    }
    for prof in ("full", "cpu")
}
inside = [
    c
    for c in comparisons
    if c.record is not None and abs(c.difference) <= c.difference_ci95
]
lines_measured = [c for c in comparisons if c.record is not None]
display(
    Markdown(
        f"- {len(records)} records; {n_cells} published cells in the seven tables.\n"
        f"- Measured with the papers' protocol (`full`): {len(measured['full'])} cells; with the "
        f"shortened `cpu` profile: {len(measured['cpu'])} cells; not measured yet: "
        f"{n_cells - len(measured['full'] | measured['cpu'])} cells.\n"
        f"- The paper's number lies within the 95% interval of the difference on "
        f"{len(inside)} of {len(lines_measured)} measured lines.\n"
        f"- {len(others)} records measure something the papers print no number for."
    )
)
