"""The book's machinery for chapters 5 and 6: the paper's tables beside ours, records, FC100
sections, findings.

Chapters 5 (dense classification) and 6 (implanting) teach stage 1 and stage 2 of Lifchitz
et al. {cite}`lifchitz2019dense`; what they also do to report, file and compare their
numbers lives here, so that each chapter folds it into one call: the look-ups of the
published cells (:func:`cell_id`, :func:`paper_cells`), the records' names and
configurations (:func:`method_name`, :func:`record_config`) and the records themselves, the
time estimates, the tables with the paper's numbers beside ours, the figures' styling, the
FC100 sections and the "what we found" paragraphs. None of it changes what is computed: the
functions format, plot and file numbers the chapters computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import torch

from . import dense
from .dense import FewShotMaps, evaluate_poolings
from .display import _show_markdown, markdown_table, table
from .evaluation import EvalResult, ci95, embed, paired_difference
from .implanting import ImplantConfig, ImplantingResult, prefix_features
from .models import ResNet12
from .paper_numbers import by_id, existing, printed
from .profiles import Session, fastest_threads, time_estimate
from .results import make_record, write_result
from .stage1 import Stage1Data, load_fc100, stage1_checkpoint, stage1_network

__all__ = [
    "LIFCHITZ",
    "NET_ROW",
    "TABLE1_TEST",
    "TABLE4_TEST",
    "KINDS",
    "cell_id",
    "method_name",
    "paper_cells",
    "record_config",
    "early",
    "print_written",
    "short",
    "cpu_profile_note",
    "predict_stage1_time",
    "plot_stage1_curves",
    "show_table1",
    "show_table2",
    "stage1_record",
    "write_stage1_records",
    "write_seed_records",
    "seed_gap_table",
    "plot_cams",
    "fc100_table5",
    "dense_findings",
    "paired",
    "paper_gain",
    "implanting_cpu_note",
    "predict_implanting_networks_time",
    "predict_implanting_time",
    "show_table4",
    "show_table3",
    "plot_implant_curves",
    "implanting_records",
    "write_table4_records",
    "write_implanting_records",
    "fc100_implanting",
    "implanting_findings",
]

# --------------------------------------------------------------------------- the paper's cells

LIFCHITZ = "lifchitz2019dense"  # the paper's key in fewshot_utils.paper_numbers
NET_ROW = {"c128f": "c128f", "resnet12": "resnet-12"}  # the network as Table 1 names its rows
# (support, query) pooling with which each table tests a network trained with GAP or DC:
TABLE1_TEST = {"gap": ("gap", "gap"), "dc": ("gmp", "gmp")}  # Table 1: DC tested with GMP
TABLE4_TEST = {"gap": ("gap", "gap"), "dc": ("gap", "dc")}  # Tables 4 and 5: DC queries
KINDS = ("novel", "base", "both")  # Table 2's classes
CH05 = "ch05_dense_classification"  # the experiments of the records
CH06 = "ch06_implanting"


def cell_id(cell: str, shot: int, dataset: str = "miniimagenet") -> str:
    """The id of Lifchitz et al.'s published 5-way ``shot``-shot cell ``cell`` of
    :mod:`fewshot_utils.paper_numbers`, e.g. ``cell_id("table-4/dc", 5)``."""
    return f"{LIFCHITZ}/{cell}/{dataset}/5w{shot}s"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def method_name(net: str, pooling: str, combo: tuple[str, str], kind: str = "novel") -> str:
    """The ``method`` of a chapter-5 record: network, stage-1 pooling, then the support and
    query pooling of the test (``combo``); base- and both-classes results (Table 2) say so."""
    _check_kind(kind)
    name = f"{net}-{pooling}-support-{combo[0]}-query-{combo[1]}"
    return name if kind == "novel" else f"{name}-{kind}-classes"


def paper_cells(
    net: str, pooling: str, shot: int, combo: tuple[str, str], kind: str = "novel"
) -> list[str]:
    """Ids of the published miniImageNet cells that the result of network ``net`` trained with
    ``pooling``, tested ``combo`` on ``kind`` classes at ``shot`` shots, reproduces: Table 1
    (novel classes, tested as :data:`TABLE1_TEST`), Table 2 (ResNet-12, every combination,
    5-shot only) and Table 4 (ResNet-12, tested as :data:`TABLE4_TEST`). Only cells the paper
    prints are returned."""
    _check_kind(kind)
    sp, qp = combo
    ids = []
    if kind == "novel" and combo == TABLE1_TEST[pooling]:
        ids.append(f"table-1/{NET_ROW.get(net, net)}-{pooling}")
    if net == "resnet12":
        ids.append(f"table-2/{pooling}-{kind}-classes/test-{sp}-{qp}")
        if kind == "novel" and combo == TABLE4_TEST[pooling]:
            ids.append(f"table-4/{pooling}")
    return existing(cell_id(i, shot) for i in ids)


def record_config(data: Stage1Data, profile: str, net: str, pooling: str, seed: int = 0) -> dict:
    """The ``config`` of a chapter-5 miniImageNet record: :func:`stage1_config`'s fields, the
    network and its widths, and how many images per class ``data`` trains on, tests on (novel)
    and holds out (base)."""
    return {
        **dense.stage1_config(profile, pooling, seed).__dict__,
        "network": net,
        "widths": list(data.protocol["widths"]) if net == "resnet12" else [64, 64, 128, 128],
        "train_per_class": data.train.shape[1],
        "test_per_class": data.test.shape[1],
        "heldout_base_per_class": data.heldout.shape[1],
    }


def _paper_accuracy(ids: Sequence[str]) -> float | None:
    """The first published cell's accuracy as a fraction (None without a cell)."""
    return by_id(ids[0]).accuracy / 100 if ids else None


