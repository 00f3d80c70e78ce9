"""tools/gpu_check.py --dry-run: every chapter's check runs on the CPU in tiny shapes, with an
interrupted run resumed and a finished one loaded, and its JSON holds every figure."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def test_dry_run_checks_every_chapter_and_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--dry-run", "--steps", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["dry_run"] and figures["steps"] == 1
    assert [r["check"] for r in figures["checks"]] == [c.name for c in gpu_check.CHECKS]
    for r in figures["checks"]:
        assert r["resumed"] and r["loaded_finished"], r["check"]
        assert r["steps_per_s"] > 0
        assert r["full_hours"] == r["full_steps"] / r["steps_per_s"] / 3600
    assert "predict nothing" in capsys.readouterr().out


def test_without_a_gpu_only_the_dry_run_runs(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 2
    assert "--dry-run" in capsys.readouterr().out
