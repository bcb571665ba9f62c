"""SimGCL (Yu et al., "Are Graph Augmentations Necessary?", SIGIR 2022) and XSimGCL (Yu et al., "XSimGCL:
Towards Extremely Simple Graph Contrastive Learning for Recommendation", TKDE 2023).

LightGCN's propagation with uniform noise added to every layer's embeddings
(``e ← e + ε · sign(e) ⊙ normalize(u)``, ``u ~ U(0, 1)``), and an InfoNCE loss
that pulls a node's two noisy views together. SimGCL contrasts two extra
noisy propagations and ranks on a clean one; XSimGCL does a single noisy
propagation per step and contrasts its final embeddings with its layer
``contrast_layer`` ones. As in the authors' code (SELFRec), the final
embedding is the mean of layers 1..L (layer 0 left out), and the contrastive
loss runs over the batch's distinct users and distinct positive items.
Layer 0 is LightGCN's: id embeddings, plus projected item text features when
given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from graphrec.errors import ConfigError
from graphrec.nn.lightgcn import LightGCN
from graphrec.nn.spec import FloatRange, IntRange, ModelConfig, ModelInputs, ModelSpec, Needs, Range, check_dim_reg
from graphrec.nn.spmm import ColumnBlocks


class _SymmetricProduct(torch.autograd.Function):
    """``Â x`` for a symmetric ``Â``: the backward is the same product (no transpose of a sparse CSR matrix)."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor | ColumnBlocks, x: Tensor) -> Tensor:
        ctx.adj = adj  # a tensor or its column blocks
        return adj @ x

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, ctx.adj @ grad.contiguous()


def info_nce(view1: Tensor, view2: Tensor, temperature: float) -> Tensor:
    """``-mean_i log softmax_j(cos(v1_i, v2_j) / τ)[i]``: each row's other view against every row's. ``[N, D]² → scalar``."""
    v1, v2 = nn.functional.normalize(view1, dim=1), nn.functional.normalize(view2, dim=1)
    logits = v1 @ v2.t() / temperature  # [N, N]
    return -torch.diagonal(torch.log_softmax(logits, dim=1)).mean()


