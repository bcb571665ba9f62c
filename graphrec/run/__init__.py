"""Experiment runs from YAML configurations, and their hyperparameter search."""

from graphrec.run.config import ExperimentConfig, config_from_dict, dump_config, load_config, with_overrides
from graphrec.run.pipeline import build_model, evaluators, load_run, prepare, run_experiment
from graphrec.run.tuning import TuneResult, tune

__all__ = ["ExperimentConfig", "TuneResult", "build_model", "config_from_dict", "dump_config", "evaluators",
           "load_config", "load_run", "prepare", "run_experiment", "tune", "with_overrides"]
