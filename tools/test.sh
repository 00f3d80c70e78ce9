#!/usr/bin/env bash
# Everything the maintainers check: lint, unit tests, paired notebooks, and every notebook
# executed by nbmake (profile smoke unless FEWSHOT_PROFILE says otherwise; the per-cell limit
# by profile and where records go: conftest.py).
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
export FEWSHOT_PROFILE="${FEWSHOT_PROFILE:-smoke}"
step "ruff check" ruff check .
step "ruff format --check" ruff format --check .
step "unit tests" python -m pytest -q tests
step "paired notebooks" python tools/check_notebooks.py
step "benchmark, quick mode (figures printed, not written)" \
  python benchmarks/bench_performance.py --quick
step "notebooks ($FEWSHOT_PROFILE profile)" \
  python -m pytest -q --nbmake notebooks/
