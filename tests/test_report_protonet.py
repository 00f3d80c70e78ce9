"""Chapters 3-4b's machinery (fewshot_utils.report_protonet): tables, records, findings and
time estimates, checked against computations written out here."""

import dataclasses
import json
import math
import os
from types import SimpleNamespace

import matplotlib
import pytest
import torch

from fewshot_utils import report_protonet as rp
from fewshot_utils.evaluation import EvalResult
from fewshot_utils.paper_numbers import protonet_accuracy
from fewshot_utils.profiles import Session
from fewshot_utils.results import make_record, protonet_record
from fewshot_utils.training import TrainConfig

matplotlib.use("Agg")


def _result(per_episode, way=5, shot=1):
    acc = torch.tensor(per_episode, dtype=torch.float32)
    ci = 1.96 * acc.double().std().item() / math.sqrt(acc.numel())
    return EvalResult(acc.mean().item(), ci, 1.0, acc.numel(), acc, way=way, shot=shot, query=15)


def _by_hand(new, ref):
    """The paired difference in points, written out: mean and 1.96 sd / sqrt(n)."""
    d = torch.tensor(new, dtype=torch.float64) - torch.tensor(ref, dtype=torch.float64)
    return 100 * d.mean().item(), 100 * 1.96 * d.std().item() / math.sqrt(d.numel())


def _run(alpha=None):
    history = {
        "episode": [3, 6],
        "train_loss": [2.0, 1.5],
        "val_acc": [0.4, 0.5],
        "val_ci95": [0.05, 0.04],
        "val_per_episode": [[0.2, 0.4, 0.6], [0.6, 0.8, 0.6]],
    }
    if alpha is not None:
        history["alpha"] = alpha
    return SimpleNamespace(
        wall_time_s=10.1, episodes_done=6, best_epoch=2, episodes_per_s=3.0, history=history
    )


def _session(device="cuda"):  # a cuda device object needs no GPU: no thread probe
    return Session("cpu", torch.device(device), 0, 0.0)


SED, LSED = [0.2, 0.4, 0.6, 0.8], [0.4, 0.4, 0.8, 1.0]


def test_pct_and_paper():
    assert rp.pct(None) == "-" and rp.pct(0.98765) == "98.77" and rp.pct(0.98765, 1) == "98.8"
    assert rp.paper("omniglot", "lsed", 20, 1) == protonet_accuracy(
        "shen2018lsed", "lsed", "omniglot", 20, 1
    )
    assert rp.paper("omniglot", "lsed", 5, 1, "snell2017prototypical") is None


def test_comparison_row_is_the_paired_difference_and_the_papers():
    a, b = _result(SED), _result(LSED)
    row, (d, dci) = rp.comparison_row("miniimagenet", (5, 5), (5, 1), a, b, "5-shot")
    assert (d, dci) == pytest.approx(_by_hand(LSED, SED))
    assert len(row) == len(rp.RESULTS_HEADER)
    assert row[1] == "5-way 1-shot (**not** a 5-shot model)"
    assert row[4] == f"{d:+.2f} ± {dci:.2f} (" + ("beyond" if abs(d) > dci else "within") + ")"
    sed = protonet_accuracy("shen2018lsed", "squared_euclidean", "miniimagenet", 5, 5)
    lsed = protonet_accuracy("shen2018lsed", "lsed", "miniimagenet", 5, 5)
    assert row[5] == f"{100 * sed:.2f} / {100 * lsed:.2f}"
    same, _ = rp.comparison_row("omniglot", (5, 1), (60, 1), a, b, "x", 1)
    assert same[1] == "60-way 1-shot" and same[5].startswith("-")  # no 5-way number in LSED
    snell = protonet_accuracy("snell2017prototypical", "squared_euclidean", "omniglot", 5, 1)
    assert same[6] == f"{100 * snell:.1f}"


