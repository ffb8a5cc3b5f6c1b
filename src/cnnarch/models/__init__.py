"""The model zoo. Importing a family's module registers its builders; one import line per family."""

from cnnarch.models import alexnet as alexnet
from cnnarch.models import cifar_fast as cifar_fast
from cnnarch.models import fractalnet as fractalnet
from cnnarch.models import googlenet as googlenet
from cnnarch.models import resnet as resnet
from cnnarch.models import resnet_cifar as resnet_cifar
from cnnarch.models import resnext as resnext
from cnnarch.models import vgg as vgg
from cnnarch.models import wide_resnet as wide_resnet
from cnnarch.models import zfnet as zfnet
from cnnarch.models._input_size import check_input, input_size_range, min_input_size
from cnnarch.models._registry import (
    ModelEntry,
    Preprocessing,
    classifiers,
    create_model,
    first_conv,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "Preprocessing",
    "check_input",
    "classifiers",
    "create_model",
    "first_conv",
    "get_model_entry",
    "input_size_range",
    "list_models",
    "min_input_size",
    "register_model",
]
