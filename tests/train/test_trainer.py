import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.errors import ConfigError, GraphrecError
from graphrec.eval import Evaluator, to_csr
from graphrec.fs import atomic_path
from graphrec.graph import normalized_adjacency
from graphrec.nn import MFBPR, LightGCN, MostPopular
from graphrec.nn.base import ScoringModel
from graphrec.train import NegativeSampler, TrainConfig, Trainer
from graphrec.train.negatives import hardest

HERE = Path(__file__).parent


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(2, 15), st.integers(0, 2**31 - 1), st.data())
def test_negatives_are_never_positives(num_users, num_items, seed, data):
    pairs = data.draw(st.sets(st.tuples(st.integers(0, num_users - 1), st.integers(0, num_items - 2)), min_size=1, max_size=40))
    u, i = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    train = to_csr(u, i, num_users, num_items)  # the last item is never a positive, so every user has a negative
    sampler = NegativeSampler(train, torch.Generator().manual_seed(seed))
    users = torch.from_numpy(np.repeat(u, 20))
    neg = sampler.sample(users)
    dense = train.toarray() > 0
    assert not dense[users.numpy(), neg.numpy()].any()
    assert ((neg >= 0) & (neg < num_items)).all()


def test_negatives_uniform_over_non_positives():
    train = to_csr(np.array([0, 0]), np.array([0, 1]), 1, 4)
    neg = NegativeSampler(train, torch.Generator().manual_seed(0)).sample(torch.zeros(40_000, dtype=torch.long))
    counts = np.bincount(neg.numpy(), minlength=4)
    assert counts[0] == counts[1] == 0
    assert abs(counts[2] - counts[3]) < 0.05 * 40_000


def test_user_with_every_item_raises():
    train = to_csr(np.array([0, 0]), np.array([0, 1]), 1, 2)
    with pytest.raises(GraphrecError, match="every item"):
        NegativeSampler(train, torch.Generator()).sample(torch.tensor([0]))


def small():
    rng = np.random.default_rng(1)
    # two communities, so there is something to learn
    users = rng.integers(0, 40, 1500)
    items = (users % 2) * 25 + rng.integers(0, 25, 1500)
    keys = np.unique(users * 50 + items)
    users, items = keys // 50, keys % 50
    perm = rng.permutation(len(users))
    cut = int(0.8 * len(users))
    return to_csr(users[perm[:cut]], items[perm[:cut]], 40, 50), to_csr(users[perm[cut:]], items[perm[cut:]], 40, 50)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
def test_loss_falls_and_history_written(tmp_path, device):
    train, valid = small()
    model = LightGCN(40, 50, normalized_adjacency(train), dim=16, num_layers=2)
    cfg = TrainConfig(epochs=8, batch_size=128, lr=0.01, progress=False, device=device, metric="ndcg@10")
    history = Trainer(model, train, Evaluator(valid, train, ks=(10,)), cfg, tmp_path).fit()
    losses = [h["loss"] for h in history]
    assert losses[-1] < 0.8 * losses[0]
    assert json.loads((tmp_path / "history.json").read_text()) == history
    csv_lines = (tmp_path / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,loss,train_seconds") and len(csv_lines) == 9
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    assert model.user_emb.weight.device.type == device


def test_early_stopping(tmp_path):
    train, valid = small()
    model = LightGCN(40, 50, normalized_adjacency(train), dim=4, num_layers=1)
    # lr so small that nothing improves after the first evaluation
    cfg = TrainConfig(epochs=50, batch_size=256, lr=1e-9, patience=2, progress=False, device="cpu", metric="ndcg@10")
    history = Trainer(model, train, Evaluator(valid, train, ks=(10,)), cfg).fit()
    assert len(history) == 3


def test_min_epochs_hold_off_early_stopping_and_on_eval_sees_every_evaluation(tmp_path):
    train, valid = small()
    model = LightGCN(40, 50, normalized_adjacency(train), dim=4, num_layers=1)
    cfg = TrainConfig(epochs=50, batch_size=256, lr=1e-9, patience=2, min_epochs=7, eval_every=1, progress=False,
                      device="cpu", metric="ndcg@10")
    seen = []
    history = Trainer(model, train, Evaluator(valid, train, ks=(10,)), cfg, tmp_path,
                      on_eval=lambda epoch, m: seen.append((epoch, m["ndcg@10"]))).fit()
    assert len(history) == 7  # no improvement after epoch 1, but no stop before epoch 7
    assert seen == [(r["epoch"], r["valid_ndcg@10"]) for r in history]
    with pytest.raises(ConfigError, match=r"train\.min_epochs must be >= 0"):
        TrainConfig(min_epochs=-1)


def test_an_on_eval_exception_stops_training_after_the_epoch_is_saved(tmp_path):
    train, valid = small()
    model = LightGCN(40, 50, normalized_adjacency(train), dim=4, num_layers=1)
    cfg = TrainConfig(epochs=10, batch_size=256, progress=False, device="cpu", metric="ndcg@10")

    def stop(epoch, metrics):
        if epoch == 3:
            raise KeyboardInterrupt("pruned")

    with pytest.raises(KeyboardInterrupt, match="pruned"):
        Trainer(model, train, Evaluator(valid, train, ks=(10,)), cfg, tmp_path, on_eval=stop).fit()
    assert len(json.loads((tmp_path / "history.json").read_text())) == 3


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fit\\(\\) instead"):
        Trainer(MostPopular(2, 2), to_csr(np.array([0]), np.array([0]), 2, 2), None, TrainConfig())
    train, valid = small()
    model = LightGCN(40, 50, normalized_adjacency(train), dim=4, num_layers=1)
    cfg = TrainConfig(epochs=1, progress=False, device="cpu", metric="ndcg@20")
    with pytest.raises(ConfigError, match="ndcg@20"):
        Trainer(model, train, Evaluator(valid, train, ks=(10,)), cfg).fit()


def test_sparse_adam_updates_only_the_batch_rows():
    train, valid = small()
    model = MFBPR(40, 50, dim=8)
    before = [t.detach().clone() for t in model.get_embedding()]
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.01, optimizer="sparse_adam", progress=False, device="cpu",
                      metric="ndcg@10")
    trainer = Trainer(model, train, None, cfg)
    users, pos, neg = torch.tensor([3, 3, 7]), torch.tensor([1, 2, 2]), torch.tensor([40, 41, 1])
    trainer.optimizer.zero_grad(set_to_none=True)
    model.loss(users, pos, neg).backward()
    assert model.user_emb.weight.grad.is_sparse
    trainer.optimizer.step()
    after = model.get_embedding()
    changed_users = (after[0] != before[0]).any(1).nonzero().view(-1).tolist()
    changed_items = (after[1] != before[1]).any(1).nonzero().view(-1).tolist()
    assert changed_users == [3, 7] and changed_items == [1, 2, 40, 41]
    # a whole epoch through the trainer learns as dense Adam does: the loss falls
    history = Trainer(MFBPR(40, 50, dim=8), train, Evaluator(valid, train, ks=(10,)),
                      TrainConfig(epochs=20, batch_size=64, lr=0.01, optimizer="sparse_adam", progress=False,
                                  device="cpu", metric="ndcg@10")).fit()
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]


