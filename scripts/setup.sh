#!/usr/bin/env bash
# Set up the workbench environment from nothing, idempotently.
#
# - Uses the active virtualenv / conda env if one is active (a user's CUDA torch is kept),
#   else creates ./.venv with python3.11 (or python3).
# - Installs the CPU build torch==2.13.0 only when no torch is importable (an unpinned
#   torch would pull a multi-GB CUDA build).
# - Installs the package in editable mode with the extras given as $1 (default: none).
# Prints the python to use on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  py="$VIRTUAL_ENV/bin/python"
elif [ -n "${CONDA_PREFIX:-}" ] && [ -x "$CONDA_PREFIX/bin/python" ]; then
  py="$CONDA_PREFIX/bin/python"
else
  if [ ! -x .venv/bin/python ]; then
    base=$(command -v python3.11 || command -v python3)
    "$base" -m venv .venv >&2
  fi
  py="$PWD/.venv/bin/python"
fi
stamp=".venv-stamp-$(echo "$py $extras" | md5sum | cut -c1-8)"
want=$(cat pyproject.toml scripts/setup.sh | md5sum | cut -c1-32)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$py" -m pip install -q --upgrade pip >&2
  if ! "$py" -c "import torch" 2>/dev/null; then
    "$py" -m pip install -q "torch==2.13.0" >&2
  fi
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  "$py" -m pip install -q -e "$spec" >&2
  echo "$want" > "$stamp"
fi
echo "$py"