def test_comparison_table_renames_the_first_column(capsys):
    rp.comparison_table([["a"] * 7], "caption", "5-way test")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "caption"
    assert out[1].startswith("| 5-way test | model trained |")


def test_omniglot_plan_names_the_profile():
    s = {"max_episodes": 3000, "lr_halve_every": 1000}
    assert rp.omniglot_plan("cpu", s, False).startswith("**`cpu` profile:** two 1-shot models")
    assert "retrained on train + val" in rp.omniglot_plan("full", s, True)
    assert "`TRAINVAL = False`" in rp.omniglot_plan("full", s, False)


def test_omniglot_time_estimate_sums_every_model():
    settings = {"runs": (1, 5), "way": 60, "max_episodes": 100}
    rates = {1: 2.0, 5: 4.0}
    text = rp.omniglot_time_estimate(rates.get, settings, 2, True, _session())
    first, *rest = text.splitlines()
    assert first.endswith("60-way 1-shot: 2.00 episodes/s, 60-way 5-shot: 4.00 episodes/s")
    # 2 distances x 100 episodes at 2/s and at 4/s: 150 s, twice with train + val
    assert "  training (at most): 2.5 min" in rest
    assert "  retraining on train + val (at most): 2.5 min" in rest


def test_omniglot_time_estimate_reuses_the_thread_probe(monkeypatch):
    n = torch.get_num_threads()
    monkeypatch.setattr(rp, "fastest_threads", lambda probe, device: {n: 3.0})
    calls = []
    settings = {"runs": (1,), "way": 10, "max_episodes": 6}
    text = rp.omniglot_time_estimate(calls.append, settings, 2, False, _session("cpu"))
    assert calls == [] and f"(by threads: {{{n}: 3.0}})" in text
    assert "10-way 1-shot: 3.00 episodes/s" in text


def _records(directory):
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def _clockless(record):
    return {k: v for k, v in record.items() if k != "created"}


def test_write_omniglot_records_writes_the_records_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    cfg, run, res = TrainConfig(way=60, shot=1, query=5), _run(), _result(LSED, 20, 1)
    lines = rp.write_omniglot_records(
        {("lsed", 20, 1): res}, {("lsed", 20, 1): (1, 0.5, 0.25)},
        {("lsed", 1): cfg}, {("lsed", 1): run}, False, "cpu", "cpu",
    )  # fmt: skip
    (written,) = _records(tmp_path)
    assert lines == [str(next(tmp_path.glob("*.json")))]
    config = {**cfg.__dict__, "backbone": "conv4-576", "train_data": "train"}
    config["threads"] = torch.get_num_threads()
    by_hand = protonet_record(
        "ch03_protonet_omniglot", "omniglot", "lsed", res, run, config, "cpu", "cpu",
        test_seconds=(0.5, 0.25), train_shot=1,
        paper_accuracy=protonet_accuracy("shen2018lsed", "lsed", "omniglot", 20, 1),
        protonet_paper_accuracy=None,
    )  # fmt: skip
    assert _clockless(written) == json.loads(json.dumps(_clockless(by_hand)))
    smoke = rp.write_omniglot_records(
        {("lsed", 20, 1): res}, {("lsed", 20, 1): (1, 0.5, 0.25)},
        {("lsed", 1): cfg}, {("lsed", 1): run}, False, "smoke", "cpu",
    )  # fmt: skip
    assert smoke == ["smoke profile: record not written"]


