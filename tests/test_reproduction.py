"""The published numbers (transcription checked against the paper files) and the reproduction
table: records matched to the right cells, missing numbers shown as missing, never as the
paper's, differences and their intervals."""

import math
import re
from collections import defaultdict
from pathlib import Path

import matplotlib
import pytest

from fewshot_utils import paper_numbers as pn
from fewshot_utils import reproduction as rp
from fewshot_utils.results import load_results

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
PAPERS = next(
    (p for p in (ROOT.parent / "shared" / "papers", Path("/work/shared/papers")) if p.is_dir()),
    None,
)


def _record(dataset="omniglot", way=20, shot=1, accuracy=0.95, ci95=0.002, profile="cpu", **kw):
    return {
        "experiment": kw.pop("experiment", "ch03_protonet_omniglot"),
        "dataset": dataset,
        "method": kw.pop("method", "lsed"),
        "way": way,
        "shot": shot,
        "accuracy": accuracy,
        "ci95": ci95,
        "episodes": 10000,
        "profile": profile,
        "device": "cpu",
        "wall_time_s": 1510.95,
        "commit": "c474405ea0579fa05c2ad811e94c6a88",
        "created": "2026-11-24T01:11:07Z",
        **kw,
    }


def test_ids_unique_and_unknown_id_is_a_clear_error():
    ids = [p.id for p in pn.PAPER_NUMBERS]
    assert len(ids) == len(set(ids))
    assert pn.by_id("shen2018lsed/table-1/protonet-lsed/omniglot/20w1s").accuracy == 95.65
    with pytest.raises(KeyError, match="no published number with id"):
        pn.by_id("shen2018lsed/table-1/protonet-lsed/omniglot/5w1s")


def test_printed_shows_the_cells_in_order_with_the_papers_two_decimals():
    ids = [f"lifchitz2019dense/table-1/c128f-gap/miniimagenet/5w{s}s" for s in (1, 5, 10)]
    assert pn.printed(ids) == "54.28 / 71.60 / 76.92"  # 71.6 printed as the paper prints it
    assert pn.printed(reversed(ids)) == "76.92 / 71.60 / 54.28"
    with pytest.raises(KeyError, match="no published number with id"):
        pn.printed(["lifchitz2019dense/table-4/dc+imp/miniimagenet/5w1s"])  # no 1-shot IMP


def test_every_table_of_the_issue_is_there():
    tables = {(p.paper, p.table) for p in pn.PAPER_NUMBERS}
    assert tables == set(pn.TABLES)
    assert {t for paper, t in tables if paper == "lifchitz2019dense"} == {
        f"Table {i}" for i in range(1, 6)
    }
    counts = {key: len(pn.table_rows(*key)) for key in pn.TABLES}
    # LSED 2 rows x 2 datasets x 2 shots; Lifchitz T1 4x3, T2 6x4, T3 4x3, T4 4x3 - 1, T5 3x3 - 1;
    # TADAM 4x3 (miniImageNet) + 2x3 (FC100).
    assert list(counts.values()) == [8, 12, 24, 12, 11, 8, 18]


def test_only_cells_of_one_experiment_share_a_number():
    """A record matched by its paper_accuracy lands on every cell of its setting printing that
    number: those must be the same experiment printed twice, listed in SAME_EXPERIMENT."""
    groups = defaultdict(set)
    for p in pn.PAPER_NUMBERS:
        groups[p.dataset, p.way, p.shot, p.accuracy].add(p.id)
    shared = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    by_chance = [  # different experiments, 79.37 both: records must name their cell
        "lifchitz2019dense/table-2/gap-base-classes/test-gap-gap/miniimagenet/5w5s",
        "lifchitz2019dense/table-3/stage-2-gmp-dc/test-queries-gmp/miniimagenet/5w5s",
    ]
    assert shared == sorted([*(sorted(g) for g in pn.SAME_EXPERIMENT), by_chance])
    rec = _record("miniimagenet", 5, 5, 0.78, paper_accuracy=0.7937)
    with pytest.raises(ValueError, match="different experiments"):
        rp.record_cells(rec)
    assert rp.record_cells({**rec, "paper_rows": by_chance[1:]}) == by_chance[1:]


