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
    assert effects.verdict(e) == "same sign, resolved"  # +3 points against the paper's +3.40


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


def test_verdicts():
    paper = CLAIM.paper_difference
    assert paper == pytest.approx(by_id(CLAIM.paper_new).accuracy - by_id(CLAIM.paper_ref).accuracy)
    make = lambda d, hw: effects.Effect(CLAIM, "cpu", d, hw)  # noqa: E731
    assert effects.verdict(make(2.0, 1.0)) == "same sign, resolved"
    assert effects.verdict(make(0.5, 1.0)) == "same sign, not resolved"
    assert effects.verdict(make(-2.0, 1.0)) == "opposite sign, resolved"
    assert effects.verdict(make(-0.5, 1.0)) == "opposite sign, not resolved"
    no_number = next(c for c in effects.CLAIMS if c.paper_difference is None)
    assert "no published difference" in effects.verdict(effects.Effect(no_number, "cpu", 1, 0.5))


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
