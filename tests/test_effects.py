"""The papers' claims as paired effects (fewshot_utils.effects), on records made here."""

import math
import statistics

import pytest
import torch

from fewshot_utils import effects
from fewshot_utils.evaluation import ci95
from fewshot_utils.paper_numbers import by_id

CLAIM = effects.CLAIMS[2]  # LSED - squared Euclidean, miniImageNet 5-way 1-shot (Table 1)


def _rec(method, per_task, seed=0, profile="cpu", **kw):
    acc = sum(per_task) / len(per_task)
    return {
        "experiment": CLAIM.experiment,
        "dataset": "miniimagenet",
        "method": method,
        "way": 5,
        "shot": 1,
        "profile": profile,
        "accuracy": acc,
        "ci95": ci95(torch.tensor(per_task)),
        "episodes": len(per_task),
        "per_task": per_task,
        "train_seed": seed,
        "commit": "abcdef0123",
        **kw,
    }


def _tasks(seed, shift=0.0, n=200):
    g = torch.Generator().manual_seed(seed)
    return [
        min(1.0, max(0.0, v)) for v in (0.4 + shift + 0.1 * torch.randn(n, generator=g)).tolist()
    ]


def test_one_seed_is_the_paired_difference_over_the_same_tasks():
    ref, new = _tasks(0), _tasks(0, shift=0.03)
    for i in range(0, 200, 7):  # not a constant shift: some tasks differ more than others
        new[i] = ref[i]
    e = effects.measure(CLAIM, [_rec("lsed", new), _rec("squared_euclidean", ref)], "cpu")
    d = torch.tensor(new, dtype=torch.float64) - torch.tensor(ref, dtype=torch.float64)
    assert e.difference == pytest.approx(100 * d.mean().item())
    assert e.ci95 == pytest.approx(100 * 1.96 * d.std().item() / math.sqrt(200))
    assert "paired" in e.how and e.per_seed == (pytest.approx(e.difference),)
    # the paired interval is much tighter than the two accuracies' in quadrature
    assert e.ci95 < 0.5 * 100 * math.hypot(ci95(torch.tensor(new)), ci95(torch.tensor(ref)))
    # one trained model per side: the interval covers the tasks only, and the verdict says so
    assert effects.verdict(e).endswith("; one training seed: seed spread not measured")
    assert "resolved" not in effects.verdict(e)


def test_training_seeds_add_their_spread():
    recs, per_seed = [], []
    for seed, shift in ((0, 0.02), (1, 0.05), (2, -0.01)):
        ref, new = _tasks(10 + seed), _tasks(10 + seed, shift)
        recs += [_rec("lsed", new, seed), _rec("squared_euclidean", ref, seed)]
        per_seed.append(100 * (sum(new) - sum(ref)) / 200)
    e = effects.measure(CLAIM, recs, "cpu")
    assert e.per_seed == tuple(pytest.approx(d) for d in per_seed)
    assert e.difference == pytest.approx(sum(per_seed) / 3)
    seed_hw = 4.303 * statistics.stdev(per_seed) / math.sqrt(3)
    assert e.ci95 == pytest.approx(math.hypot(e.task_ci95, seed_hw))
    assert e.ci95 > seed_hw and e.seed_sd == pytest.approx(statistics.stdev(per_seed))
    assert "3 training seeds" in e.how


def test_verdicts_compare_size_as_well_as_sign():
    paper = CLAIM.paper_difference
    assert paper == pytest.approx(by_id(CLAIM.paper_new).accuracy - by_id(CLAIM.paper_ref).accuracy)
    assert paper == pytest.approx(3.40)

    def says(d, hw, seeds=3, claim=CLAIM, departure=""):
        e = effects.Effect(claim, "cpu", d, hw, per_seed=(d,) * seeds, departure=departure)
        return effects.verdict(e)

    three = "; over 3 training seeds"
    assert says(3.0, 1.0) == "agrees" + three  # +3.40 lies in [2.0, 4.0], 0 does not
    # an interval wide enough to hold both the paper's value and zero supports neither
    assert says(0.5, 5.0) == "not resolved: holds the paper's and zero" + three
    assert says(6.0, 1.0) == "same sign, larger" + three
    assert says(1.5, 1.0) == "same sign, smaller" + three
    assert says(-2.0, 1.0) == "opposite sign" + three
    assert says(0.5, 1.0) == "not resolved, smaller than the paper's" + three
    assert says(-0.5, 1.0) == "not resolved, smaller than the paper's" + three
    one = says(6.0, 1.0, seeds=1)
    assert one == "same sign, larger; one training seed: seed spread not measured"
    assert says(3.0, 1.0, departure="5-shot test of models trained on 1-shot episodes").startswith(
        "not the paper's experiment (5-shot test of models trained on 1-shot episodes): agrees"
    )
    # the paper's "no improvement" of DC + WIDE (-0.70) against a loss of 5 points is no
    # agreement, though the signs are the same
    wide = next(c for c in effects.CLAIMS if c.effect == "DC + WIDE − DC" and c.shot == 5)
    assert wide.paper_difference == pytest.approx(-0.70)
    assert says(-5.48, 0.3, claim=wide).startswith("same sign, larger")
    no_number = next(c for c in effects.CLAIMS if c.paper_difference is None)
    assert says(1.0, 0.5, claim=no_number).startswith("positive (no published difference)")
    assert says(-1.0, 0.5, claim=no_number).startswith("negative (no published difference)")
    assert says(0.3, 0.5, claim=no_number).startswith("not resolved (no published difference)")
    assert effects.resolved(effects.Effect(CLAIM, "cpu", -2.0, 1.0)) == -1
    assert effects.resolved(effects.Effect(CLAIM, "cpu", 0.9, 1.0)) == 0


