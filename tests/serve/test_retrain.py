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


def test_a_repeated_pair_stays_one_interaction(served, tmp_path, capsys):
    run = served("itemknn")
    base = load_config(run / "config.yaml", strict=False).dataset.load()
    frame = base.frame()
    top = frame["rating"].max()
    at_top = frame[frame["rating"] == top].iloc[0]
    lower = frame[frame["rating"] < top]
    live = open_live(run, text=False)
    events = [{"user": at_top["user"], "item": at_top["item"], "timestamp": 1_700_000_000},  # has it already
              {"user": "fresh", "item": "sku3", "timestamp": 1_700_000_001},
              {"user": "fresh", "item": "sku3", "timestamp": 1_700_000_002}]  # a client's retry
    if len(lower):
        events.append({"user": lower.iloc[0]["user"], "item": lower.iloc[0]["item"], "timestamp": 1_700_000_003})
    live.add_events(events)
    live.log.close()
    merged = with_served_log(base, run / "serving" / "events.log").frame()
    assert not merged.duplicated(["user", "item"]).any()
    assert len(merged) == len(base) + 1  # fresh/sku3, once
    pair = merged[(merged["user"] == at_top["user"]) & (merged["item"] == at_top["item"])].iloc[0]
    assert pair["timestamp"] == at_top["timestamp"]  # the dataset's own interaction, at the top rating, kept
    assert merged[merged["user"] == "fresh"]["timestamp"].tolist() == [1_700_000_001]
    if len(lower):
        again = merged[(merged["user"] == lower.iloc[0]["user"]) & (merged["item"] == lower.iloc[0]["item"])]
        assert again["rating"].tolist() == [top] and again["timestamp"].tolist() == [1_700_000_003]
    # and the retrain splits it (a repeated pair was refused: "repeated (user, item) pairs")
    assert main(["retrain", str(run), "--out", str(tmp_path / "retrained"), "--quiet"]) == 0, capsys.readouterr().err


def test_retrain_without_events_says_so(served, capsys):
    run = served("mostpop")
    assert main(["retrain", str(run)]) == 2
    assert "no serving log" in capsys.readouterr().err