def short(result: EvalResult) -> str:
    """A result as a table cell: accuracy and interval, without the settings in brackets."""
    return str(result).split(" (")[0]


def print_written(count: int, profile: str) -> None:
    """Say how many records a chapter wrote (a ``smoke`` run writes none)."""
    print(f"{count} records written" if count else f"{profile} profile: no records written")


# --------------------------------------------------------------------------- chapter 5


def early(profile: str) -> str:
    """What a caption adds outside ``full``: its numbers are early in training."""
    return "" if profile == "full" else " (early training, not the paper's protocol)"


def cpu_profile_note(profile: str, cfg, ts: dict, data: Stage1Data) -> None:
    """In the ``cpu`` profile, show what it changes against the paper (networks, iterations,
    test tasks, held-out images): its numbers show the start of training, not Table 1."""
    if profile != "cpu":
        return
    proto = data.protocol
    _show_markdown(
        f"**`cpu` profile:** ResNet-12 of widths {'-'.join(map(str, proto['widths']))} "
        f"(the paper: 64-128-256-512), {cfg.iterations} iterations of batch "
        f"{cfg.batch_size} (the paper: 8000 of 200, about "
        f"{8000 * 200 / (cfg.iterations * cfg.batch_size):.0f}x more images), "
        f"{ts['test_per_class']} test images per novel class, {ts['episodes']} test tasks "
        f"(the paper: 10,000), {data.heldout.shape[1]} held-out images per base class (the "
        "paper does not say how many). The networks see each training image well under once: "
        "these numbers show the start of training, not Table 1."
    )


def predict_stage1_time(
    networks: dict[str, Callable], train_x: torch.Tensor, cfg, session: Session, runs: int
) -> None:
    """Measure the training speed of each network of ``networks`` (on a CPU with one thread
    and with all, keeping the faster: :func:`~fewshot_utils.profiles.fastest_threads`) and
    print how long training ``runs`` networks (a GAP and a DC one of each) will take."""

    device = session.device

    def probe(net: str) -> float:
        return dense.measure_iterations_per_s(networks[net](), train_x, cfg, 2, device)

    rates = {}
    by_threads = fastest_threads(lambda: probe("resnet12"), device)
    if by_threads:
        rates["resnet12"] = by_threads[torch.get_num_threads()]
        speeds = ", ".join(f"{n}: {r * cfg.batch_size:.0f}" for n, r in by_threads.items())
        print(f"images/s by threads: {speeds}; using {torch.get_num_threads()}")
    for net in networks:
        rates[net] = rates.get(net) or probe(net)
    planned = sum(2 * cfg.iterations / rates[net] for net in networks)
    print(
        time_estimate(
            {f"training {runs} networks": planned},
            device,
            session.elapsed(),
            not_estimated="validation, testing, figures and FC100's networks",
        )
    )


def plot_stage1_curves(runs: dict, profile: str) -> None:
    """Training loss, training accuracy and validation accuracy of every stage-1 run over
    the iterations (``runs``: (network, pooling) -> its
    :class:`~fewshot_utils.dense.BatchTrainResult`)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    titles = ["training loss", "training accuracy (%)", "val 5-way 5-shot accuracy (%)"]
    for (net, pooling), run in runs.items():
        h = run.history
        curves = [
            h["train_loss"],
            [100 * a for a in h["train_acc"]],
            [100 * a for a in h["val_acc"]],
        ]
        for ax, y in zip(axes, curves):
            ax.plot(h["iteration"], y, marker="o", label=f"{net} {pooling.upper()}")
    for ax, title in zip(axes, titles):
        ax.set(title=title, xlabel="iteration")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"stage 1 on the 64 base classes ({profile} profile)", fontsize=10)
    fig.tight_layout()
    plt.show()


def _combo_names(combos: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{s.upper()} / {q.upper()}" for s, q in combos]


def show_table1(tests: dict, runs: Iterable, combos: list, ts: dict, profile: str) -> None:
    """Table 1 beside the paper's (each network tested as :data:`TABLE1_TEST`), then every
    support / query combination of every network and shot, the table the paper does not
    print. ``tests``: ((network, pooling), shot, combo) -> result."""
    runs = list(runs)
    rows = []
    for net, pooling in runs:
        ours = [short(tests[(net, pooling), s, TABLE1_TEST[pooling]]) for s in ts["shots"]]
        cell = f"table-1/{NET_ROW[net]}-{pooling}"
        paper = printed(cell_id(cell, s) for s in (1, 5, 10))
        rows.append([net, pooling.upper(), *ours, paper])
    shots = [f"{s}-shot (ours)" for s in ts["shots"]]
    caption = (
        f"**{profile} profile**{early(profile)}, {ts['episodes']} tasks, {ts['query']} "
        "queries per class"
    )
    header = ["network", "stage 1", *shots, "paper 1 / 5 / 10-shot"]
    _show_markdown(caption + "\n\n" + markdown_table(header, rows))
    rows = [
        [net, p.upper(), str(s), *(f"{100 * tests[(net, p), s, c].accuracy:.2f}" for c in combos)]
        for net, p in runs
        for s in ts["shots"]
    ]
    _show_markdown("support / query pooling, accuracy in %, every combination")
    table(["network", "stage 1", "shot", *_combo_names(combos)], rows)


def show_table2(
    t2: dict, seconds: float, combos: list, data: Stage1Data, ts: dict, profile: str
) -> None:
    """Table 2 beside the paper's: ResNet-12's accuracy on novel, base and both classes for
    each support / query combination (``t2``: pooling -> kind -> combo -> result), with each
    kind's chance level and how each interval is taken; ``seconds``: the time it took."""
    base_x, test_x = data.heldout, data.test
    n_cls = base_x.shape[0]
    chance = {"novel": 1 / 5, "base": 1 / n_cls, "both": 1 / (n_cls + 5)}
    rows = []
    for pooling, kind in ((p, k) for p in ("gap", "dc") for k in ("base", "novel", "both")):
        ours = [short(t2[pooling][kind][c]) for c in combos]
        cells = (f"table-2/{pooling}-{kind}-classes/test-{sp}-{qp}" for sp, qp in combos)
        paper = printed(cell_id(c, 5) for c in cells)
        rows.append([pooling.upper(), f"{kind} ({100 * chance[kind]:.1f}%)", *ours, paper])
    n_base, n_novel = n_cls * base_x.shape[1], test_x.shape[0] * test_x.shape[1]
    caption = (
        f"**{profile} profile**{early(profile)}, ResNet-12, 5-way 5-shot. Novel: "
        f"{ts['episodes']} tasks (Table 1's). Base: each of the {n_base:,} held-out images "
        f"({base_x.shape[1]} per base class) once, Wilson interval. Both: {ts['episodes']} "
        f"tasks, interval over the {n_novel:,} novel and {n_base:,} base images, halves "
        f"weighted equally ({seconds:.0f} s)"
    )
    header = ["stage 1", "classes (chance)", *_combo_names(combos), "paper"]
    _show_markdown(caption + "\n\n" + markdown_table(header, rows))


