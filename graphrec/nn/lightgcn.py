"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution
Network for Recommendation", SIGIR 2020), with an optional text-aware layer 0."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from graphrec.errors import ConfigError
from graphrec.nn.base import ScoringModel, bpr_loss
from graphrec.nn.spec import FloatRange, IntRange, ModelConfig, ModelInputs, ModelSpec, Needs, Range, check_dim_reg
from graphrec.nn.spmm import ColumnBlocks, cache_sized


class _Propagate(torch.autograd.Function):
    """``Σ_k α_k Â^k E`` with a backward pass that reuses the same matrix.

    ``Â`` is symmetric, so the gradient is the same propagation applied to the
    incoming gradient: no transpose, no autograd graph through L sparse
    products.
    """

    @staticmethod
    def forward(ctx: Any, adj: Tensor | ColumnBlocks, emb: Tensor, alphas: Tensor) -> Tensor:
        ctx.adj = adj  # a tensor or its column blocks
        ctx.save_for_backward(alphas)
        return _propagate(adj, emb, alphas)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        (alphas,) = ctx.saved_tensors
        return None, _propagate(ctx.adj, grad.contiguous(), alphas), None


def _propagate(adj: Tensor | ColumnBlocks, emb: Tensor, alphas: Tensor) -> Tensor:
    weights = alphas.tolist()
    out = emb * weights[0]
    h = emb
    for a in weights[1:]:
        h = adj @ h  # [U+I, D]
        out.add_(h, alpha=a)
    return out


#: the rows' share of the adjacency's non-zeros above which a step propagates the whole graph instead
ROWS_MAX_SHARE = 0.5


def csr_rows(adj: Tensor, rows: Tensor) -> Tensor:
    """Rows ``rows`` of a sparse CSR matrix, as a sparse CSR matrix ``[len(rows), adj.shape[1]]``."""
    crow, col = adj.crow_indices(), adj.col_indices()
    starts, lengths = crow[rows].long(), (crow[rows + 1] - crow[rows]).long()  # [R]
    offsets = torch.cumsum(lengths, 0)
    owner = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths)  # [nnz]
    index = starts[owner] + torch.arange(int(offsets[-1]) if len(rows) else 0, device=rows.device) - (offsets - lengths)[owner]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.cat([offsets.new_zeros(1), offsets]).to(crow.dtype), col[index],
                                       adj.values()[index], (len(rows), adj.shape[1]), check_invariants=False)


class _PropagateRows(torch.autograd.Function):
    """Rows ``rows`` of ``Σ_k α_k Â^k E``: what a training batch needs, with less work than the whole propagation.

    The last layer is computed for those rows only (``Â[rows] h``, a product
    over their own edges), and the backward starts from their gradient the
    same way: ``∂/∂E = Σ_k α_k Â^k Sᵀ G`` (``S`` selects the rows, ``Â`` is
    symmetric), whose first product ``Â Sᵀ G = Â[rows]ᵀ G`` only touches the
    rows' edges. With L layers: 2(L - 1) products over the whole graph per
    step instead of 2L.
    """

    @staticmethod
    def forward(ctx: Any, adj: Tensor | ColumnBlocks, emb: Tensor, alphas: Tensor, rows: Tensor, sub: Tensor) -> Tensor:
        weights = alphas.tolist()
        out = emb.index_select(0, rows) * weights[0]  # [R, D]
        h = emb
        for a in weights[1:-1]:
            h = adj @ h  # [N, D]
            out.add_(h.index_select(0, rows), alpha=a)
        if len(weights) > 1:
            out.add_(sub @ h, alpha=weights[-1])  # the last layer, for the rows only
        ctx.adj = adj
        ctx.save_for_backward(alphas, rows, sub)
        ctx.num_nodes = emb.shape[0]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None, None, None]:
        alphas, rows, sub = ctx.saved_tensors
        adj = ctx.adj
        weights = alphas.tolist()
        grad = grad.contiguous()
        out = grad.new_zeros(ctx.num_nodes, grad.shape[1]).index_add_(0, rows, grad, alpha=weights[0])
        if len(weights) > 1:
            h = sub.t() @ grad  # Â Sᵀ G, over the rows' edges: [N, D]
            out.add_(h, alpha=weights[1])
            for a in weights[2:]:
                h = adj @ h
                out.add_(h, alpha=a)
        return None, out, None, None, None


