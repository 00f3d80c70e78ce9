"""Chapter 7's bookkeeping (report_tadam): record and checkpoint names, the records, TADAM's
Table 2 cells, the time estimate, the scores and tables read off trained models, the figures
and the findings."""

import matplotlib
import pytest
import torch

from fewshot_utils import report_tadam
from fewshot_utils.evaluation import EvalResult, paired_difference
from fewshot_utils.models import ResNet12
from fewshot_utils.report_tadam import (
    Scores,
    chapter_record,
    checkpoint_stem,
    estimate_seconds,
    evaluation_images,
    method_name,
    model_kinds,
    seconds_per_image,
    table2_cell,
    table2_difference,
)
from fewshot_utils.tadam import TadamConfig, TadamNet, TaskEmbeddingNetwork
from fewshot_utils.training import TrainResult

matplotlib.use("Agg")

WIDTHS = (4, 6, 8, 10)


def _images(classes=10, per_class=8, side=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(
        0, 255, (classes, per_class, 3, side, side), generator=g, dtype=torch.uint8
    )


def _net(tc=False, aux=None, learn_alpha=False, alpha=1.0, seed=0):
    torch.manual_seed(seed)
    ten = TaskEmbeddingNetwork(WIDTHS[-1], WIDTHS) if tc else None
    return TadamNet(ResNet12(WIDTHS), "squared_euclidean", alpha, learn_alpha, ten, aux)


def _config(**kw):
    episodes = dict(way=3, shot=2, query=2, max_episodes=8, episodes_per_epoch=4, lr=0.05)
    validation = dict(val_way=3, val_query=2, val_episodes=4)
    return TadamConfig(**{**episodes, "aux_batch": 6, **validation, **kw})


@pytest.mark.parametrize(
    ("name", "method"),
    [  # the methods of the records in results/: a changed mapping would orphan them
        ("sq, α = 0.01", "sq_alpha=0.01"),
        ("cos, α = 10", "cos_alpha=10"),
        ("sq, α learned", "sq_alphalearned"),
        ("LSED", "LSED"),
        ("α + AT", "alpha_AT"),
        ("α + TC", "alpha_TC"),
        ("TADAM", "TADAM"),
    ],
)
def test_method_name_keeps_the_record_names(name, method):
    assert method_name(name) == method


def test_table2_cells_are_the_papers_5_shot_rows():
    from fewshot_utils.paper_numbers import by_id

    cell = "oreshkin2018tadam/table-2/{}/miniimagenet/5w5s"
    rows = {"baseline": "baseline", "α": "alpha", "α + AT": "alpha+at"}
    for row, stem in {**rows, "α + AT + TC": "tadam-alpha+at+tc"}.items():
        assert table2_cell(row) == cell.format(stem)
        assert by_id(table2_cell(row)).shot == 5
    assert table2_cell("α + TC") is None  # no number in our sources: none made up
    assert table2_cell("no such row") is None
    full = by_id(cell.format("tadam-alpha+at+tc")).accuracy
    assert table2_difference("α + AT + TC", "baseline") == pytest.approx(
        full - by_id(cell.format("baseline")).accuracy
    )
    assert table2_difference("α", "α") == 0
    with pytest.raises(KeyError, match="α \\+ TC"):
        table2_difference("α + TC", "α")


def test_evaluation_images_counts_each_kind_of_model():
    counts = dict(
        epochs=10,
        val_episodes=50,
        test_episodes=1000,
        val_images=960,
        test_images=2000,
        episode_images=125,
    )
    # without a TEN: the splits once per pass, whatever the number of episodes
    assert evaluation_images(False, **counts) == 10 * 960 + 2000
    assert evaluation_images(False, **{**counts, "test_episodes": 1}) == 10 * 960 + 2000
    # with a TEN: every validation and test episode embedded on its own
    assert evaluation_images(True, **counts) == (10 * 50 + 1000) * 125


def test_seconds_per_image_counts_every_image():
    net = _net()
    s = seconds_per_image(net, _images(classes=3, per_class=4), device="cpu")
    assert 0 < s < 1 and net.training  # measured on an inference copy: the model untouched
    with pytest.raises(ValueError, match="at least one image"):
        seconds_per_image(net, _images()[:0], device="cpu")


def test_estimate_seconds_measures_each_kind_once_and_counts_every_model():
    built = []

    def make(at, tc):
        built.append((at, tc))
        return _net(tc=tc, aux=6 if at else None)

    data, cfg = _images()[:6], _config()
    kinds = [(False, False), (False, False), (True, True)]
    est = estimate_seconds(make, kinds, data, data, data, cfg, 5, 1, "cpu")
    assert set(est) == {"training", "validation and test"}
    assert all(v > 0 for v in est.values())
    # one probe per kind, first-seen order, then the embedding-speed probe
    assert built == [(False, False), (True, True), (False, False)]


def test_estimate_seconds_sums_every_model(monkeypatch):
    # fixed probe times (measured ones vary with the machine's load): exact sums
    probe = {(False, False): 10.0, (True, True): 100.0}
    monkeypatch.setattr(
        report_tadam,
        "measure_tadam_seconds",
        lambda model, *a: {
            "predicted_s": probe[(model.aux_head is not None, model.ten is not None)]
        },
    )
    monkeypatch.setattr(report_tadam, "seconds_per_image", lambda *a: 0.5)
    data, cfg = _images()[:6], _config()  # 6 classes of 8 images per split

    def make(at, tc):
        return _net(tc=tc, aux=6 if at else None)

    kinds = [(False, False), (False, False), (True, True)]
    est = estimate_seconds(make, kinds, data, data, data, cfg, 5, 1, "cpu")
    assert est["training"] == 10.0 + 10.0 + 100.0  # the plain model is counted twice
    epochs, episode_images = 8 // 4, 3 * (2 * 2 + 15)
    plain = epochs * 48 + 48  # validation split every epoch, test split once
    with_ten = (epochs * 4 + 5) * episode_images  # every episode on its own
    assert est["validation and test"] == pytest.approx(1.3 * (2 * plain + with_ten) * 0.5)


def test_chapter_record_keeps_what_the_results_page_reads():
    from fewshot_utils.evaluation import EvalResult
    from fewshot_utils.training import TrainResult

    history = {"val_acc": [0.3, 0.5, 0.4], "near_zero": [0.2, 0.1, 0.0]}
    run = TrainResult(_net(), history, 2, 12, 30.0, resumed=False, loaded=False)
    res = EvalResult(0.4, 0.02, 1.2, 4, torch.tensor([0.3, 0.4, 0.5, 0.4]), 5, 5, 15)
    cfg = _config(seed=3)
    facts = dict(profile="cpu", device="cpu", widths=WIDTHS, image_side=16, test_per_class=8)
    rows = ["baseline", "α"]
    rec = chapter_record("sq, α = 1", run, res, cfg, 6.0, "validation grid", rows, **facts)
    assert (rec["experiment"], rec["method"]) == ("ch07_tadam", "sq_alpha=1")
    assert rec["val_accuracy"] == 0.5  # the epoch kept (best_epoch 2), not the last
    assert rec["near_zero_train"] == pytest.approx(0.1)
    assert rec["train_seed"] == 3 and rec["config"]["seed"] == 3
    assert rec["config"]["query"] == cfg.query and rec["query"] == 15  # training vs test
    assert rec["config"]["backbone"] == "resnet12-4-6-8-10"
    assert rec["config"]["model"] == run.model.describe()
    assert rec["wall_time_s"] == 36.0 and rec["final_alpha"] == 1.0
    assert rec["ablation_rows"] == rows
    assert rec["paper_rows"] == [table2_cell("baseline"), table2_cell("α")]
    tc = chapter_record("α + TC", run, res, cfg, 6.0, "chosen on validation", ["α + TC"], **facts)
    assert tc["method"] == "alpha_TC" and tc["paper_rows"] == []  # no published cell


def test_checkpoint_stem_keeps_the_checkpoint_names():
    spec = dict(learn=False, alpha=0.1)
    assert checkpoint_stem("sq, α = 0.1", spec, True, "cpu", 0) == "ch07_sq_alpha=0.1_cpu_seed0.pt"
    # the ablation's models carry the alpha chosen on validation
    stem = checkpoint_stem("α + AT", spec, False, "full", 2)
    assert stem == "ch07_alpha_AT_alpha0.1_full_seed2.pt"
    learned = dict(learn=True, alpha=1.0)
    assert checkpoint_stem("sq, α learned", learned, False, "smoke", 1) == (
        "ch07_sq_alphalearned_smoke_seed1.pt"
    )


def _run(alpha=1.0, val_acc=(0.3, 0.5, 0.4), aux_steps=(1, 0, 2), wall=60.0):
    history = {
        "val_acc": list(val_acc),
        "near_zero": [0.2, 0.1, 0.0],
        "aux_steps": list(aux_steps),
        "episode": [1, 2, 3],
        "alpha": [alpha] * 3,
    }
    return TrainResult(_net(alpha=alpha), history, 2, 12, wall, resumed=False, loaded=False)


def _result(per_episode):
    acc = torch.tensor(per_episode)
    return EvalResult(acc.mean().item(), 0.02, 1.2, len(per_episode), acc, 5, 5, 15)


def _scores():
    names = ["sq, α = 1", "sq, α = 0.1", "α + AT", "α + TC", "TADAM"]
    runs = {n: _run(alpha=0.1 if n != "sq, α = 1" else 1.0) for n in names}
    tests = {n: _result([0.2 + 0.1 * i, 0.4, 0.5 + 0.05 * i]) for i, n in enumerate(names)}
    return Scores(runs, tests, {n: 30.0 for n in names})


def test_write_record_names_rows_choice_and_seed(capsys):
    scores = _scores()
    scores.runs[("sq, α = 1", 1)] = scores.runs["sq, α = 1"]
    scores.tests[("sq, α = 1", 1)] = scores.tests["sq, α = 1"]
    scores.test_seconds[("sq, α = 1", 1)] = 12.0
    models = {
        "sq, α = 1": dict(learn=False),
        "sq, α = 0.1": dict(learn=False),
        "sq, α learned": dict(learn=True),
        "α + AT": dict(learn=False),
    }
    scores.runs["sq, α learned"] = scores.runs["sq, α = 1"]
    scores.tests["sq, α learned"] = scores.tests["sq, α = 1"]
    scores.test_seconds["sq, α learned"] = 1.0
    grid = ["sq, α = 1", "sq, α = 0.1"]
    ablation = {"baseline": "sq, α = 1", "α": "sq, α = 0.1", "α + AT": "α + AT"}
    facts = dict(profile="smoke", device="cpu", widths=WIDTHS, image_side=16, test_per_class=8)
    cfg = _config()
    args = (0, models, grid, ablation, cfg, scores, facts)
    base = report_tadam.write_record("sq, α = 1", *args)
    assert capsys.readouterr().out == "sq, α = 1      smoke profile: record not written\n"
    run, res = scores.runs["sq, α = 1"], scores.tests["sq, α = 1"]
    expected = chapter_record(
        "sq, α = 1", run, res, cfg, 30.0, "validation grid", ["baseline"], **facts
    )
    assert base == expected
    seed1 = report_tadam.write_record(("sq, α = 1", 1), *args)
    assert seed1["train_seed"] == 1 and seed1["wall_time_s"] == run.wall_time_s + 12.0
    assert report_tadam.write_record("α + AT", *args)["alpha_choice"] == "chosen on validation"
    learned = report_tadam.write_record("sq, α learned", *args)
    assert learned["alpha_choice"] == "learned" and learned["ablation_rows"] == []


def test_model_kinds_adds_the_retrained_pair_per_new_seed():
    specs = [dict(at=False, tc=False), dict(at=True, tc=True), dict(at=True, tc=False)]
    assert model_kinds(specs, (0,), 0) == [(False, False), (True, True), (True, False)]
    kinds = model_kinds(specs, (0, 1, 2), 0)
    assert kinds[3:] == [(False, False)] * 4 and len(kinds) == 7
    assert len(model_kinds(specs, (1, 2), 0)) == 3 + 2 * 2  # the chapter's seed not among them


def test_chapter_estimate_counts_every_model(monkeypatch):
    seen = {}

    def fake(make, kinds, train, val, test, config, test_episodes, probe, device):
        seen.update(kinds=kinds, test_episodes=test_episodes, probe=probe, device=device)
        return {"training": 1.0, "validation and test": 2.0}

    monkeypatch.setattr(report_tadam, "estimate_seconds", fake)
    settings = dict(seeds=(0, 1), test_episodes=7, probe_episodes=2)
    x = _images()[:3]
    out = report_tadam.chapter_estimate(
        None, [dict(at=True, tc=False)], (x, x, x), _config(), settings, 0, "cpu"
    )
    assert out == {"training": 1.0, "validation and test": 2.0}
    assert seen == dict(
        kinds=[(True, False), (False, False), (False, False)],
        test_episodes=7,
        probe=2,
        device="cpu",
    )


def test_scores_read_the_kept_epoch_and_pair_the_episodes():
    s = _scores()
    assert s.val_accuracy("sq, α = 1") == 0.5  # best_epoch 2, not the last
    assert s.near_zero("sq, α = 1") == pytest.approx(0.1)
    mean, hw = paired_difference(s.tests["TADAM"].per_episode, s.tests["sq, α = 1"].per_episode)
    assert s.gap("TADAM") == f"{100 * mean:+.2f} ± {100 * hw:.2f}"
    assert s.gap("TADAM").startswith("+")  # TADAM's episodes are higher here
    assert s.gap("sq, α = 1", "TADAM").startswith("-")
    assert s.accuracy("sq, α = 1") == f"{100 * s.tests['sq, α = 1'].accuracy:.2f} ± 2.00"
    assert s.minutes("TADAM") == "1.0 + 0.5"


def test_tables_have_a_row_per_model(capsys):
    s = _scores()
    models = {n: dict(learn=n == "α + TC") for n in s.runs}
    report_tadam.models_table(models, s)
    out = capsys.readouterr().out
    assert out.count("\n| ") >= len(models) and "*(learned, not the paper's)*" in out
    assert "| sq, α = 1 | 50.00 |" in out  # validation accuracy at the kept epoch
    ablation = {"baseline": "sq, α = 1", "α": "sq, α = 0.1", "α + TC": "α + TC"}
    report_tadam.ablation_table(ablation, s)
    out = capsys.readouterr().out
    from fewshot_utils.paper_numbers import by_id

    paper = by_id(table2_cell("baseline")).accuracy
    assert f"| {paper:.1f} |" in out and "not in our sources" in out
    assert f"| {s.gap('sq, α = 0.1', 'sq, α = 1')} |" in out and "| 3 |" in out  # aux batches
    key = lambda n, seed: n if seed == 0 else (n, seed)  # noqa: E731
    s.tests[("sq, α = 1", 1)] = s.tests["TADAM"]
    s.tests[("sq, α = 0.1", 1)] = s.tests["sq, α = 1"]
    report_tadam.seeds_table(["sq, α = 1", "sq, α = 0.1"], [0, 1], s, key)
    out = capsys.readouterr().out
    assert f"| 1 | {100 * s.tests['TADAM'].accuracy:.2f} |" in out
    assert s.gap("sq, α = 1", "TADAM") in out


def test_figures_draw_without_error(monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(len(plt.gcf().axes)))
    sweeps = {"squared_euclidean": [0.5, 0.1], "cosine": [0.0, 0.0]}
    report_tadam.plot_fresh_sweep([0.1, 1.0], sweeps, 0.2, 3, "smoke")
    q, c, y = torch.randn(6, 4), torch.randn(3, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    report_tadam.plot_fresh_gradients([(q, c, y)], {"s": 4.0, "r": 0.01})
    models = {"sq, α = 1": dict(learn=False), "sq, α learned": dict(learn=True)}
    runs = {n: _run() for n in models}
    report_tadam.plot_training(models, runs)
    report_tadam.plot_aux_schedule(40)
    assert shown == [1, 4, 2, 1]
    plt.close("all")


def test_findings_state_the_papers_differences(capsys):
    s = _scores()
    for d in ("sq", "cos"):
        s.runs[f"{d}, α learned"] = _run(alpha=2.0 if d == "sq" else 0.5)
        s.tests[f"{d}, α learned"] = s.tests["sq, α = 1"]
    s.tests["LSED"] = s.tests["sq, α = 1"]
    s.tests["cos, α = 10"] = s.tests["sq, α = 1"]
    alpha = {"squared_euclidean": 0.1, "cosine": 10.0}
    ablation = {"baseline": "sq, α = 1", "α": "sq, α = 0.1", "α + AT": "α + AT"}
    ablation.update({"α + TC": "α + TC", "α + AT + TC": "TADAM"})
    report_tadam.findings((0.9, 0.1, 0.2), alpha, ablation, s, 120.0, "cpu", "smoke")
    out = capsys.readouterr().out
    assert "90.0% of the squared Euclidean gradients" in out and "both reduce" in out
    assert f"(the paper: {table2_difference('α', 'baseline'):+.1f})" in out
    assert "rose from 1 to 2" in out and "fell to 0.5" in out
    assert "The best row here is *α + AT + TC*" in out  # TADAM's episodes are the highest
    assert "took 2.0 min on cpu" in out and "**`smoke` profile**" in out
    report_tadam.findings((0.1, 0.2, 0.05), alpha, ablation, s, 60.0, "cpu", "full")
    out = capsys.readouterr().out
    assert "do not both reduce" in out and "profile**" not in out
