"""The BPR training loop: epochs, early stopping, history, atomic checkpoints, exact resume."""

from __future__ import annotations

import csv
import io
import math
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from graphrec import distributed
from graphrec.errors import ConfigError, GraphrecError
from graphrec.eval.evaluator import Evaluator
from graphrec.eval.metrics import METRICS
from graphrec.fs import atomic_write_json, atomic_write_text
from graphrec.nn.base import ScoringModel
from graphrec.runtime import keep_freed_memory, resolve_device, resolve_threads, set_threads
from graphrec.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from graphrec.train.negatives import NegativeSampler, hardest


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters.

    Attributes:
        epochs: Maximum epochs (one pass over the train interactions, one
            negative each).
        batch_size: Interactions per step.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` or ``"sparse_adam"``:
            lazy Adam (``torch.optim.SparseAdam``) over row-sparse gradients,
            for models whose parameters are all embedding tables read at the
            batch's rows (MF-BPR). A step then updates the batch's rows and
            their moments only, so it costs the same whatever the number of
            users; dense Adam reads and writes every row of every table at
            every step. Not the same optimizer: a row's moments decay only
            on the steps that touch it. No ``weight_decay`` (use the model's
            ``reg``). Over several ranks, the rows' gradients are averaged
            by graphrec (:func:`~graphrec.distributed.average_sparse_gradients`),
            tested over gloo only: refused on GPU ranks (NCCL) until tested.
        lr: Learning rate.
        weight_decay: Optimizer weight decay (the models' own ``reg`` is the
            paper's L2 term; this one is usually 0).
        seed: Seeds parameters, shuffling and negative sampling.
        negative_candidates: Negatives per example: 1 draws one item
            uniformly among the user's non-interacted items; M > 1 draws M
            such candidates and trains on the one the model currently scores
            highest (hard negatives: dynamic negative sampling, Zhang et al.,
            SIGIR 2013). Costs one scoring pass of ``B × M`` pairs per batch.
        patience: Stop after this many evaluations without improvement of
            ``metric`` on valid (0: never stop early).
        min_epochs: Never stop early before this epoch: for models whose
            validation metric dips before it rises (the contrastive ones
            leave the popularity ranking of their first epochs behind).
        metric: Validation metric for early stopping and the best checkpoint.
        eval_every: Evaluate on valid every this many epochs.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``...; a CUDA device on a torch without CUDA is an error.
        threads: torch's intra-op CPU threads: ``"auto"`` (the cores no other
            process is using now, see :mod:`graphrec.runtime`) or a number.
        progress: Show a progress bar per epoch (only when stderr is a terminal).
        log: ``"tensorboard"``: also write loss and validation metrics as
            TensorBoard scalars into ``<run_dir>/tensorboard`` (needs the
            ``tensorboard`` package: ``pip install 'graphrec[tensorboard]'``).
    """

    epochs: int = 100
    batch_size: int = 2048
    optimizer: Literal["adam", "adamw", "sgd", "sparse_adam"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 2020
    negative_candidates: int = 1
    patience: int = 10
    min_epochs: int = 0
    metric: str = "ndcg@20"
    eval_every: int = 1
    device: str = "auto"
    threads: int | Literal["auto"] = "auto"
    progress: bool = True
    log: Literal["none", "tensorboard"] = "none"

    def __post_init__(self) -> None:
        if self.log not in ("none", "tensorboard"):
            raise ConfigError(f"train.log must be 'none' or 'tensorboard', got {self.log!r}")
        if self.log == "tensorboard":
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise ConfigError("train.log: tensorboard needs the tensorboard package: "
                                  "pip install 'graphrec[tensorboard]'")
        for name in ("epochs", "batch_size", "eval_every", "negative_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_epochs < 0:
            raise ConfigError(f"train.min_epochs must be >= 0, got {self.min_epochs}")
        if self.patience < 0:
            raise ConfigError(f"train.patience must be >= 0 (0: never stop early), got {self.patience}")
        if self.optimizer not in ("adam", "adamw", "sgd", "sparse_adam"):
            raise ConfigError(f"train.optimizer must be adam, adamw, sgd or sparse_adam, got {self.optimizer!r}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer == "sparse_adam" and self.weight_decay:
            raise ConfigError("train.weight_decay must be 0 with sparse_adam: decay would touch every row at every "
                              "step; the model's reg is the L2 term on the batch's rows")
        check_metric(self.metric, "train.metric")
        check_device(self.device, "train.device")
        if self.threads != "auto":
            resolve_threads(self.threads)  # raises for a number < 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        from graphrec.config import from_dict

        return from_dict(cls, values, "train")


def check_metric(metric: str, where: str) -> tuple[str, int]:
    """``"ndcg@20"`` → ``("ndcg", 20)``; a ConfigError naming ``where`` for anything else."""
    name, sep, k = metric.partition("@")
    if not sep or name not in METRICS or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"{where}: expected <metric>@<k> with a metric among {sorted(METRICS)} and k >= 1, "
                          f"found {metric!r}")
    return name, int(k)


def check_device(device: str, where: str) -> torch.device:
    """The torch device ``device`` names ("auto" resolved); a ConfigError if it is malformed or absent here."""
    try:
        dev = resolve_device(device)
    except RuntimeError:
        raise ConfigError(f"{where}: {device!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{where}: {device!r} asked for, but this torch ({torch.__version__}) "
                              "sees no CUDA device; use auto or cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{where}: {device!r} asked for, but there are {torch.cuda.device_count()} CUDA devices")
    elif dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"{where}: {device!r}: graphrec runs on cpu or cuda")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return the generator for shuffling and negatives."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (libraries may draw from the global generator)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_optimizer(model: ScoringModel, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, over ``model``'s trainable parameters (on ``device``).

    For ``sparse_adam``, the model's embedding tables are first switched to row-sparse gradients; a model whose
    loss reads whole tables (``row_sparse`` false) is refused.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    sparse = config.optimizer == "sparse_adam"
    tables = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if sparse:
        weights = {id(m.weight) for m in tables}
        if not model.row_sparse or any(id(p) not in weights for p in params):
            raise ConfigError(f"train.optimizer sparse_adam needs a model whose loss reads its embedding tables only "
                              f"at the batch's rows (mf-bpr); {type(model).__name__}'s gradients are dense: use adam")
    for module in tables:  # both ways: a model trained with sparse_adam may be trained again with adam
        module.sparse = sparse
    if sparse:
        return torch.optim.SparseAdam(params, lr=config.lr)
    # The fused kernels update all parameters in one pass (CPU and CUDA, torch >= 2.4).
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)


def rank_rng(state: dict[str, Any], world: distributed.World) -> tuple[dict[str, Any], bool | None]:
    """Which random states of checkpoint ``state`` this rank restores, and whether it then restarts its own.

    A checkpoint keeps every rank's states (``"ranks"``); resumed by as many
    ranks, each takes its own: ``(ranks[rank], None)``. Written by another
    number of ranks (or by one process), every rank takes rank 0's (the
    trainer's generator must draw the same batches everywhere), and ranks
    other than 0 must then restart the draws they make for their own shard:
    ``(state, rank > 0)``. One process takes the top-level states.
    """
    ranks = state.get("ranks")
    if not world.distributed:
        return state, None
    if ranks is not None and len(ranks) == world.size:
        return ranks[world.rank], None
    return state, world.rank > 0


class Trainer:
    """Trains a BPR model with full-ranking validation, early stopping and checkpoints.

    The run directory receives, after every epoch: ``history.json`` and
    ``history.csv`` (loss, time and validation metrics per epoch),
    ``last.pt`` (everything needed to resume) and, when the validation metric
    improves, ``best.pt``. All writes are atomic, so killing the process at
    any moment (even ``kill -9``) leaves usable files, and :meth:`fit` with
    ``resume=True`` continues to exactly the same result as an uninterrupted
    run with the same seed.

    Without a validation evaluator (a split with no valid part, such as the
    official ML-100K ``u1``-``u5``), nothing can choose an epoch: the trainer
    runs all ``epochs`` and ``best.pt`` is the last epoch.

    In a multi-process run (``graphrec run --nproc N``, or torchrun; see
    :mod:`graphrec.distributed`), every rank draws the same global batches
    and trains on its shard of each, the gradients averaged by
    DistributedDataParallel (row-sparse ones by
    :func:`~graphrec.distributed.average_sparse_gradients`) with each shard
    weighted by its share of the batch: a step is the one-process step on the whole batch, up to float
    summation order. Validation is sharded too, so every rank takes the same
    early-stopping decision; rank 0 alone writes the run directory.

    Args:
        model: A :class:`~graphrec.nn.ScoringModel` with ``trainable = True``.
        train: ``num_users × num_items`` CSR of train interactions.
        valid: Evaluator on the validation part (or None: no early stopping).
        config: Hyperparameters.
        run_dir: Where history and checkpoints go (None: nowhere).
        negative_items: ``[num_items]`` boolean mask of the items BPR may draw
            as negatives (default every item; see
            :class:`~graphrec.train.NegativeSampler`).
        log: Called with one line per evaluation (per epoch without a
            validation part): epoch, loss, the validation metric, the best so
            far, seconds. None: silent.
        on_eval: Called as ``on_eval(epoch, metrics)`` after each validation
            evaluation, once the epoch's files are written; an exception it
            raises (a tuner's pruning signal) stops training and propagates.
    """

    def __init__(self, model: ScoringModel, train: sp.csr_matrix, valid: Evaluator | None,
                 config: TrainConfig, run_dir: str | Path | None = None,
                 negative_items: np.ndarray | None = None, log: Callable[[str], Any] | None = None,
                 on_eval: Callable[[int, dict[str, float]], Any] | None = None) -> None:
        if not model.trainable:
            raise ConfigError(f"{type(model).__name__} has no loss to train; call its fit() instead")
        self.config = config
        device = resolve_device(config.device)
        self.world = distributed.init(device)
        self.device = distributed.rank_device(device, self.world)
        self.threads = set_threads(distributed.rank_threads(config.threads, self.world))
        if self.device.type == "cpu":
            keep_freed_memory()
        self.model = model.to(self.device)
        if self.world.distributed:
            self.model.set_rank(self.world.rank)  # a model's draws for its rank's shard alone: the rank's own stream
        self.optimizer = self._make_optimizer()  # before DDP's wrap: sparse_adam makes the tables' gradients sparse
        # one process: the model's own loss; several: the same loss through DistributedDataParallel (but for
        # models of row-sparse tables alone)
        self._step = distributed.wrap(_WeightedLoss(self.model), self.device, self.world,
                                      find_unused=model.partial_gradients)
        # row-sparse tables are not in DDP's care (see distributed.wrap): their gradients are averaged after backward
        self._sparse_params = distributed.row_sparse_parameters(self.model) if self.world.distributed else []
        coo = sp.csr_matrix(train).tocoo()
        self.train_users = torch.from_numpy(coo.row.astype(np.int64))
        self.train_items = torch.from_numpy(coo.col.astype(np.int64))
        if len(self.train_users) == 0:
            raise GraphrecError("the train part has no interactions")
        self.valid = valid
        self.run_dir = Path(run_dir) if run_dir is not None else None  # written by rank 0 alone
        if valid is not None:
            valid.world = self.world  # the validation is sharded over the same ranks
        self.generator = torch.Generator()
        self.sampler = NegativeSampler(train, self.generator, negative_items)
        self.history: list[dict[str, float]] = []
        self.best_value = -math.inf
        self.best_epoch = -1
        self.bad_evals = 0
        self.epoch = 0
        self.log = log if self.world.is_main else None
        if on_eval is not None and self.world.distributed:
            raise ConfigError("on_eval (a tuner's callback) needs a one-process run; tune with graphrec tune, "
                              "not under --nproc or torchrun")
        self.on_eval = on_eval
        self._tensorboard: Any = None

    def _make_optimizer(self) -> torch.optim.Optimizer:
        if self.config.optimizer == "sparse_adam" and self.world.distributed and self.device.type == "cuda":
            raise ConfigError("train.optimizer sparse_adam over several GPU ranks (NCCL) is not tested yet; use adam "
                              "on GPUs, or sparse_adam on CPU ranks (gloo)")
        return make_optimizer(self.model, self.config, self.device)

    # --- the loop ---

    def train_epoch(self) -> float:
        """One pass over the train interactions in a random order, one negative each. Returns the mean loss."""
        self.model.train()
        perm = torch.randperm(len(self.train_users), generator=self.generator)
        users, pos = self.train_users[perm], self.train_items[perm]
        m = self.config.negative_candidates
        neg = self.sampler.sample(users if m == 1 else users.repeat_interleave(m)).view(len(users), m)
        bs = self.config.batch_size
        total, steps = 0.0, 0
        starts: Iterable[int] = range(0, len(users), bs)
        if self.config.progress and sys.stderr.isatty() and self.world.is_main:  # redirected to a file, a bar is only noise
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"epoch {self.epoch + 1}", leave=False, unit="batch")
        world = self.world
        for start in starts:
            lo, hi, weight = start, min(start + bs, len(users)), 1.0
            if world.distributed:  # this rank's shard, its loss weighted by its share of the global batch
                # (terms over the whole batch, such as InfoNCE, are computed alike on every rank; the weights sum to
                # the number of ranks, so DDP's average keeps them as they are)
                self.model.global_batch = (users[lo:hi].to(self.device), pos[lo:hi].to(self.device))
                a, b = distributed.shard_bounds(hi - lo, world.rank, world.size)
                weight = (b - a) * world.size / (hi - lo)
                if a == b:  # fewer examples than ranks: one example at weight 0, so every rank still takes the step
                    a, b = 0, 1
                lo, hi = lo + a, lo + b
            u = users[lo:hi].to(self.device, non_blocking=True)
            p = pos[lo:hi].to(self.device, non_blocking=True)
            n = neg[lo:hi].to(self.device, non_blocking=True)
            n = n.view(-1) if m == 1 else hardest(self.model, u, n)
            loss = self._step(u, p, n, weight)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_sparse_gradients(self._sparse_params, world)
            self.optimizer.step()
            total += float(loss.detach())
            steps += 1
        if world.distributed:  # the mean over ranks of the weighted shard losses: each step's global batch loss
            self.model.global_batch = None
            total = distributed.all_sum([total], world)[0] / world.size
        return total / max(steps, 1)

    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train until ``epochs`` or early stopping; returns the history.

        Args:
            resume: Continue from ``run_dir/last.pt`` if it exists.
        """
        c = self.config
        last = self.run_dir / "last.pt" if self.run_dir is not None else None
        # rank 0 reads the checkpoint and sends it: every rank restores the same state
        # (on the CPU: generator states must stay CPU tensors; the model and optimizer copy theirs to the device)
        state = distributed.on_main(
            lambda: load_checkpoint(last, map_location="cpu") if resume and last is not None and last.is_file()
            else None, self.world)
        if state is not None and last is not None:
            self._restore(state, last)
        elif self.epoch == 0:
            seeded = seed_everything(c.seed)
            self.generator.set_state(seeded.get_state())
            if self.world.distributed:  # torch's global generator (dropout): each rank's shard its own masks
                torch.manual_seed(distributed.rank_seed(c.seed, self.world.rank))
        while self.epoch < c.epochs:
            if c.patience and self.bad_evals >= c.patience and self.epoch >= c.min_epochs:
                break
            start = time.perf_counter()
            loss = self.train_epoch()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            row: dict[str, float] = {"epoch": self.epoch + 1, "loss": loss, "train_seconds": time.perf_counter() - start}
            improved = self.valid is None  # without validation, the last epoch is the one kept
            if self.valid is not None and (self.epoch + 1) % c.eval_every == 0:
                t = time.perf_counter()
                metrics = self.valid.evaluate(self.model)
                row["eval_seconds"] = time.perf_counter() - t
                if c.metric not in metrics:
                    raise ConfigError(f"train.metric {c.metric!r} is not computed; the evaluator gives {sorted(metrics)}")
                row.update({f"valid_{k}": v for k, v in metrics.items()})
                value = metrics[c.metric]
                if value > self.best_value:
                    self.best_value, self.best_epoch, self.bad_evals, improved = value, self.epoch + 1, 0, True
                else:
                    self.bad_evals += 1
            self.history.append(row)
            self.epoch += 1
            self._write(improved)
            self._report(row)
            if self.on_eval is not None and f"valid_{c.metric}" in row:
                self.on_eval(self.epoch, {k[6:]: v for k, v in row.items() if k.startswith("valid_")})
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        distributed.barrier(self.world)  # rank 0's files are written before any rank reads best.pt
        return self.history

    def _report(self, row: dict[str, float]) -> None:
        """One line per evaluation (per epoch without validation) and, with ``log: tensorboard``, the scalars."""
        c, epoch = self.config, int(row["epoch"])
        metric = f"valid_{c.metric}"
        if self.log is not None and (metric in row or self.valid is None):
            seconds = f"{row['train_seconds']:.1f} s" + (f" + {row['eval_seconds']:.1f} s eval" if "eval_seconds" in row else "")
            text = f"epoch {epoch}/{c.epochs}  loss {row['loss']:.4f}"
            if metric in row:
                text += (f"  valid {c.metric} {row[metric]:.4f} (best {self.best_value:.4f} at epoch {self.best_epoch}"
                         + (f", {self.bad_evals}/{c.patience} without improvement" if c.patience and self.bad_evals else "")
                         + ")")
            self.log(f"{text}  {seconds}")
        if c.log == "tensorboard" and self.world.is_main and self.run_dir is not None:
            if self._tensorboard is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))
            self._tensorboard.add_scalar("train/loss", row["loss"], epoch)
            self._tensorboard.add_scalar("train/seconds", row["train_seconds"], epoch)
            for k, v in row.items():
                if k.startswith("valid_"):
                    self._tensorboard.add_scalar(f"valid/{k[6:]}", v, epoch)
            self._tensorboard.flush()

    # --- state ---

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "model_class": type(self.model).__name__,
            "hparams": self.model.hparams(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self.generator),
            "model_rng": self.model.rng_state(),
            "epoch": self.epoch,
            "history": self.history,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_evals": self.bad_evals,
            "config": asdict(self.config),
        }

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        if state.get("model_class") != type(self.model).__name__:
            raise GraphrecError(f"{path}: checkpoint of a {state.get('model_class')} model, cannot resume a "
                                f"{type(self.model).__name__}")
        saved = state.get("config", {}).get("optimizer", "adam")
        if saved != self.config.optimizer:
            raise GraphrecError(f"{path}: trained with train.optimizer {saved}, resumed with {self.config.optimizer}: "
                                "the optimizer's state does not carry over; resume with the same optimizer")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise GraphrecError(f"{path}: the checkpoint does not fit this model ({type(self.model).__name__}, "
                                f"{self.model.hparams()}): {str(exc).splitlines()[0]}") from None
        own, restart = rank_rng(state, self.world)
        if restart is not None:
            import warnings

            warnings.warn(f"{path}: written by {len(state.get('ranks') or [0])} rank(s), resumed by "
                          f"{self.world.size}: every rank continues from rank 0's generators (the same batches); "
                          "ranks other than 0 start their own draws afresh (a model's sampling, dropout), so the "
                          "run will not repeat the uninterrupted one", stacklevel=3)
        set_rng_state(own["rng"], self.generator)
        self.model.set_rng_state(own.get("model_rng", {}))
        if restart:  # rank 0's draws for its own shard are not this rank's
            torch.manual_seed(distributed.rank_seed(self.config.seed, self.world.rank))
            self.model.set_rank(self.world.rank, restart=True)
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_evals = int(state["bad_evals"])

    def _write(self, improved: bool) -> None:
        if self.run_dir is None:
            return
        # every rank's random generators (each samples its own shard), then rank 0 writes
        ranks = distributed.all_gather({"rng": rng_state(self.generator), "model_rng": self.model.rng_state()},
                                       self.world) if self.world.distributed else None
        distributed.on_main(lambda: self._write_files(improved, ranks), self.world)

    def _write_files(self, improved: bool, ranks: list[dict[str, Any]] | None) -> None:
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self.state()
        if ranks is not None:
            state["ranks"] = ranks
        if improved:
            save_checkpoint(self.run_dir / "best.pt", {k: state[k] for k in ("model", "model_class", "hparams", "epoch")})
        save_checkpoint(self.run_dir / "last.pt", state)
        atomic_write_json(self.run_dir / "history.json", self.history)
        atomic_write_text(self.run_dir / "history.csv", history_csv(self.history))

    def load_best(self) -> None:
        """Load the best checkpoint's weights (if any) into the model (read by rank 0, sent to every rank)."""
        best = self.run_dir / "best.pt" if self.run_dir is not None else None
        state = distributed.on_main(
            lambda: load_checkpoint(best, map_location="cpu") if best is not None and best.is_file() else None,
            self.world)
        if state is not None:
            self.model.load_state_dict(state["model"])


class _WeightedLoss(torch.nn.Module):
    """``model.loss(users, pos, neg) · weight`` as a module's forward: what DistributedDataParallel wraps."""

    def __init__(self, model: ScoringModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
        loss = self.model.loss(users, pos, neg)
        return loss if weight == 1.0 else loss * weight


def history_csv(history: list[dict[str, float]]) -> str:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()