def propagate_rows(adj: Tensor, emb: Tensor, alphas: Tensor, rows: Tensor,
                   product: Tensor | ColumnBlocks | None = None) -> Tensor:
    """Rows ``rows`` (distinct) of :func:`propagate`'s result, ``[R, D]``: a training step's embeddings.

    For a sparse CSR ``adj`` whose ``rows`` hold at most :data:`ROWS_MAX_SHARE`
    of its non-zeros (a batch of a large graph), with one whole-graph product
    fewer each way (see :class:`_PropagateRows`); otherwise (a small graph,
    where a batch touches most rows, or another layout) the rows of the whole
    propagation. ``product``: what the whole-graph products multiply by
    (``adj`` or its :class:`~graphrec.nn.spmm.ColumnBlocks`; default ``adj``).
    """
    product = adj if product is None else product
    if adj.layout == torch.sparse_csr:
        crow = adj.crow_indices()
        if int((crow[rows + 1] - crow[rows]).sum()) <= ROWS_MAX_SHARE * adj.values().numel():
            return _PropagateRows.apply(product, emb, alphas, rows, csr_rows(adj, rows))
    return propagate(product, emb, alphas).index_select(0, rows)


@dataclass(frozen=True)
class FoldIn:
    """What re-propagating one user's row of a LightGCN-style model needs (:meth:`LightGCN.fold_in`).

    Attributes:
        layers: Layers ``0..L-1`` of every node, ``[N, D]`` each.
        weights: ``[L + 1]`` weights of layers ``0..L`` in the final embedding.
        degree: ``[N]`` every node's degree in the trained graph.
        user0: ``[U, D]`` the users' layer-0 embeddings.
        num_users: U (item ``j`` is node ``U + j``).
        context: Per trained user, their non-item neighbours (attribute nodes); empty without them.
    """

    layers: list[Tensor]
    weights: Tensor
    degree: Tensor
    user0: Tensor
    num_users: int
    context: list[Tensor]

    def user(self, items: Tensor, user: int | None = None) -> Tensor:
        """The user's final embedding ``[D]`` with neighbours ``items`` (item indices, repeats ignored)."""
        if len(items) == 0:
            raise ValueError("fold_in needs at least one item")
        nodes = torch.unique(items.to(self.degree.device)) + self.num_users
        if user is not None and self.context:
            nodes = torch.cat([nodes, self.context[user].to(nodes)])
        # an item without train edges gets this user as its one neighbour
        coef = (len(nodes) * self.degree[nodes].clamp(min=1)).rsqrt().unsqueeze(1)  # [n, 1]
        w = self.weights.tolist()
        out = self.user0[user] * w[0] if user is not None else self.user0.new_zeros(self.user0.shape[1])
        for k, layer in enumerate(self.layers, start=1):
            out = out + w[k] * (coef * layer[nodes]).sum(0)
        return out


def propagate(adj: Tensor | ColumnBlocks, emb: Tensor, alphas: Tensor) -> Tensor:
    """LightGCN's layer combination ``Σ_{k=0..L} α_k Â^k E`` (eq. 8).

    Args:
        adj: Symmetric normalised adjacency ``[N, N]`` (sparse CSR or COO, or
            a CSR's :class:`~graphrec.nn.spmm.ColumnBlocks`).
        emb: Layer-0 embeddings ``[N, D]``.
        alphas: ``[L + 1]`` layer weights.
    """
    return _Propagate.apply(adj, emb, alphas)


