"""Model registry: every network of the zoo by name."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    paper: str
    input_size: tuple[int, int, int]  # (C, H, W) the paper trains at


_MODELS: dict[str, ModelEntry] = {}


def register_model(*, paper: str, input_size: tuple[int, int, int] = (3, 224, 224)):
    """Decorator: register a builder under its function name; the builder itself is unchanged."""

    def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _MODELS:
            raise ValueError(f"model {fn.__name__!r} is registered twice")
        _MODELS[fn.__name__] = ModelEntry(fn.__name__, fn, paper, tuple(input_size))
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


def create_model(name: str, weights=None, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered network by name; ``kwargs`` go to its builder (``num_classes``, ...). The model
    keeps the name in ``model_name``, which its error messages use.

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
