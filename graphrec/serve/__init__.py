"""Serving a trained run: a live model that folds in new interactions, users and items, and its HTTP service.

``graphrec serve RUN_DIR`` starts the service (:mod:`graphrec.serve.app`);
:func:`open_live` gives the same live model in Python.
"""

from graphrec.serve.live import LiveModel, Recommendation, open_live

__all__ = ["LiveModel", "Recommendation", "open_live"]