class LightGCN(ScoringModel):
    """LightGCN: linear propagation of id embeddings over the normalised user-item graph.

    .. math::
        e^{(k+1)} = \\tilde{A} e^{(k)}, \\quad
        e = \\sum_{k=0}^{L} \\alpha_k e^{(k)}, \\quad
        \\hat{y}_{ui} = e_u^\\top e_i

    Trained with BPR and L2 regularisation of the batch's layer-0 embeddings
    (``reg * Σ ||e⁰||² / 2B``, the paper's eq. 15; RecBole's default uses
    unsquared norms).

    Args:
        num_users, num_items: Sizes.
        adj: ``D^-1/2 A D^-1/2`` over users, then items, then any extra
            nodes, ``[num_users + num_items + Σ extra_nodes]²`` (see
            :func:`graphrec.graph.normalized_adjacency`). Kept as a buffer, so
            ``model.to(device)`` moves it.
        dim: Embedding size.
        num_layers: Propagation layers L.
        alpha: Layer weights ``[L + 1]``; default ``1 / (L + 1)`` each.
        reg: L2 weight.
        item_features: Optional ``[num_items, F]`` text features: an item's
            layer-0 embedding becomes ``id_emb + W x`` (text-aware LightGCN),
            so an item without train interactions still has a meaningful one.
        user_features: Optional ``[num_users, F']`` features, the same way.
        extra_nodes: Attribute node types propagated with users and items,
            in the adjacency's order, with their counts (``{"genre": 19}``);
            each node gets a learned layer-0 embedding. Scores stay user ·
            item; the attribute nodes carry signal between items that share
            them.

    Shapes:
        get_embedding(): ``([U, D], [I, D])``.
    """

    trainable = True
    adj: Tensor
    alphas: Tensor
    item_x: Tensor
    user_x: Tensor

    def __init__(
        self,
        num_users: int,
        num_items: int,
        adj: Tensor,
        dim: int = 64,
        num_layers: int = 3,
        alpha: list[float] | None = None,
        reg: float = 1e-4,
        item_features: Tensor | None = None,
        user_features: Tensor | None = None,
        extra_nodes: dict[str, int] | None = None,
    ) -> None:
        super().__init__(num_users, num_items)
        extra = dict(extra_nodes or {})
        n = num_users + num_items + sum(extra.values())
        if tuple(adj.shape) != (n, n):
            what = "users then items" + (f" then {', '.join(extra)}" if extra else "")
            raise ValueError(f"adj must be [{n}, {n}] ({what}), got {list(adj.shape)}")
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        alphas = torch.full((num_layers + 1,), 1.0 / (num_layers + 1)) if alpha is None else torch.tensor(alpha, dtype=torch.float)
        if alphas.shape != (num_layers + 1,):
            raise ValueError(f"alpha needs {num_layers + 1} weights, got {alphas.numel()}")
        self.dim, self.num_layers, self.reg = dim, num_layers, reg
        self.register_buffer("adj", adj, persistent=False)
        self.register_buffer("alphas", alphas)
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)
        #: ``[(node type, count), ...]``: what the rows of ``adj`` are, in order
        self.node_layout = [("user", num_users), ("item", num_items), *extra.items()]
        self.extra_emb: nn.Embedding | None = None
        if extra:
            self.extra_emb = nn.Embedding(sum(extra.values()), dim)
            nn.init.xavier_uniform_(self.extra_emb.weight)
        self.item_proj: nn.Linear | None = None
        self.user_proj: nn.Linear | None = None
        if item_features is not None:
            self.register_buffer("item_x", item_features.float(), persistent=False)
            self.item_proj = nn.Linear(item_features.shape[1], dim, bias=False)
            nn.init.xavier_uniform_(self.item_proj.weight)
        if user_features is not None:
            self.register_buffer("user_x", user_features.float(), persistent=False)
            self.user_proj = nn.Linear(user_features.shape[1], dim, bias=False)
            nn.init.xavier_uniform_(self.user_proj.weight)

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "dim": self.dim, "num_layers": self.num_layers, "reg": self.reg,
                "alpha": self.alphas.tolist(), "text_items": self.item_proj is not None,
                "text_users": self.user_proj is not None, "extra_nodes": dict(self.node_layout[2:])}

    def layer0(self) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings ``([U, D], [I, D])``: ids, plus projected features where given."""
        users, items = self.user_emb.weight, self.item_emb.weight
        if self.item_proj is not None:
            items = items + self.item_proj(self.item_x)
        if self.user_proj is not None:
            users = users + self.user_proj(self.user_x)
        return users, items

    def layer0_all(self) -> Tensor:
        """Layer-0 embeddings of every row of ``adj``: ``[N, D]`` (users, items, extra nodes)."""
        parts = list(self.layer0())
        if self.extra_emb is not None:
            parts.append(self.extra_emb.weight)
        return torch.cat(parts)

    def product(self) -> Tensor | ColumnBlocks:
        """``adj`` as it multiplies ``[N, dim]`` embeddings: on the CPU, a large graph's column blocks
        (:func:`graphrec.nn.spmm.cache_sized`), built once per adjacency."""
        cached = self.__dict__.get("_product")
        if cached is None or cached[0] is not self.adj:
            cached = (self.adj, cache_sized(self.adj, self.dim))
            self.__dict__["_product"] = cached
        return cached[1]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:  # .to(), .cuda(), .half()...: blocks of the old adj go
        self.__dict__.pop("_product", None)
        return super()._apply(fn, *args, **kwargs)

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        out = propagate(self.product(), self.layer0_all(), self.alphas)  # [N, D]
        return out[: self.num_users], out[self.num_users : self.num_users + self.num_items]

    def layer_weights(self) -> Tensor:
        """Each layer's weight in the final embedding, ``[L + 1]`` (layers 0..L): ``α``."""
        return self.alphas

    @torch.no_grad()
    def fold_in_state(self) -> FoldIn:
        layers, h = [], self.layer0_all()
        for _ in range(self.num_layers):
            layers.append(h)
            h = self.product() @ h
        crow = self.adj.to_sparse_csr().crow_indices() if self.adj.layout != torch.sparse_csr else self.adj.crow_indices()
        return FoldIn(layers=layers, weights=self.layer_weights().to(h), degree=(crow[1:] - crow[:-1]).to(h),
                      user0=self.layer0()[0], num_users=self.num_users, context=self._user_context())

    def _user_context(self) -> list[Tensor]:
        """Each user's neighbours in ``adj`` that are not items (user attribute nodes); [] where no user has any
        (item attribute nodes link to items only)."""
        if not self.node_layout[2:]:
            return []
        adj = self.adj.to_sparse_csr() if self.adj.layout != torch.sparse_csr else self.adj
        crow, col = adj.crow_indices(), adj.col_indices()
        end = int(crow[self.num_users])
        users_cols = col[:end]
        other = (users_cols < self.num_users) | (users_cols >= self.num_users + self.num_items)
        if not bool(other.any()):
            return []
        rows = torch.repeat_interleave(torch.arange(self.num_users, device=col.device), crow[1:self.num_users + 1].diff(
            prepend=crow[:1]))
        counts = torch.bincount(rows[other], minlength=self.num_users).tolist()
        return list(users_cols[other].split(counts))

    def fold_in(self, items: Tensor, user: int | None = None, state: Any = None) -> Tensor:
        """The user's row of the propagation, re-computed with ``items`` as their neighbours.

        .. math::
            e_u^{(k)} = \\sum_{j \\in N'(u)} \\frac{e_j^{(k-1)}}{\\sqrt{|N'(u)|\\, d_j}}, \\quad
            e_u = \\alpha_0 e_u^{(0)} + \\sum_{k=1}^{L} \\alpha_k e_u^{(k)}

        with ``N'(u)`` the given items (and a trained user's attribute
        neighbours), and every other node's layers and degree ``d_j`` as
        trained (one hop: the items do not see the new edges until the model
        is retrained). For a trained user and their train items it is exactly
        their trained embedding; a new user's layer 0 is zero.
        """
        s: FoldIn = state if state is not None else self.fold_in_state()
        return s.user(items, user)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """BPR on the propagated embeddings plus ``reg · Σ ||e⁰||² / 2B`` on the batch's layer-0 rows.

        Shapes:
            users, pos_items, neg_items: ``[B]`` → scalar.
        """
        e0 = self.layer0_all()  # [N, D]
        rows = torch.cat([users, pos_items + self.num_users, neg_items + self.num_users])  # [3B]
        distinct, where = torch.unique(rows, return_inverse=True)
        batch_rows = propagate_rows(self.adj, e0, self.alphas, distinct, self.product()).index_select(0, where)
        return self._bpr_reg(batch_rows, e0, rows)

    def bpr_with_reg(self, final: Tensor, e0: Tensor, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """BPR on the rows of ``final [N, D]`` plus ``reg · Σ ||e⁰||² / 2B`` on the batch's rows of ``e0 [N, D]``
        (the paper's eq. 15); shared by the models that propagate differently (SimGCL, XSimGCL)."""
        # One gather for the three roles: its backward is one index_add, not three.
        rows = torch.cat([users, pos_items + self.num_users, neg_items + self.num_users])  # [3B]
        return self._bpr_reg(final.index_select(0, rows), e0, rows)

    def _bpr_reg(self, batch_rows: Tensor, e0: Tensor, rows: Tensor) -> Tensor:
        """BPR and the layer-0 L2 term from the final embeddings of ``rows`` = users, positives, negatives ``[3B]``."""
        batch = rows.shape[0] // 3
        e_u, e_p, e_n = batch_rows.split(batch)  # [B, D] each
        rank = bpr_loss((e_u * e_p).sum(-1), (e_u * e_n).sum(-1))
        # Σ over the batch's rows of ||e⁰_row||², written as counts · row norms: no scatter in backward.
        counts = torch.bincount(rows, minlength=e0.shape[0]).to(e0.dtype)  # [N]
        reg = (counts * e0.pow(2).sum(1)).sum() / (2 * batch)
        return rank + self.reg * reg


@dataclass(frozen=True)
class LightGCNConfig(ModelConfig):
    """LightGCN's hyperparameters.

    Attributes:
        dim: Embedding size (>= 1).
        num_layers: Propagation layers L (>= 0; 0 is matrix factorisation).
        reg: L2 weight on the batch's layer-0 embeddings (>= 0).
        item_features: ``"text"``: an item's layer-0 embedding is its id
            embedding plus a learned projection of its text features
            (text-aware LightGCN, which also places items without train
            interactions); ``"none"``: ids only.
        attribute_nodes: Propagate over the item attribute nodes of
            ``graph.item_attributes`` (genres...) too, each with a learned
            embedding; their share of a score is then explained exactly.
    """

    name: Literal["lightgcn"] = "lightgcn"
    search_space: ClassVar[Mapping[str, Range]] = {
        "num_layers": IntRange(1, 4), "reg": FloatRange(1e-6, 1e-2, log=True), "train.lr": FloatRange(1e-4, 1e-2, log=True)}
    dim: int = 64
    num_layers: int = 3
    reg: float = 1e-4
    item_features: Literal["none", "text"] = "none"
    attribute_nodes: bool = False

    def __post_init__(self) -> None:
        check_dim_reg(self.dim, self.reg)
        if self.num_layers < 0:
            raise ConfigError(f"num_layers must be >= 0, got {self.num_layers}")
        if self.item_features not in ("none", "text"):
            raise ConfigError(f"item_features must be 'none' or 'text', got {self.item_features!r}")

    def needs(self) -> Needs:
        return Needs(adjacency=True, attribute_nodes=self.attribute_nodes, item_text=self.item_features == "text")


def _build(c: LightGCNConfig, x: ModelInputs) -> LightGCN:
    assert x.adjacency is not None  # ModelSpec.create checked the inputs against c.needs()
    return LightGCN(x.num_users, x.num_items, x.adjacency, dim=c.dim, num_layers=c.num_layers, reg=c.reg,
                    item_features=x.item_text if c.item_features == "text" else None,
                    extra_nodes=dict(x.extra_nodes) if c.attribute_nodes else None)


SPEC = ModelSpec(LightGCNConfig, LightGCN, _build, explanation="exact",
                 summary="linear propagation over the normalised user-item graph (item_features: text for "
                         "text-aware layer 0; attribute_nodes to propagate over genres...)")
