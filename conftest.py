"""What ``pytest --nbmake notebooks/`` runs when nothing is set: the quick check.

- the ``smoke`` profile, unless ``FEWSHOT_PROFILE`` chooses another (``auto`` would mean
  ``cpu`` on a laptop and ``full`` on a GPU: hours);
- a per-cell time limit that fits the profile (:data:`CELL_TIMEOUT_S`; nbmake's own default,
  300 s, stops a ``cpu`` chapter half-way), unless ``--nbmake-timeout`` is given;
- the committed records in ``results/`` untouched: ``smoke`` writes none (``write_result``),
  and in another profile records go to a temporary folder unless ``FEWSHOT_WRITE_RESULTS=1``
  (then ``results/``) or ``FEWSHOT_RESULTS_DIR`` names a folder. (Not in ``smoke``: the
  results chapter reads the committed records, and its smoke run should show them.)

``tools/book.sh`` and papermill do not go through pytest: they write ``results/`` as before.
"""

from __future__ import annotations

import os
import tempfile

# Seconds one cell may run, by profile: a smoke cell takes seconds (minutes on a loaded
# machine); the cpu profile's longest cell, chapter 3's training, under 30 minutes on 2
# cores; a full cell trains for hours on a GPU, so no limit (-1, as nbclient reads it).
CELL_TIMEOUT_S = {"smoke": 900, "cpu": 3600, "full": -1}


def notebook_defaults(env: dict, timeout_given: bool) -> tuple[dict, int | None]:
    """The environment variables to set for a notebook run (from ``env``, the current
    environment) and the per-cell timeout, None when ``--nbmake-timeout`` was given."""
    from fewshot_utils.profiles import resolve_profile

    updates = {}
    if not env.get("FEWSHOT_PROFILE"):
        updates["FEWSHOT_PROFILE"] = "smoke"
    profile = resolve_profile(updates.get("FEWSHOT_PROFILE") or env["FEWSHOT_PROFILE"])
    asked = env.get("FEWSHOT_WRITE_RESULTS") == "1" or env.get("FEWSHOT_RESULTS_DIR")
    if profile != "smoke" and not asked:
        updates["FEWSHOT_RESULTS_DIR"] = tempfile.mkdtemp(prefix="fewshot-results-")
    return updates, None if timeout_given else CELL_TIMEOUT_S[profile]


def pytest_configure(config) -> None:
    if not getattr(config.option, "nbmake", False):
        return
    args = config.invocation_params.args
    given = any(str(a).startswith("--nbmake-timeout") for a in args)
    updates, timeout = notebook_defaults(dict(os.environ), given)
    os.environ.update(updates)  # the notebooks' kernels inherit the environment
    if timeout is not None:
        config.option.nbmake_timeout = timeout


def pytest_report_header(config) -> list[str]:
    if not getattr(config.option, "nbmake", False):
        return []
    return [
        f"fewshot notebooks: profile {os.environ['FEWSHOT_PROFILE']}, cell timeout "
        f"{config.option.nbmake_timeout} s, records to "
        + (
            "none (smoke)"
            if os.environ["FEWSHOT_PROFILE"] == "smoke"
            else os.environ.get("FEWSHOT_RESULTS_DIR", "results/ (FEWSHOT_WRITE_RESULTS=1)")
        )
    ]
