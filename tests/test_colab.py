"""The Colab path: the set-up cell (the same in every chapter) installs the package and stops
with pip's own error when that fails, mounts Drive when asked; the results chapter finds the
repository's records on a pip install, also when it runs a second time."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from fewshot_utils import colab
from fewshot_utils.checkpoints import checkpoint_dir
from fewshot_utils.data import data_dir, mirror_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from setup_cell import repository_url, setup_cell  # noqa: E402

REAL_FIND_SPEC = importlib.util.find_spec
PIP_ERROR = "ERROR: Could not find a version that satisfies the requirement torch>=9"


def _run_cell(monkeypatch, missing: bool, pip_rc: int = 0, drive: bool = False) -> list:
    """Execute the set-up cell with ``fewshot_utils`` reported missing or present and pip
    answering ``pip_rc``; returns the commands it ran."""
    ran = []

    def fake_run(cmd, **kwargs):
        ran.append(cmd)
        assert "capture_output" not in kwargs and "stderr" not in kwargs, (
            "pip's output must reach the cell, where the reader sees its error"
        )
        if pip_rc and kwargs.get("check"):
            raise subprocess.CalledProcessError(pip_rc, cmd, stderr=PIP_ERROR)
        return SimpleNamespace(returncode=pip_rc)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "fewshot_utils" and missing else REAL_FIND_SPEC(name, *a),
    )
    source = setup_cell().replace("DRIVE = False", f"DRIVE = {drive}")
    exec(compile(source, "setup-cell", "exec"), {})
    return ran


def test_the_cell_installs_the_repository_when_the_package_is_missing(monkeypatch):
    ran = _run_cell(monkeypatch, missing=True)
    assert ran == [[sys.executable, "-m", "pip", "install", "-q", f"git+{repository_url()}"]]
    assert _run_cell(monkeypatch, missing=False) == []


def test_a_failed_install_stops_the_cell(monkeypatch):
    """pip prints its own error in the cell; the cell then stops, naming the command, instead
    of going on to a bare ModuleNotFoundError."""
    with pytest.raises(subprocess.CalledProcessError) as e:
        _run_cell(monkeypatch, missing=True, pip_rc=1)
    assert e.value.cmd[-1] == f"git+{repository_url()}"


def test_drive_true_calls_use_drive(monkeypatch):
    called = []
    monkeypatch.setattr(colab, "use_drive", lambda: called.append(True))
    _run_cell(monkeypatch, missing=False, drive=True)
    assert called == [True]


def test_use_drive_points_data_mirror_and_checkpoints_there(tmp_path, monkeypatch):
    for var in ("FEWSHOT_DATA_DIR", "FEWSHOT_DATA_MIRROR", "FEWSHOT_CHECKPOINT_DIR"):
        monkeypatch.setenv(var, "/elsewhere")  # restored after the test
    folders = colab.use_drive(tmp_path / "drive", mount=False)
    assert checkpoint_dir() == tmp_path / "drive" / "checkpoints"
    assert data_dir() == tmp_path / "drive" / "data"
    assert mirror_dir() == tmp_path / "drive" / "mirror"
    assert all(f.is_dir() for f in folders.values())


@pytest.fixture
def repository(tmp_path):
    """A git repository with one record, standing for the book's on GitHub."""
    repo = tmp_path / "origin"
    (repo / "results").mkdir(parents=True)
    (repo / "results" / "r.json").write_text("{}")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "records"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env=env)
    return repo


def test_results_folder_clones_once_and_runs_twice(repository, tmp_path, monkeypatch):
    """On a pip install (no records in results_dir()) the repository is cloned; a second run
    finds the clone instead of failing on `git clone` into an existing folder."""
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path / "empty"))
    clone_to = tmp_path / "content" / "fewshot-book"
    first = colab.results_folder(repository.as_uri(), clone=True, clone_to=clone_to)
    second = colab.results_folder(repository.as_uri(), clone=True, clone_to=clone_to)
    assert first == second == clone_to / "results"
    assert (first / "r.json").exists()


def test_results_folder_prefers_local_records(tmp_path, monkeypatch):
    local = tmp_path / "results"
    local.mkdir()
    (local / "x.json").write_text("{}")
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(local))
    assert colab.results_folder("file:///nowhere", clone=True, clone_to=tmp_path / "c") == local
    assert not (tmp_path / "c").exists()
