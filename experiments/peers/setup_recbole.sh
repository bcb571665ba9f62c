#!/usr/bin/env bash
# Builds a separate virtual environment holding RecBole 1.2.1, the peer that
# experiments/bench_vs_recbole.py measures graphrec's models against, and
# faiss-cpu (RecBole's NCL runs its k-means E-step with faiss).
# RecBole 1.2.1 needs older numpy/scipy/pandas than graphrec, so it never
# shares graphrec's environment.
#
# Usage: experiments/peers/setup_recbole.sh [VENV_DIR]
#   VENV_DIR defaults to $RECBOLE_VENV, else
#   ${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/recbole-1.2.1
# Environment: PYTHON (default python3), TORCH (default torch==2.13.0; the
#   same CPU torch graphrec's Makefile installs; add an index with
#   TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" where a
#   plain "pip install torch" would fetch a CUDA build), FAISS (default
#   faiss-cpu==1.15.1).
# Prints the venv directory as its last line; does nothing if RecBole and faiss
# already import there (and only adds faiss-cpu where RecBole does but faiss
# does not: a venv built before NCL was measured).
set -euo pipefail
venv="${1:-${RECBOLE_VENV:-${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/recbole-1.2.1}}"
faiss="${FAISS:-faiss-cpu==1.15.1}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import recbole" >/dev/null 2>&1; then
  if ! "$venv/bin/python" -c "import faiss" >/dev/null 2>&1; then
    # numpy named so that pip keeps RecBole's numpy 1.26.4; a failure here only costs NCL (the peer script
    # then says why it skips it), so it does not stop the LightGCN/EASE/SGL/SimpleX measurements
    "$venv/bin/pip" install -q "$faiss" "numpy==1.26.4" >&2 ||
      echo "setup_recbole.sh: could not install $faiss into $venv: RecBole's NCL will not run" >&2
  fi
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
# faiss-cpu 1.15.1 accepts numpy >= 1.25, so the pins above hold.
"$venv/bin/pip" install -q ${TORCH_PIP_ARGS:-} "$torch" recbole==1.2.1 "numpy==1.26.4" "pandas<2.3" \
  "scipy==1.11.4" "setuptools>=77.0.3,<81" "$faiss"
"$venv/bin/python" -c "import faiss, recbole, torch; print('recbole', recbole.__version__, 'torch', torch.__version__,
  'faiss', faiss.__version__)" >&2
echo "$venv"