def stage1_record(
    run,
    net: str,
    pooling: str,
    combo: tuple[str, str],
    shot: int,
    res: EvalResult,
    wall_time_s: float,
    data: Stage1Data,
    session: Session,
    kind: str = "novel",
    seed: int = 0,
) -> dict:
    """The record of one chapter-5 miniImageNet result ``res`` of the stage-1 run ``run``
    (network ``net`` trained with ``pooling`` from ``seed``, tested ``combo``): its method
    name, configuration and published cells. The tasks' way, shot and query come from
    ``res`` itself; a base-classes result counts images, not tasks, so its record names
    Table 2's setting, 5-way 5-shot."""
    cells = paper_cells(net, pooling, shot, combo, kind)
    return make_record(
        experiment=CH05,
        profile=session.profile,
        device=session.device,
        dataset="miniimagenet",
        method=method_name(net, pooling, combo, kind),
        result=res,
        wall_time_s=wall_time_s,
        config=record_config(data, session.profile, net, pooling, seed),
        train_seed=seed,
        train_iterations=run.iterations_done,
        tau=float(run.classifier.tau.detach()),
        paper_rows=cells,
        paper_accuracy=_paper_accuracy(cells),
        **(dict(way=5, shot=5) if kind == "base" else {}),
    )


def write_stage1_records(
    runs: dict,
    tests: dict,
    t2: dict,
    seconds: dict,
    shots: Sequence[int],
    combos: list,
    data: Stage1Data,
    session: Session,
) -> int:
    """Write a record of every chapter-5 result of the training seed ``session.seed``: each
    network, shot and combination on novel classes (``tests``), and Table 2's base- and
    both-classes rows of ResNet-12 (``t2``). ``seconds`` holds what embedding (``embed``:
    per run), testing (``test``: per run and shot) and Table 2 (``t2``: per pooling) took,
    added to each run's training time. Returns how many were written (none in smoke)."""
    written, seed = 0, session.seed
    for (net, pooling), run in runs.items():
        spent = run.wall_time_s + seconds["embed"][net, pooling]
        for shot, combo in ((s, c) for s in shots for c in combos):
            res = tests[(net, pooling), shot, combo]
            wall = spent + seconds["test"][(net, pooling), shot]
            rec = stage1_record(run, net, pooling, combo, shot, res, wall, data, session, seed=seed)
            written += write_result(rec) is not None
        if net == "resnet12":  # Table 2's base- and both-classes rows (5-way 5-shot)
            for kind, combo in ((k, c) for k in ("base", "both") for c in combos):
                res, wall = t2[pooling][kind][combo], spent + seconds["t2"][pooling]
                rec = stage1_record(
                    run, net, pooling, combo, 5, res, wall, data, session, kind, seed
                )
                written += write_result(rec) is not None
    return written


def write_seed_records(
    seed_runs: dict, seed_tests: dict, combos: list, data: Stage1Data, session: Session
) -> int:
    """Write the records of ResNet-12 trained from the other seeds (``seed_runs``: (seed,
    pooling) -> run; ``seed_tests``: (seed, pooling, shot) -> combo -> result), each named
    by its ``train_seed``, for the Results page to pair DC with GAP seed by seed."""
    written = 0
    for (seed, pooling, shot), results in seed_tests.items():
        run = seed_runs[seed, pooling]
        for combo in combos:
            res, wall = results[combo], run.wall_time_s
            rec = stage1_record(
                run, "resnet12", pooling, combo, shot, res, wall, data, session, seed=seed
            )
            written += write_result(rec) is not None
    return written


