"""Experiment runs from YAML configurations."""

from graphrec.run.config import ExperimentConfig, dump_config, load_config
from graphrec.run.pipeline import build_model, evaluators, load_run, prepare, run_experiment

__all__ = ["ExperimentConfig", "build_model", "dump_config", "evaluators", "load_config", "load_run", "prepare", "run_experiment"]
