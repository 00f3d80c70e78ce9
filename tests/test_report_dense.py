"""The book's machinery for chapters 5 and 6 (fewshot_utils.report_dense): the published
cells a result reproduces, the records' names, configurations and contents, the tables,
figures and findings the chapters fold away."""

import json
import math

import matplotlib
import pytest
import torch
from torch import nn

from fewshot_utils import data, dense, stage1
from fewshot_utils import report_dense as rd
from fewshot_utils.dense import stage1_config, stage1_protocol
from fewshot_utils.evaluation import EvalResult, ci95, paired_difference
from fewshot_utils.implanting import ImplantingResult
from fewshot_utils.paper_numbers import by_id
from fewshot_utils.profiles import Session

matplotlib.use("Agg")


def _fake_split(split: str, root=None) -> torch.Tensor:
    """A split of tiny images, 600 per class, as miniImageNet's."""
    n_cls = {"train": 64, "val": 16, "test": 20}[split]
    return torch.zeros(n_cls, 600, 3, 2, 2, dtype=torch.uint8)


def _result(per_task, shot=5, way=5, query=15) -> EvalResult:
    per_task = torch.tensor(per_task, dtype=torch.float64)
    mean = float(per_task.mean())
    return EvalResult(mean, ci95(per_task), 0.0, per_task.numel(), per_task, way, shot, query)


class _Run:
    """What the records read from a stage-1 run."""

    def __init__(self, tau=12.5, iterations=40, wall=30.0):
        self.classifier = dense.CosineClassifier(4, 3, tau)
        self.iterations_done, self.wall_time_s = iterations, wall
        self.history = {
            "iteration": [20, 40],
            "train_loss": [2.0, 1.5],
            "train_acc": [0.3, 0.4],
            "val_acc": [0.35, 0.45],
        }


def _session(profile="cpu", seed=0) -> Session:
    return Session(profile, torch.device("cpu"), seed, 0.0)


def _stage1_data(monkeypatch, profile="cpu"):
    monkeypatch.setattr(data, "load_miniimagenet", _fake_split)
    return stage1.load_stage1_data(profile, stage1.test_settings(profile, 5))


def test_paper_cells_name_the_published_cells_a_result_reproduces():
    from fewshot_utils.paper_numbers import by_id

    def short(ids):  # "table-1/resnet-12-dc" of "lifchitz2019dense/table-1/.../5w5s"
        return [i.split("/", 1)[1].rsplit("/", 2)[0] for i in ids]

    # ResNet-12 DC tested as Table 1 (GMP) is Table 1's and Table 2's cell, not Table 4's
    assert short(rd.paper_cells("resnet12", "dc", 5, ("gmp", "gmp"))) == [
        "table-1/resnet-12-dc",
        "table-2/dc-novel-classes/test-gmp-gmp",
    ]
    # DC queries are Table 4's test; Table 2 prints 5-shot only, so 1-shot has Table 4 alone
    assert short(rd.paper_cells("resnet12", "dc", 1, ("gap", "dc"))) == ["table-4/dc"]
    assert short(rd.paper_cells("resnet12", "gap", 10, ("gap", "gap"))) == [
        "table-1/resnet-12-gap",
        "table-4/gap",
    ]
    # C128F is in Table 1 only, and only as Table 1 tests it
    assert short(rd.paper_cells("c128f", "gap", 10, ("gap", "gap"))) == ["table-1/c128f-gap"]
    assert rd.paper_cells("c128f", "dc", 5, ("gap", "dc")) == []
    # base and both classes: Table 2's rows, never Table 1's or 4's
    base = rd.paper_cells("resnet12", "gap", 5, ("gap", "gap"), "base")
    assert short(base) == ["table-2/gap-base-classes/test-gap-gap"]
    assert rd.paper_cells("c128f", "dc", 5, ("gmp", "gmp"), "both") == []
    for ids, shot in [(base, 5), (rd.paper_cells("resnet12", "dc", 10, ("gap", "dc")), 10)]:
        assert ids and all(by_id(i).shot == shot for i in ids)
    with pytest.raises(ValueError, match="kind must be one of"):
        rd.paper_cells("resnet12", "dc", 5, ("gap", "dc"), "all")


