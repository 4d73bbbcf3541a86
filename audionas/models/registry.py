"""One registry of models, timm-style: `@register_model("name")` on a thin factory, then `create_model`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch.nn as nn

from audionas.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Register `fn(num_classes=..., input_shape=(C, H, W), **kwargs) -> nn.Module` (give both defaults)."""

    def deco(fn):
        if name in _MODELS:
            raise ValueError(f"model '{name}' registered twice")
        _MODELS[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    _import_builtin()
    return sorted(_MODELS)


def create_model(name: str, num_classes: int | None = None, input_shape: tuple[int, int, int] | None = None,
                 **kwargs) -> nn.Module:
    """Build a registered model; `num_classes` / `input_shape` left out take the factory's own defaults."""
    _import_builtin()
    if name not in _MODELS:
        raise UserError(f"model '{name}': unknown (known: {', '.join(sorted(_MODELS))})")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    return _MODELS[name](**kwargs)


def model_defaults(name: str) -> dict:
    """The factory's own signature defaults for `num_classes` / `input_shape` (only those it declares).

    Lets tools (e.g. `audionas profile`) use a model's natural input: declare
    `def factory(num_classes=9, input_shape=(1, 40, 501), **kwargs)`.
    """
    _import_builtin()
    if name not in _MODELS:
        raise UserError(f"model '{name}': unknown (known: {', '.join(sorted(_MODELS))})")
    params = inspect.signature(_MODELS[name]).parameters
    return {k: params[k].default for k in ("num_classes", "input_shape")
            if k in params and params[k].default is not inspect.Parameter.empty}


def _import_builtin() -> None:
    import audionas.models  # noqa: F401  (the package imports every built-in model module)
