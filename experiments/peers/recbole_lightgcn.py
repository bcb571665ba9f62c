"""RecBole 1.2.1's LightGCN on a given train/valid/test split: ``recbole_run.py --model LightGCN`` under its
old name, with its old defaults (3 layers, ``reg_weight`` 1e-4, where RecBole's own are 2 and 1e-5).

Everything else (the options, what is timed, the JSON object printed last)
is ``recbole_run.py``'s; see its docstring. ``to_atomic`` is importable from
here too (``experiments/peers/loss_check.py`` does).

Usage (with the venv's python):
  python recbole_lightgcn.py --train T.tsv --valid V.tsv --test S.tsv
      [--epochs 50] [--batch 2048] [--dim 64] [--layers 3] [--lr 0.001]
      [--reg 1e-4] [--require-pow] [--k 20] [--seed 2020] [--threads 2]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recbole_run import main, to_atomic

__all__ = ["main", "to_atomic"]

if __name__ == "__main__":
    main({"model": "LightGCN", "layers": 3, "reg": 1e-4})
