"""The model zoo. Importing a family's module registers its builders."""

from cnnarch.models._registry import (
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = ["ModelEntry", "create_model", "get_model_entry", "list_models", "register_model"]
