"""``pytest --nbmake notebooks/`` with nothing set is the quick check: the smoke profile, a
cell limit that fits the profile, and the committed records left alone (root conftest.py)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(_spec)  # the root one, not tests/conftest.py
_spec.loader.exec_module(root_conftest)

notebook_defaults, CELL_TIMEOUT_S = root_conftest.notebook_defaults, root_conftest.CELL_TIMEOUT_S


def test_nothing_set_is_smoke_with_its_timeout():
    updates, timeout = notebook_defaults({}, timeout_given=False)
    assert updates == {"FEWSHOT_PROFILE": "smoke"}  # smoke writes no records: results/ is read
    assert timeout == CELL_TIMEOUT_S["smoke"]


def test_another_profile_writes_its_records_elsewhere_unless_asked():
    updates, _ = notebook_defaults({"FEWSHOT_PROFILE": "cpu"}, timeout_given=False)
    assert Path(updates["FEWSHOT_RESULTS_DIR"]).is_dir()
    assert Path(updates["FEWSHOT_RESULTS_DIR"]) != ROOT / "results"


@pytest.mark.parametrize("profile", ["cpu", "full"])
def test_a_chosen_profile_gets_its_own_cell_limit(profile):
    updates, timeout = notebook_defaults({"FEWSHOT_PROFILE": profile}, timeout_given=False)
    assert "FEWSHOT_PROFILE" not in updates
    assert timeout == CELL_TIMEOUT_S[profile]
    assert CELL_TIMEOUT_S["cpu"] > 300  # nbmake's default stopped cpu chapters
    assert CELL_TIMEOUT_S["full"] == -1  # hours per cell on a GPU: no limit


def test_records_are_written_only_when_asked_and_a_given_timeout_wins():
    updates, timeout = notebook_defaults(
        {"FEWSHOT_PROFILE": "cpu", "FEWSHOT_WRITE_RESULTS": "1"}, timeout_given=True
    )
    assert updates == {} and timeout is None
    updates, _ = notebook_defaults({"FEWSHOT_RESULTS_DIR": "/somewhere"}, timeout_given=False)
    assert "FEWSHOT_RESULTS_DIR" not in updates


def test_book_build_has_no_cell_limit_the_full_profile_would_hit():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["timeout"] == -1


def seen_env(path: Path) -> dict:
    return json.loads(path.read_text())


def test_nbmake_run_with_nothing_set(tmp_path):
    """A real ``pytest --nbmake`` (the root conftest loaded as a plugin, since the notebook
    lies outside the repository): the kernel sees the smoke profile and no results folder
    of its own (smoke writes none), and the header names the smoke cell limit."""
    pytest.importorskip("nbmake")
    out = tmp_path / "env.json"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import json, os\n"
            "keys = ('FEWSHOT_PROFILE', 'FEWSHOT_RESULTS_DIR')\n"
            f"json.dump({{k: os.environ.get(k) for k in keys}}, open({str(out)!r}, 'w'))"
        )
    ]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEWSHOT_")}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "conftest",
            "--nbmake",
            str(path),
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert seen_env(out) == {"FEWSHOT_PROFILE": "smoke", "FEWSHOT_RESULTS_DIR": None}
    assert f"cell timeout {CELL_TIMEOUT_S['smoke']} s" in run.stdout