def test_sparse_adam_then_adam_and_no_resume_across_optimizers(tmp_path):
    train, _ = small()
    model = MFBPR(40, 50, dim=8)
    cfg = dict(epochs=1, batch_size=64, lr=0.01, progress=False, device="cpu", metric="ndcg@10")
    Trainer(model, train, None, TrainConfig(optimizer="sparse_adam", **cfg), tmp_path).fit()
    assert model.user_emb.sparse
    with pytest.raises(GraphrecError, match=r"trained with train\.optimizer sparse_adam, resumed with adam"):
        Trainer(MFBPR(40, 50, dim=8), train, None, TrainConfig(optimizer="adam", **cfg), tmp_path).fit(resume=True)
    Trainer(model, train, None, TrainConfig(optimizer="adam", **cfg)).fit()  # the same model, dense again
    assert not model.user_emb.sparse and model.user_emb.weight.grad.layout == torch.strided


def test_sparse_adam_refusals():
    with pytest.raises(ConfigError, match="weight_decay must be 0 with sparse_adam"):
        TrainConfig(optimizer="sparse_adam", weight_decay=1e-4)
    train, _ = small()
    model = LightGCN(40, 50, normalized_adjacency(train), dim=4, num_layers=1)
    with pytest.raises(ConfigError, match="LightGCN's gradients are dense: use adam"):
        Trainer(model, train, None, TrainConfig(optimizer="sparse_adam", progress=False, device="cpu"))


def run_script(model, run_dir, *args, kill_at=None, device="cpu"):
    env = {**os.environ, "PYTHONHASHSEED": "0", "DEVICE": device}
    if kill_at:
        env["KILL_AT"] = kill_at
    return subprocess.run([sys.executable, str(HERE / "resume_script.py"), model, str(run_dir), *args],
                          capture_output=True, text=True, env=env, timeout=300)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("model", ["lightgcn", "mf-bpr", "mf-bpr-sparse", "graphsage", "xsimgcl"])
