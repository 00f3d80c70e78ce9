"""Running the book on Colab: Google Drive for what must outlive the runtime, and the
repository's records for a pip install that has none.

Every chapter's first code cell (the same in every chapter; ``tools/setup_cell.py`` writes it
with the repository URL of ``_config.yml``) installs the package when it is missing and, with
``DRIVE = True``, calls :func:`use_drive`. The results and performance chapters find their
records with :func:`results_folder`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["DRIVE_ROOT", "on_colab", "use_drive", "results_folder"]

DRIVE_ROOT = Path("/content/drive/MyDrive/fewshot-book")
CLONE = Path("/content/fewshot-book")  # where the results chapter clones the repository


def on_colab() -> bool:
    """True inside a Colab kernel."""
    return "google.colab" in sys.modules


def use_drive(root: str | os.PathLike = DRIVE_ROOT, mount: bool = True) -> dict[str, Path]:
    """Mount Google Drive (``mount``, on Colab) and point the data directory, the offline
    mirror and the checkpoint directory at ``root/data``, ``root/mirror``, ``root/checkpoints``
    (created when missing), for this kernel and the processes it starts.

    Why: the VM's disk is wiped when Colab recycles the runtime; on Drive an interrupted
    training run resumes from its checkpoint, chapter 6 finds chapter 5's networks, and the
    data is decoded once. Put ``miniimagenet/miniimagenet.tar.gz`` under ``root/mirror`` (or
    in ``root/data/miniimagenet/``) to make miniImageNet available. Returns the folders.
    """
    if mount:
        from google.colab import drive  # only on Colab

        drive.mount("/content/drive")
    root = Path(root)
    folders = {
        "FEWSHOT_DATA_DIR": root / "data",
        "FEWSHOT_DATA_MIRROR": root / "mirror",
        "FEWSHOT_CHECKPOINT_DIR": root / "checkpoints",
    }
    for var, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(folder)
        print(f"{var}={folder}")
    return folders


def results_folder(
    repository: str, clone: bool | None = None, clone_to: str | os.PathLike = CLONE
) -> Path:
    """The folder of the records to read: ``results_dir()`` when it holds any (a checkout);
    else, on Colab (``clone`` None) or when ``clone`` is True, ``results/`` of a shallow clone
    of ``repository`` in ``clone_to``. A clone already there (a chapter run a second time) is
    updated, or used as it is when the update fails (offline)."""
    from .results import results_dir

    local = results_dir()
    if any(local.glob("*.json")) or (local / "benchmarks").is_dir():
        return local
    if not (on_colab() if clone is None else clone):
        return local
    clone_to = Path(clone_to)
    if (clone_to / ".git").is_dir():
        pull = subprocess.run(
            ["git", "-C", str(clone_to), "pull", "-q", "--ff-only"], capture_output=True, text=True
        )
        if pull.returncode:
            print(f"could not update {clone_to} ({pull.stderr.strip()}); using it as it is")
    else:
        run = subprocess.run(
            ["git", "clone", "-q", "--depth", "1", repository, str(clone_to)],
            capture_output=True,
            text=True,
        )
        if run.returncode:
            raise RuntimeError(f"git clone {repository} failed:\n{run.stderr}")
    return clone_to / "results"