class SimGCL(LightGCN):
    """SimGCL: rank on a clean LightGCN propagation, contrast two noisy ones (InfoNCE, weight ``cl_weight``).

    Args (besides :class:`~graphrec.nn.LightGCN`'s):
        eps: Noise magnitude ε.
        cl_weight: λ, the contrastive loss's weight.
        temperature: τ of InfoNCE.
        seed: Seed of the model's own noise generator (saved in checkpoints).
        cl_nodes: Contrast at most this many of a batch's distinct users
            (and items), drawn with the same generator; None: all of them
            (see :class:`SimGCLConfig`).
    """

    def __init__(self, num_users: int, num_items: int, adj: Tensor, dim: int = 64, num_layers: int = 2,
                 reg: float = 1e-4, eps: float = 0.1, cl_weight: float = 0.2, temperature: float = 0.2,
                 item_features: Tensor | None = None, seed: int = 0, cl_nodes: int | None = None) -> None:
        super().__init__(num_users, num_items, adj, dim=dim, num_layers=num_layers, reg=reg, item_features=item_features)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if cl_nodes is not None and cl_nodes < 2:
            raise ValueError(f"cl_nodes must be >= 2 (or None), got {cl_nodes}")
        self.eps, self.cl_weight, self.temperature, self.seed = eps, cl_weight, temperature, seed
        self.cl_nodes = cl_nodes
        self._noise: dict[str, torch.Generator] = {}  # device -> the noise generator there, seeded on first use
        self._pending: dict[str, Tensor] = {}  # device -> a restored state for a generator not built yet

    def hparams(self) -> dict[str, Any]:
        out = {k: v for k, v in super().hparams().items() if k not in ("alpha", "extra_nodes")}
        return {**out, "eps": self.eps, "cl_weight": self.cl_weight, "temperature": self.temperature,
                "cl_nodes": self.cl_nodes}

    def _generator(self, device: torch.device) -> torch.Generator:
        """The model's generator on ``device`` (noise, and the contrast's node sample), seeded on first use."""
        key = str(device)
        if key not in self._noise:
            g = torch.Generator(device=device).manual_seed(self.seed)
            if key in self._pending:
                g.set_state(self._pending.pop(key))
            self._noise[key] = g
        return self._noise[key]

    def _noise_like(self, e: Tensor) -> Tensor:
        u = torch.rand(e.shape, generator=self._generator(e.device), device=e.device, dtype=e.dtype)
        return torch.sign(e) * nn.functional.normalize(u, dim=-1) * self.eps

    def layers(self, perturbed: bool, e0: Tensor | None = None) -> list[Tensor]:
        """Layers 1..L of the propagation ``[N, D]`` each, with noise after every product when ``perturbed``.

        ``e0``: the layer-0 embeddings when the caller has them already (one projection per training step).
        """
        e = self.layer0_all() if e0 is None else e0
        out = []
        for _ in range(self.num_layers):
            e = _SymmetricProduct.apply(self.product(), e)
            if perturbed:
                e = e + self._noise_like(e)
            out.append(e)
        return out

    def _split(self, e: Tensor) -> tuple[Tensor, Tensor]:
        return e[: self.num_users], e[self.num_users : self.num_users + self.num_items]

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        return self._split(torch.stack(self.layers(perturbed=False)).mean(0))

    def layer_weights(self) -> Tensor:
        """The mean of layers 1..L (layer 0 not included): ``[0, 1/L, ..., 1/L]``."""
        return torch.tensor([0.0] + [1.0 / self.num_layers] * self.num_layers, device=self.alphas.device)

    def _contrast(self, users: Tensor, items: Tensor, a: Tensor, b: Tensor) -> Tensor:
        if self.global_batch is not None:  # a data-parallel shard: contrast the whole batch's nodes, as one process
            users, items = self.global_batch
        u, i = self._cl_sample(torch.unique(users)), self._cl_sample(torch.unique(items)) + self.num_users
        return info_nce(a[u], b[u], self.temperature) + info_nce(a[i], b[i], self.temperature)

    def _cl_sample(self, nodes: Tensor) -> Tensor:
        """At most ``cl_nodes`` of ``nodes``, drawn at random: InfoNCE costs ``O(n²)`` in the nodes it contrasts."""
        if self.cl_nodes is None or len(nodes) <= self.cl_nodes:
            return nodes
        pick = torch.randperm(len(nodes), generator=self._generator(nodes.device), device=nodes.device)
        return nodes[pick[: self.cl_nodes]]

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        e0 = self.layer0_all()
        clean = torch.stack(self.layers(perturbed=False, e0=e0)).mean(0)
        view1 = torch.stack(self.layers(perturbed=True, e0=e0)).mean(0)
        view2 = torch.stack(self.layers(perturbed=True, e0=e0)).mean(0)
        return (self.bpr_with_reg(clean, e0, users, pos_items, neg_items)
                + self.cl_weight * self._contrast(users, pos_items, view1, view2))

    def rng_state(self) -> dict[str, Tensor]:
        """The noise generators' states, ``{"noise.<device>": state}`` (restored states not yet used included)."""
        state = {f"noise.{dev}": s.clone() for dev, s in self._pending.items()}
        state.update({f"noise.{dev}": g.get_state() for dev, g in self._noise.items()})
        return state

    def set_rng_state(self, state: dict[str, Tensor]) -> None:
        bad = [k for k in state if not k.startswith("noise.")]
        if bad:
            raise ValueError(f"{type(self).__name__}.set_rng_state: unknown keys {bad}; expected 'noise.<device>'")
        for key, value in state.items():
            device = key.removeprefix("noise.")
            if device in self._noise:
                self._noise[device].set_state(value.cpu())
            else:
                self._pending[device] = value.detach().cpu().clone()


class XSimGCL(SimGCL):
    """XSimGCL: one noisy propagation per step ranks, and its final embeddings are contrasted with its layer
    ``contrast_layer`` ones (cross-layer contrast).

    Args (besides :class:`SimGCL`'s): contrast_layer: the layer (1..L) whose embeddings are the second view.
    """

    def __init__(self, num_users: int, num_items: int, adj: Tensor, dim: int = 64, num_layers: int = 2,
                 reg: float = 1e-4, eps: float = 0.2, cl_weight: float = 0.2, temperature: float = 0.2,
                 contrast_layer: int = 1, item_features: Tensor | None = None, seed: int = 0,
                 cl_nodes: int | None = None) -> None:
        super().__init__(num_users, num_items, adj, dim=dim, num_layers=num_layers, reg=reg, eps=eps,
                         cl_weight=cl_weight, temperature=temperature, item_features=item_features, seed=seed,
                         cl_nodes=cl_nodes)
        if not 1 <= contrast_layer <= num_layers:
            raise ValueError(f"contrast_layer must be in [1, num_layers = {num_layers}], got {contrast_layer}")
        self.contrast_layer = contrast_layer

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "contrast_layer": self.contrast_layer}

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        e0 = self.layer0_all()
        layers = self.layers(perturbed=True, e0=e0)
        final = torch.stack(layers).mean(0)
        return (self.bpr_with_reg(final, e0, users, pos_items, neg_items)
                + self.cl_weight * self._contrast(users, pos_items, final, layers[self.contrast_layer - 1]))