def test_resume_after_kill_9_equals_uninterrupted(tmp_path, model, device):
    whole = run_script(model, tmp_path / "whole", device=device)
    assert whole.returncode == 0, whole.stderr
    killed = run_script(model, tmp_path / "killed", kill_at="4:3", device=device)  # inside epoch 4, after 3 steps
    assert killed.returncode == -9
    history = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    resumed = run_script(model, tmp_path / "killed", "--resume", device=device)
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads(whole.stdout), json.loads(resumed.stdout)
    strip = lambda hs: [{k: v for k, v in h.items() if "seconds" not in k} for h in hs]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert a["weights"] == b["weights"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    dest = tmp_path / "f.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_negatives_only_from_allowed_items() -> None:
    # user 0 has item 0; items 1 and 2 allowed, 3 not: every draw is 1 or 2
    train = to_csr(np.array([0]), np.array([0]), 1, 4)
    neg = NegativeSampler(train, torch.Generator().manual_seed(0), items=np.array([True, True, True, False]))
    drawn = neg.sample(torch.zeros(5_000, dtype=torch.long))
    assert set(drawn.tolist()) == {1, 2}
    with pytest.raises(GraphrecError, match="every item that may be drawn"):
        NegativeSampler(train, torch.Generator(), items=np.array([True, False, False, False])).sample(torch.tensor([0]))


def test_atomic_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_path_file = tmp_path / "a.txt"
        from graphrec.fs import atomic_write_text

        atomic_write_text(atomic_path_file, "x")
        from graphrec.fs import atomic_path

        recreated = tmp_path / "b.bin"
        with atomic_path(recreated) as tmp:  # a writer that replaces the temporary file with its own (0600)
            tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
    finally:
        os.umask(old)
    assert atomic_path_file.stat().st_mode & 0o777 == 0o644
    assert recreated.stat().st_mode & 0o777 == 0o644


def test_json_has_null_not_nan(tmp_path):
    from graphrec.fs import atomic_write_json

    atomic_write_json(tmp_path / "m.json", {"valid": {"ndcg@20": float("nan")}, "x": [1.5, float("inf")]})
    assert (tmp_path / "m.json").read_text().replace(" ", "").replace("\n", "") == '{"valid":{"ndcg@20":null},"x":[1.5,null]}'


def _tiny_setup():
    train = to_csr(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 2, 2, 3]), 3, 5)
    valid = to_csr(np.array([0, 1, 2]), np.array([2, 3, 4]), 3, 5)
    model = LightGCN(3, 5, normalized_adjacency(train), dim=4, num_layers=1)
    return train, Evaluator(valid, train, ks=(2,)), model


def test_one_line_per_evaluation(tmp_path, capsys):
    train, valid, model = _tiny_setup()
    lines: list[str] = []
    config = TrainConfig(epochs=4, batch_size=4, eval_every=2, metric="ndcg@2", device="cpu", patience=0)
    Trainer(model, train, valid, config, tmp_path, log=lines.append).fit()
    assert len(lines) == 2  # epochs 2 and 4
    assert lines[0].startswith("epoch 2/4  loss ") and "valid ndcg@2 " in lines[0] and "(best " in lines[0]
    assert lines[1].startswith("epoch 4/4") and lines[1].endswith(" s eval")
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal
    lines.clear()
    Trainer(LightGCN(3, 5, normalized_adjacency(train), dim=4, num_layers=1), train, None,
            TrainConfig(epochs=2, batch_size=4, device="cpu"), log=lines.append).fit()
    assert [line.split("  loss")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]  # no validation: every epoch


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, valid, model = _tiny_setup()
    config = TrainConfig(epochs=3, batch_size=4, metric="ndcg@2", device="cpu", log="tensorboard")
    Trainer(model, train, valid, config, tmp_path).fit()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
    assert len(acc.Scalars("valid/ndcg@2")) == 3


def test_tensorboard_without_the_package_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'graphrec\[tensorboard\]'"):
        TrainConfig(log="tensorboard")


class FixedScores(ScoringModel):
    """score(u, i) = item_value[i] for every user; its loss records the negatives it is given."""

    trainable = True

    def __init__(self, item_value):
        super().__init__(3, len(item_value))
        self.item_value = torch.tensor(item_value, dtype=torch.float)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def get_embedding(self):
        return torch.ones(self.num_users, 1), self.item_value.view(-1, 1)

    def loss(self, users, pos_items, neg_items):
        self.seen.append((users.clone(), neg_items.clone()))
        return (self.w ** 2).sum()


def test_hardest_picks_each_rows_top_scored_candidate():
    model = FixedScores([0.0, 3.0, 1.0, 2.0])
    cands = torch.tensor([[0, 2, 3], [2, 0, 0], [1, 3, 1]])
    assert hardest(model, torch.tensor([0, 1, 2]), cands).tolist() == [3, 2, 1]


def test_negative_candidates_train_on_the_hardest_non_positive():
    # user 0 has item 4 (the top-scored one), user 1 items 3 and 4, user 2 item 0 (the lowest-scored)
    train = to_csr(np.array([0, 1, 1, 2]), np.array([4, 3, 4, 0]), 3, 5)
    model = FixedScores([0.0, 1.0, 2.0, 3.0, 4.0])
    cfg = TrainConfig(epochs=1, batch_size=2, negative_candidates=40, patience=0, progress=False, device="cpu",
                      threads=1)
    Trainer(model, train, None, cfg).fit()
    users = torch.cat([u for u, _ in model.seen])
    neg = torch.cat([n for _, n in model.seen])
    # 40 uniform draws among 3-4 non-positives miss the best one with probability < 1e-4: seeded, it is found
    assert dict(zip(users.tolist(), neg.tolist(), strict=True)) == {0: 3, 1: 2, 2: 4}
    with pytest.raises(ConfigError, match=r"train\.negative_candidates must be >= 1"):
        TrainConfig(negative_candidates=0)
