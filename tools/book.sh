#!/usr/bin/env bash
# Build the site with every notebook executed (profile: FEWSHOT_PROFILE, default auto =
# full with CUDA, else cpu). Extra arguments go to `jupyter-book build`, e.g. -W.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
export FEWSHOT_PROFILE="${FEWSHOT_PROFILE:-auto}"
profile="$(python -c 'from fewshot_utils.profiles import resolve_profile; print(resolve_profile())')"
# Jupyter Book's execution cache keys on the notebooks' code cells only. Outputs made with
# another profile or another version of fewshot_utils must not be reused: drop the cache then.
code="$(find fewshot_utils requirements.txt -type f ! -path '*__pycache__*' | LC_ALL=C sort \
  | xargs cat | sha256sum | cut -c1-16)"
key="profile=$profile fewshot_utils=$code"
stamp=_build/.fewshot-execution
if [ -d _build/.jupyter_cache ] && [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
  echo "[book] cached outputs are from '$(cat "$stamp" 2>/dev/null || echo unknown)'," \
    "not '$key': executing every notebook again"
  rm -rf _build/.jupyter_cache _build/jupyter_execute
fi
mkdir -p _build
echo "$key" > "$stamp"
python tools/results_page.py  # records changed: the results chapter is executed again
python tools/reader_map.py    # the landing page's figure, drawn from the records
t0="$(date +%s)"
step "jupyter-book build ($profile profile)" jupyter-book build . "$@"
python tools/results_page.py --after-build  # records this build wrote are already on the page
# Each chapter's execution time (from the execution cache) and the build's, into the log and
# _build/build_times.json; `python tools/build_times.py readme` puts them in the README.
python tools/build_times.py record --start "$t0" --profile "$profile"
echo "[book] open _build/html/index.html"