def _per_task(tests: dict, seed_tests: dict, main_seed: int, seed: int, pooling, shot, combo):
    """ResNet-12's per-task accuracies, trained with ``pooling`` from ``seed``."""
    if seed == main_seed:
        return tests[("resnet12", pooling), shot, combo].per_episode
    return seed_tests[seed, pooling, shot][combo].per_episode


def seed_gap_table(tests: dict, seed_tests: dict, seeds: Sequence[int], shots) -> None:
    """DC − GAP of ResNet-12 for each training seed (``seeds[0]``: the chapter's, in
    ``tests``; the others in ``seed_tests``) and shot, paired over the same tasks, as Table 1
    tests DC (GMP) and as Table 4 does (DC queries), each against GAP/GAP."""
    rows = []
    for seed, shot in ((s, k) for s in seeds for k in shots):
        gap = _per_task(tests, seed_tests, seeds[0], seed, "gap", shot, ("gap", "gap"))
        cells = []
        for combo in (("gmp", "gmp"), ("gap", "dc")):
            dc = _per_task(tests, seed_tests, seeds[0], seed, "dc", shot, combo)
            mean, hw = paired_difference(dc, gap)
            cells.append(f"{100 * mean:+.2f} ± {100 * hw:.2f}")
        rows.append([str(seed), str(shot), *cells])
    table(["training seed", "shot", "DC (GMP) − GAP", "DC (DC queries) − GAP"], rows)


def plot_cams(cams: dict, base_imgs: torch.Tensor, novel_imgs: torch.Tensor, profile: str) -> None:
    """Figure 3: the class activation maps ``cams`` ((kind, pooling) -> maps) over the base
    and novel images (top row: the images; then the GAP- and the DC-trained network), and the
    two numbers that summarise each: the mean probability of the true class, and the share of
    pixels where it is above one half."""
    n_show = len(base_imgs)
    fig, axes = plt.subplots(3, 2 * n_show, figsize=(2 * n_show * 1.4, 3 * 1.5))
    for half, (kind, imgs) in enumerate([("base", base_imgs), ("novel", novel_imgs)]):
        for i in range(n_show):
            col, img = half * n_show + i, imgs[i].permute(1, 2, 0).numpy()
            axes[0, col].imshow(img)
            axes[0, col].set_title(kind, fontsize=8)
            for row, pooling in ((1, "gap"), (2, "dc")):
                axes[row, col].imshow(img)
                cam = cams[kind, pooling][i]
                axes[row, col].imshow(cam, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    for row, label in enumerate(["image", "GAP-trained", "DC-trained"]):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"probability of the true class at each location ({profile} profile)", fontsize=10)
    fig.tight_layout()
    plt.show()
    for kind, pooling in ((k, p) for k in ("base", "novel") for p in ("gap", "dc")):
        c = cams[kind, pooling]
        print(
            f"{kind:5s} {pooling.upper()}: mean true-class probability {c.mean():.3f}, "
            f"fraction of pixels above 0.5: {(c > 0.5).float().mean():.2f}"
        )


def fc100_table5(
    network: Callable, widths: Sequence[int], ts: dict, session: Session, retrain: bool
) -> None:
    """Table 5's GAP and DC rows: chapter 5's training and tests repeated on FC100 with the
    ResNet-12 ``network`` (of ``widths``) and :func:`~fewshot_utils.dense.fc100_config`, each
    result filed as a record and shown beside the paper's. Without CIFAR-100 it says so and
    returns (:func:`~fewshot_utils.stage1.load_fc100`). Chapter 6 loads the DC network."""
    fc = load_fc100(session.profile)  # (train, test), or None without CIFAR-100
    if fc is None:
        return
    (fc_train, fc_test), rows = fc, []
    profile, device, seed = session.profile, session.device, session.seed
    for pooling in ("gap", "dc"):
        fc_cfg = dense.fc100_config(profile, pooling, seed)
        stem = f"ch05_fc100_resnet12_{pooling}"  # chapter 6 loads the DC one
        fc_run = stage1_network(
            network, pooling, stem, fc_train, profile, seed, retrain, device, dataset="fc100"
        )
        maps = FewShotMaps.from_maps(embed(fc_run.model, fc_test, device=device))
        combo, tau = TABLE4_TEST[pooling], float(fc_run.classifier.tau.detach())
        ours = []
        for shot in ts["shots"]:
            res = evaluate_poolings(maps, 5, shot, ts["query"], ts["episodes"], seed, [combo], tau)
            ours.append(short(res["novel"][combo]))
            record = make_record(
                experiment=CH05,
                profile=profile,
                device=device,
                dataset="fc100",
                method=method_name("resnet12", pooling, combo),
                result=res["novel"][combo],
                wall_time_s=fc_run.wall_time_s,
                config={
                    **fc_cfg.__dict__,
                    "network": "resnet12",
                    "widths": list(widths),
                    "test_per_class": fc_test.shape[1],
                },
                train_iterations=fc_run.iterations_done,
                paper_rows=existing([cell_id(f"table-5/{pooling}", shot, "fc100")]),
            )
            write_result(record)
        paper = printed(cell_id(f"table-5/{pooling}", s, "fc100") for s in (1, 5, 10))
        rows.append([pooling.upper(), *ours, paper])
    table(["stage 1", *(f"{s}-shot" for s in ts["shots"]), "paper 1 / 5 / 10-shot"], rows)


