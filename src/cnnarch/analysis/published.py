"""Published ImageNet errors, each with its source.

For a network whose state_dict matches torchvision's builder of the same name (``alexnet_tv`` matches
``alexnet``), the numbers are torchvision's weights metadata (``IMAGENET1K_V1``: the original-recipe
weights; single 224 center crop), read from the weights enum without downloading anything. For the
papers' original networks they are the papers' single-model numbers, as transcribed below.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import nn


@dataclass(frozen=True)
class Published:
    top1_err: float | None  # percent
    top5_err: float | None
    source: str


# The papers' single-model ImageNet (ILSVRC-2012 validation) errors, for our networks that follow the
# papers rather than torchvision. Multi-crop protocols as the papers state. ZFNet's row is the ECCV
# version's; the 2013 arXiv draft numbered the figure 2 and listed 38.3 / 16.4 for it.
PAPERS = {
    "alexnet": Published(40.7, 18.2, "Krizhevsky et al. 2012, Table 2 (1 CNN)"),
    "zfnet": Published(38.4, 16.5, "Zeiler & Fergus 2014, Table 2 (1 convnet, Fig. 3)"),
    "googlenet": Published(None, 10.07, "Szegedy et al. 2015, Table 3 (1 model, 1 crop)"),
    "vgg16": Published(25.6, 8.1, "Simonyan & Zisserman 2015, Table 3 (D, S=[256;512], Q=384)"),
    "vgg19": Published(25.5, 8.0, "Simonyan & Zisserman 2015, Table 3 (E, S=[256;512], Q=384)"),
    "resnet34": Published(24.19, 7.40, "He et al. 2016, Table 3 (34-layer C, 10-crop)"),
    "resnet50": Published(22.85, 6.71, "He et al. 2016, Table 3 (10-crop)"),
    "resnet101": Published(21.75, 6.05, "He et al. 2016, Table 3 (10-crop)"),
    "resnet152": Published(21.43, 5.71, "He et al. 2016, Table 3 (10-crop)"),
}


def _tv_name(name: str) -> str:
    return name.removesuffix("_tv")


@cache
def torchvision_weights(name: str):
    """torchvision's IMAGENET1K_V1 weights enum member for ``name`` (``_tv`` suffix dropped), or None."""
    import torchvision  # imported when needed: it pulls in torch._dynamo, seconds at CLI start

    try:
        weights = torchvision.models.get_model_weights(_tv_name(name))
    except ValueError:
        return None
    return next(iter(weights), None)


def torchvision_metrics(name: str) -> dict | None:
    """``{"acc@1": .., "acc@5": .., "_ops": GMACs, "num_params": ..}`` from the weights' metadata."""
    w = torchvision_weights(name)
    if w is None:
        return None
    return {**w.meta["_metrics"]["ImageNet-1K"], "_ops": w.meta["_ops"], "num_params": w.meta["num_params"]}


def _shapes(model: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@cache
def is_torchvision_form(name: str) -> bool:
    """Does our ``name`` have exactly torchvision's state_dict (keys and shapes)? Built on meta."""
    from cnnarch.models import create_model

    if torchvision_weights(name) is None:
        return False
    import torchvision

    with torch.device("meta"):
        ours = create_model(name)
        kw = {"init_weights": False} if _tv_name(name) in ("googlenet", "inception_v3") else {}
        theirs = torchvision.models.get_model(_tv_name(name), **kw)
    return _shapes(ours) == _shapes(theirs)


def published(name: str) -> Published | None:
    """The published error for our network ``name``: torchvision's if it is torchvision's net, else
    the paper's single-model figure, else None (e.g. CIFAR networks)."""
    if is_torchvision_form(name):
        w = torchvision_weights(name)
        m = w.meta["_metrics"]["ImageNet-1K"]
        return Published(
            round(100 - m["acc@1"], 3),
            round(100 - m["acc@5"], 3),
            f"torchvision {type(w).__name__}.{w.name} (1 crop)",
        )
    return PAPERS.get(name)
