# Sourced by tools/book.sh, tools/test.sh and (through them) .ci/run: makes .venv when it is
# missing, installs the requirements and the package (again only when requirements.txt or
# pyproject.toml changed), activates it, and decodes the datasets into the cache once.
# Defines `step LABEL CMD...`: runs CMD, prints its wall time, and fails on a non-zero exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() {
  local label=$1 t0=$SECONDS rc=0
  shift
  echo "== $label"
  "$@" || rc=$?
  if [ "$rc" -eq 5 ] && [[ " $* " == *" pytest "* ]]; then
    # Every pytest run here has tests to find: "collected nothing" means they went missing.
    echo "== $label: pytest collected no tests (exit 5); that hides a problem, so it fails"
  fi
  if [ "$rc" -ne 0 ]; then echo "== $label: FAILED (exit $rc) after $((SECONDS - t0)) s"
  else echo "== $label: $((SECONDS - t0)) s"; fi
  return "$rc"
}

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  step "create .venv with $($PY --version)" "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=".venv/.fewshot-installed"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "upgrade pip" python -m pip install -q --upgrade pip
  step "pip install -r requirements.txt (torch is large: minutes the first time)" \
    python -m pip install -q -r requirements.txt
  step "pip install -e . --no-deps" python -m pip install -q -e . --no-deps
  echo "$want" > "$stamp"
fi
export FEWSHOT_DATA_DIR="${FEWSHOT_DATA_DIR:-$HOME/.cache/fewshot-book}"
echo "[setup] data directory $FEWSHOT_DATA_DIR; mirror ${FEWSHOT_DATA_MIRROR:-none (download)}"
step "decode the datasets into the cache (once)" python -m fewshot_utils.data prepare