def test_method_names_are_those_the_results_page_pairs():
    from fewshot_utils import effects

    assert rd.method_name("resnet12", "dc", ("gmp", "gmp")) == effects._R12.format(
        "dc", "gmp", "gmp"
    )
    assert (
        rd.method_name("resnet12", "gap", ("gap", "dc"), "both")
        == "resnet12-gap-support-gap-query-dc-both-classes"
    )
    assert rd.cell_id("table-5/dc", 1, "fc100") == "lifchitz2019dense/table-5/dc/fc100/5w1s"
    with pytest.raises(ValueError, match="kind must be one of"):
        rd.method_name("resnet12", "dc", ("gap", "dc"), "test")


def test_record_config_names_the_network_and_the_data_cut(monkeypatch):
    import json

    monkeypatch.setattr(data, "load_miniimagenet", _fake_split)
    d = stage1.load_stage1_data("cpu", stage1.test_settings("cpu", 5))
    res = rd.record_config(d, "cpu", "resnet12", "dc", seed=2)
    cfg = stage1_config("cpu", "dc", 2)
    assert res["iterations"] == cfg.iterations and res["seed"] == 2 and res["pooling"] == "dc"
    assert res["widths"] == list(stage1_protocol("cpu")["widths"])
    assert rd.record_config(d, "cpu", "c128f", "gap")["widths"] == [64, 64, 128, 128]
    counts = [res[k] for k in ("train_per_class", "test_per_class", "heldout_base_per_class")]
    assert counts == [d.train.shape[1], d.test.shape[1], d.heldout.shape[1]]
    assert len(set(counts)) == 3, "the three counts must not be confused"
    json.dumps(res)  # a record's config is JSON


def test_short_and_early_and_print_written(capsys):
    res = _result([0.5, 0.7])
    assert rd.short(res) == "60.00 +- " + f"{100 * res.ci95:.2f} %"
    assert rd.early("full") == "" and "early training" in rd.early("cpu")
    rd.print_written(3, "cpu")
    rd.print_written(0, "smoke")
    assert capsys.readouterr().out == "3 records written\nsmoke profile: no records written\n"


def test_paired_is_the_paired_difference_in_points():
    a, b = _result([0.2, 0.4, 0.6]), _result([0.4, 0.4, 0.9])
    mean, hw = paired_difference(b.per_episode, a.per_episode)
    assert math.isclose(mean, (0.2 + 0.0 + 0.3) / 3)
    assert rd.paired(a, b) == f"{100 * mean:+.2f} ± {100 * hw:.2f} points over 3 tasks"


def test_paper_gain_is_table_4s_dc_imp_minus_dc():
    gain = by_id(rd.cell_id("table-4/dc+imp", 5)).accuracy
    gain -= by_id(rd.cell_id("table-4/dc", 5)).accuracy
    assert rd.paper_gain(5) == f"{gain:+.2f}"
    assert rd.paper_gain(1) == "n/a"  # Table 4 prints no 1-shot implanting


def test_stage1_record_names_the_result_and_its_cells(monkeypatch):
    d = _stage1_data(monkeypatch)
    res, run = _result([0.5, 0.75, 1.0], shot=5), _Run()
    rec = rd.stage1_record(run, "resnet12", "dc", ("gap", "dc"), 5, res, 42.0, d, _session())
    assert rec["experiment"] == "ch05_dense_classification" and rec["profile"] == "cpu"
    assert rec["method"] == "resnet12-dc-support-gap-query-dc" and rec["shot"] == 5
    assert rec["paper_rows"] == rd.paper_cells("resnet12", "dc", 5, ("gap", "dc"))
    assert rec["paper_rows"][-1] == rd.cell_id("table-4/dc", 5)
    assert rec["paper_accuracy"] == by_id(rec["paper_rows"][0]).accuracy / 100
    assert rec["tau"] == 12.5 and rec["train_iterations"] == 40 and rec["train_seed"] == 0
    assert rec["config"] == rd.record_config(d, "cpu", "resnet12", "dc", 0)
    assert rec["per_task"] == [0.5, 0.75, 1.0]
    # a base-classes result counts images: the record names Table 2's 5-way 5-shot
    base = EvalResult(0.5, 0.1, 0.0, 4, torch.tensor([1.0, 0, 1, 0]), unit="images")
    args = ("resnet12", "gap", ("gap", "gap"), 5, base, 1.0, d, _session())
    rec = rd.stage1_record(run, *args, kind="base", seed=2)
    assert (rec["way"], rec["shot"], rec["train_seed"]) == (5, 5, 2)
    assert rec["method"].endswith("-base-classes") and rec["config"]["seed"] == 2
    json.dumps(rec)


