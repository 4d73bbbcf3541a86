"""Model registry and the built-in models; importing a model module registers it."""

import importlib
import pkgutil

from audionas.models.registry import create_model, freeze_model_args, list_models, register_model

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "registry":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["create_model", "freeze_model_args", "list_models", "register_model"]
