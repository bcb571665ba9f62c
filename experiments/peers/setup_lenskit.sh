#!/usr/bin/env bash
# Builds a separate virtual environment holding LensKit 2025.8.1 with PyTorch
# Geometric 2.8.1 (LensKit's LightGCN, lenskit.graphs.lightgcn, is built on
# torch_geometric.nn.LightGCN), the peer that experiments/bench_vs_lenskit.py
# measures graphrec's LightGCN against. 2025.8.1 is the newest LensKit that
# installs on Python 3.11 (2026.x needs Python >= 3.12.5); PyG runs here
# without pyg-lib or torch-sparse (no wheels for them), which its LightGCN
# does not need.
#
# Usage: experiments/peers/setup_lenskit.sh [VENV_DIR]
#   VENV_DIR defaults to $LENSKIT_VENV, else
#   ${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/lenskit-2025.8.1
# Environment: PYTHON (default python3), TORCH (default torch==2.13.0; the
#   same CPU torch graphrec's Makefile installs; add an index with
#   TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" where a
#   plain "pip install torch" would fetch a CUDA build), LENSKIT (default
#   lenskit==2025.8.1), PYG (default torch-geometric==2.8.1).
# Prints the venv directory as its last line; does nothing if LensKit's
# LightGCN already imports there.
set -euo pipefail
lenskit="${LENSKIT:-lenskit==2025.8.1}"
venv="${1:-${LENSKIT_VENV:-${GRAPHREC_CACHE_DIR:-$HOME/.cache/graphrec}/peers/lenskit-${lenskit##*==}}}"
pyg="${PYG:-torch-geometric==2.8.1}"
torch="${TORCH:-torch==2.13.0}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import lenskit.graphs.lightgcn" >/dev/null 2>&1; then
  echo "$venv"; exit 0
fi
mkdir -p "$(dirname "$venv")"
"${PYTHON:-python3}" -m venv "$venv"
# torch first, so LensKit's "torch~=2.4" requirement is already satisfied by the CPU build.
# shellcheck disable=SC2086
"$venv/bin/pip" install -q ${TORCH_PIP_ARGS:-} "$torch" >&2
# torch named again so that pip keeps it while resolving LensKit's requirements.
# shellcheck disable=SC2086
"$venv/bin/pip" install -q ${TORCH_PIP_ARGS:-} "$torch" "$lenskit" "$pyg" >&2
"$venv/bin/python" -c "import lenskit, torch, torch_geometric, lenskit.graphs.lightgcn
print('lenskit', lenskit.__version__, 'torch', torch.__version__, 'torch_geometric', torch_geometric.__version__)" >&2
echo "$venv"
