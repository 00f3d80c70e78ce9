"""profiles.start: every chapter's set-up (profile, device, seed, provenance line, clock)."""

from __future__ import annotations

import os
import time

import pytest
import torch

from fewshot_utils.profiles import (
    COLAB_SESSION_HOURS,
    Session,
    format_duration,
    start,
    time_estimate,
)


def test_start_resolves_seeds_and_prints(monkeypatch, capsys):
    monkeypatch.setenv("FEWSHOT_PROFILE", "cpu")
    torch.manual_seed(123)
    s = start(None, 7, device="cpu")
    after_start = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after_start, torch.rand(3))  # exactly torch.manual_seed(seed), no draw
    assert (s.profile, s.device, s.seed) == ("cpu", torch.device("cpu"), 7)
    assert capsys.readouterr().out == f"profile cpu | device cpu | torch {torch.__version__}\n"
    assert start("smoke", 0, device="cpu").profile == "smoke"  # the parameter wins


def test_start_unknown_profile_fails_before_seeding_or_printing(capsys):
    torch.manual_seed(5)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        start("fast", 0)
    assert capsys.readouterr().out == ""
    drawn = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(2))  # the generator was not reseeded


def test_session_elapsed_is_wall_time_since_start():
    s = start("smoke", 0, device="cpu")
    first = s.elapsed()
    time.sleep(0.02)
    assert 0 <= first < s.elapsed()
    assert s.elapsed() >= 0.02
    fixed = Session("smoke", torch.device("cpu"), 0, time.perf_counter() - 60)
    assert 60 <= fixed.elapsed() < 70


@pytest.fixture
def restore_kernel_modes():
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
    torch.use_deterministic_algorithms(saved[2])


def test_start_picks_the_fastest_kernels_by_default(monkeypatch, restore_kernel_modes):
    monkeypatch.delenv("FEWSHOT_DETERMINISTIC", raising=False)
    session = start("smoke", 0, device="cpu")
    assert not session.deterministic
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_the_deterministic_switch(how, monkeypatch, restore_kernel_modes):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    if how == "environment":
        monkeypatch.setenv("FEWSHOT_DETERMINISTIC", "1")
        session = start("smoke", 0, device="cpu")
    else:
        session = start("smoke", 0, device="cpu", deterministic=True)
    assert session.deterministic
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"),
        (89.4, "89 s"),
        (90, "1.5 min"),
        (5399, "90.0 min"),
        (5400, "1.5 h"),
        (13 * 3600, "13.0 h"),
    ],
)
def test_format_duration_picks_the_unit(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_rejects_negative_and_nan():
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="non-negative"):
            format_duration(bad)


def test_time_estimate_totals_the_chapter_and_warns_beyond_a_colab_session():
    text = time_estimate({"training": 3 * 3600, "validation": 1800}, "cpu", elapsed_s=600)
    lines = text.splitlines()
    assert lines[0] == "expected on cpu, measured on this machine:"
    assert "  training: 3.0 h" in lines and "  validation: 30.0 min" in lines
    # 600 s so far + 3 h + 30 min = 3 h 40 min
    assert lines[-1] == "  the whole chapter: about 3.7 h (10.0 min so far)"
    assert "WARNING" not in text
    # just below and just above the limit (12 h): the warning only above it
    below = time_estimate({"training": 12 * 3600 - 60}, "cuda", elapsed_s=59)
    above = time_estimate({"training": 12 * 3600 - 60}, "cuda", elapsed_s=61)
    assert "WARNING" not in below
    assert "WARNING" in above and "DRIVE = True" in above and "12 hours" in above
    assert f"{COLAB_SESSION_HOURS:.0f} hours" in above


def test_time_estimate_says_at_least_when_parts_are_missing():
    text = time_estimate({"training": 100.0}, "cpu", not_estimated="validation")
    assert "the whole chapter: at least 1.7 min (0 s so far; not estimated: validation)" in text
    with pytest.raises(ValueError, match="at least one"):
        time_estimate({}, "cpu")


def test_exercises_run_in_smoke_or_when_asked(monkeypatch):
    from fewshot_utils.profiles import exercises_on

    monkeypatch.delenv("FEWSHOT_EXERCISES", raising=False)
    assert exercises_on(None, "smoke") and not exercises_on(None, "cpu")
    assert not exercises_on(None, "full") and exercises_on(True, "cpu")
    assert not exercises_on(False, "smoke")
    monkeypatch.setenv("FEWSHOT_EXERCISES", "1")
    assert exercises_on(None, "cpu") and not exercises_on(False, "cpu")
    monkeypatch.setenv("FEWSHOT_EXERCISES", "yes")
    with pytest.raises(ValueError, match="FEWSHOT_EXERCISES must be 0 or 1"):
        exercises_on(None, "cpu")
