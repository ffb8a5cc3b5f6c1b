"""cnnarch: the "CNN architectures" lecture (CS231n lecture 9) made real.

Subpackages: ``models`` (the zoo), ``analysis`` (shapes, parameters, memory, FLOPs),
``scratch`` (a NumPy engine with the CS231n assignment's API), ``data`` and ``train``.
"""

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "__version__"]


def __getattr__(name: str):
    # The zoo imports torch; loading it on first use keeps `import cnnarch` (and `cnnarch --help`) fast.
    if name in ("create_model", "list_models"):
        import cnnarch.models

        return getattr(cnnarch.models, name)
    raise AttributeError(f"module 'cnnarch' has no attribute {name!r}")
