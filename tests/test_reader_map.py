"""The landing page's figure reads chapter 4's long-run records, never a smoke run's."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import reader_map  # noqa: E402


def _record(method: str, profile: str, val_acc: list[float]) -> dict:
    return {
        "experiment": reader_map.EXPERIMENT,
        "method": method,
        "profile": profile,
        "shot": 1,
        "history": {
            "episode": [100 * (i + 1) for i in range(len(val_acc))],
            "val_acc": val_acc,
            "val_ci95": [0.01] * len(val_acc),
        },
        "config": {"seed": 0},
        "train_episodes": 100 * len(val_acc),
        "device": "cpu",
        "commit": "0123456789abcdef",
    }


def _write(folder: Path, rec: dict) -> None:
    name = f"{rec['experiment']}__miniimagenet__{rec['method']}__5w1s__{rec['profile']}.json"
    (folder / name).write_text(json.dumps(rec))


def test_long_run_records_skip_smoke_and_prefer_full(tmp_path):
    _write(tmp_path, _record("lsed", "smoke", [0.9]))
    assert reader_map.long_run_records(tmp_path) == {}
    _write(tmp_path, _record("lsed", "cpu", [0.3, 0.32]))
    assert reader_map.long_run_records(tmp_path)["lsed"]["profile"] == "cpu"
    _write(tmp_path, _record("lsed", "full", [0.5]))
    assert reader_map.long_run_records(tmp_path)["lsed"]["profile"] == "full"


@pytest.mark.parametrize("methods", [(), ("lsed",), ("lsed", "squared_euclidean")])
def test_figure_names_its_provenance_or_what_is_missing(tmp_path, methods):
    for m in methods:
        _write(tmp_path, _record(m, "cpu", [0.25, 0.3]))
    out = tmp_path / "map.png"
    provenance = reader_map.draw(tmp_path, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if len(methods) == 2:
        assert "cpu profile" in provenance and "commit 0123456" in provenance
        assert "200 training episodes" in provenance
    else:
        assert "missing" in provenance