def test_write_stage1_records_files_every_result_once(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    d = _stage1_data(monkeypatch)
    runs = {("c128f", "gap"): _Run(), ("resnet12", "dc"): _Run()}
    combos, shots = [("gap", "gap"), ("gap", "dc")], [1, 5]
    tests = {(k, s, c): _result([0.5, 1.0], shot=s) for k in runs for s in shots for c in combos}
    base = EvalResult(0.5, 0.1, 0.0, 2, torch.tensor([1.0, 0.0]), unit="images")
    t2 = {"dc": {"base": {c: base for c in combos}, "both": {c: _result([1.0]) for c in combos}}}
    seconds = {
        "embed": dict.fromkeys(runs, 1.0),
        "test": {(k, s): 2.0 for k in runs for s in shots},
        "t2": {"dc": 4.0},
    }
    args = (runs, tests, t2, seconds, shots, combos, d)
    n = rd.write_stage1_records(*args, _session())
    assert n == 2 * 2 * 2 + 2 * 2 == len(list(tmp_path.glob("*.json")))
    rec = json.loads(next(tmp_path.glob("*resnet12-dc-support-gap-query-dc__5w1s*")).read_text())
    assert rec["wall_time_s"] == 30.0 + 1.0 + 2.0
    both = next(tmp_path.glob("*query-gap-both-classes*"))
    assert json.loads(both.read_text())["wall_time_s"] == 30.0 + 1.0 + 4.0
    assert rd.write_stage1_records(*args, _session("smoke")) == 0
    # the other seeds' records carry their train_seed (a file of their own)
    seed_tests = {(1, "gap", 5): {c: _result([0.5]) for c in combos}}
    assert rd.write_seed_records({(1, "gap"): _Run()}, seed_tests, combos, d, _session()) == 2
    assert len(list(tmp_path.glob("*seed1.json"))) == 2


def test_seed_gap_table_pairs_dc_with_gap_per_seed(capsys):
    combos = [("gmp", "gmp"), ("gap", "dc"), ("gap", "gap")]
    per = {"gap": [0.2, 0.4], "dc": [0.6, 0.6]}
    tests = {(("resnet12", p), 5, c): _result(per[p]) for p in per for c in combos}
    seed_tests = {(1, p, 5): {c: _result(per[p][::-1]) for c in combos} for p in per}
    rd.seed_gap_table(tests, seed_tests, [0, 1], [5])
    out = capsys.readouterr().out
    mean, hw = paired_difference(torch.tensor([0.6, 0.6]), torch.tensor([0.2, 0.4]))
    assert f"| 0 | 5 | {100 * mean:+.2f} ± {100 * hw:.2f} |" in out
    assert out.count(f"{100 * mean:+.2f}") == 4  # both columns, both seeds: the same gaps


def test_ch05_tables_show_ours_beside_the_paper(monkeypatch, capsys):
    d = _stage1_data(monkeypatch)
    combos = [("gmp", "gmp"), ("gap", "gap"), ("gap", "dc")]
    runs = [("c128f", "gap"), ("resnet12", "dc")]
    ts = {"shots": (1, 5), "episodes": 2, "query": 15}
    tests = {(k, s, c): _result([0.5, 1.0], shot=s) for k in runs for s in (1, 5) for c in combos}
    rd.show_table1(tests, runs, combos, ts, "cpu")
    out = capsys.readouterr().out
    paper = by_id(rd.cell_id("table-1/resnet-12-dc", 5)).accuracy
    assert "**cpu profile** (early training" in out and f"{paper:.2f}" in out
    assert "| resnet12 | DC | 5 | 75.00 | 75.00 | 75.00 |" in out
    kinds = {"novel": _result([1.0]), "base": _result([0.0]), "both": _result([0.5])}
    t2 = {p: {k: dict.fromkeys(combos, r) for k, r in kinds.items()} for p in ("gap", "dc")}
    rd.show_table2(t2, 3.0, combos, d, ts, "full")
    out = capsys.readouterr().out
    assert "**full profile**, ResNet-12" in out and f"base ({100 / 64:.1f}%)" in out
    assert out.count("| DC |") == 3 and "(3 s)" in out


def test_dense_findings_reads_the_gaps_off_the_results(monkeypatch):
    combos = [("gmp", "gmp"), ("gap", "gap"), ("gap", "dc")]
    accs = {"gap": [0.4, 0.6], "dc": [0.6, 0.8]}
    tests = {
        ((n, p), 5, c): _result(accs[p])
        for n in ("c128f", "resnet12")
        for p in accs
        for c in combos
    }
    seed_tests = {(1, p, 5): {c: _result(accs[p][::-1]) for c in combos} for p in accs}
    runs = {("resnet12", "gap"): _Run(wall=60.0), ("resnet12", "dc"): _Run(wall=120.0)}
    ts = {"shots": (1, 5)}
    text = rd.dense_findings(tests, runs, seed_tests, [0, 1], ts, _session())
    assert "GAP-trained (GAP/GAP) 50.00%, DC-trained (GAP supports, DC queries) 70.00%" in text
    assert "a paired difference of +20.00 ± 0.00 points" in text
    assert "+20.00 / +20.00 points: the same sign on every seed." in text
    assert "Stage-1 training took 3.0 min" in text and "*behind*" not in text


class _Net(nn.Module):
    def forward(self, x):
        return x.float().mean(1, keepdim=True).expand(-1, 4, -1, -1)


def test_plots_and_notes_run(monkeypatch, capsys):
    d = _stage1_data(monkeypatch)
    rd.plot_stage1_curves({("c128f", "gap"): _Run()}, "cpu")
    cams = {(k, p): torch.rand(2, 8, 8) for k in ("base", "novel") for p in ("gap", "dc")}
    rd.plot_cams(cams, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), "cpu")
    rd.plot_implant_curves({"loss": [1.0, 0.5], "acc": [0.5, 0.9]}, 2, "cpu")
    assert capsys.readouterr().out.count("mean true-class probability") == 4
    cfg = stage1_config("cpu", "dc")
    ts = stage1.test_settings("cpu", 5)
    rd.cpu_profile_note("smoke", cfg, ts, d)
    assert capsys.readouterr().out == ""
    rd.cpu_profile_note("cpu", cfg, ts, d)
    widths = "-".join(map(str, stage1_protocol("cpu")["widths"]))
    assert f"ResNet-12 of widths {widths}" in capsys.readouterr().out
    st = stage1.test_settings("cpu", 6)
    rd.implanting_cpu_note(d, st, "cpu")
    assert f"{st['implant_tasks']} implanted tasks per number" in capsys.readouterr().out


