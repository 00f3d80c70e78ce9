#!/usr/bin/env bash
# Build the site with every notebook executed (profile: FEWSHOT_PROFILE, default auto =
# full with CUDA, else cpu). Extra arguments go to `jupyter-book build`, e.g. -W.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
export FEWSHOT_PROFILE="${FEWSHOT_PROFILE:-auto}"
t0=$SECONDS
echo "== building the book (profile $FEWSHOT_PROFILE)"
jupyter-book build . "$@"
echo "== book built in $((SECONDS - t0)) s: open _build/html/index.html"
