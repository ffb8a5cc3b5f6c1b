"""cnnarch.train: the lecture's recipes, the training loop, checkpoints with exact resume, ensembles.

See docs/training.md. ``resolve_config(recipe, **overrides)`` gives a run's configuration,
``build_data(cfg)`` its data, and ``Trainer(cfg, data).fit()`` trains it.
"""

from cnnarch.train.config import RECIPES, TrainConfig, resolve_config
from cnnarch.train.data import build_data
from cnnarch.train.ensemble import evaluate_ensemble, predict_probs
from cnnarch.train.trainer import DataBundle, NonFiniteLossError, Trainer, config_for_resume

__all__ = [
    "RECIPES",
    "DataBundle",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "build_data",
    "config_for_resume",
    "evaluate_ensemble",
    "predict_probs",
    "resolve_config",
]
