"""One rank of the multi-process tests (started by graphrec.distributed.launch, which sets RANK and WORLD_SIZE).

Run as: python worker.py eval OUT.npz
        python worker.py train MODEL BATCH OUT.npz   (MODEL: lightgcn, mf-bpr, mf-bpr-sparse, graphsage)
        python worker.py resume MODEL DIR            (2 epochs, resumed to 3, against 3 straight)
        python worker.py fail-on-main OUT.json       (rank 0 raises inside on_main: every rank must return)
        python worker.py sparse-grads OUT.npz        (3 ranks: row-sparse gradients averaged over ranks)
Rank 0 writes OUT: the evaluation's top-K lists and hits; for train, every rank r writes OUT with ``.rank<r>``
before its suffix: the trained weights and the history.
"""

import json
import sys

import numpy as np
import torch

from graphrec import distributed
from graphrec.eval import Evaluator
from graphrec.nn import LightGCN, MostPopular
from graphrec.train import TrainConfig, Trainer
from tests.train.resume_script import build, data

torch.set_num_threads(1)


def evaluate(out: str) -> None:
    world = distributed.init(torch.device("cpu"))
    train, valid = data()
    torch.manual_seed(0)
    # MostPopular ties many items (equal counts): the tie-breaking must not depend on the rank
    models = {"mostpop": MostPopular(60, 80).fit(train), "lightgcn": LightGCN(60, 80, _adj(train), dim=8)}
    arrays = {}
    for name, model in models.items():
        # 7 users per batch: 8 batches of the 55 evaluated users, dealt out unevenly to the ranks
        ev = Evaluator(valid, train, ks=(5, 10), batch_size=7)
        ev.world = world
        result = ev.rank(model)
        arrays[f"{name}_top"], arrays[f"{name}_hits"], arrays[f"{name}_users"] = result.top_items, result.hits, result.users
    if world.is_main:
        np.savez(out, **arrays)


def _adj(train):
    from graphrec.graph import normalized_adjacency

    return normalized_adjacency(train)


def fit(name: str, batch: int, out: str) -> None:
    train, valid = data()
    torch.manual_seed(0)
    model = build(name, train)
    cfg = TrainConfig(epochs=3, batch_size=batch, lr=0.01, seed=3, patience=0, progress=False, device="cpu",
                      metric="ndcg@5", threads=1, optimizer="sparse_adam" if name.endswith("-sparse") else "adam")
    trainer = Trainer(model, train, Evaluator(valid, train, ks=(5,)), cfg)
    model.get_embedding()  # builds a sampling model's sampler: the state its rank's stream starts from
    start = {f"start_{k}": v.numpy() for k, v in model.rng_state().items()}
    history = trainer.fit()
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items() if v.layout == torch.strided}
    np.savez(out.replace(".npz", f".rank{trainer.world.rank}.npz"), history=json.dumps(history), **weights, **start)


def resume(name: str, folder: str) -> None:
    """Every rank writes DIR/rank<r>.npz: its weights after 2 epochs resumed to 3 (``resumed_*``) and after 3."""
    train, valid = data()
    weights = {}
    for label, steps in (("straight", [3]), ("resumed", [2, 3])):
        torch.manual_seed(0)
        model = build(name, train)
        for epochs in steps:  # a new Trainer (a restarted process) for each part
            cfg = TrainConfig(epochs=epochs, batch_size=50, lr=0.01, seed=3, patience=0, progress=False,
                              device="cpu", metric="ndcg@5", threads=1)
            trainer = Trainer(model, train, Evaluator(valid, train, ks=(5,)), cfg, f"{folder}/{label}")
            trainer.fit(resume=True)
        weights.update({f"{label}_{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()
                        if v.layout == torch.strided})
    np.savez(f"{folder}/rank{trainer.world.rank}.npz", **weights)


def fail_on_main(out: str) -> None:
    """Rank 0 raises an OSError inside on_main: rank 0 re-raises it, the others a RankError with its message."""
    world = distributed.init(torch.device("cpu"))

    def write() -> None:
        raise OSError(28, "No space left on device")

    try:
        distributed.on_main(write, world)
        outcome = "returned"
    except distributed.RankError as exc:
        outcome = f"RankError: {exc}"
    except OSError as exc:
        outcome = f"OSError: {exc}"
    with open(out.replace(".json", f".rank{world.rank}.json"), "w") as fh:
        json.dump(outcome, fh)


def sparse_grads(out: str) -> None:
    """Rank 0: rows 0, 0 (duplicated, not coalesced) and 2; rank 1: rows 2 and 4; rank 2: no gradient at all.
    A second table no rank reached keeps no gradient."""
    world = distributed.init(torch.device("cpu"))
    table = torch.nn.Parameter(torch.zeros(5, 2))
    if world.rank == 0:
        table.grad = torch.sparse_coo_tensor([[0, 0, 2]], [[1.0, 2.0], [3.0, 4.0], [6.0, 0.0]], (5, 2))
    elif world.rank == 1:
        table.grad = torch.sparse_coo_tensor([[2, 4]], [[3.0, 3.0], [9.0, -3.0]], (5, 2))
    untouched = torch.nn.Parameter(torch.zeros(3, 2))
    distributed.average_sparse_gradients([table, untouched], world)
    assert table.grad is not None
    np.savez(out.replace(".npz", f".rank{world.rank}.npz"), grad=table.grad.to_dense().numpy(),
             sparse=table.grad.is_sparse, untouched_none=untouched.grad is None)


if __name__ == "__main__":
    if sys.argv[1] == "eval":
        evaluate(sys.argv[2])
    elif sys.argv[1] == "resume":
        resume(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "sparse-grads":
        sparse_grads(sys.argv[2])
    elif sys.argv[1] == "fail-on-main":
        fail_on_main(sys.argv[2])
    else:
        fit(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    distributed.destroy()