@pytest.mark.skipif(PAPERS is None, reason="shared/papers is not beside the checkout")
def test_transcription_against_the_paper_files():
    """Every number (and interval) appears in the source it was copied from."""
    lsed = (PAPERS / "lsed_shen_liu.md").read_text()
    dense = (PAPERS / "dense_classification_implanting_lifchitz2019.md").read_text()
    protocols = (PAPERS / "protocols.md").read_text()
    dense_pairs = {
        (float(a), float(b))
        for a, b in re.findall(r"(\d+\.\d+)\s*(?:\$\\pm\$|±|<math>\\pm</math>)\s*(\d+\.\d+)", dense)
    }
    for p in pn.PAPER_NUMBERS:
        if p.paper == "shen2018lsed":
            assert f"{p.accuracy:.2f}%" in lsed, p.id
        elif p.paper == "lifchitz2019dense":
            assert (p.accuracy, p.ci95) in dense_pairs, p.id
        else:
            assert f"{p.accuracy:.1f}" in protocols, p.id
            if p.ci95 is not None:  # quoted by Lifchitz et al. Tables 4 / 5
                assert any(abs(a - p.accuracy) < 1e-9 and b == p.ci95 for a, b in dense_pairs)


def test_record_matched_by_its_paper_accuracy():
    rec = _record(accuracy=0.9546, ci95=0.0005, paper_accuracy=0.9565)
    assert rp.record_cells(rec) == ["shen2018lsed/table-1/protonet-lsed/omniglot/20w1s"]
    # the same number in another setting matches nothing
    assert rp.record_cells({**rec, "way": 5}) == []
    assert rp.record_cells({**rec, "paper_accuracy": None}) == []
    # one experiment printed in three tables: all three cells
    dc = _record("miniimagenet", 5, 5, 0.75, paper_accuracy=0.7640)
    assert len(rp.record_cells(dc)) == 3


def test_explicit_paper_rows_win_and_are_checked():
    cell = "lifchitz2019dense/table-4/dc/miniimagenet/5w1s"
    rec = _record("miniimagenet", 5, 1, 0.6, paper_rows=[cell], paper_accuracy=0.4834)
    assert rp.record_cells(rec) == [cell]
    assert rp.record_cells({**rec, "paper_rows": cell}) == [cell]
    with pytest.raises(KeyError, match="ch03_protonet_omniglot.*no published number"):
        rp.record_cells({**rec, "paper_rows": ["lifchitz2019dense/table-9/dc"]})


def test_missing_is_missing_never_the_papers_number():
    numbers = pn.table_rows("shen2018lsed", "Table 1")
    rec = _record(accuracy=0.9546, ci95=0.0005, paper_accuracy=0.9565)
    comps = rp.compare([rec], numbers)
    assert len(comps) == len(numbers)
    measured = [c for c in comps if c.record is not None]
    assert [c.paper.row for c in measured] == ["ProtoNet(LSED)"]
    for c in comps:
        if c.record is None:
            assert c.ours is None and c.difference is None and c.difference_ci95 is None
    lines = rp.markdown_table(comps).splitlines()[2:]
    missing = [ln for ln in lines if "not measured yet" in ln]
    assert len(missing) == len(numbers) - 1
    for ln, c in zip(lines, comps):
        cells = [s.strip() for s in ln.strip("|").split("|")]
        if c.record is None:
            assert cells[3:] == ["—", "*not measured yet*", "—", ""]
            assert ln.count(f"{c.paper.accuracy:.2f}") == 1  # in the paper's column only
        else:
            pm = f"{rp.NBSP}±{rp.NBSP}"
            assert cells[3:6] == ["**cpu**", f"95.46{pm}0.05", f"-0.19{pm}0.05"]
            assert cells[6] == (
                "cpu, 25 min, commit `c474405`; ch03_protonet_omniglot: 10,000 test episodes"
            )


def test_difference_interval_in_quadrature_and_profiles_ordered():
    cell = pn.by_id("lifchitz2019dense/table-4/gap/miniimagenet/5w1s")  # 58.61 ± 0.18
    cpu = _record("miniimagenet", 5, 1, 0.55, 0.004, paper_rows=[cell.id], experiment="ch05_x")
    full = {**cpu, "profile": "full", "accuracy": 0.59}
    comps = [c for c in rp.compare([cpu, full]) if c.paper.id == cell.id]
    assert [c.record["profile"] for c in comps] == ["full", "cpu"]
    assert comps[1].difference == pytest.approx(55.0 - 58.61)
    assert comps[1].difference_ci95 == pytest.approx(math.sqrt(0.4**2 + 0.18**2))
    lsed = pn.by_id("shen2018lsed/table-1/protonet/omniglot/20w1s")  # no printed interval
    c = rp.Comparison(lsed, _record(ci95=0.003))
    assert c.difference_ci95 == pytest.approx(0.3)


