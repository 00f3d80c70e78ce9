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
