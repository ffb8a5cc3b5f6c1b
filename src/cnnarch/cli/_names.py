"""The names a network can be given by on the command line, known without importing torch, so that a
mistyped name is answered at once (importing torch and building the zoo takes seconds).

``ZOO`` is the registry's names and ``TORCHVISION`` torchvision's classification models, written out;
tests/analysis/test_sources.py holds them equal to ``cnnarch.models.list_models()`` and to
``torchvision.models.list_models(module=torchvision.models)``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

ZOO = (
    "alexnet", "alexnet_tv", "cifar_fast", "cifar_fast_93", "fractalnet20", "fractalnet34", "fractalnet40",
    "googlenet", "googlenet_tv", "plain18", "plain20", "plain32", "plain34", "plain44", "plain56",
    "plain110", "resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50", "resnet56",
    "resnet101", "resnet110", "resnet152", "resnet1202", "resnext29_8x64d", "resnext29_16x64d",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
    "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "wide_resnet50_2", "wide_resnet101_2", "wrn16_4", "wrn16_8",
    "wrn28_10", "wrn40_4", "zfnet", "zfnet_b",
)  # fmt: skip
# The names of cnnarch.analysis.LECTURE_MODULES.
LECTURE_MODULES = ("inception_naive", "inception_reduced")
TORCHVISION = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121",
    "densenet161", "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "maxvit_t",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large",
    "mobilenet_v3_small", "regnet_x_16gf", "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf",
    "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf", "regnet_y_128gf", "regnet_y_16gf",
    "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf", "regnet_y_800mf",
    "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "resnext101_32x8d",
    "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s",
    "swin_t", "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
    "vgg16_bn", "vgg19", "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32",
    "wide_resnet101_2", "wide_resnet50_2",
)  # fmt: skip
FILE_SUFFIXES = (".pt", ".pt2", ".pth", ".ts")
HELP = (
    "a zoo model (`cnnarch list`), a lecture module (" + ", ".join(LECTURE_MODULES) + "), "
    "torchvision:NAME (or a torchvision name the zoo lacks), package.module:callable, "
    "or a saved TorchScript (.pt) / ExportedProgram (.pt2) file"
)


def check_network(name: str) -> None:
    """Raise ValueError naming the way out unless ``name`` can name a network; imports nothing heavy.

    A ``package.module:callable`` is only checked when it is imported (it may be anything)."""
    if name.lower().endswith(FILE_SUFFIXES):
        if not Path(name).is_file():
            raise ValueError(f"no such file: {name}")
        return
    if name.startswith("torchvision:"):
        if name.partition(":")[2] not in TORCHVISION:
            raise ValueError(
                f"torchvision has no model {name.partition(':')[2]!r}{_close(name, TORCHVISION)}"
            )
        return
    if ":" in name or name in ZOO or name in LECTURE_MODULES or name in TORCHVISION:
        return
    raise ValueError(
        f"unknown network {name!r}{_close(name, ZOO + LECTURE_MODULES + TORCHVISION)}; give {HELP}"
    )


def _close(name: str, names) -> str:
    close = difflib.get_close_matches(name.rpartition(":")[2], sorted(set(names)), n=5, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
