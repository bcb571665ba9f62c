"""graphrec retrain: a new run on the served run's data plus every event and item it received."""

import graphrec
from graphrec.cli import main
from graphrec.data.served import with_served_log
from graphrec.run import load_config
from graphrec.serve.live import open_live


def test_retrain_folds_the_log_into_a_new_run(served, tmp_path, capsys):
    run = served("ease")
    live = open_live(run)
    live.add_items([{"item": "sku500", "text": "a blue thing", "title": "Product 500"}])
    live.add_events([{"user": "u0", "item": "sku500", "timestamp": 1_700_000_000},
                     {"user": "fresh", "item": "sku500"}, {"user": "fresh", "item": "sku17"},
                     {"user": "fresh", "item": "sku18"}])
    live.log.close()

    config = load_config(run / "config.yaml", strict=False)
    base = config.dataset.load()
    merged = with_served_log(base, run / "serving" / "events.log")
    assert merged.num_items == base.num_items + 1 and merged.num_users == base.num_users + 1
    assert len(merged) == len(base) + 4
    assert merged.item_info["title"].iloc[-1] == "Product 500"
    assert merged.frame().tail(4)["item"].tolist() == ["sku500", "sku500", "sku17", "sku18"]

    out = tmp_path / "retrained"
    assert main(["retrain", str(run), "--out", str(out), "--quiet"]) == 0
    assert "plus 2 log records" in capsys.readouterr().out
    new = graphrec.load(out)
    assert "fresh" in new.users.ids.tolist() and "sku500" in new.items.ids.tolist()
    assert load_config(out / "config.yaml", strict=False).dataset.added == str((run / "serving" / "events.log").resolve())


def tiny_with_log(tmp_path):
    """User 1 rated item 10 a 5 (t=10) and item 11 a 2 (t=20); the log repeats both pairs and has user 2
    choose item 10 twice (a client's retry)."""
    import numpy as np

    from graphrec.data.dataset import Dataset, Interactions
    from graphrec.data.vocab import Vocabulary
    from graphrec.data.wal import EventLog

    ds = Dataset("tiny", Interactions(np.array([0, 0]), np.array([0, 1]), np.array([5.0, 2.0], dtype=np.float32),
                                      np.array([10, 20])), Vocabulary(np.array([1]), name="user"),
                 Vocabulary(np.array([10, 11]), name="item"))
    path = tmp_path / "events.log"
    with EventLog(path) as log, log.locked():
        log.append({"op": "events", "events": [{"user": 1, "item": 10, "timestamp": 100.0},
                                               {"user": 1, "item": 11, "timestamp": 200.0}]})
        log.append({"op": "events", "events": [{"user": 2, "item": 10, "timestamp": 300.0}]})
        log.append({"op": "events", "events": [{"user": 2, "item": 10, "timestamp": 301.0}]})
    return ds, path


def rows(ds):
    return sorted(map(tuple, ds.frame()[["user", "item", "rating", "timestamp"]].to_numpy().tolist()))


def test_a_repeated_pair_stays_one_interaction_its_first_positive(tmp_path):
    ds, log = tiny_with_log(tmp_path)
    # no threshold: every interaction is a positive; the dataset's own ones keep their rating and time
    merged = with_served_log(ds, log)
    assert rows(merged) == [(1, 10, 5.0, 10), (1, 11, 2.0, 20), (2, 10, 5.0, 300)]
    assert merged.repeats_dropped == 3
    # rated 4 or more to count: the 2 would be dropped, so the event (a positive) takes its place
    assert rows(with_served_log(ds, log, implicit_threshold=4)) == [(1, 10, 5.0, 10), (1, 11, 5.0, 200),
                                                                    (2, 10, 5.0, 300)]


def test_retrain_splits_a_log_with_repeated_pairs(served, tmp_path, capsys):
    run = served("itemknn")
    live = open_live(run, text=False)
    u = live.user_index("u13")
    had = live.deployed.items.decode([int(live.deployed.train[u].indices[0])])[0]
    live.add_events([{"user": "u13", "item": had}, {"user": "fresh", "item": "sku3"},
                     {"user": "fresh", "item": "sku3"}])
    live.log.close()
    base = load_config(run / "config.yaml", strict=False).dataset.load()
    merged = with_served_log(base, run / "serving" / "events.log")
    assert not merged.frame().duplicated(["user", "item"]).any() and len(merged) == len(base) + 1
    # the split refused a repeated pair ("repeated (user, item) pairs"): the retrain runs
    assert main(["retrain", str(run), "--out", str(tmp_path / "retrained"), "--quiet"]) == 0, capsys.readouterr().err


def test_retrain_without_events_says_so(served, capsys):
    run = served("mostpop")
    assert main(["retrain", str(run)]) == 2
    assert "no serving log" in capsys.readouterr().err
