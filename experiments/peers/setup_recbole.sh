#!/usr/bin/env bash
# Builds a separate virtual environment holding RecBole 1.2.1, the peer that
# experiments/bench_vs_recbole.py measures graphrec's LightGCN against.
# RecBole 1.2.1 needs older numpy/scipy/pandas than graphrec, so it never
# shares graphrec's environment.
#
# Usage: experiments/peers/setup_recbole.sh [VENV_DIR]
#   VENV_DIR defaults to $RECBOLE_VENV, else
#   ${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/recbole-1.2.1
# Environment: PYTHON (default python3), TORCH (default torch==2.13.0; the
#   same CPU torch graphrec's Makefile installs; add an index with
#   TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" where a
#   plain "pip install torch" would fetch a CUDA build).
# Prints the venv directory as its last line; does nothing if RecBole already
# imports there.
set -euo pipefail
venv="${1:-${RECBOLE_VENV:-${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/recbole-1.2.1}}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import recbole" >/dev/null 2>&1; then
  echo "$venv"; exit 0
fi
mkdir -p "$(dirname "$venv")"
"${PYTHON:-python3}" -m venv "$venv"
torch="${TORCH:-torch==2.13.0}"
# torch first, so recbole's bare "torch" requirement is already satisfied.
# shellcheck disable=SC2086
"$venv/bin/pip" install -q ${TORCH_PIP_ARGS:-} "$torch"
# recbole 1.2.1 imports ray 2.6.3, which imports pkg_resources (gone from
# setuptools 81 on) and needs numpy<2, and calls
# scipy.sparse.dok_matrix._update (gone after scipy 1.11). torch is named
# again so that pip keeps it: torch 2.13.0 needs setuptools>=77.0.3, and given
# "setuptools<70" pip silently replaces it with torch 2.12.1 (a CUDA build).
"$venv/bin/pip" install -q ${TORCH_PIP_ARGS:-} "$torch" recbole==1.2.1 "numpy==1.26.4" "pandas<2.3" \
  "scipy==1.11.4" "setuptools>=77.0.3,<81"
"$venv/bin/python" -c "import recbole, torch; print('recbole', recbole.__version__, 'torch', torch.__version__)" >&2
echo "$venv"
