"""graphrec tune: declared spaces, space files, the study's results, pruning and resuming (synthetic data, seconds)."""

import csv
import json
from dataclasses import fields

import optuna
import pytest
import yaml

from graphrec.cli import main
from graphrec.errors import ConfigError
from graphrec.nn.registry import MODELS
from graphrec.nn.spec import Choice, FloatRange, IntRange
from graphrec.run import load_config
from graphrec.run.config import config_from_dict, with_overrides
from graphrec.run.tuning import read_space, tune

SYNTHETIC = "dataset:\n  name: syn\n  format: synthetic\n  users: 80\n  items: 40\n  interactions: 1600\n  seed: 5\n"


def experiment(tmp_path, model_yaml, train="", name="t"):
    exp = tmp_path / f"{name}.yaml"
    trained = "mf-bpr" in model_yaml  # closed-form models read no epochs or batch size
    exp.write_text(f"name: {name}\noutput: {tmp_path / 'runs'}\n{SYNTHETIC}split:\n  method: random\n  seed: 1\n"
                   f"{model_yaml}train:\n" + ("  epochs: 12\n  batch_size: 128\n" if trained else "")
                   + f"  progress: false\n  threads: 1\n{train}eval:\n  ks: [5, 20]\n")
    return load_config(exp)


def rows(directory):
    return list(csv.DictReader((directory / "trials.csv").open()))


@pytest.mark.parametrize("name", [n for n in MODELS if n != "mostpop"])
def test_every_declared_space_names_real_settings_and_its_bounds_are_valid(name):
    space = MODELS[name].config.search_space
    assert space, f"{name} declares no search space"
    model_keys = {f.name for f in fields(MODELS[name].config)}
    base = load_config_for(name)
    for key, rng in space.items():
        assert key.startswith("train.") or key in model_keys, key
        dotted = key if key.startswith("train.") else f"model.{key}"
        ends = rng.values if isinstance(rng, Choice) else (rng.low, rng.high)
        for value in ends:  # both ends of every range build a valid experiment
            assert getattr(with_overrides(base, {dotted: value}).model if dotted.startswith("model.")
                           else with_overrides(base, {dotted: value}).train, dotted.partition(".")[2]) == value


def load_config_for(name):
    graph = "graph:\n  item_attributes: [genre]\n" if name == "graphsage" else ""
    return config_from_dict(yaml.safe_load(f"{SYNTHETIC}model:\n  name: {name}\n{graph}"))


