"""Results records: one JSON file per reproduced number, with its provenance.

A record says what was measured (experiment, dataset, method, way, shot,
accuracy as a fraction, 95% CI half-width, episodes) and how (profile,
device, wall time, torch version, git commit, configuration). ``smoke`` runs
only check that code runs, so their records are never written.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .evaluation import EvalResult

__all__ = [
    "REQUIRED",
    "git_commit",
    "run_commit",
    "cpu_model",
    "machine",
    "make_record",
    "protonet_record",
    "write_result",
    "load_results",
    "results_dir",
]

REQUIRED = (
    "experiment",
    "dataset",
    "method",
    "way",
    "shot",
    "accuracy",
    "ci95",
    "episodes",
    "profile",
    "device",
    "wall_time_s",
    "torch",
    "commit",
    "config",
)

_REPO = Path(__file__).resolve().parents[1]
_COMMIT_AT_IMPORT: str | None = None


def results_dir() -> Path:
    """``FEWSHOT_RESULTS_DIR``, else the checkout's ``results/``, else (a pip install, as on
    Colab) ``results/`` in the working directory."""
    env = os.environ.get("FEWSHOT_RESULTS_DIR")
    if env:
        return Path(env)
    return _REPO / "results" if (_REPO / ".git").exists() else Path.cwd() / "results"


def git_commit() -> str:
    """The commit of the code that runs, with ``-dirty`` when files of ``fewshot_utils`` or
    ``notebooks`` differ from it (untracked new modules included: code that ran but is not in
    the commit), or ``unknown`` outside a git checkout (e.g. a pip install on Colab)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=normal"]
        dirty = subprocess.run(
            [*status, "--", "fewshot_utils", "notebooks"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def run_commit() -> str:
    """The commit of the code this process loaded: read once, when first asked (notebooks ask
    at import through ``make_record``'s module), so that committing during a long run cannot
    make its records name code that did not run."""
    global _COMMIT_AT_IMPORT
    if _COMMIT_AT_IMPORT is None:
        _COMMIT_AT_IMPORT = git_commit()
    return _COMMIT_AT_IMPORT


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def machine() -> str:
    """The processor model and core count (a CPU run's numbers depend on them: another
    processor rounds differently, and a short training run can end elsewhere)."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def make_record(
    experiment: str,
    dataset: str,
    method: str,
    way: int | None = None,
    shot: int | None = None,
    accuracy: float | None = None,
    ci95: float | None = None,
    episodes: int | None = None,
    profile: str = "",
    device: str | torch.device = "",
    wall_time_s: float = 0.0,
    config: dict | None = None,
    result: EvalResult | None = None,
    **extra: object,
) -> dict:
    """A complete record; ``extra`` adds fields such as ``query`` or ``paper_accuracy``.

    With ``result`` (an :class:`~fewshot_utils.evaluation.EvalResult`), the accuracy, interval,
    number of episodes and the tasks' way, shot and query are taken from it: a record then
    names the tasks that produced it, and a caller's value that disagrees is an error rather
    than a silently wrong record (a result over fixed images has no way or shot: the caller
    names the table setting). Without it they are the caller's (records that are not a test
    result, e.g. a validation accuracy during training).

    Provenance comes with every record: versions, machine, commit, and ``threads``, the CPU
    threads torch uses when the record is written. On a CPU the thread count changes how sums
    are split, hence their rounding, and training amplifies that: the same code, data and
    seed give the same record bit for bit only with the same thread count (chapters 3, 5
    and 6 pick one or all threads, whichever runs faster on the machine at the time).
    """
    if result is not None:
        way, shot, accuracy, ci95, episodes, extra = _from_result(
            result,
            experiment,
            method,
            dict(way=way, shot=shot, accuracy=accuracy, ci95=ci95, episodes=episodes),
            extra,
        )
    given = {"way": way, "shot": shot, "accuracy": accuracy, "ci95": ci95, "episodes": episodes}
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(f"make_record: pass {missing} or a result to take them from")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy is a fraction in [0, 1], got {accuracy}")
    if profile not in ("smoke", "cpu", "full"):
        raise ValueError(f"profile must be smoke, cpu or full, got {profile!r}")
    return {
        "experiment": experiment,
        "dataset": dataset,
        "method": method,
        "way": int(way),
        "shot": int(shot),
        "accuracy": float(accuracy),
        "ci95": float(ci95),
        "episodes": int(episodes),
        "profile": profile,
        "device": str(device),
        "wall_time_s": round(float(wall_time_s), 2),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "commit": run_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config if config is not None else {},
        **extra,
    }


def protonet_record(
    experiment: str,
    dataset: str,
    method: str,
    result: EvalResult,
    run,
    config: dict,
    profile: str,
    device: str | torch.device,
    test_seconds: Sequence[float] = (),
    **extra: object,
) -> dict:
    """:func:`make_record` for a network trained by ``training.train_protonet`` and then tested.

    ``run`` is its ``TrainResult``, ``config`` the training configuration as the record keeps
    it, ``test_seconds`` what testing took (embedding, then episodes). The record adds the
    run's facts: wall time (the run's plus ``test_seconds``), length, best epoch, training
    speed, history (without the per-episode validation accuracies, which stay in the
    checkpoint for paired gaps) and ``training_stage``: ``protocol`` in ``full``, ``early
    training`` in the shorter profiles, whose comparisons are early in training. ``extra``
    adds fields such as ``train_shot`` or ``paper_accuracy``."""
    wall_time_s = run.wall_time_s
    for seconds in test_seconds:  # in order: the same sum as writing it out
        wall_time_s += seconds
    return make_record(
        experiment=experiment,
        dataset=dataset,
        method=method,
        result=result,
        profile=profile,
        device=device,
        wall_time_s=wall_time_s,
        config=config,
        train_episodes=run.episodes_done,
        best_epoch=run.best_epoch,
        train_episodes_per_s=run.episodes_per_s,
        training_stage="protocol" if profile == "full" else "early training",
        history={k: v for k, v in run.history.items() if k != "val_per_episode"},
        **extra,
    )


def _from_result(result: EvalResult, experiment: str, method: str, given: dict, extra: dict):
    """Way, shot, accuracy, interval and episodes of ``result`` (and its query and interval
    kind into ``extra``); a value in ``given`` or ``extra`` that disagrees is an error."""
    measured = {
        "way": result.way,
        "shot": result.shot,
        "accuracy": result.accuracy,
        "ci95": result.ci95,
        "episodes": result.episodes,
    }
    if result.query is not None:
        measured["query"] = result.query
    given = {**given, "query": extra.get("query")}
    for key, value in measured.items():
        if value is None:  # a result over images, not tasks: the caller names the setting
            measured[key] = given[key]
        elif given[key] is not None and given[key] != value:
            raise ValueError(
                f"make_record({experiment}, {method}): {key}={given[key]!r} was passed but the "
                f"result was measured with {key}={value!r}; leave {key} out and the record "
                "takes it from the result"
            )
    extra = dict(extra)
    # What the results page pairs with another record on the same tasks (paired effects):
    # each task's (or, for a result over images, each image's) accuracy, 4 decimals.
    extra["per_task"] = [round(float(a), 4) for a in result.per_episode.flatten().tolist()]
    if result.query is not None:
        extra["query"] = result.query
    if result.unit != "episodes":
        extra.update(unit=result.unit, ci_low=result.ci_low, ci_high=result.ci_high)
    if result.interval:  # e.g. chapter 5's both-classes tasks: an interval over images
        extra.update(interval=result.interval, ci_low=result.ci_low, ci_high=result.ci_high)
    keys = ("way", "shot", "accuracy", "ci95", "episodes")
    return (*(measured[k] for k in keys), extra)


def write_result(record: dict, directory: str | os.PathLike | None = None) -> Path | None:
    """Write ``record`` atomically as ``<experiment>__<dataset>__<method>__<W>w<S>s__<profile>``
    (with ``__seed<N>`` when its ``train_seed`` is not 0: the training-seed repeats).

    Returns the path, or None for a ``smoke`` record (never a result).
    """
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"result record lacks {missing}; build it with make_record()")
    if record["profile"] == "smoke":
        return None
    directory = Path(directory) if directory is not None else results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    parts = [
        record["experiment"],
        record["dataset"],
        record["method"],
        f"{record['way']}w{record['shot']}s",
        record["profile"],
    ]
    if record.get("train_seed") not in (None, 0):  # a seed repeat beside the seed-0 record
        parts.append(f"seed{record['train_seed']}")
    stem = "__".join(parts)
    path = directory / (re.sub(r"[^A-Za-z0-9_.+-]", "_", stem) + ".json")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def load_results(directory: str | os.PathLike | None = None) -> list[dict]:
    """Every record under ``directory`` (default ``results/``), sorted by file name. A file
    that is not a JSON object is an error naming the file, not a bare parser message."""
    directory = Path(directory) if directory is not None else results_dir()
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"results record {path} is not valid JSON ({err}); restore it from git "
                "(git checkout -- <file>) or delete it and run its chapter again"
            ) from None
        if not isinstance(record, dict):
            raise ValueError(f"results record {path} holds a {type(record).__name__}, not a record")
        records.append(record)
    return records


run_commit()  # at import: the code that this process runs