def test_a_one_shot_model_tested_at_five_shots_is_not_the_papers_experiment():
    five = next(c for c in effects.CLAIMS if c.experiment == CLAIM.experiment and c.shot == 5)
    recs = [
        {**_rec(m, _tasks(0, s)), "shot": 5, "train_shot": 1}
        for m, s in (("lsed", 0.05), ("squared_euclidean", 0.0))
    ]
    e = effects.measure(five, recs, "cpu")
    assert e.departure == "5-shot test of models trained on 1-shot episodes"
    assert effects.verdict(e).startswith("not the paper's experiment")


def test_t975_is_students_quantile():
    assert effects.t975(1) == pytest.approx(12.706)
    assert effects.t975(9) == pytest.approx(2.262)  # 10 seeds: not the normal 1.96
    for df, t in ((31, 2.0395), (40, 2.0211), (60, 2.0003), (120, 1.9799)):
        assert effects.t975(df) == pytest.approx(t, abs=2e-4)
    assert effects.t975(10**6) == pytest.approx(1.95996, abs=1e-5)  # the normal quantile
    with pytest.raises(ValueError, match="df >= 1"):
        effects.t975(0)


def test_seeds_without_per_task_share_their_task_noise():
    """Seeds meet the same tasks: without per-task lists the tasks' half-width is the seeds'
    mean, not divided by the square root of the number of seeds."""
    recs = []
    for seed, shift in ((0, 0.02), (1, 0.05), (2, 0.03)):
        a, b = (
            _rec("lsed", _tasks(seed, shift), seed),
            _rec("squared_euclidean", _tasks(seed), seed),
        )
        del a["per_task"], b["per_task"]
        recs += [a, b]
    e = effects.measure(CLAIM, recs, "cpu")
    hws = [100 * math.hypot(recs[i]["ci95"], recs[i + 1]["ci95"]) for i in range(0, 6, 2)]
    assert e.task_ci95 == pytest.approx(statistics.mean(hws))
    seed_hw = 4.303 * statistics.stdev(e.per_seed) / math.sqrt(3)
    assert e.ci95 == pytest.approx(math.hypot(statistics.mean(hws), seed_hw))


def test_tadam_components_are_claimed_against_alpha():
    by_effect = {c.effect: c for c in effects.CLAIMS if c.experiment == "ch07_tadam"}
    assert by_effect["α + AT − α"].paper_difference == pytest.approx(75.6 - 75.7)
    assert by_effect["α + AT + TC − α"].paper_difference == pytest.approx(76.7 - 75.7)
    assert by_effect["α − baseline"].paper_difference == pytest.approx(75.7 - 74.2)
    assert by_effect["α + TC − α"].paper_difference is None
    assert by_effect["α + AT − α"].ref == {"ablation_rows": "α"}
    assert "LSED − last BN γ × 0.1" in {c.effect for c in effects.CLAIMS}


def test_missing_records_say_why_and_are_never_filled():
    e = effects.measure(CLAIM, [], "cpu")
    assert e.difference is None and "no `cpu` record yet" in effects.verdict(e)
    only_one = effects.measure(CLAIM, [_rec("lsed", _tasks(0))], "cpu")
    assert "only one of the two models" in only_one.reason
    assert effects.measure(CLAIM, [_rec("lsed", _tasks(0), profile="full")], "cpu").reason
    table = effects.markdown_table([e])
    assert "not measured" in table and "+3.40" in table


def test_unpaired_fallback_and_a_record_that_carries_its_own_pair():
    a = _rec("lsed", _tasks(0, 0.05))
    b = _rec("squared_euclidean", _tasks(1))
    del a["per_task"]
    e = effects.measure(CLAIM, [a, b], "cpu")
    assert "unpaired" in e.how
    assert e.ci95 == pytest.approx(100 * math.hypot(a["ci95"], b["ci95"]))
    imp = next(c for c in effects.CLAIMS if c.ref is None)
    rec = {
        "experiment": imp.experiment,
        "dataset": imp.dataset,
        "way": imp.way,
        "shot": imp.shot,
        "profile": "cpu",
        "method": imp.new["method"],
        "commit": "x",
        "paired_difference": 0.012,
        "paired_ci95": 0.004,
    }
    e = effects.measure(imp, [rec], "cpu")
    assert (e.difference, e.ci95) == (pytest.approx(1.2), pytest.approx(0.4))


def test_every_claim_names_published_cells_that_exist():
    for c in effects.CLAIMS:
        if c.paper_new is not None:
            assert (by_id(c.paper_new).way, by_id(c.paper_new).shot) == (c.way, c.shot)
            assert by_id(c.paper_ref).dataset == c.dataset
        else:
            assert c.paper_text