def test_omniglot_table_and_findings(capsys):
    tests = {}
    for way in (5, 20):
        for shot in (1, 5):
            tests["squared_euclidean", way, shot] = _result(SED, way, shot)
            tests["lsed", way, shot] = _result(LSED, way, shot)
    settings = {"runs": (1,), "way": 60, "test_episodes": 10_000}
    diffs = rp.omniglot_table(tests, settings, "cpu")
    out = capsys.readouterr().out
    assert out.startswith("cpu profile, 10,000 test episodes per number\n")
    assert out.count("(**not** a 5-shot model)") == 2
    assert diffs[20, 1] == pytest.approx(_by_hand(LSED, SED))
    text = rp.omniglot_findings(tests, diffs, 3, 4, "smoke", 100.0, True)
    d, dci = diffs[20, 1]
    assert f"LSED − ProtoNet = {d:+.2f} ± {dci:.2f} points" in text
    assert "ahead at 3 of 4 points" in text and rp.SMOKE_NOTE in text
    assert text.endswith("took 1.7 min; the models were loaded from their checkpoints.")


def test_missing_miniimagenet_message_restores_the_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(tmp_path))
    message = rp.missing_miniimagenet_message()
    assert "miniimagenet" in message.lower()
    assert os.environ["FEWSHOT_DATA_MIRROR"] == str(tmp_path)


def test_miniimagenet_time_estimate_counts_seeds_and_the_long_run():
    settings = {"runs": {1: (5, 1, 5)}, "seeds": (0, 1, 2), "long_episodes": 1000}

    def rate_of(shot):
        return 5.0, TrainConfig(way=5, shot=1, query=5, max_episodes=500)

    text = rp.miniimagenet_time_estimate(rate_of, settings, 2, _session())
    # 2 x (500 + 2 seeds x 500 + 500 more for the long run) episodes at 5/s = 800 s
    assert text.splitlines()[0] == "5-way 1-shot 5-query: 5.00 episodes/s"
    assert "  training 8 models (at most): 13.3 min" in text.splitlines()


def test_validation_table_returns_the_first_paired_gap(capsys):
    sed, lsed = _run().history, _run().history
    lsed = {**lsed, "val_per_episode": [[0.4, 0.4, 0.8], [0.6, 0.8, 0.6]]}
    gap = rp.validation_table(sed, lsed)
    assert gap == pytest.approx(_by_hand([0.4, 0.4, 0.8], [0.2, 0.4, 0.6]))
    assert "| 3 | 40.00 ± 5.00 | 40.00 ± 5.00 | +0.00 |" in capsys.readouterr().out
    old = {k: v for k, v in sed.items() if k != "val_per_episode"}
    with pytest.raises(RuntimeError, match="RETRAIN = True"):
        rp.validation_table(old, lsed)


