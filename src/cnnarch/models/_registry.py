"""Model registry: every network of the zoo by name, with the facts about it declared as data.

Like timm's pretrained configurations (``pretrained_cfg``), each :class:`ModelEntry` says, once, what code
elsewhere would otherwise have to guess from the layers: which convolution sees the image
(``first_conv``), which linear layer gives the class scores (``classifier``, and GoogLeNet's
``aux_classifiers``), the input sizes the network accepts in eval mode (``min_input_size`` to
``max_input_size``), and how an image becomes its input (``preprocessing``). tests/models/test_registry.py
proves every entry against the built network and, where torchvision has the network, its weights'
metadata.

A network that is not in the registry (your own ``nn.Module``) gets :func:`first_conv` and
:func:`classifiers` by the fallback written once, in :func:`_layer_paths`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the network's input, as torchvision's ``ImageClassification`` transform:
    the shorter side resized to ``resize`` (bilinear), a centre crop of ``crop`` x ``crop``, pixels
    scaled to ``[0, 1]`` and normalised with ``mean`` and ``std``."""

    resize: int
    crop: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


IMAGENET = Preprocessing(256, 224)  # resize 256, crop 224: the ImageNet papers' and torchvision's
CIFAR = Preprocessing(32, 32)  # the whole 32x32 image


@dataclass(frozen=True)
class ModelEntry:
    """One network of the zoo and what it declares (the defaults are torchvision's ResNet's); module
    paths as in ``model.get_submodule(path)``."""

    name: str
    builder: Callable[..., nn.Module]
    paper: str
    preprocessing: Preprocessing = IMAGENET  # crop: the size the paper trains at
    min_input_size: int = 1  # smallest height (= width) accepted in eval mode
    max_input_size: int | None = None  # largest (None: no bound; a fixed-size classifier sets one)
    min_train_input_size: int | None = None  # in training mode with the auxiliary classifiers, if more
    first_conv: str = "conv1"  # the convolution that sees the image
    classifier: str = "fc"  # the linear layer that gives the class scores
    aux_classifiers: tuple[str, ...] = ()  # auxiliary heads (GoogLeNet's, when built with them)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) the paper trains at."""
        return (3, self.preprocessing.crop, self.preprocessing.crop)


_MODELS: dict[str, ModelEntry] = {}


def register_model(*, paper: str, **declared):
    """Decorator: register a builder under its function name with the facts it declares (the fields of
    :class:`ModelEntry`); the builder itself is unchanged."""

    def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _MODELS:
            raise ValueError(f"model {fn.__name__!r} is registered twice")
        _MODELS[fn.__name__] = ModelEntry(fn.__name__, fn, paper, **declared)
        return fn

    return register


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, e.g. ``"resnet*"``, in natural order
    (resnet18 before resnet101)."""
    return sorted((n for n in _MODELS if fnmatch.fnmatchcase(n, pattern)), key=_natural_key)


def _natural_key(name: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _MODELS, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}{hint} (`cnnarch list` shows all {len(_MODELS)} models)"
        ) from None


def declared(model: nn.Module) -> ModelEntry | None:
    """The registry entry of a network built by :func:`create_model`; None for any other module."""
    return _MODELS.get(getattr(model, "model_name", None))


def _layer_paths(model: nn.Module) -> tuple[str, list[str]]:
    """(first convolution, classifiers) of ``model`` as module paths: declared in the registry for a
    network built by :func:`create_model`. Any other module falls back to its first ``nn.Conv2d`` and its
    last ``nn.Linear`` in registration order, which is right for networks written in torchvision's style
    (layers registered in the order they run, the classifier last)."""
    entry = declared(model)
    if entry is not None:  # GoogLeNet built with aux_logits=False has aux1 = aux2 = None
        aux = [p for p in entry.aux_classifiers if getattr(model, p.split(".")[0]) is not None]
        return entry.first_conv, [entry.classifier, *aux]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not convs or not linears:
        raise ValueError(
            f"{type(model).__name__} has no {'nn.Conv2d' if not convs else 'nn.Linear classifier'}; "
            "cnnarch needs an image classifier with convolutions and a linear head"
        )
    return convs[0], [linears[-1]]


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The convolution that sees the image (its ``in_channels`` is the network's)."""
    return model.get_submodule(_layer_paths(model)[0])


def classifiers(model: nn.Module) -> dict[str, nn.Linear]:
    """The layers that give class scores, by module path: the classifier first, then auxiliary heads."""
    return {path: model.get_submodule(path) for path in _layer_paths(model)[1]}


def create_model(name: str, weights=None, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered network by name; ``kwargs`` go to its builder (``num_classes``, ...). The model
    keeps the name in ``model_name``, which its error messages and :func:`first_conv` and
    :func:`classifiers` use.

    ``weights`` (a weight name such as ``"IMAGENET1K_V1"``, a file or a URL; see
    :mod:`cnnarch.models.weights`) or ``pretrained=True`` (``weights="DEFAULT"``) loads trained weights."""
    entry = get_model_entry(name)
    if weights is None and not pretrained:
        model = entry.builder(**kwargs)
    else:
        from cnnarch.models.weights import build_with_weights

        model = build_with_weights(entry, "DEFAULT" if weights is None else weights, **kwargs)
    model.model_name = name
    return model