def dense_findings(
    tests: dict, runs: dict, seed_tests: dict, seeds: Sequence[int], ts: dict, session: Session
) -> str:
    """Chapter 5's "what we found", in Markdown, from this run's numbers: ResNet-12's DC −
    GAP at 5 shots (paired on the same tasks) beside the paper's, C128F's GAP and DC and
    ResNet-12 − C128F, DC − GAP over the training ``seeds`` (does its sign hold?), and the
    time the training and the notebook took."""
    profile, seed0 = session.profile, seeds[0]
    s5 = 5 if 5 in ts["shots"] else ts["shots"][-1]
    a = tests[("resnet12", "gap"), s5, ("gap", "gap")]
    b = tests[("resnet12", "dc"), s5, ("gap", "dc")]
    c_gap = tests[("c128f", "gap"), s5, ("gap", "gap")]
    c_dc = tests[("c128f", "dc"), s5, ("gmp", "gmp")]
    diff = 100 * (b.per_episode - a.per_episode)
    nets_diff = 100 * (a.per_episode - c_gap.per_episode)  # ResNet-12 - C128F, same tasks

    def paper(cell: str) -> float:  # Lifchitz et al.'s published accuracy, in %
        return by_id(cell_id(cell, s5)).accuracy

    seed_gaps = [
        100
        * float(
            (
                _per_task(tests, seed_tests, seed0, k, "dc", s5, ("gap", "dc"))
                - _per_task(tests, seed_tests, seed0, k, "gap", s5, ("gap", "gap"))
            ).mean()
        )
        for k in seeds
    ]
    behind = (
        f". Here the deeper network is *behind*: with {runs['resnet12', 'gap'].iterations_done} "
        "iterations it has seen each training image well under once, and a 12-layer network "
        "with a quarter of the paper's width starts slower than a 4-layer one; the paper's "
        "ordering is a statement about trained networks."
    )
    return (
        f"- In this **{profile}** run{early(profile)}, ResNet-12 5-way {s5}-shot: GAP-trained "
        f"(GAP/GAP) {100 * a.accuracy:.2f}%, DC-trained (GAP supports, DC queries) "
        f"{100 * b.accuracy:.2f}%, a paired difference of {diff.mean():+.2f} ± "
        f"{ci95(diff):.2f} points on the same tasks (the paper: "
        f"{paper('table-4/dc') - paper('table-4/gap'):+.2f}).\n"
        f"- C128F: GAP {100 * c_gap.accuracy:.2f}%, DC (GMP/GMP) {100 * c_dc.accuracy:.2f}% "
        f"(the paper: {paper('table-1/c128f-gap'):.2f} vs {paper('table-1/c128f-dc'):.2f}, DC "
        f"hurts the shallow network). ResNet-12 - C128F (both GAP): {nets_diff.mean():+.2f} ± "
        f"{ci95(nets_diff):.2f} points (the paper: "
        f"{paper('table-1/resnet-12-gap') - paper('table-1/c128f-gap'):+.2f})"
        + (behind if nets_diff.mean() < 0 else ".")
        + f"\n- Over training seeds {', '.join(map(str, seeds))}, DC − GAP at {s5} "
        "shots (DC queries) is "
        + " / ".join(f"{g:+.2f}" for g in seed_gaps)
        + " points: "
        + (
            "the same sign on every seed."
            if len({g > 0 for g in seed_gaps}) == 1
            else "its sign changes with the seed, so one network per pooling cannot show "
            "which pooling is better here (the Results page's verdict adds the seeds' spread)."
        )
        + f"\n- Stage-1 training took {sum(r.wall_time_s for r in runs.values()) / 60:.1f} min "
        f"for the four networks; the whole notebook {session.elapsed() / 60:.1f} min on "
        f"{session.device}."
    )


# --------------------------------------------------------------------------- chapter 6

TEST_POOLS = ("gap", "gmp", "dc")  # Table 3's columns: the query pooling at test time


def paired(a: EvalResult, b: EvalResult) -> str:
    """``b - a`` in points on the same tasks, with the 95% interval of the paired mean."""
    mean, hw = paired_difference(b.per_episode, a.per_episode)
    return f"{100 * mean:+.2f} ± {100 * hw:.2f} points over {a.per_episode.numel()} tasks"


def paper_gain(shot: int) -> str:
    """DC -> DC + IMP in Lifchitz et al.'s Table 4, in points ("n/a" where it has no cell)."""
    try:
        gain = by_id(cell_id("table-4/dc+imp", shot)).accuracy
        gain -= by_id(cell_id("table-4/dc", shot)).accuracy
    except KeyError:
        return "n/a"
    return f"{gain:+.2f}"


def implanting_cpu_note(data: Stage1Data, st: dict, profile: str) -> None:
    """In the ``cpu`` profile, show what it changes against the paper (the network chapter 5
    trained, the implants' width, the implanted tasks, the test images)."""
    if profile != "cpu":
        return
    proto = data.protocol
    _show_markdown(
        f"**`cpu` profile:** chapter 5's ResNet-12 of widths {'-'.join(map(str, proto['widths']))}"
        f" after {proto['iterations']} iterations of batch {proto['batch_size']}; implants of "
        f"16 channels on its 128-channel last block (the paper: 512), {st['epochs']} AdamW "
        f"epochs per task as in the paper, but {st['implant_tasks']} implanted tasks per number "
        f"(the paper: 5,000) and {st['test_per_class']} test images per class: "
        "[how to read the `cpu` numbers](../book/intro.md#how-to-read-cpu-numbers)."
    )