@dataclass(frozen=True)
class SimGCLConfig(ModelConfig):
    """SimGCL's settings (the paper's defaults).

    Attributes:
        dim, num_layers, reg: As LightGCN's (``num_layers`` >= 1).
        eps: Noise magnitude ε (> 0).
        cl_weight: λ, the contrastive loss's weight (>= 0).
        temperature: τ of InfoNCE (> 0).
        item_features: ``text``: projected item text features in layer 0, as LightGCN.
        cl_nodes: The InfoNCE term contrasts at most this many of the
            batch's distinct users (and as many items), drawn at random;
            None: all of them, as the paper. InfoNCE is quadratic in the
            nodes it contrasts, so a large batch (one grown with the data,
            ``experiments/bench_scale.py``) needs this bound: at 25M
            interactions and a batch of 51,200, the full contrast peaked at
            20 GB RSS and 43 s per step. In a multi-process run every rank
            contrasts the whole global batch's nodes (``global_batch``).
    """

    name: Literal["simgcl"] = "simgcl"
    search_space: ClassVar[Mapping[str, Range]] = {
        "num_layers": IntRange(1, 3), "reg": FloatRange(1e-6, 1e-2, log=True), "eps": FloatRange(0.01, 0.5),
        "cl_weight": FloatRange(1e-3, 1.0, log=True), "temperature": FloatRange(0.05, 1.0, log=True),
        "train.lr": FloatRange(1e-4, 1e-2, log=True)}
    dim: int = 64
    num_layers: int = 2
    reg: float = 1e-4
    eps: float = 0.1
    cl_weight: float = 0.2
    temperature: float = 0.2
    item_features: Literal["none", "text"] = "none"
    cl_nodes: int | None = None

    def __post_init__(self) -> None:
        check_dim_reg(self.dim, self.reg)
        if self.cl_nodes is not None and self.cl_nodes < 2:
            raise ConfigError(f"cl_nodes must be >= 2 (or null: every node of the batch), got {self.cl_nodes}")
        if self.num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1, got {self.num_layers}")
        if not self.eps > 0 or not self.temperature > 0 or self.cl_weight < 0:
            raise ConfigError(f"eps and temperature must be > 0 and cl_weight >= 0, got {self.eps}, "
                              f"{self.temperature} and {self.cl_weight}")

    def needs(self) -> Needs:
        return Needs(adjacency=True, item_text=self.item_features == "text")


@dataclass(frozen=True)
class XSimGCLConfig(SimGCLConfig):
    """XSimGCL's settings (the paper's defaults): SimGCL's, with ε 0.2, plus ``contrast_layer`` (1..num_layers)."""

    name: Literal["xsimgcl"] = "xsimgcl"  # type: ignore[assignment]
    eps: float = 0.2
    contrast_layer: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.contrast_layer <= self.num_layers:
            raise ConfigError(f"contrast_layer must be in [1, num_layers = {self.num_layers}], got {self.contrast_layer}")


def _common(c: SimGCLConfig, x: ModelInputs) -> dict[str, Any]:
    assert x.adjacency is not None  # ModelSpec.create checked the inputs against c.needs()
    return {"adj": x.adjacency, "dim": c.dim, "num_layers": c.num_layers, "reg": c.reg, "eps": c.eps, "cl_weight": c.cl_weight,
            "temperature": c.temperature, "item_features": x.item_text if c.item_features == "text" else None,
            "seed": x.seed, "cl_nodes": c.cl_nodes}


SIMGCL_SPEC = ModelSpec(SimGCLConfig, SimGCL, lambda c, x: SimGCL(x.num_users, x.num_items, **_common(c, x)),
                        explanation="exact",
                        summary="LightGCN with noise-perturbed views and an InfoNCE loss (Yu et al., SIGIR 2022)")
XSIMGCL_SPEC = ModelSpec(XSimGCLConfig, XSimGCL,
                         lambda c, x: XSimGCL(x.num_users, x.num_items, contrast_layer=c.contrast_layer,
                                              **_common(c, x)),
                         explanation="exact",
                         summary="SimGCL with one noisy propagation and a cross-layer contrast (Yu et al., TKDE 2023)")
