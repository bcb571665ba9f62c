"""Trains a model on a fixed synthetic log; with KILL_AT=e:b it kill -9s itself at batch b of epoch e.

Run as: python resume_script.py MODEL RUN_DIR [--resume], MODEL one of lightgcn, mf-bpr, mf-bpr-sparse (sparse_adam), graphsage,
xsimgcl.
Prints the final history and a checksum of the weights as JSON.
"""

import json
import os
import signal
import sys

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graphrec.eval import Evaluator, to_csr
from graphrec.graph import normalized_adjacency
from graphrec.nn import MFBPR, GraphSAGE, LightGCN
from graphrec.train import TrainConfig, Trainer

torch.set_num_threads(1)


class KillingTrainer(Trainer):
    def train_epoch(self):
        kill = os.environ.get("KILL_AT")
        if kill and int(kill.split(":")[0]) == self.epoch + 1:
            # die inside the epoch, after some steps have changed the weights
            original = self.model.loss
            count = {"n": 0}

            def loss(*args):
                count["n"] += 1
                if count["n"] > int(kill.split(":")[1]):
                    os.kill(os.getpid(), signal.SIGKILL)
                return original(*args)

            self.model.loss = loss
        return super().train_epoch()


def data():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 60, 900), rng.integers(0, 80, 900)
    keys = np.unique(users * 80 + items)
    users, items = keys // 80, keys % 80
    perm = rng.permutation(len(users))
    tr, va = perm[: int(0.8 * len(perm))], perm[int(0.8 * len(perm)) :]
    return to_csr(users[tr], items[tr], 60, 80), to_csr(users[va], items[va], 60, 80)


def graph(train):
    coo = train.tocoo()
    edges = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 60, 80
    g["user", "interacts", "item"].edge_index = edges
    g["item", "rev_interacts", "user"].edge_index = edges.flip(0)
    return g


def build(name, train):
    if name == "lightgcn":
        return LightGCN(60, 80, normalized_adjacency(train), dim=16, num_layers=2)
    if name in ("mf-bpr", "mf-bpr-sparse"):
        return MFBPR(60, 80, dim=16)
    if name == "xsimgcl":  # owns a noise generator, which the checkpoint must carry
        from graphrec.nn import XSimGCL

        return XSimGCL(60, 80, normalized_adjacency(train), dim=16, num_layers=2, seed=7)
    return GraphSAGE(graph(train), dim=16, num_layers=2, fanouts=[3, 3], seed=5)


def main():
    name, run_dir, resume = sys.argv[1], sys.argv[2], "--resume" in sys.argv
    train, valid = data()
    torch.manual_seed(0)
    model = build(name, train)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=0.01, seed=3, optimizer="sparse_adam" if name.endswith("-sparse") else "adam", patience=0, progress=False, device=os.environ.get("DEVICE", "cpu"),
                      metric="ndcg@5", threads=1)
    trainer = KillingTrainer(model, train, Evaluator(valid, train, ks=(5,)), cfg, run_dir)
    history = trainer.fit(resume=resume)
    checksum = sum(float(p.double().sum()) for p in model.parameters())
    print(json.dumps({"history": history, "weights": checksum}))


if __name__ == "__main__":
    main()