def test_write_miniimagenet_records_writes_the_records_by_hand(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    cfg, run, res = TrainConfig(way=5, shot=1, query=5), _run(), _result(SED)
    out = rp.write_miniimagenet_records(
        {1: (res, 0.5)}, 2.0, run, "squared_euclidean", 1, 1, cfg, 300,
        "ch04_protonet_miniimagenet", "cpu", "cpu",
    )  # fmt: skip
    assert out == {1: res}
    (written,) = _records(tmp_path)
    config = {**cfg.__dict__, "backbone": "conv4-1600", "test_per_class": 300}
    by_hand = protonet_record(
        "ch04_protonet_miniimagenet", "miniimagenet", "squared_euclidean", res, run, config,
        "cpu", "cpu", test_seconds=(2.0, 0.5), train_shot=1, train_seed=1,
        paper_accuracy=protonet_accuracy(
            "shen2018lsed", "squared_euclidean", "miniimagenet", 5, 1
        ),
    )  # fmt: skip
    assert _clockless(written) == json.loads(json.dumps(_clockless(by_hand)))
    assert "seed 1 5-way 1-shot" in capsys.readouterr().out


def test_miniimagenet_and_seeds_tables(capsys):
    tests = {(d, s): _result(v, shot=s) for d, v in (("squared_euclidean", SED), ("lsed", LSED))
             for s in (1, 5)}  # fmt: skip
    settings = {"runs": {1: (5, 1, 5)}, "test_episodes": 50, "seeds": (0, 1),
                "max_episodes": 6}  # fmt: skip
    rp.miniimagenet_table(tests, settings, "smoke")
    out = capsys.readouterr().out
    assert out.startswith("smoke profile, 50 test episodes each\n| 5-way test |")
    assert "| 5-shot | 5-way 1-shot (**not** a 5-shot model) |" in out
    seed_tests = {
        ("squared_euclidean", 0): _result(SED),
        ("lsed", 0): _result(LSED),
        ("squared_euclidean", 1): _result(SED),
        ("lsed", 1): _result([0.2, 0.4, 0.6, 1.0]),
    }
    gaps = rp.seeds_table(seed_tests, settings, "smoke")
    assert gaps == pytest.approx([_by_hand(LSED, SED)[0], 5.0])
    assert f"| mean of 2 seeds (sd) |  |  | {(gaps[0] + 5) / 2:+.2f} (sd" in capsys.readouterr().out


def test_long_run_summary_and_findings():
    h = _run().history
    long_tests = {"squared_euclidean": _result(SED), "lsed": _result(LSED)}
    settings = {"long_episodes": 9, "max_episodes": 6}
    text, moved, moved_ci = rp.long_run_summary(h, long_tests, settings, 1.5)
    assert (moved, moved_ci) == pytest.approx(_by_hand(h["val_per_episode"][-1], [0.2, 0.4, 0.6]))
    left = "it has left the plateau" if moved > moved_ci else "it has not left the plateau"
    assert text.splitlines()[1].endswith(left) and text.endswith("(after 6: +1.50)")
    tests = {("squared_euclidean", 1): _result(SED), ("lsed", 1): _result(LSED)}
    found = rp.miniimagenet_findings(
        h, h, (1.0, 2.0), tests, [1.0, 3.0], (long_tests, moved, moved_ci), settings, "cpu"
    )
    lines = found.splitlines()
    assert len(lines) == 4 and "after the first epoch by +1.00 ± 2.00 points" in lines[0]
    assert "gap was +2.00 on average, with a standard deviation of 1.41" in lines[2]
    assert rp.SMOKE_NOTE not in found


def test_forms_table_flags_a_changed_prediction(capsys):
    ref = torch.tensor([[1.0, 2.0], [3.0, 1.0]])
    rp.forms_table({"x": {"LSED(s = 0, r)": ref, "other": torch.tensor([[2.0, 1.0], [3.0, 1.0]])}})
    out = capsys.readouterr().out
    assert "| x | LSED(s = 0, r) | 0.0e+00 | yes |" in out
    assert "| x | other | 3.3e-01 | **no** |" in out


def test_lsed_scale_time_estimate():
    text = rp.lsed_scale_time_estimate(2.0, 3, 5, 100, 10, _session())
    assert "  training 3 models: 2.5 min" in text.splitlines()
    assert "  replaying the first iterations of 5 models: 25 s" in text.splitlines()


def test_figures_draw_one_line_per_model_and_seed():
    snap = SimpleNamespace(grads=torch.tensor([1e-7, 1.0]), distances=torch.tensor([4.0, 6.0, 8.0]))
    fig = rp.sparse_phase_figure({"a": {0: snap, 2: snap}}, {"a": 0.5}, [0, 2])
    ax_z, ax_d = fig.axes
    assert list(ax_z.lines[0].get_ydata()) == [50.0, 50.0]  # 1e-7 / 0.5 is near zero
    assert list(ax_d.lines[0].get_ydata()) == [0.5 * 6.0, 0.5 * 6.0]
    fig = rp.learned_alpha_figure({0: _run([0.5, 0.1]).history}, 0.01, 0.1)
    assert list(fig.axes[0].lines[0].get_ydata()) == [1.0, 0.5, 0.1]


def test_write_lsed_scale_records_and_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path))
    names = {"squared Euclidean": "squared_euclidean", "LSED": "lsed"}
    runs = {(n, 0): _run() for n in names}
    tests = {("squared Euclidean", 0): _result(SED), ("LSED", 0): _result(LSED)}
    cfg = TrainConfig(way=5, shot=1, query=5)
    rp.write_lsed_scale_records(runs, tests, lambda n, s: cfg, names, "cpu", "cpu")
    written = {r["method"]: r for r in _records(tmp_path)}
    run = runs["LSED", 0]
    by_hand = make_record(
        experiment="ch04b_lsed_scale", dataset="miniimagenet", method="lsed",
        result=tests["LSED", 0], profile="cpu", device="cpu", wall_time_s=run.wall_time_s,
        config={**cfg.__dict__, "backbone": "conv4-1600", "model": "LSED"},
        train_seed=0, train_episodes=6, best_epoch=2, training_stage="early training",
        history={k: v for k, v in run.history.items() if k != "val_per_episode"},
    )  # fmt: skip
    assert _clockless(written["lsed"]) == json.loads(json.dumps(_clockless(by_hand)))
    protocol = {"seeds": (0,), "max_episodes": 6, "test_episodes": 4}
    gaps = rp.lsed_scale_table(tests, names, protocol, "cpu")
    assert gaps["LSED"] == pytest.approx([_by_hand(LSED, SED)[0]])
    assert gaps["squared Euclidean"] == [0.0]
    assert "**cpu profile**, 6 training episodes per model" in capsys.readouterr().out


