"""Measured build times of the book: each chapter's execution time and the whole build.

tools/book.sh calls ``record`` after every ``jupyter-book build``: it reads each notebook's
execution time from Jupyter Book's execution cache (jupyter-cache stores the seconds of the
run that produced the cached outputs), notes which notebooks this build executed (their cache
record is newer than the build's start) and the build's wall time, appends that to
``_build/build_times.json`` and prints a table into the log.

``readme`` writes the README's table from those measurements, never from typed numbers: the
last build of one profile that executed every chapter, and the next build of that profile
that executed none (the second build with nothing changed, served by the cache):

    FEWSHOT_PROFILE=cpu bash tools/book.sh   # executes every chapter
    FEWSHOT_PROFILE=cpu bash tools/book.sh   # nothing changed: from the cache
    python tools/build_times.py readme       # fills README.md between its build-times marks

The site shows the same table: ``book/protocols.md`` includes README.md between those marks
(a MyST ``{include}`` with ``:start-after:`` the whole start-mark line and ``:end-before:`` the
end mark), so keep both marks on lines of their own (``tests/test_build_times.py`` checks it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- build-times:start"
END = "<!-- build-times:end -->"


def toc_notebooks(root: Path = ROOT) -> list[str]:
    """The chapters of _toc.yml that are notebooks, as ``notebooks/NN_name.ipynb``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def cached_runs(build: Path, root: Path = ROOT) -> dict[str, dict]:
    """Per notebook (path relative to ``root``): the newest cache record's execution seconds
    and creation time (UTC epoch seconds)."""
    cache_dir = build / ".jupyter_cache"
    if not cache_dir.is_dir():
        return {}
    from jupyter_cache import get_cache

    out: dict[str, dict] = {}
    for rec in get_cache(str(cache_dir)).list_cache_records():
        try:
            rel = Path(rec.uri).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        created = rec.created.replace(tzinfo=rec.created.tzinfo or timezone.utc).timestamp()
        seconds = (rec.data or {}).get("execution_seconds")
        if rel not in out or created > out[rel]["created"]:
            out[rel] = {"seconds": seconds, "created": created}
    return out


def _machine() -> str:
    sys.path.insert(0, str(ROOT))
    from fewshot_utils.results import cpu_model  # here: the other commands need no torch

    return f"{os.cpu_count()} CPU cores ({cpu_model()}), {platform.system()}"


