"""Networks for the analyzer, built without allocating their weights: the zoo's, the lecture's modules,
torchvision's, any ``package.module:callable`` and saved TorchScript or ExportedProgram files."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from cnnarch.analysis.inception import LECTURE_INPUT, naive_inception, reduced_inception
from cnnarch.models import create_model, get_model_entry, list_models

# The lecture's modules by name, for `cnnarch summary`: (builder, input size).
LECTURE_MODULES = {
    "inception_naive": (naive_inception, LECTURE_INPUT),
    "inception_reduced": (reduced_inception, LECTURE_INPUT),
}
DEFAULT_INPUT = (3, 224, 224)
# torchvision's networks that are trained at another size than 224x224
_TORCHVISION_INPUT = {"inception_v3": (3, 299, 299)}


class LoadedNetwork(nn.Module):
    """A saved TorchScript module or ExportedProgram, run as it is: its code is a graph of operators,
    not of modules, so the profiler sees its layers as the operators its ``forward`` runs."""

    def __init__(self, net: nn.Module, source: str):
        super().__init__()
        self.net = net
        self.source = source

    def forward(self, x):
        return self.net(x)

    def train(self, mode: bool = True) -> LoadedNetwork:
        """The saved network runs in the mode it was saved in (an exported graph has no other)."""
        self.training = mode
        return self


def build(name: str, device: str = "meta") -> tuple[nn.Module, tuple[int, ...]]:
    """A network by name and its default input size (C, H, W).

    ``name`` is a registered network, one of :data:`LECTURE_MODULES`, ``torchvision:NAME`` (a plain
    torchvision name works too where the zoo has none of that name), ``package.module:callable`` (a
    class or function called without arguments, or a module instance), or a file saved with
    ``torch.jit.save`` (.pt, .pth, .ts) or ``torch.export.save`` (.pt2).

    On ``meta`` nothing is allocated; a builder that reads tensor values while it builds (none of the
    zoo's do) is built on the CPU instead, and the profiler still runs on meta. ``device="cpu"`` gives
    uninitialized CPU weights, for forward passes that cannot run on meta. A loaded file keeps its
    weights on the CPU whatever ``device`` says.
    """
    from cnnarch.cli._names import FILE_SUFFIXES

    if name.lower().endswith(FILE_SUFFIXES):
        return load(name)
    size = DEFAULT_INPUT
    if name in LECTURE_MODULES:
        make, size = LECTURE_MODULES[name]
    elif name in list_models():
        size = get_model_entry(name).input_size

        def make():
            return create_model(name)
    elif name.startswith("torchvision:") or ":" not in name:
        make, size = _torchvision(name.removeprefix("torchvision:"))
    else:
        make = _callable(name)
    try:
        with torch.device("meta"):
            model = make()
    except (NotImplementedError, RuntimeError):
        model = make()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{name} gave a {type(model).__name__}, not an nn.Module")
    size = tuple(getattr(model, "input_size", size))
    if device != "meta":
        model = model.to_empty(device=device)
    return model, size


def _torchvision(name: str):
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        get_model_entry(name)  # raises with the zoo's close matches
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}

    def make():
        return torchvision.models.get_model(name, weights=None, **kwargs)

    return make, _TORCHVISION_INPUT.get(name, DEFAULT_INPUT)


def _callable(spec: str):
    module_name, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import {spec} ({e}); give package.module:callable, importable here") from e
    if isinstance(obj, nn.Module):
        return lambda: obj
    if not callable(obj):
        raise ValueError(f"{spec} is a {type(obj).__name__}, neither an nn.Module nor a callable giving one")
    return obj


def load(path: str) -> tuple[nn.Module, tuple[int, ...]]:
    """A saved network and its input size: an ExportedProgram (.pt2) knows the size it was exported
    at; a TorchScript file does not, so it gets 3x224x224 (``--input`` changes it)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.lower().endswith(".pt2"):
        program = torch.export.load(path)
        inputs = set(program.graph_signature.user_inputs)
        shapes = [n.meta["val"].shape for n in program.graph.nodes if n.name in inputs and "val" in n.meta]
        size = tuple(shapes[0][1:]) if shapes and len(shapes[0]) >= 3 else DEFAULT_INPUT
        return LoadedNetwork(program.module(), path), size
    try:
        net = torch.jit.load(path, map_location="cpu")
    except RuntimeError as e:
        raise ValueError(
            f"{path} is not a TorchScript file ({str(e).splitlines()[0]}); save a network with "
            "torch.jit.save(torch.jit.script(model), 'net.pt') or torch.export.save(program, 'net.pt2')"
        ) from e
    return LoadedNetwork(net, path), DEFAULT_INPUT