def predict_implanting_networks_time(
    nets: dict, train_x: torch.Tensor, session: Session, retrain: bool
) -> None:
    """Measure the training speed of the DC + WIDE network (on a CPU with one thread and with
    all, keeping the faster) and print how long training the networks of ``nets`` (name ->
    (pooling, widths, checkpoint stem)) without a checkpoint will take (chapter 5's are
    usually there)."""
    profile, device, seed = session.profile, session.device, session.seed
    cfg = dense.stage1_config(profile, "dc", seed)
    rates = {}  # iterations/s of the networks this chapter trains, measured before training
    wide = nets["dc+wide"][1]
    by_threads = fastest_threads(
        lambda: dense.measure_iterations_per_s(ResNet12(widths=wide), train_x, cfg, 2, device),
        device,
    )
    if by_threads:
        rates["dc+wide"] = by_threads[torch.get_num_threads()]
        print(
            f"training and testing with {torch.get_num_threads()} thread(s): "
            + ", ".join(f"{n}: {r * cfg.batch_size:.0f} images/s" for n, r in by_threads.items())
        )
    to_train = {}  # seconds of the networks without a checkpoint
    for name, (pooling, w, stem) in nets.items():
        if retrain or not stage1_checkpoint(stem, profile, seed).exists():
            cfg = dense.stage1_config(profile, pooling, seed)
            if name not in rates:
                rates[name] = dense.measure_iterations_per_s(
                    ResNet12(widths=w), train_x, cfg, 2, device
                )
            to_train[f"training {name}"] = cfg.iterations / rates[name]
    print(
        time_estimate(
            to_train or {"training networks (all checkpointed)": 0.0},
            device,
            session.elapsed(),
            not_estimated="the implanted tasks (measured below, once "
            "the networks exist), testing and FC100",
        )
    )


def predict_implanting_time(
    implant: Callable[..., ImplantingResult], st: dict, session: Session
) -> None:
    """Time two implanted tasks (``implant(shot, tasks, seed=..., progress=...)``, on tasks
    the chapter does not use) and print how long the chapter's implanted tasks will take:
    Table 4's at each shot (the cost grows with the shots) and Table 3's three new rows."""
    shots = st["shots"]
    probe = implant(shots[0], 2, seed=session.seed + 99, progress=False)
    per_task = {s: sum(probe.task_seconds) / len(probe.task_seconds) for s in shots[:1]}
    per_task[shots[-1]] = per_task[shots[0]] * shots[-1] / shots[0]
    n_implanted = st["implant_tasks"] * len(shots) + 3 * st["table3_tasks"]
    planned = (
        st["implant_tasks"] * sum(per_task.values()) + 3 * st["table3_tasks"] * per_task[shots[0]]
    )
    print(
        f"one implanted {shots[0]}-shot task: {per_task[shots[0]]:.2f} s "
        f"({sum(probe.train_seconds) / 2:.2f} s of implant training); expected time for the "
        f"{n_implanted} implanted tasks below: about {planned / 60:.1f} min"
    )
    print(
        time_estimate(
            {f"{n_implanted} implanted tasks": planned},
            session.device,
            session.elapsed(),
            not_estimated="the stage-1 rows' tests and FC100",
        )
    )


def show_table4(table4: dict, implant_runs: dict, st: dict, profile: str) -> None:
    """Table 4 beside the paper's (``table4``: (network, shot) -> result of the stage-1 rows;
    ``implant_runs``: shot -> DC + IMP), then per shot the two paired differences that
    matter: DC + IMP − DC (the implants' gain) and DC + WIDE − DC (16 more channels in stage
    1), on the same tasks."""
    rows = [
        "| method | "
        + " | ".join(f"{s}-shot (ours)" for s in st["shots"])
        + " | paper 5 / 10-shot |",
        "|---|" + "---:|" * len(st["shots"]) + "---|",
    ]
    results = {name: [table4[name, s] for s in st["shots"]] for name in ("gap", "dc", "dc+wide")}
    results["dc+imp"] = [implant_runs[s].implanted["dc"] for s in st["shots"]]
    for name, res in results.items():
        paper = printed(cell_id(f"table-4/{name}", s) for s in (5, 10))
        rows.append(f"| {name.upper()} | " + " | ".join(map(short, res)) + f" | {paper} |")
    _show_markdown(
        f"**{profile} profile**, 5-way, {st['query']} queries per class; stage-1 rows over "
        f"{st['episodes']} tasks, DC+IMP over {st['implant_tasks']} tasks\n\n" + "\n".join(rows)
    )
    for shot in st["shots"]:
        r = implant_runs[shot]
        print(
            f"{shot}-shot: DC {100 * r.baseline['dc'].accuracy:.2f}% -> DC+IMP "
            f"{100 * r.implanted['dc'].accuracy:.2f}%, "
            f"{paired(r.baseline['dc'], r.implanted['dc'])} (the paper: {paper_gain(shot)}); "
            "leave-one-out training accuracy at the last epoch "
            f"{100 * sum(r.final_train_acc) / len(r.final_train_acc):.1f}%"
        )
        print(
            f"{shot}-shot: DC+WIDE - DC (stage 1, same tasks): "
            f"{paired(table4['dc', shot], table4['dc+wide', shot])}"
        )


