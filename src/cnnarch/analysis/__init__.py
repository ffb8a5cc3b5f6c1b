"""cnnarch.analysis: the lecture's arithmetic for any ``nn.Module``.

``profile(model, (3, 224, 224))`` gives one record per layer (shape, weights and biases, activation
memory, MACs, receptive field) and totals; ``report`` prints it; ``lecture.check_lecture()`` checks
every number of the lecture; ``compare`` sets networks side by side.
"""

from cnnarch.analysis.diagram import Diagram, draw, sheet
from cnnarch.analysis.inception import LECTURE_INPUT, naive_inception, naive_twin, reduced_inception
from cnnarch.analysis.profiler import Layer, Profile, profile
from cnnarch.analysis.zoo import LECTURE_MODULES, build

__all__ = [
    "LECTURE_INPUT",
    "LECTURE_MODULES",
    "Layer",
    "Profile",
    "Diagram",
    "build",
    "draw",
    "naive_inception",
    "naive_twin",
    "profile",
    "reduced_inception",
    "sheet",
]