def _commit(root: Path) -> str:
    try:
        cmd = ["git", "rev-parse", "--short", "HEAD"]
        return subprocess.run(
            cmd, cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(build: Path, start: float, seconds: float, profile: str, root: Path = ROOT) -> dict:
    """Append this build's measurements to ``build/build_times.json`` and return them."""
    runs = cached_runs(build, root)
    chapters = toc_notebooks(root)
    entry = {
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "profile": profile,
        "wall_seconds": round(seconds, 1),
        "commit": _commit(root),
        "machine": _machine(),
        "chapters": {
            nb: {
                "seconds": None if nb not in runs else runs[nb]["seconds"],
                "executed_in_this_build": nb in runs and runs[nb]["created"] >= start - 1,
            }
            for nb in chapters
        },
    }
    path = build / "build_times.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(entry)
    tmp = path.with_name(".build_times.json.tmp")
    tmp.write_text(json.dumps(history, indent=2) + "\n")
    os.replace(tmp, path)
    return entry


def table(entry: dict) -> str:
    """Markdown: each chapter's execution seconds (from the cache) and whether it ran now."""
    lines = ["| chapter | execution (s) | executed in this build |", "| --- | ---: | --- |"]
    for nb, c in entry["chapters"].items():
        s = "not executed" if c["seconds"] is None else f"{c['seconds']:.0f}"
        lines.append(f"| `{nb}` | {s} | {'yes' if c['executed_in_this_build'] else 'no (cache)'} |")
    return "\n".join(lines)


def readme_block(history: list[dict], profile: str = "cpu") -> str:
    """The README's table: the last build of ``profile`` that executed every chapter and the
    next build of that profile that executed none. A clear error when either is missing."""

    def ran(entry: dict) -> list[bool]:
        return [c["executed_in_this_build"] for c in entry["chapters"].values()]

    full = [i for i, e in enumerate(history) if e["profile"] == profile and ran(e) and all(ran(e))]
    if not full:
        raise SystemExit(
            f"no {profile} build in _build/build_times.json executed every chapter: run "
            f"`FEWSHOT_PROFILE={profile} bash tools/book.sh` from an empty _build first"
        )
    first = history[full[-1]]
    again = [
        e for e in history[full[-1] + 1 :] if e["profile"] == first["profile"] and not any(ran(e))
    ]
    if not again:
        raise SystemExit(
            "no build after the full one served every chapter from the cache: run "
            f"`FEWSHOT_PROFILE={first['profile']} bash tools/book.sh` again"
        )
    second = again[0]
    total = sum(c["seconds"] for c in first["chapters"].values())
    rows = [f"| `{nb}` | {_minutes(c['seconds'])} |" for nb, c in first["chapters"].items()]
    return "\n".join(
        [
            f"Measured by `tools/build_times.py` ({first['profile']} profile, {first['machine']}, "
            f"commit {first['commit']}, {first['finished']}):",
            "",
            "| chapter | execution (min) |",
            "| --- | ---: |",
            *rows,
            f"| all chapters | {_minutes(total)} |",
            f"| whole build (`jupyter-book build`, wall) | {_minutes(first['wall_seconds'])} |",
            f"| second build, nothing changed (wall) | {_minutes(second['wall_seconds'])} |",
        ]
    )


def _minutes(seconds: float) -> str:
    """Minutes with one decimal; under a minute the seconds too (a 2 s build is not "0.0")."""
    return f"{seconds / 60:.1f}" + (f" ({seconds:.0f} s)" if seconds < 60 else "")


def fill_readme(readme: Path, block: str) -> None:
    """Replace the text between the README's build-times marks."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} lacks the marks {START} ... {END}")
    head, rest = text.split(START, 1)
    mark_line, _ = rest.split("\n", 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}{mark_line}\n{block}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="append this build's times (tools/book.sh calls it)")
    rec.add_argument("--start", type=float, required=True, help="build start, epoch seconds")
    rec.add_argument("--profile", required=True)
    rec.add_argument("--build", type=Path, default=ROOT / "_build")
    ck = sub.add_parser("check-cached", help="fail when the last build executed a chapter")
    ck.add_argument("--build", type=Path, default=ROOT / "_build")
    rd = sub.add_parser("readme", help="fill README.md from the measured builds")
    rd.add_argument("--build", type=Path, default=ROOT / "_build")
    rd.add_argument("--readme", type=Path, default=ROOT / "README.md")
    rd.add_argument("--profile", default="cpu", help="whose builds fill the table (cpu)")
    args = parser.parse_args(argv)
    if args.command == "record":
        entry = record(args.build, args.start, time.time() - args.start, args.profile)
        print(
            f"[book] build times ({entry['profile']} profile, whole build "
            f"{entry['wall_seconds']:.0f} s), in {args.build / 'build_times.json'}:"
        )
        print(table(entry))
        return 0
    path = args.build / "build_times.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: build the book with tools/book.sh first")
    if args.command == "check-cached":
        last = json.loads(path.read_text())[-1]
        ran = [nb for nb, c in last["chapters"].items() if c["executed_in_this_build"]]
        print(
            f"[book] build with nothing changed: {last['wall_seconds']:.0f} s, "
            f"chapters executed again: {', '.join(ran) or 'none'}"
        )
        return 1 if ran else 0
    fill_readme(args.readme, readme_block(json.loads(path.read_text()), args.profile))
    print(f"[book] {args.readme} build-times table filled from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
