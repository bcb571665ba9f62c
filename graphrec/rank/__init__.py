"""Turning a trained model into ranked lists in raw ids."""

from graphrec.rank.mmr import mmr
from graphrec.rank.recommender import Recommender

__all__ = ["Recommender", "mmr"]
