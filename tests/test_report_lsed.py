"""Tests of fewshot_utils.report_lsed, the machinery of chapters 0-2."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from fewshot_utils import gradients, paper_numbers, report_lsed, saturation
from fewshot_utils.episodes import Episode
from fewshot_utils.evaluation import EvalResult
from fewshot_utils.training import TrainConfig


def _result(way: int, acc: float) -> EvalResult:
    per = torch.full((10,), acc)
    return EvalResult(acc, 0.01, 0.5, 10, per, way, 1, 15)


# Chapter 0


def test_alphabet_overlap_counts_shared_alphabets_and_the_example(monkeypatch):
    names = {
        "train": ["A/c01/rot000", "A/c01/rot090", "B/c02/rot000", "C/c03/rot000"],
        "val": ["B/c05/rot000"],
        "test": ["A/c09/rot000", "D/c04/rot000", "D/c04/rot090", "B/c07/rot000"],
    }
    monkeypatch.setattr(report_lsed.data, "split_names", lambda dataset, split: names[split])
    text = report_lsed.omniglot_alphabet_overlap("A")
    # test alphabets A, B, D; A and B also in training; A: 2 training, 1 test class
    assert text.startswith("2 of the 3 test alphabets")
    assert "e.g. A: 2 training and 1 test classes" in text


def test_pca_plot_draws_queries_supports_and_one_star_per_class():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6))
    ep = Episode(torch.randn(3, 2, 4), torch.randn(3, 5, 4), torch.arange(3))
    fig, ax = plt.subplots()
    report_lsed.pca_plot(net, ep, "title", ax)
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes == [5, 2, 1] * 3 and ax.get_title() == "title"
    # a class's star is the mean of its support points (projection is affine)
    sup, star = ax.collections[1].get_offsets(), ax.collections[2].get_offsets()
    assert torch.allclose(torch.tensor(sup).mean(0), torch.tensor(star[0]), atol=1e-5)
    plt.close(fig)


def test_training_summary_says_loaded_or_trained():
    run = SimpleNamespace(
        loaded=True, episodes_done=20, best_epoch=2, episodes_per_s=3.456, wall_time_s=5.8
    )
    text = report_lsed.training_summary(run)
    assert text == (
        "loaded finished run: 20 episodes, best epoch 2, 3.46 training episodes/s, 6 s of training"
    )
    other = SimpleNamespace(**{**vars(run), "loaded": False})
    assert report_lsed.training_summary(other).startswith("trained: 20 episodes")


def test_first_protonet_records_keep_the_training_query(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(report_lsed, "show_markdown", lambda text: None)
    config = TrainConfig(way=60, shot=1, query=5, max_episodes=20, episodes_per_epoch=10)
    run = SimpleNamespace(wall_time_s=10.0, episodes_done=20, best_epoch=1)
    tests = {5: (_result(5, 0.9), 1.0), 20: (_result(20, 0.7), 2.0)}
    records = report_lsed.first_protonet_records(tests, config, run, 3.0, "cpu", "cpu")
    assert [r["way"] for r in records] == [5, 20]
    for rec, (way, (_res, seconds)) in zip(records, tests.items()):
        assert rec["query"] == 15 and rec["config"]["query"] == 5 and rec["train_query"] == 5
        assert rec["config"]["backbone"] == "conv4-64"
        assert rec["wall_time_s"] == pytest.approx(10.0 + 3.0 + seconds)
        paper = paper_numbers.by_id(f"{report_lsed.SNELL_OMNIGLOT}/{way}w1s").accuracy
        assert rec["protonet_paper_accuracy"] == pytest.approx(paper / 100)
    written = sorted(tmp_path.rglob("*.json"))
    assert len(written) == 2 and json.loads(written[0].read_text())["accuracy"] in (0.9, 0.7)
    # a smoke run writes nothing
    report_lsed.first_protonet_records(tests, config, run, 3.0, "smoke", "cpu")
    assert len(sorted(tmp_path.rglob("*.json"))) == 2
    assert "smoke profile: record not written" in capsys.readouterr().out


# Chapter 1


def test_conv4_threads_prints_the_probed_rates(monkeypatch, capsys):
    calls = []

    def fake(probe, device):
        calls.append(probe())
        return {2: 1.0, 1: 3.0}

    monkeypatch.setattr(report_lsed, "fastest_threads", fake)
    assert report_lsed.conv4_threads("cpu") == {2: 1.0, 1: 3.0}
    assert calls[0] > 0  # a real Conv-4 forward pass rate
    assert "forward passes per s by threads: {2: 1.0, 1: 3.0}" in capsys.readouterr().out
    monkeypatch.setattr(report_lsed, "fastest_threads", lambda probe, device: {})
    assert report_lsed.conv4_threads("cuda") == {}
    assert capsys.readouterr().out == ""


def test_figure1_plots_the_toy_probabilities_and_gradients():
    lambdas = torch.logspace(-1, 2, 7, dtype=torch.float64)
    toys = {"a": saturation.two_prototype_example(1, 2, lambdas)}
    fig = report_lsed.figure1(lambdas, toys)
    left, right = fig.axes[0].lines, fig.axes[1].lines
    p0 = torch.sigmoid(lambdas * (2 - 1))  # p0 = sigma(d1 - d0), scaled by lambda
    assert torch.allclose(torch.as_tensor(left[0].get_ydata()), p0)
    assert len(right) == 2 + 1  # two gradients and the line at lambda = 1
    plt.close(fig)


def test_figure2a_shades_one_band_per_d1_on_both_axes():
    fig = report_lsed.figure2a(4.6, 0.01, (10.0, 100.0))
    for ax in fig.axes[:2]:
        assert len(ax.patches) == 2
    x, y = fig.axes[1].lines[0].get_data()
    d0 = torch.exp(-torch.as_tensor(x))
    assert torch.allclose(torch.as_tensor(y), torch.sigmoid(d0 - 10.0))
    plt.close(fig)


def _measured() -> dict:
    d = torch.tensor([[1.0, 50.0, 60.0], [40.0, 2.0, 70.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0])  # the first query right, the second wrong
    grad = saturation.distance_gradient(d, labels)
    run = dict(d=d, labels=labels, grad=grad, dim=8)
    return {("net", 3): [run, run]}


def test_saturation_table_averages_the_episodes(monkeypatch):
    shown = []
    monkeypatch.setattr(report_lsed, "table", lambda header, rows: shown.append(rows))
    summaries = report_lsed.saturation_table(_measured(), 1e-2)
    s = summaries["net", 3]
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["mean d"] == pytest.approx((1 + 50 + 60 + 40 + 2 + 70) / 6)
    # gradients: first query saturated (all ~0), second (-1, +1, ~0): 4 of 6 below 1e-5
    assert s["sparsity"] == pytest.approx(4 / 6)
    assert shown[0][0][:5] == ["net", "2 × 3-way", "37", "0.50", "0.667"]


def test_fresh_histograms_title_the_sparsity():
    fig = report_lsed.fresh_histograms(_measured(), [("net", 3)])
    assert fig.axes[0].get_title() == "net: 66.7% of gradients below 1e-5"
    assert (
        fig.axes[1].get_legend().get_texts()[0].get_text() == "median 40"
    )  # torch: the lower middle value
    plt.close(fig)


def test_dimension_figure_marks_each_network_at_its_dimension():
    measured = _measured()
    measured["net", 5] = measured["net", 3]
    summaries = {("net", 5): {"mean d": 37.0, "sparsity": 0.5}}
    fig = report_lsed.dimension_figure([1, 4], [0.1, 0.2], ["net"], summaries, measured)
    marker = fig.axes[0].lines[-1]
    assert list(marker.get_xdata()) == [8] and list(marker.get_ydata()) == [37.0]
    assert list(fig.axes[1].lines[-1].get_ydata()) == [0.5]
    plt.close(fig)


def test_lemma1_figure_names_the_true_and_nearest_wrong_prototypes():
    d_i = torch.tensor([[30.0, 10.0, 20.0]], dtype=torch.float64)
    y_i = torch.tensor([0])
    alphas = torch.logspace(-3, 0, 5, dtype=torch.float64)
    curve = torch.cat([saturation.distance_gradient(d_i, y_i, a) / a for a in alphas.tolist()])
    limits = saturation.lemma1_limit_weights(d_i, y_i)
    fig = report_lsed.lemma1_figure(d_i, y_i, alphas, curve, limits)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [
        "prototype 1 (nearest wrong), d = 10",
        "prototype 2 (other), d = 20",
        "prototype 0 (true), d = 30",
    ]
    plt.close(fig)


def test_alpha_sweep_figure_plots_both_fractions():
    alphas = torch.tensor([0.1, 1.0])
    fig = report_lsed.alpha_sweep_figure(alphas, {("n", 5): [(0.9, 0.1), (0.2, 0.7)]}, 0.01)
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.9, 0.2]
    assert list(fig.axes[1].lines[0].get_ydata()) == [0.1, 0.7]
    plt.close(fig)


# Chapter 2


def _snapshot(it: int, scale: float = 1.0) -> gradients.GradientSnapshot:
    d = scale * torch.tensor([[1.0, 50.0], [40.0, 2.0]])
    labels = torch.tensor([0, 0])
    grad = saturation.distance_gradient(d, labels)
    return gradients.GradientSnapshot(it, d, grad, labels, 0.5, 0.5)


def test_evolution_returns_the_summaries_by_model_and_iteration(monkeypatch):
    shown = []
    monkeypatch.setattr(report_lsed, "show_markdown", shown.append)
    monkeypatch.setattr(report_lsed.plt, "show", lambda: None)
    caps = {"A": {8: _snapshot(8), 0: _snapshot(0)}, "B": {0: _snapshot(0, 0.01)}}
    out = report_lsed.evolution(caps, ["t1", "t2"], s=4.0)
    assert list(out["A"]) == [0, 8] and list(out) == ["A", "B"]
    assert out["B"][0] == gradients.snapshot_summary(caps["B"][0], s=4.0)
    assert "A, 8 iterations" in shown[0] and "B, 0 iterations" in shown[0]
    plt.close("all")


def test_grid_checkpoint_shares_chapter_4s_only_in_full(monkeypatch, tmp_path):
    monkeypatch.setattr(report_lsed, "checkpoint_dir", lambda: tmp_path)
    cfg = TrainConfig(way=5, shot=1, query=15, max_episodes=4, episodes_per_epoch=2)
    path = report_lsed.grid_checkpoint("squared_euclidean", cfg, "cpu", 3)
    assert path == tmp_path / "ch02_squared_euclidean_cpu_seed3.pt"
    with pytest.raises(RuntimeError, match="no longer chapter 4's model"):
        report_lsed.grid_checkpoint("squared_euclidean", cfg, "full", 0)
    protocol = report_lsed.miniimagenet_protocol("full")
    same = report_lsed.miniimagenet_config(protocol, 1, "lsed", 0)
    path = report_lsed.grid_checkpoint("lsed_s4_r0.01", same, "full", 0)
    assert path == tmp_path / "ch04_lsed_1shot_full_seed0.pt"


def _grid():
    tags = {(4.0, 0.01): "lsed_s4_r0.01", (4.0, 1.0): "squared_euclidean"}
    tests = {"lsed_s4_r0.01": _result(5, 0.5), "squared_euclidean": _result(5, 0.4)}

    def paired(tag: str) -> tuple[float, float]:
        return tests[tag].accuracy - 0.5, 0.02

    return tags, tests, paired


def test_figure8_tables_each_model_with_its_paired_difference(monkeypatch):
    tags, tests, paired = _grid()
    shown, judged = [], []
    monkeypatch.setattr(report_lsed, "table", lambda header, rows: shown.append(rows))
    monkeypatch.setattr(report_lsed, "judge", lambda *claims: judged.append(claims))
    monkeypatch.setattr(report_lsed.plt, "show", lambda: None)
    settings = {
        "s_grid": [4.0],
        "r_grid": [0.01, 1.0],
        "mini_iters": [0, 2],
        "mini_way": 5,
        "max_episodes": 4,
    }
    caps = {0: _snapshot(0), 2: _snapshot(2, 0.01)}
    report_lsed.figure8(tests, tags, paired, "lsed_s4_r0.01", settings, caps, "smoke")
    assert shown[0] == [
        ["4", "0.01", "lsed_s4_r0.01", "50.00 ± 1.00", "—"],
        ["4", "1", "squared_euclidean", "40.00 ± 1.00", "-10.00 ± 2.00"],
    ]
    assert len(judged) == 1
    plt.close("all")


def test_grid_records_hold_the_configuration_and_paired_difference(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    tags, tests, paired = _grid()
    cfg = TrainConfig(way=5, shot=1, query=15, max_episodes=4, episodes_per_epoch=2, seed=2)
    lsed_cfg = replace(cfg, distance="lsed", distance_kwargs={"s": 4.0, "r": 0.01})
    configs = {(4.0, 0.01): lsed_cfg, (4.0, 1.0): cfg}
    run = SimpleNamespace(wall_time_s=5.0, episodes_done=4, best_epoch=1)
    runs = dict.fromkeys(tests, run)
    times = dict.fromkeys(tests, 1.5)
    args = (tags, configs, tests, runs, times, paired, "lsed_s4_r0.01", 40, "cpu", "cpu")
    recs = report_lsed.grid_records(*args)
    assert [r["method"] for r in recs] == ["lsed_s4_r0.01", "squared_euclidean"]
    assert [r["s"] for r in recs] == [4.0, None] and [r["r"] for r in recs] == [0.01, 1.0]
    assert recs[1]["paired_minus_reference"] == pytest.approx(-0.1)
    assert recs[0]["config"]["seed"] == 2 and recs[0]["config"]["test_images_per_class"] == 40
    assert recs[0]["wall_time_s"] == 6.5 and recs[0]["training_stage"] == "early training"
    assert len(sorted(tmp_path.rglob("*.json"))) == 2


def _histories():
    per = [torch.tensor([0.2, 0.4]), torch.tensor([0.4, 0.6]), torch.tensor([0.5, 0.5])]
    hs = {
        "episode": [20, 100, 200],
        "train_acc": [0.2, 0.3, 0.4],
        "val_acc": [0.3, 0.5, 0.5],
        "val_ci95": [0.1, 0.1, 0.1],
        "val_per_episode": per,
        "train_seconds": [1.0, 2.0, 3.0],
    }
    hl = {**hs, "val_acc": [0.4, 0.6, 0.5], "val_per_episode": [p + 0.1 for p in per]}
    return hs, hl


def test_epoch_gap_and_figure9_verdicts(monkeypatch):
    hs, hl = _histories()
    gap = report_lsed.epoch_gap(hs, hl, 1)
    assert gap["episodes"] == 100 and gap["val"] == (0.5, 0.6)
    assert gap["gap"] == pytest.approx(10.0) and gap["gap_ci"] == pytest.approx(0, abs=1e-4)
    judged = []
    monkeypatch.setattr(report_lsed, "judge", lambda *claims: judged.append(claims))
    paper_i, at_paper = report_lsed.figure9_verdicts(hs, hl)
    assert paper_i == 1 and at_paper == gap and len(judged) == 1
    with pytest.raises(RuntimeError, match="predate per-episode"):
        report_lsed.epoch_gap(hs, {"episode": [20]}, 0)


def test_first_epoch_records_take_the_paper_epoch(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    hs, hl = _histories()
    cfg = TrainConfig(way=5, shot=1, query=15, max_episodes=4, episodes_per_epoch=2)
    at_paper = {"gap": 10.0, "gap_ci": 2.0}
    models = {"squared_euclidean": (hs, cfg), "lsed_s4_r0.01": (hl, cfg)}
    recs = report_lsed.first_epoch_records(models, 1, at_paper, 300, "cpu", "cpu")
    assert [r["accuracy"] for r in recs] == [0.5, 0.6]
    assert recs[0]["wall_time_s"] == 3.0 and recs[0]["after_episodes"] == 100
    assert recs[1]["val_gap_lsed_minus_sed"] == pytest.approx(0.1) and recs[1]["episodes"] == 300
    assert len(sorted(tmp_path.rglob("*.json"))) == 2