def test_predict_stage1_time_measures_every_network(monkeypatch, capsys):
    calls = []

    def rate(model, train, cfg, n, device):
        calls.append(type(model).__name__)
        return 2.0

    monkeypatch.setattr(dense, "measure_iterations_per_s", rate)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # no thread probe
    cfg = stage1_config("cpu", "dc")
    rd.predict_stage1_time({"resnet12": _Net, "c128f": _Net}, None, cfg, _session(), 4)
    out = capsys.readouterr().out
    assert calls == ["_Net", "_Net"] and "training 4 networks" in out


def test_fc100_sections_are_skipped_without_cifar(data_home, capsys):
    assert rd.fc100_table5(_Net, (4,), {}, _session("smoke"), False) is None
    assert rd.fc100_implanting(None, (4,), {}, _session("smoke")) == 0
    assert capsys.readouterr().out.count("FC100 skipped:") == 2


def _implanting(shot=5, tasks=(1.0, 0.0)) -> ImplantingResult:
    res = {t: _result(list(tasks), shot=shot) for t in rd.TEST_POOLS}
    base = {t: _result([0.0, 0.0], shot=shot) for t in rd.TEST_POOLS}
    return ImplantingResult(res, base, [0.5, 0.5], [1.0, 3.0], [0.9, 1.0])


