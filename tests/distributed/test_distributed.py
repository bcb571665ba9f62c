"""Multi-process training and evaluation on this CPU (gloo): shards, equality with one process, a killed rank."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graphrec.distributed import World, current_world, launch, rank_seed, shard_bounds
from graphrec.errors import ConfigError
from tests.train.resume_script import build, data

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
ENV = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_shards_cover_the_batch_in_order():
    assert [shard_bounds(5, r, 2) for r in range(2)] == [(0, 3), (3, 5)]
    assert [shard_bounds(2, r, 3) for r in range(3)] == [(0, 1), (1, 2), (2, 2)]  # the last rank's shard is empty
    assert [shard_bounds(9, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 9)]


def test_world_from_the_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert current_world() == World(0, 1, 0, 1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert current_world() == World(3, 4, 1, 2) and not current_world().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4, WORLD_SIZE=4"):
        current_world()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK='x' is not an integer"):
        current_world()


def run_worker(nproc: int, *args: str) -> None:
    code = launch([sys.executable, str(WORKER), *args], nproc, env=ENV)
    assert code == 0, f"{nproc} ranks of worker.py {' '.join(args)} exited with {code}"


def test_rank_seeds():
    assert rank_seed(7, 0) == 7  # rank 0: the one-process stream
    seeds = [rank_seed(7, r) for r in range(1, 5)]
    assert len({*seeds, 7}) == 5 and seeds == [rank_seed(7, r) for r in range(1, 5)]
    assert rank_seed(8, 1) != rank_seed(7, 1) and 0 <= rank_seed(-3, 1) < 2**63
    with pytest.raises(ValueError, match="rank must be >= 0, got -1"):
        rank_seed(7, -1)


def test_which_random_states_a_resumed_rank_takes():
    from graphrec.train.trainer import rank_rng

    two = {"rng": "rank 0", "ranks": ["rank 0", "rank 1"]}
    assert rank_rng(two, World(1, 2, 1, 2)) == ("rank 1", None)  # as many ranks: each its own
    assert rank_rng(two, World()) == (two, None)  # one process: the top level (rank 0's)
    # another number of ranks: rank 0's everywhere (the same batches); ranks other than 0 restart their own draws
    assert rank_rng(two, World(0, 3, 0, 3)) == (two, False)
    assert rank_rng(two, World(2, 3, 2, 3)) == (two, True)
    one = {"rng": "one process"}
    assert rank_rng(one, World(1, 2, 1, 2)) == (one, True)


def test_sharded_evaluation_equals_one_process_exactly(tmp_path):
    run_worker(1, "eval", str(tmp_path / "one.npz"))
    run_worker(2, "eval", str(tmp_path / "two.npz"))
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(one.files) == sorted(two.files)
    for key in one.files:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    assert one["mostpop_top"].shape == (55, 10)


def load_rank(path: Path, rank: int) -> tuple[dict[str, np.ndarray], list[dict]]:
    arrays = np.load(path.with_suffix(f".rank{rank}.npz"))
    return {k: arrays[k] for k in arrays.files if k != "history"}, json.loads(str(arrays["history"]))


@pytest.mark.parametrize(("model", "nproc", "batch"), [
    ("lightgcn", 2, 50),  # shards of 25; the 660 train pairs end with a batch of 10
    ("mf-bpr", 3, 7),  # the last batch has 2 pairs for 3 ranks: one rank's shard is empty
    ("mf-bpr-sparse", 3, 7),  # sparse_adam: row-sparse gradients averaged by graphrec's gathers, not DDP
    ("xsimgcl", 2, 50),  # InfoNCE over the whole batch's nodes on every rank, as one process
])
def test_data_parallel_training_equals_one_process(tmp_path, model, nproc, batch):
    """Each shard's loss is weighted by its share of the global batch and the gradients are averaged (by DDP, or
    for sparse_adam's row-sparse tables by average_sparse_gradients), so a step is
    the one-process step up to float32 summation order: after 3 epochs (~40-280 Adam steps) the weights agree to
    1e-5. The validation metrics rank those scores: equal here, but a rounding difference may swap two nearly
    equal scores at the cut-off for a user (one of 55 users moves ndcg@5 by at most 1/55)."""
    run_worker(1, "train", model, str(batch), str(tmp_path / "one.npz"))
    run_worker(nproc, "train", model, str(batch), str(tmp_path / "many.npz"))
    one, hist_one = load_rank(tmp_path / "one.npz", 0)
    for rank in range(nproc):
        many, hist_many = load_rank(tmp_path / "many.npz", rank)
        for key, value in one.items():
            np.testing.assert_allclose(many[key], value, atol=1e-5, err_msg=f"rank {rank}: {key}")
        for a, b in zip(hist_one, hist_many, strict=True):
            assert a["valid_ndcg@5"] == pytest.approx(b["valid_ndcg@5"], abs=1 / 55)
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_row_sparse_gradients_are_averaged_over_ranks(tmp_path):
    run_worker(3, "sparse-grads", str(tmp_path / "grads.npz"))
    # the sum over ranks, row by row, divided by 3 ranks
    expected = np.array([[4, 6], [0, 0], [9, 3], [0, 0], [9, -3]], dtype=np.float32) / 3
    for rank in range(3):
        grads = np.load(tmp_path / f"grads.rank{rank}.npz")
        assert bool(grads["sparse"]) and bool(grads["untouched_none"])  # as in one process: SparseAdam skips it
        np.testing.assert_allclose(grads["grad"], expected, rtol=1e-6, err_msg=f"rank {rank}")


def test_graphsage_ranks_sample_their_own_shards_and_stay_in_sync(tmp_path):
    run_worker(2, "train", "graphsage", "50", str(tmp_path / "sage.npz"))
    zero, hist = load_rank(tmp_path / "sage.npz", 0)
    one, _ = load_rank(tmp_path / "sage.npz", 1)
    # each rank samples from its own stream; rank 0's is the one-process stream (the model's seed)
    start = zero.pop("start_sampler.cpu")
    assert not np.array_equal(start, one.pop("start_sampler.cpu"))
    alone = build("graphsage", data()[0])
    alone.get_embedding()
    np.testing.assert_array_equal(start, alone.rng_state()["sampler.cpu"].numpy())
    for key in zero:  # DDP keeps the replicas equal though each rank sampled a different subgraph
        np.testing.assert_array_equal(zero[key], one[key], err_msg=key)
    assert len(hist) == 3 and all(np.isfinite(row["loss"]) for row in hist)
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_a_failing_rank_stops_the_others(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text("import os, sys, time\nif os.environ['RANK'] == '1':\n    sys.exit(5)\ntime.sleep(60)\n")
    t = time.monotonic()
    assert launch([sys.executable, str(script)], 2, grace=2) == 5
    assert time.monotonic() - t < 20  # rank 0 was stopped, not waited for


# ---------------------------------------------------------------- the command line


TINY = """name: tiny
dataset: {name: tiny, format: synthetic, users: 300, items: 200, interactions: 6000, seed: 1}
split: {method: random, ratios: [0.8, 0.1, 0.1], seed: 2020}
model: {name: lightgcn, dim: 16, num_layers: 2}
train: {epochs: 30, batch_size: 512, lr: 0.01, seed: 2020, threads: 1, patience: 0, progress: false}
eval: {ks: [20]}
"""


def graphrec_run(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "graphrec", "run", *args], env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def rank_pid(parent: int, rank: int) -> int | None:
    """The pid of the child of ``parent`` whose environment says ``RANK=rank``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and f"RANK={rank}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def epochs_done(run_dir: Path) -> int:
    try:
        return len(json.loads((run_dir / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def test_two_process_run_a_killed_rank_and_resume(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    # the uninterrupted 2-process run, and the 1-process run with the same global batch
    for out, nproc in (("ref2", "2"), ("ref1", "1")):
        p = graphrec_run(str(config), "--out", str(tmp_path / out), "--nproc", nproc)
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
    ref2 = json.loads((tmp_path / "ref2" / "metrics.json").read_text())
    ref1 = json.loads((tmp_path / "ref1" / "metrics.json").read_text())
    assert ref2["world_size"] == 2 and ref1["world_size"] == 1
    # 30 epochs of 10 steps: float32 summation order may reorder nearly equal scores at the cut-off for a user or
    # two (each moves recall@20 by ~1/(60 users · 2 items) = 0.008); on this machine they are equal
    assert ref2["test"]["recall@20"] == pytest.approx(ref1["test"]["recall@20"], abs=0.01)
    assert ref2["test"]["ndcg@20"] == pytest.approx(ref1["test"]["ndcg@20"], abs=0.01)
    # rank 0 wrote the run directory, as one process would: the same files, none left half-written
    assert sorted(p.name for p in (tmp_path / "ref2").iterdir()) == sorted(p.name for p in (tmp_path / "ref1").iterdir())

    # kill rank 1 in the middle of the run: the launcher stops rank 0 and says how to resume
    run_dir = tmp_path / "killed"
    p = graphrec_run(str(config), "--out", str(run_dir), "--nproc", "2")
    deadline = time.monotonic() + 120
    while epochs_done(run_dir) < 3:
        assert p.poll() is None and time.monotonic() < deadline, "the run ended before its third epoch"
        time.sleep(0.05)
    pid = rank_pid(p.pid, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _, stderr = p.communicate(timeout=60)  # no hang: both ranks are gone within the grace period
    assert p.returncode == 128 + signal.SIGKILL
    assert f"rank 1 (pid {pid}) was killed by SIGKILL; the other ranks were stopped" in stderr
    assert f"graphrec run --resume {run_dir} --nproc 2" in stderr
    assert not (run_dir / "metrics.json").exists()
    assert 3 <= epochs_done(run_dir) < 30

    p = graphrec_run("--resume", str(run_dir), "--nproc", "2")
    _, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["epochs_run"] == 30
    # the last checkpoint carries the weights, Adam's state and the batch order: the run ends where the
    # uninterrupted one did
    assert resumed["test"]["recall@20"] == ref2["test"]["recall@20"]
    assert resumed["test"]["ndcg@20"] == ref2["test"]["ndcg@20"]


def test_nproc_refusals(tmp_path, monkeypatch, capsys):
    from graphrec.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    # a closed-form model is fitted once: no ranks are started for it
    ease = tmp_path / "ease.yaml"
    ease.write_text(TINY.split("model:")[0] + "model: {name: ease}\n")
    assert main(["run", str(ease), "--nproc", "2", "--out", str(tmp_path / "r")]) == 2
    assert "--nproc 2: model 'ease' is fitted in closed form" in capsys.readouterr().err
    # under torchrun the pipeline refuses it on every rank, before the rendezvous or any file
    from graphrec.run import load_config, run_experiment

    monkeypatch.setattr("graphrec.run.pipeline.distributed.current_world", lambda: World(1, 2, 1, 2))
    monkeypatch.setattr("graphrec.run.pipeline.distributed.init", lambda device: pytest.fail("no rendezvous"))
    with pytest.raises(ConfigError, match=r"^2 processes: model 'ease' is fitted in closed form"):
        run_experiment(load_config(ease), tmp_path / "r")
    assert not (tmp_path / "r").exists()
    monkeypatch.undo()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["run", str(config), "--nproc", "2", "--out", str(tmp_path / "r")]) == 2
    assert "--nproc starts its own ranks: under torchrun (WORLD_SIZE is set), leave it out" in capsys.readouterr().err
    assert main(["tune", str(config), "--trials", "2"]) == 2
    assert "graphrec tune runs its trials in one process" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_restores_each_ranks_own_generators(tmp_path):
    """GraphSAGE's ranks sample their own shards, so each rank's sampler state differs: the checkpoint keeps every
    rank's, and 2 epochs resumed to 3 end on the weights of 3 straight epochs, on both ranks."""
    run_worker(2, "resume", "graphsage", str(tmp_path))
    for rank in range(2):
        w = np.load(tmp_path / f"rank{rank}.npz")
        for key in (k for k in w.files if k.startswith("straight_")):
            np.testing.assert_array_equal(w[key], w["resumed_" + key[len("straight_"):]], err_msg=f"rank {rank}: {key}")


def test_an_error_in_rank_0s_own_work_reaches_every_rank(tmp_path):
    run_worker(2, "fail-on-main", str(tmp_path / "out.json"))  # no rank waits for rank 0 forever
    assert json.loads((tmp_path / "out.rank0.json").read_text()) == "OSError: [Errno 28] No space left on device"
    assert json.loads((tmp_path / "out.rank1.json").read_text()) == \
        "RankError: OSError: [Errno 28] No space left on device"


@pytest.mark.parametrize("reaction", ["sys.exit(3)", "os.abort()"])
def test_the_rank_that_failed_is_named_not_the_one_that_lost_contact(tmp_path, capsys, reaction):
    script = tmp_path / "rank.py"
    # rank 0 reacts at once to a peer's failure (status 3, as graphrec.cli exits then, or an abort inside gloo);
    # rank 1, the cause, fails later
    script.write_text(f"import os, sys, time\nif os.environ['RANK'] == '0':\n    {reaction}\n"
                      "time.sleep(0.5)\nsys.exit(7)\n")
    assert launch([sys.executable, str(script)], 2, grace=2) == 7
    assert "error: rank 1 " in capsys.readouterr().err
