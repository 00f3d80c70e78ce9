# Sourced by tools/book.sh, tools/test.sh and .ci/run: makes .venv (once), installs the
# requirements and the package (again only when requirements.txt or pyproject.toml changed),
# activates it, and decodes the datasets into the cache if they are not there yet.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=".venv/.fewshot-installed"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements (torch is large: the first time takes minutes)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -r requirements.txt
  python -m pip install -q -e . --no-deps
  echo "$want" > "$stamp"
fi
export FEWSHOT_DATA_DIR="${FEWSHOT_DATA_DIR:-$HOME/.cache/fewshot-book}"
echo "[setup] data directory $FEWSHOT_DATA_DIR; mirror ${FEWSHOT_DATA_MIRROR:-none (download)}"
python -m fewshot_utils.data prepare
