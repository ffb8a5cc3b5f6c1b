"""The model zoo. Importing a family's module registers its builders; one import line per family."""

from cnnarch.models import googlenet as googlenet
from cnnarch.models import resnet as resnet
from cnnarch.models._input_size import input_size_range, min_input_size
from cnnarch.models._registry import (
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "input_size_range",
    "list_models",
    "min_input_size",
    "register_model",
]
