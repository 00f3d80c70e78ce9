"""benchmarks/bench_performance.py's summary: the ratios and goals the Performance page shows."""

import importlib.util
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_performance.py"
_spec = importlib.util.spec_from_file_location("bench_performance", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def ok(rate):
    return {"status": "ok", "episodes_per_s": rate}


def test_training_ratios_ceiling_fraction_and_the_attainable_bound():
    tasks = {
        "train_omniglot": {
            "fewshot_utils": ok(3.0),
            "fewshot_utils_bf16": ok(5.0),
            "reference": ok(2.0),
            "easyfsl": ok(1.0),
            "learn2learn": {"status": "unavailable", "reason": "did not install"},
            "ceiling": ok(4.0),
        }
    }
    s = bench.summarise(tasks)["train_omniglot"]
    assert s["fastest_peer"] == "reference"  # our own bfloat16 option is not a peer
    assert s["vs_fastest_peer"] == pytest.approx(1.5)
    assert s["ceiling_fraction"] == pytest.approx(0.75)
    assert s["ceiling_vs_fastest_peer"] == pytest.approx(2.0)  # 3x is out of reach here
    assert not s["goal_vs_fastest_peer_met"] and not s["goal_ceiling_met"]
    rows = tasks["train_omniglot"]
    assert rows["easyfsl"]["fewshot_utils_speedup"] == pytest.approx(3.0)
    assert rows["reference"]["ceiling_fraction"] == pytest.approx(0.5)
    assert "fewshot_utils_speedup" not in rows["learn2learn"]


def test_evaluation_is_judged_against_the_fastest_reembedding():
    tasks = {
        "eval_omniglot": {
            "fewshot_utils": {**ok(1500.0), "seconds_for_10000": 6.7},
            "reembed": ok(50.0),
            "reference": ok(20.0),
        }
    }
    s = bench.summarise(tasks)["eval_omniglot"]
    assert s["fastest_reembedding"] == "reembed"
    assert s["vs_fastest_reembedding"] == pytest.approx(30.0)
    assert s["goal_vs_reembed_met"]
    assert "ceiling_vs_fastest_peer" not in s