def test_space_file_ranges_choices_and_errors(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("model.reg: {low: 1.0e-6, high: 1.0e-2, log: true}\nmodel.num_layers: {low: 1, high: 3}\n"
                 "model.fanouts: [[5, 5], [10, 10]]\ntrain.lr: {low: 0.001, high: 0.01}\n")
    assert read_space(f) == {"model.reg": FloatRange(1e-6, 1e-2, True), "model.num_layers": IntRange(1, 3),
                             "model.fanouts": Choice(((5, 5), (10, 10))), "train.lr": FloatRange(0.001, 0.01)}
    for text, message in [("reg: {low: 1, high: 2}\n", r"space.yaml: reg: keys are dotted"),
                          ("model.reg: {low: 2, high: 1}\n", r"space.yaml: model.reg: IntRange needs low < high"),
                          ("model.reg: {low: 0.0, high: 1.0, log: true}\n", r"model.reg: FloatRange needs .*low > 0"),
                          ("model.reg: {low: a, high: 1}\n", r"model.reg: low and high must be numbers"),
                          ("model.reg: 3\n", r"model.reg: expected \{low, high\[, log\]\} or a list"),
                          ("[1, 2]\n", r"expected a mapping of dotted keys")]:
        f.write_text(text)
        with pytest.raises(ConfigError, match=message):
            read_space(f)
    with pytest.raises(ConfigError, match="search space file not found"):
        read_space(tmp_path / "missing.yaml")


def test_a_space_must_fit_the_experiment(tmp_path):
    cfg = experiment(tmp_path, "model:\n  name: itemknn\n")
    with pytest.raises(ConfigError, match=r"'model\.dim' is not a setting of this experiment \(itemknn\); its settings: "
                                          r"model\.k, model\.shrink"):
        tune(cfg, 2, tmp_path / "t", space={"model.dim": IntRange(8, 16)})
    with pytest.raises(ConfigError, match="'mostpop' declares no hyperparameters to tune; give --space FILE"):
        tune(experiment(tmp_path, "model:\n  name: mostpop\n"), 2, tmp_path / "t2")


def test_closed_form_study_writes_best_config_and_continues(tmp_path):
    cfg = experiment(tmp_path, "model:\n  name: itemknn\n")
    space = {"model.k": IntRange(2, 30)}
    lines = []
    first = tune(cfg, 4, tmp_path / "tune", space=space, log=lines.append)
    assert [t.state for t in first.trials] == ["complete"] * 4 and len(lines) == 4
    best = max(first.trials, key=lambda t: t.value)
    assert first.best.number == best.number and first.best_config.model.k == best.params["model.k"]
    # each value is that configuration's own validation metric, the run kept under trials/<n>
    run = json.loads((tmp_path / "tune" / "trials" / str(best.number) / "metrics.json").read_text())
    assert run["valid"]["ndcg@20"] == pytest.approx(best.value)
    # the test part is never looked at: no trial evaluates it
    assert run["test"] is None and not (tmp_path / "tune" / "trials" / str(best.number) / "test_per_user.npz").exists()
    # best.yaml is an experiment file graphrec run reads, with the best values and a -tuned name
    tuned = load_config(tmp_path / "tune" / "best.yaml")
    assert tuned.model.k == best.params["model.k"] and tuned.name == "t-tuned" and tuned.split == cfg.split
    assert (tmp_path / "tune" / "trials.png").stat().st_size > 0
    summary = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert summary["best"]["trial"] == best.number and summary["states"]["complete"] == 4

    # the same command with more trials continues the study: the first four are kept as they were
    again = tune(cfg, 6, tmp_path / "tune", space=space, log=None)
    assert len(again.trials) == 6 and again.trials[:4] == first.trials
    assert len(rows(tmp_path / "tune")) == 6
    assert len(tune(cfg, 6, tmp_path / "tune", space=space, log=None).trials) == 6  # nothing left to do


def test_another_experiment_cannot_join_a_study(tmp_path):
    tune(experiment(tmp_path, "model:\n  name: itemknn\n"), 1, tmp_path / "tune", space={"model.k": IntRange(2, 30)},
         log=None)
    other = experiment(tmp_path, "model:\n  name: itemknn\n  shrink: 5.0\n")
    with pytest.raises(ConfigError, match="holds a study of another experiment or search space"):
        tune(other, 2, tmp_path / "tune", space={"model.k": IntRange(2, 30)}, log=None)


def test_trained_trials_below_the_median_are_pruned(tmp_path, monkeypatch):
    import graphrec.run.tuning as tune_module

    monkeypatch.setattr(tune_module, "STARTUP_TRIALS", 2)
    monkeypatch.setattr(tune_module, "WARMUP_EVALS", 2)
    cfg = experiment(tmp_path, "model:\n  name: mf-bpr\n  dim: 8\n", train="  patience: 0\n")
    result = tune(cfg, 8, tmp_path / "tune", space={"train.lr": FloatRange(1e-5, 0.3, log=True)}, log=None)
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned, [(t.state, t.params) for t in result.trials]
    # a pruned trial stopped early, after the warm-up; a complete one trained every epoch (patience 0)
    assert all(2 <= t.epochs < 12 for t in pruned)
    assert all(t.epochs == 12 for t in result.trials if t.state == "complete")
    assert result.best.state == "complete"


def test_a_trial_cut_off_by_a_kill_runs_again_with_its_values(tmp_path):
    cfg = experiment(tmp_path, "model:\n  name: itemknn\n")
    space = {"model.k": IntRange(2, 30)}
    tune(cfg, 2, tmp_path / "tune", space=space, log=None)
    # what a kill -9 mid-trial leaves in the study: a trial still marked running
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'tune' / 'study.db'}")
    study.ask({"model.k": optuna.distributions.IntDistribution(2, 30)})
    cut = study.trials[-1]
    result = tune(cfg, 3, tmp_path / "tune", space=space, log=None)
    states = [t.state for t in result.trials]
    assert states == ["complete", "complete", "fail", "complete"]
    assert result.trials[2].error == "interrupted; run again"
    assert result.trials[3].params == cut.params  # the interrupted values, run to the end


def test_cli_tune_show_space_and_run(tmp_path, capsys):
    experiment(tmp_path, "model:\n  name: ease\n")
    exp = str(tmp_path / "t.yaml")
    assert main(["tune", exp, "--trials", "1", "--show-space"]) == 0
    assert "model.reg: FloatRange(low=1.0, high=5000.0, log=True)" in capsys.readouterr().out
    assert main(["tune", exp, "--trials", "2", "--out", str(tmp_path / "tune")]) == 0
    out = capsys.readouterr().out
    assert "trial 1 (2/2 done): valid ndcg@20" in out and "best configuration:" in out
    assert main(["tune", exp, "--trials", "0", "--out", str(tmp_path / "tune")]) == 2
    assert "trials (--trials) must be >= 1" in capsys.readouterr().err


def test_a_study_recorded_before_split_shuffle_continues_as_the_global_shuffle(tmp_path):
    """A tune.yaml written before split.shuffle existed holds no key: its trials were split with the global
    shuffle, so the same experiment pinned to it continues the study; the grouped default is another one."""
    from dataclasses import replace

    from graphrec.run.tuning import STUDY_FILE, _check_same_study, default_space

    pinned = with_overrides(experiment(tmp_path, "model:\n  name: ease\n"), {"split.shuffle": "global"})
    space = default_space(pinned)
    study = tmp_path / "study"
    study.mkdir()
    old = pinned.to_dict()
    del old["split"]["shuffle"]
    (study / "tune.yaml").write_text(yaml.safe_dump({"experiment": old, "space": {k: repr(v) for k, v in space.items()}},
                                                    sort_keys=False))
    (study / STUDY_FILE).write_text("")
    with pytest.raises(ConfigError, match="holds a study of another experiment"):
        _check_same_study(study, replace(pinned, split=replace(pinned.split, shuffle="grouped")), space)
    _check_same_study(study, pinned, space)  # continues, and records the key from now on
    assert yaml.safe_load((study / "tune.yaml").read_text())["experiment"]["split"]["shuffle"] == "global"
