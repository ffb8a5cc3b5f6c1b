"""cnnarch.train: the lecture's recipes, the training loop, checkpoints with exact resume, ensembles.

See docs/training.md. ``resolve_config(recipe, **overrides)`` gives a run's configuration,
``build_data(cfg)`` its data, and ``Trainer(cfg, data).fit()`` trains it.

The configuration needs no torch; the rest is imported on first use, so that the command line's parser
(which reads the recipes) stays light.
"""

import importlib

from cnnarch.train.config import RECIPES, TrainConfig, resolve_config

_LAZY = {
    "build_data": "cnnarch.train.data",
    "evaluate_ensemble": "cnnarch.train.evaluate",
    "predict_probs": "cnnarch.train.evaluate",
    "DataBundle": "cnnarch.train.trainer",
    "NonFiniteLossError": "cnnarch.train.trainer",
    "Trainer": "cnnarch.train.trainer",
    "config_for_resume": "cnnarch.train.trainer",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RECIPES", "TrainConfig", "resolve_config", *_LAZY]
