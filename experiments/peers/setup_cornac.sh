#!/usr/bin/env bash
# Builds a separate virtual environment holding Cornac and Flask: the peer that
# experiments/bench_serve.py serves side by side with graphrec
# (python -m cornac.serving, Cornac's Flask server).
#
# Usage: experiments/peers/setup_cornac.sh [VENV_DIR]
#   VENV_DIR defaults to $CORNAC_VENV, else
#   ${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/cornac
# Environment: PYTHON (default python3), CORNAC (default cornac, the newest).
# Prints the venv directory as its last line; does nothing if cornac.serving
# already imports there.
set -euo pipefail
venv="${1:-${CORNAC_VENV:-${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/cornac}}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import cornac.serving.app, flask" >/dev/null 2>&1; then
  echo "$venv"; exit 0
fi
mkdir -p "$(dirname "$venv")"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >&2
"$venv/bin/pip" install -q "${CORNAC:-cornac}" flask >&2
"$venv/bin/python" -c "import cornac, flask, importlib.metadata as m
print('cornac', cornac.__version__, 'flask', m.version('flask'))" >&2
echo "$venv"
