"""Training: negative sampling, the BPR loop, checkpoints."""

from graphrec.train.checkpoint import load_checkpoint, save_checkpoint
from graphrec.train.negatives import NegativeSampler
from graphrec.train.trainer import TrainConfig, Trainer, seed_everything

__all__ = ["NegativeSampler", "TrainConfig", "Trainer", "load_checkpoint", "save_checkpoint", "seed_everything"]