def test_lsed_scale_findings_follow_the_verdict_rule():
    found = rp.lsed_scale_effects([], "cpu")
    assert set(found) == {rp.ALPHA, rp.KINK, rp.BN, rp.LEARNED, rp.BN_KINK}
    protocol = {"seeds": (0, 1), "max_episodes": 500}
    text = rp.lsed_scale_findings(found, {}, [], protocol, "cpu", 0, 0.1)
    assert text.startswith("- **Not measured in this profile**")
    assert "run chapter 4 (its long run)" in text and "- **cpu profile, early training:**" in text

    def at(effect, d, ci):
        return dataclasses.replace(effect, difference=d, ci95=ci, per_seed=(d, d))

    temperature = {k: at(e, 5.0 if k == rp.ALPHA else 0.5, 1.0) for k, e in found.items()}
    paths = {0: [0.5, 0.05], 1: [0.2, 0.08]}
    text = rp.lsed_scale_findings(temperature, paths, [], protocol, "full", 0, 0.1)
    assert "**A temperature accounts for most of LSED's gain.**" in text
    assert "ends at 0.05, 0.08 (lowest on the way: 0.05, 0.08)" in text
    assert "finds a small α" in text and "early training" not in text
    kink = {k: at(e, 5.0, 1.0) for k, e in found.items()}
    assert "**The kink adds something.**" in rp.lsed_scale_findings(
        kink, paths, [], protocol, "cpu", 0, 0.1
    )
    neither = {k: at(e, 0.5, 1.0) for k, e in found.items()}
    assert "**Inconclusive at 2 seeds.**" in rp.lsed_scale_findings(
        neither, paths, [], protocol, "cpu", 0, 0.1
    )


def test_lsed_scale_findings_read_chapter_4s_long_run():
    def record(experiment, method, per_task):
        return {"experiment": experiment, "method": method, "profile": "cpu", "shot": 1,
                "train_seed": 0, "per_task": per_task, "train_episodes": 500}  # fmt: skip

    records = [
        record(x, m, SED if m == "squared_euclidean" else LSED)
        for x in ("ch04_protonet_miniimagenet", "ch04_long_training")
        for m in ("squared_euclidean", "lsed")
    ]
    found = rp.lsed_scale_effects([], "cpu")
    text = rp.lsed_scale_findings(
        found, {}, records, {"seeds": (0,), "max_episodes": 5}, "cpu", 0, 0.1
    )
    gap = _by_hand(LSED, SED)[0]
    assert f"squared Euclidean {gap:+.2f} points after 500 episodes, {gap:+.2f} after 500." in text
