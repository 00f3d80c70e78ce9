"""fewshot_utils.verdicts: the three verdicts and the checks a disagreement names."""

import pytest

from fewshot_utils.verdicts import verdict


def test_every_check_holding_agrees():
    assert verdict({"a": True, "b": True}) == "agrees"


def test_a_failed_check_disagrees_naming_only_the_failed_ones_in_order():
    got = verdict({"first": False, "held": True, "second": False})
    assert got == "disagrees (check not met: first; second)"


def test_untestable_wins_over_the_checks():
    assert verdict({"a": False}, "too short") == "not testable in this profile (too short)"


def test_no_check_and_no_reason_is_an_error():
    with pytest.raises(ValueError, match="at least one check"):
        verdict({})


# ------------------------------------------------------------- the LSED paper's claims


def _summary(sparse, median=100.0, largest=1000.0):
    return {"sparse": sparse, "median": median, "max": largest}


def _verdict(claim):
    return verdict(*claim[2:])


def test_claim_table_one_bold_verdict_per_claim():
    from fewshot_utils.verdicts import claim_table

    text = claim_table([("c1", "m1", {"ok": True}), ("c2", "m2", {"ok": False}, "too short")])
    lines = text.splitlines()
    assert len(lines) == 4 and "| c1 | m1 | **agrees** |" == lines[2]
    assert "**not testable in this profile (too short)**" in lines[3]


def test_figure3_needs_the_order_sed_then_large_then_small_r():
    from fewshot_utils.verdicts import lsed_figure3

    assert _verdict(lsed_figure3(_summary(0.9), _summary(0.5), _summary(0.1))) == "agrees"
    got = _verdict(lsed_figure3(_summary(0.9), _summary(0.1), _summary(0.5)))
    assert got == "disagrees (check not met: r = 0.01 below r = 0.1)"
    got = _verdict(lsed_figure3(_summary(0.4), _summary(0.3), _summary(0.1)))
    assert "squared Euclidean mostly near zero" in got


def test_figures4_to_7_on_made_up_summaries():
    from fewshot_utils.verdicts import lsed_figure4, lsed_figure5, lsed_figure6, lsed_figure7

    filling = {0: _summary(0.9, 500), 8: _summary(0.7, 300), 16: _summary(0.5, 200)}
    assert _verdict(lsed_figure4(filling)) == "agrees"
    stuck = {**filling, 16: _summary(0.8, 200)}
    assert _verdict(lsed_figure4(stuck)) == "disagrees (check not met: fewer still at 16)"
    dense = {0: _summary(0.1), 16: _summary(0.05)}
    assert _verdict(lsed_figure5(dense, {0: (1.0, 0.2), 16: (2.0, 0.5)})) == "agrees"
    got = _verdict(lsed_figure5(dense, {0: (1.0, 0.2), 16: (0.5, 0.5)}))
    assert got == "disagrees (check not met: gradients more diverse)"
    size, drop = lsed_figure6({0: _summary(0.9, 800, 1500), 100: _summary(0.6, 300)})
    assert _verdict(size) == "agrees" and _verdict(drop) == "agrees"
    size, drop = lsed_figure6({0: _summary(0.9, 800, 5000), 100: _summary(0.6, 500)})
    assert "factor 2 of 1,500" in _verdict(size)
    assert _verdict(drop) == "disagrees (check not met: median distance more than halved)"
    # judged on the squared distances behind LSED's: x 3 is not "little", x 1.5 is
    lse = {0: _summary(0.1, 10), 100: _summary(0.1, 11)}
    assert _verdict(lsed_figure7(lse, {0: 600.0, 100: 900.0})) == "agrees"
    assert "less than a factor 2" in _verdict(lsed_figure7(lse, {0: 600.0, 100: 1800.0}))


def test_figure8_sweep_over_s_untestable_while_no_distance_falls_below_s():
    from fewshot_utils.verdicts import lsed_figure8

    s_acc = {0.0: 30.0, 4.0: 30.5, 16.0: 30.2}
    r_gaps = {0.1: (-0.5, 0.3), 1.0: (-3.0, 0.3)}
    flat, drop = lsed_figure8(s_acc, r_gaps, 0.001, 16.0, captured=100, trained=100)
    assert _verdict(flat).startswith("not testable") and _verdict(drop) == "agrees"
    flat, _ = lsed_figure8(s_acc, r_gaps, 0.001, 16.0, captured=100, trained=5000)
    assert _verdict(flat) == "agrees"  # trained beyond the capture: the s models may differ
    flat, _ = lsed_figure8({**s_acc, 32.0: 28.0}, r_gaps, 0.2, 32.0, 100, 100)
    assert _verdict(flat) == "disagrees (check not met: range ≤ 1 point)"
    _, drop = lsed_figure8(s_acc, {0.1: (-1.5, 0.3), 1.0: (-0.2, 0.3)}, 0.2, 16.0, 100, 100)
    assert "lower at r = 1" in _verdict(drop) and "r < 0.5" in _verdict(drop)


def test_figure9_and_five_shots():
    from fewshot_utils.verdicts import lsed_figure9, lsed_five_shots

    ahead = {"episodes": 100, "train": (0.30, 0.34), "val": (0.29, 0.32), "gap": 2.9, "gap_ci": 0.7}
    early = {"episodes": 20, "train": (0.31, 0.31), "val": (0.31, 0.32), "gap": 0.4, "gap_ci": 0.8}
    first, persists = lsed_figure9(early, ahead, ahead=4, validations=5)
    assert (
        _verdict(first) == "disagrees (check not met: already ahead beyond noise after 20 episodes)"
    )
    assert _verdict(persists) == "disagrees (check not met: higher after every validation)"
    first, persists = lsed_figure9(ahead, ahead, ahead=5, validations=5)
    assert _verdict(first) == _verdict(persists) == "agrees"
    shots = {
        ("Omniglot", 1): _summary(0.9, 400),
        ("Omniglot", 5): _summary(0.8, 300),
        ("miniImageNet", 1): _summary(0.9, 700),
        ("miniImageNet", 5): _summary(0.95, 500),
    }
    got = _verdict(lsed_five_shots(shots))
    assert got == "disagrees (check not met: fewer near zero with 5 shots on miniImageNet)"