def test_smoke_records_are_refused_and_unmatched_listed():
    with pytest.raises(ValueError, match="smoke"):
        rp.compare([_record(profile="smoke")])
    own = _record(way=5, paper_accuracy=None, experiment="ch00_first_protonet")
    rec = _record(paper_accuracy=0.9565)
    assert rp.unmatched([own, rec]) == [own]
    table = rp.records_table([own])
    assert "ch00_first_protonet" in table and f"95.00{rp.NBSP}±{rp.NBSP}0.20" in table
    trained = rp.records_table([{**own, "train_episodes": 600, "train_shot": 1, "shot": 5}])
    assert "ch00_first_protonet: 600 training episodes (1-shot), 10,000 test episodes" in trained
    assert "ch00_first_protonet: 10,000 val episodes" in rp.records_table([{**own, "split": "val"}])


def test_plot_draws_one_point_per_measured_line():
    numbers = pn.table_rows("shen2018lsed", "Table 1")
    recs = [
        _record(accuracy=0.9546, paper_accuracy=0.9565),
        _record(accuracy=0.93, paper_accuracy=0.9514, method="squared_euclidean"),
    ]
    ax = rp.plot_differences(rp.compare(recs, numbers), title="LSED")
    assert len(ax.containers) == 2
    assert "2 of 8 cells measured" in ax.get_title()
    ax = rp.plot_differences(rp.compare([], numbers))
    assert len(ax.containers) == 0 and "0 of 8" in ax.get_title()


def test_committed_records_name_known_cells():
    """Every record under results/ loads, names only cells that exist, and one that states the
    published number it compares with (paper_accuracy) is matched to a cell: otherwise the
    number is missing from fewshot_utils.paper_numbers or the record's paper_rows are wrong."""
    for rec in load_results(ROOT / "results"):
        cells = rp.record_cells(rec)
        if rec.get("paper_accuracy") is not None:
            assert cells, (
                f"{rec['experiment']} {rec['method']} {rec['way']}w{rec['shot']}s compares with "
                f"{rec['paper_accuracy']}, which no cell of fewshot_utils.paper_numbers prints; "
                "add the cell or name it in the record's paper_rows"
            )


@pytest.mark.skipif(PAPERS is None, reason="shared/papers is not beside the checkout")
def test_quoted_numbers_against_protocols_and_found_by_id():
    """Snell et al.'s numbers, which chapters 3 and 4 print beside their own, are in
    protocols.md; by_id finds them; records are never paired with them."""
    protocols = (PAPERS / "protocols.md").read_text()
    dense = (PAPERS / "dense_classification_implanting_lifchitz2019.md").read_text()
    assert len(pn.QUOTED_NUMBERS) == 6
    for p in pn.QUOTED_NUMBERS:
        assert pn.by_id(p.id) is p
        assert f"{p.accuracy:g}" in protocols, p.id
        if p.ci95 is not None:  # miniImageNet: "49.42 +- 0.78", also "PN [42]" in Lifchitz T4
            assert f"{p.accuracy:.2f} +- {p.ci95:.2f}" in protocols, p.id
            assert f"{p.accuracy:.2f} $\\pm$ {p.ci95:.2f}" in dense, p.id
    assert not {p.id for p in pn.QUOTED_NUMBERS} & {p.id for p in pn.PAPER_NUMBERS}
    assert (
        pn.by_id("snell2017prototypical/table-1/prototypical-networks/omniglot/20w1s").accuracy
        == 96.0
    )


def test_committed_records_match_the_setting_of_their_cells():
    """A record compares with cells of its own dataset, way and shot: a record that names
    another setting's cell, or whose fields were written from the wrong loop variable, fails."""
    for rec in load_results(ROOT / "results"):
        for i in rp.record_cells(rec):
            p = pn.by_id(i)
            assert (p.dataset, p.way, p.shot) == (rec["dataset"], rec["way"], rec["shot"]), (
                f"{rec['experiment']} {rec['method']} is {rec['way']}-way {rec['shot']}-shot "
                f"but names {i}"
            )


