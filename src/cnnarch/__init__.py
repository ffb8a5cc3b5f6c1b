"""cnnarch: the "CNN architectures" lecture (CS231n lecture 9) made real.

Subpackages: ``models`` (the zoo), ``analysis`` (shapes, parameters, memory, FLOPs),
``scratch`` (a NumPy engine with the CS231n assignment's API), ``data`` and ``train``.
"""

from cnnarch.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "__version__"]
