"""Keep the results chapter in step with results/ (tools/book.sh runs this before a build).

Jupyter Book's execution cache keys on a notebook's code, and Sphinx re-reads a page only when
its source changed: a new or updated record under results/ would leave
``notebooks/90_results`` showing the old tables. When the records differ from those of the
last build, this drops that notebook's cached outputs and touches it, so the build executes
it again (seconds); otherwise it does nothing and the page comes from the cache.

    python tools/results_page.py [--build _build]
    python tools/results_page.py --after-build   # tools/book.sh, after the build
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/, for build_times
from build_times import cached_runs  # noqa: E402  (one reader of the execution cache)

ROOT = Path(__file__).resolve().parents[1]
PAGE = "notebooks/90_results.ipynb"
STAMP = ".fewshot-results"  # in the build directory: the records the page last showed


def records_key(results: Path) -> str:
    """A hash of every record's name and content."""
    h = hashlib.sha256()
    for p in sorted(results.glob("*.json")):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def refresh(build: Path, root: Path = ROOT) -> bool:
    """Drop the results page's cache and touch it when results/ changed; True when it did."""
    stamp = build / STAMP
    key = records_key(root / "results")
    page = root / PAGE
    if stamp.exists() and stamp.read_text().strip() == key:
        return False
    cache_dir = build / ".jupyter_cache"
    if cache_dir.is_dir():
        from jupyter_cache import get_cache

        cache = get_cache(str(cache_dir))
        for rec in cache.list_cache_records():
            if Path(rec.uri).resolve() == page.resolve():
                cache.remove_cache(rec.pk)
    if page.exists():
        os.utime(page)  # Sphinx re-reads a page whose source is newer than its last read
    build.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key + "\n")
    return True


def settle(build: Path, root: Path = ROOT) -> bool:
    """After a build: when the results page was executed after the last change to results/
    (the chapters of a full build write their records before it runs), it already shows the
    current records, so stamp them: the next build then takes it from the cache. True when
    it stamped."""
    records = list((root / "results").glob("*.json"))
    run = cached_runs(build, root).get(PAGE)
    if not records or run is None or run["created"] <= max(p.stat().st_mtime for p in records):
        return False
    (build / STAMP).write_text(records_key(root / "results") + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "_build")
    parser.add_argument(
        "--after-build", action="store_true", help="stamp the records the new page shows"
    )
    args = parser.parse_args(argv)
    if args.after_build:
        settle(args.build)
        return 0
    if refresh(args.build):
        print(f"[book] results/ changed since the last build: {PAGE} will be executed again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