def test_provenance_names_training_length_and_reductions():
    stage1 = _record(
        "miniimagenet",
        5,
        5,
        experiment="ch05_dense_classification",
        method="resnet12-dc-support-gap-query-dc",
        train_iterations=240,
        config={
            "network": "resnet12",
            "widths": [16, 32, 64, 128],
            "batch_size": 64,
            "test_per_class": 100,
        },
    )
    text = rp._provenance(stage1)
    assert "240 training iterations of batch 64" in text
    assert "widths 16-32-64-128 (paper: 64-128-256-512)" in text
    assert "240 iterations of batch 64 (paper: 8,000 of 200)" in text
    assert "100 test images per class (paper: 600)" in text
    assert "test tasks" not in text  # 10,000 tasks: the paper's number
    c128f = {
        **stage1,
        "config": {**stage1["config"], "network": "c128f", "widths": [64, 64, 128, 128]},
    }
    assert "widths" not in rp._provenance(c128f)  # C128F's widths are the paper's
    method = "resnet12-dc-imp-stage2-gap-gap-support-gap-query-dc"
    implanted = _record("miniimagenet", 5, 5, experiment="ch06_implanting", method=method)
    implanted["episodes"] = 50
    assert "50 test tasks (paper: 5,000)" in rp._provenance(implanted)
    config = {"backbone": "resnet12-16-32-64-128", "image_side": 42}
    tadam = _record("miniimagenet", 5, 5, experiment="ch07_tadam", method="b", config=config)
    tadam["train_episodes"] = 1000
    assert "42 px images (paper: 84)" in rp._provenance(tadam)
    assert "1,000 training episodes (paper: 30,000)" in rp._provenance(tadam)
    images = _record(dataset="miniimagenet", way=5, shot=5, unit="images")
    assert "10,000 images, each once (Wilson interval)" in rp._provenance(images)
    assert rp.reductions(_record(experiment="elsewhere")) == []


def test_reductions_name_every_departure_of_the_training_protocol():
    """Chapter 4's episodes and shot, chapter 6's iterations and WIDE's widths, chapter 7's
    distance, auxiliary batch and episodes per step: each against the paper's protocol."""
    episodic = {"way": 5, "shot": 1, "query": 5, "test_per_class": 300}
    ch04 = _record("miniimagenet", 5, 5, experiment="ch04_protonet_miniimagenet", config=episodic)
    ch04["train_episodes"] = 500
    text = rp._provenance(ch04)
    assert "tested at 5 shots, trained on 1-shot episodes (paper: the same shot)" in text
    assert "5-way training episodes (paper: 20)" in text
    assert "5 training queries per class (paper: 15)" in text
    assert "500 training episodes (paper: early stopping on the validation loss)" in text
    assert "300 test images per class (paper: 600)" in text
    one_shot = {**ch04, "shot": 1}
    assert "5-way training episodes (paper: 30)" in rp._provenance(one_shot)
    assert "tested at" not in rp._provenance(one_shot)
    wide = _record(
        "miniimagenet",
        5,
        5,
        experiment="ch06_implanting",
        method="resnet12-dc-wide-support-gap-query-dc",
        train_iterations=240,
        config={"network": "resnet12", "widths": [64, 128, 256, 528], "batch_size": 64},
    )
    text = rp._provenance(wide)
    assert "widths" not in text  # the paper's WIDE: the last block plus 16 channels
    assert "240 iterations of batch 64 (paper: 8,000 of 200)" in text
    narrow = {**wide, "config": {**wide["config"], "widths": [64, 128, 256, 512]}}
    assert "widths 64-128-256-512 (paper: 64-128-256-528)" in rp._provenance(narrow)
    config = {"aux_batch": 32, "model": {"distance": "squared_euclidean"}}
    tadam = _record("miniimagenet", 5, 5, experiment="ch07_tadam", method="b", config=config)
    text = rp._provenance(tadam)
    assert "auxiliary batch 32 (paper: 64)" in text
    assert "squared euclidean distance (paper: euclidean)" in text
    assert "1 episode per step (paper: 2)" in text


def test_tadam_ablation_uses_one_fixed_alpha_chosen_on_validation():
    """TADAM's alpha is a fixed hyperparameter cross-validated on the validation classes
    (protocols.md): the ablation rows alpha, +AT, +TC and all three share one fixed alpha, the
    grid value with the best validation accuracy; learned alpha is a separate experiment."""
    records = [r for r in load_results(ROOT / "results") if r["experiment"] == "ch07_tadam"]
    if not records:
        pytest.skip("no chapter 7 records")
    for profile in {r["profile"] for r in records}:
        mine = [r for r in records if r["profile"] == profile]
        rows = {row: r for r in mine for row in r.get("ablation_rows", [])}
        assert set(rows) == {"baseline", "α", "α + AT", "α + TC", "α + AT + TC"}, profile
        alphas = {rows[row]["config"]["model"]["alpha_init"] for row in rows if row != "baseline"}
        assert len(alphas) == 1, f"{profile}: the ablation rows use several alphas {alphas}"
        for row in ("α", "α + AT", "α + TC", "α + AT + TC"):
            assert not rows[row]["config"]["model"]["learn_alpha"], f"{profile} {row}: learned"
        grid = [
            r
            for r in mine
            if r.get("alpha_choice") == "validation grid"
            and r["config"]["model"]["distance"] == "squared_euclidean"
        ]
        best = max(grid, key=lambda r: r["val_accuracy"])
        assert best["config"]["model"]["alpha_init"] in alphas