def test_implanting_records_pair_each_test_pooling_with_its_baseline():
    r = _implanting()
    recs = rd.implanting_records(
        r, ("gap", "gap"), "miniimagenet", 9.0, (64, 128), 12, 50, _session(), ["table-4/dc+imp"]
    )
    assert [x["method"].rsplit("-", 1)[1] for x in recs] == ["gap", "gmp", "dc"]
    dc = recs[-1]
    assert dc["paper_rows"][-1] == rd.cell_id("table-4/dc+imp", 5)
    assert dc["paper_accuracy"] == by_id(dc["paper_rows"][0]).accuracy / 100
    assert dc["paired_difference"] == pytest.approx(0.5) and dc["baseline_accuracy"] == 0.0
    assert dc["seconds_per_task"] == 2.0 and dc["implant_train_seconds_per_task"] == 0.5
    assert dc["config"]["widths"] == [64, 128] and dc["config"]["epochs"] == 50
    assert rd.cell_id("table-4/dc+imp", 5) not in recs[0]["paper_rows"]


def test_write_implanting_records_files_table4_implants_and_table3(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    d = _stage1_data(monkeypatch)
    specs = {"dc": ("dc", (4, 8), "s"), "dc+wide": ("dc", (4, 24), "w")}
    nets = {"dc": _Run(wall=10.0), "dc+wide": _Run()}
    table4 = {(n, s): _result([0.5], shot=s) for n in nets for s in (5, 10)}
    pools = {"dc": "dc", "dc+wide": "dc"}
    seconds = {"dc": 1.0, "dc+wide": 2.0}
    n = rd.write_table4_records(nets, specs, pools, table4, seconds, d, _session())
    assert n == 4
    rec = json.loads(
        next(tmp_path.glob("*resnet12-dc-wide-support-gap-query-dc__5w10s*")).read_text()
    )
    assert rec["config"]["widths"] == [4, 24] and rec["wall_time_s"] == 32.0
    st = {"epochs": 3}
    table3 = {("gap", "gap"): _implanting(), ("gmp", "dc"): _implanting()}
    n = rd.write_implanting_records({5: _implanting()}, table3, 11.0, st, d, _session())
    assert n == 2 * 3
    rec = json.loads(next(tmp_path.glob("*stage2-gap-gap-support-gap-query-dc__5w5s*")).read_text())
    assert rec["wall_time_s"] == 11.0 + 4.0
    rec = json.loads(next(tmp_path.glob("*stage2-gmp-dc-support-gap-query-gmp*")).read_text())
    assert rec["wall_time_s"] == 4.0


def test_ch06_tables_and_findings(capsys):
    runs = {5: _implanting(5), 10: _implanting(10)}
    table4 = {
        (n, s): _result([0.5, 0.5], shot=s) for n in ("gap", "dc", "dc+wide") for s in (5, 10)
    }
    st = {"shots": (5, 10), "query": 15, "episodes": 2, "implant_tasks": 2, "table3_tasks": 2}
    st["epochs"] = 50
    rd.show_table4(table4, runs, st, "cpu")
    out = capsys.readouterr().out
    assert "| DC+IMP | 50.00 +- " in out and out.count("DC+WIDE - DC") == 2
    assert f"(the paper: {rd.paper_gain(5)})" in out
    rd.show_table3({("gap", "gap"): runs[5]}, 5, st, "cpu")
    out = capsys.readouterr().out
    assert "| no implants (DC network) | | 0.00 +- 0.00 % |" in out and "(Table 2) |" in out
    text = rd.implanting_findings(runs, {("gap", "gap"): runs[5]}, table4, 1.5, st, _session())
    assert "DC 0.00% and DC+IMP 50.00% on the same tasks" in text
    assert "4 implanted tasks took 2.00 s each" in text and "Narrow, briefly trained" in text


def test_predict_implanting_time_scales_with_the_shots(capsys):
    def implant(shot, tasks, seed, progress):
        assert (shot, tasks, seed, progress) == (2, 2, 99, False)
        return _implanting(2)

    st = {"shots": (2, 4), "implant_tasks": 10, "table3_tasks": 5}
    rd.predict_implanting_time(implant, st, _session())
    out = capsys.readouterr().out
    # 2.0 s per 2-shot task, 4.0 s per 4-shot one: 10 * 6 + 3 * 5 * 2 = 90 s
    assert "one implanted 2-shot task: 2.00 s" in out and "35 implanted tasks" in out
    assert "about 1.5 min" in out