def show_table3(table3: dict, shot: int, st: dict, profile: str) -> None:
    """Table 3 beside the paper's (``table3``: stage-2 (support, query) pooling -> result;
    columns: the query pooling at test time), with the DC network without implants on the
    same tasks as the last row, beside Table 2's cells for the same test."""
    rows = [
        "| stage 2 support | stage 2 query | test GAP | test GMP | test DC "
        "| paper (GAP / GMP / DC) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for (sp, qp), r in table3.items():
        cells = [short(r.implanted[t]) for t in TEST_POOLS]
        ids = (cell_id(f"table-3/stage-2-{sp}-{qp}/test-queries-{t}", 5) for t in TEST_POOLS)
        rows.append(
            f"| {sp.upper()} | {qp.upper()} | " + " | ".join(cells) + f" | {printed(ids)} |"
        )
    base_cells = [short(table3["gap", "gap"].baseline[t]) for t in TEST_POOLS]
    # Without implants: the DC network with GAP supports, as every row here. Table 2 has the
    # same test for GAP and DC queries; its GMP column pools the supports with GMP too: no cell.
    no_implants = {"gap": "gap-gap", "dc": "gap-dc"}
    paper_base = [
        printed([cell_id(f"table-2/dc-novel-classes/test-{no_implants[t]}", 5)])
        if t in no_implants
        else "—"
        for t in TEST_POOLS
    ]
    rows.append(
        "| no implants (DC network) | | "
        + " | ".join(base_cells)
        + " | "
        + " / ".join(paper_base)
        + " (Table 2) |"
    )
    _show_markdown(
        f"**{profile} profile**, 5-way {shot}-shot, {st['table3_tasks']} tasks per "
        "row\n\n" + "\n".join(rows)
    )


def plot_implant_curves(hist: dict, shot: int, profile: str) -> None:
    """The leave-one-out loss and accuracy of one task's implants over the epochs
    (``hist``, as :func:`~fewshot_utils.implanting.train_implants` returns it)."""
    fig, ax = plt.subplots(1, 2, figsize=(8, 2.8))
    ax[0].plot(hist["loss"])
    ax[0].set_title("leave-one-out loss", fontsize=10)
    ax[1].plot([100 * a for a in hist["acc"]])
    ax[1].set_title("leave-one-out accuracy (%)", fontsize=10)
    for a in ax:
        a.set_xlabel("epoch")
    fig.suptitle(f"implant training on one 5-way {shot}-shot task ({profile} profile)", fontsize=10)
    fig.tight_layout()
    plt.show()


def implanting_records(
    r: ImplantingResult,
    stage2: tuple[str, str],
    dataset: str,
    wall_time_s: float,
    widths: Sequence[int],
    n_test: int,
    epochs: int,
    session: Session,
    extra_cells: Sequence[str] = (),
) -> list[dict]:
    """The records of one :class:`~fewshot_utils.implanting.ImplantingResult` (implants
    trained with the stage-2 poolings ``stage2`` for ``epochs``), one per test query pooling,
    each with its paired baseline (the same tasks without implants) and its published cells
    (Table 3's, and ``extra_cells`` for the DC queries: Table 4's or 5's DC + IMP)."""
    sp, qp = stage2
    records = []
    for t, res in r.implanted.items():
        ids = existing(
            cell_id(i, res.shot, dataset)
            for i in (
                f"table-3/stage-2-{sp}-{qp}/test-queries-{t}",
                *(extra_cells if t == "dc" else ()),
            )
        )
        gain, gain_ci95 = paired_difference(res.per_episode, r.baseline[t].per_episode)
        config = ImplantConfig(epochs=epochs, support_pool=sp, query_pool=qp)
        records.append(
            make_record(
                experiment=CH06,
                profile=session.profile,
                device=session.device,
                dataset=dataset,
                method=f"resnet12-dc-imp-stage2-{sp}-{qp}-support-gap-query-{t}",
                result=res,
                wall_time_s=wall_time_s,
                config={
                    **config.__dict__,
                    "network": "resnet12",
                    "widths": list(widths),
                    "test_per_class": n_test,
                },
                baseline_accuracy=r.baseline[t].accuracy,
                baseline_ci95=r.baseline[t].ci95,
                paired_difference=gain,
                paired_ci95=gain_ci95,
                seconds_per_task=sum(r.task_seconds) / len(r.task_seconds),
                implant_train_seconds_per_task=sum(r.train_seconds) / len(r.train_seconds),
                paper_rows=ids,
                paper_accuracy=_paper_accuracy(ids),
            )
        )
    return records


def write_table4_records(
    nets: dict,
    specs: dict,
    query_pool: dict,
    table4: dict,
    seconds: dict,
    data: Stage1Data,
    session: Session,
) -> int:
    """Write the records of Table 4's stage-1 rows: network ``name`` of ``nets`` (its
    stage-1 run; ``specs[name]``: its pooling, widths and checkpoint stem) tested with GAP
    supports and ``query_pool[name]`` queries at each shot (``table4``: (name, shot) ->
    result), its testing time ``seconds[name]`` added to its training time. Returns how
    many were written (none in smoke)."""
    written, profile = 0, session.profile
    for (name, _), res in table4.items():  # network by network, shot by shot
        run, ids = nets[name], existing([cell_id(f"table-4/{name}", res.shot)])
        record = make_record(
            experiment=CH06,
            profile=profile,
            device=session.device,
            dataset="miniimagenet",
            method=f"resnet12-{name.replace('+', '-')}-support-gap-query-{query_pool[name]}",
            result=res,
            wall_time_s=run.wall_time_s + seconds[name],
            config={
                **dense.stage1_config(profile, specs[name][0], session.seed).__dict__,
                "network": "resnet12",
                "widths": list(specs[name][1]),
                "test_per_class": data.test.shape[1],
            },
            train_iterations=run.iterations_done,
            paper_rows=ids,
            paper_accuracy=_paper_accuracy(ids),
        )
        written += write_result(record) is not None
    return written


def write_implanting_records(
    implant_runs: dict, table3: dict, spent: float, st: dict, data: Stage1Data, session: Session
) -> int:
    """Write the records of DC + IMP at each shot (``implant_runs``: shot -> result; the
    time ``spent`` training the DC network and computing the prefix features added to its
    tasks' time) and of Table 3's rows other than GAP/GAP (``table3``: stage-2 poolings ->
    result; GAP/GAP is the DC + IMP run). Returns how many were written (none in smoke)."""
    common = (data.protocol["widths"], data.test.shape[1], st["epochs"], session)
    records = []
    for r in implant_runs.values():
        wall = spent + sum(r.task_seconds)
        args = (wall, *common, ["table-4/dc+imp"])
        records += implanting_records(r, ("gap", "gap"), "miniimagenet", *args)
    for stage2, r in table3.items():
        if stage2 != ("gap", "gap"):  # GAP/GAP is the DC + IMP run above
            wall = sum(r.task_seconds)
            records += implanting_records(r, stage2, "miniimagenet", wall, *common)
    return sum(write_result(record) is not None for record in records)


def fc100_implanting(
    implant: Callable[..., ImplantingResult], widths: Sequence[int], st: dict, session: Session
) -> int:
    """Table 5's DC + IMP: the miniImageNet steps repeated on FC100 with the DC network
    chapter 5 trained there (trained here if its checkpoint is missing) and its learnt tau;
    prints DC and DC + IMP per shot beside the paper's and files the records. Without
    CIFAR-100 it says so and returns 0 (:func:`~fewshot_utils.stage1.load_fc100`)."""
    fc = load_fc100(session.profile)  # (train, test), or None without CIFAR-100
    if fc is None:
        return 0
    fc_train, fc_test = fc
    fc_net = stage1_network(
        lambda: ResNet12(widths=widths),
        "dc",
        "ch05_fc100_resnet12_dc",
        fc_train,
        session.profile,
        session.seed,
        device=session.device,
        dataset="fc100",
    )
    fc_tau = float(fc_net.classifier.tau.detach())
    fc_prefix = prefix_features(fc_net.model, fc_test, device=session.device)
    written = 0
    for shot in st["shots"]:
        r = implant(shot, st["implant_tasks"], net=fc_net, maps=fc_prefix, test_tau=fc_tau)
        ids = existing([cell_id("table-5/dc+imp", shot, "fc100")])
        print(
            f"FC100 5-way {shot}-shot (tau {fc_tau:.1f}): DC {r.baseline['dc']}, DC+IMP "
            f"{r.implanted['dc']}, {paired(r.baseline['dc'], r.implanted['dc'])} (the paper: "
            f"DC+IMP {printed(ids) if ids else 'n/a'})"
        )
        wall = fc_net.wall_time_s + sum(r.task_seconds)
        args = (wall, widths, fc_test.shape[1], st["epochs"], session, ["table-5/dc+imp"])
        for rec in implanting_records(r, ("gap", "gap"), "fc100", *args):
            written += write_result(rec) is not None
    return written


def implanting_findings(
    implant_runs: dict, table3: dict, table4: dict, prefix_s: float, st: dict, session: Session
) -> str:
    """Chapter 6's "what we found", in Markdown, from this run's numbers: DC and DC + IMP on
    the same tasks beside the paper's gain, DC + WIDE against DC, what an implanted task cost,
    and how to read the numbers of this profile."""
    total_s = session.elapsed()
    profile = session.profile
    all_tasks = list(implant_runs.values()) + [r for k, r in table3.items() if k != ("gap", "gap")]
    n_tasks = sum(len(r.task_seconds) for r in all_tasks)
    sec_task = sum(sum(r.task_seconds) for r in all_tasks) / n_tasks
    s0 = st["shots"][0]
    r0 = implant_runs[s0]
    return (
        f"- In this **{profile}** run, 5-way {s0}-shot: DC "
        f"{100 * r0.baseline['dc'].accuracy:.2f}% "
        f"and DC+IMP {100 * r0.implanted['dc'].accuracy:.2f}% on the same tasks, "
        f"{paired(r0.baseline['dc'], r0.implanted['dc'])} (the paper: {paper_gain(s0)}). "
        f"DC+WIDE (stage 1): {paired(table4['dc', s0], table4['dc+wide', s0])} against DC.\n"
        f"- {n_tasks} implanted tasks took {sec_task:.2f} s each on average on "
        f"{session.device} ({st['epochs']} epochs; the layers before the last block ran once "
        f"per image, {prefix_s:.1f} s for all test images); the notebook took "
        f"{total_s / 60:.1f} min.\n"
        + (
            "- Narrow, briefly trained networks and tens of tasks: the method working and its "
            "cost, not Tables 3-4 ([how to read the `cpu` numbers]"
            "(../book/intro.md#how-to-read-cpu-numbers))."
            if profile != "full"
            else "- These are `full`-protocol numbers, comparable with Tables 3 and 4."
        )
    )
