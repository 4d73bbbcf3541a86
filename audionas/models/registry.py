"""One registry of models, timm-style: `@register_model("name")` on a thin factory, then `create_model`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch.nn as nn

from audionas.errors import UserError, first_line
from audionas.models.args import number_or_text, positive_int
from audionas.plugins import IMPORT_HINT, check_new_name

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_FREEZERS: dict[str, Callable[[dict], dict]] = {}
_TAKES: dict[str, tuple[str, ...]] = {}
_CHECKS: dict[str, Callable[[dict], object]] = {}


def register_model(name: str, freeze: Callable[[dict], dict] | None = None,
                   takes: tuple[str, ...] | None = None, check: Callable[[dict], object] | None = None):
    """Register `fn(num_classes=..., input_shape=(C, H, W), **kwargs) -> nn.Module` (give both defaults).

    `freeze(model_args) -> model_args` puts what an argument names in a file into the arguments themselves
    (see `freeze_model_args`). `takes`: the names a factory's `**kwargs` accepts (those of the class it
    builds), so a misspelt one is refused before a run reads its data; without it, only the factory itself
    can tell, when it builds. `check(arguments)`: the factory's own checks of its argument values
    (UserErrors), given every argument (defaults and those passed), so `freeze_model_args` refuses a bad
    value before a run reads its data too. The same factory registered again (a notebook cell run twice)
    replaces itself; another one under a taken name is a ValueError.
    """

    def deco(fn):
        check_new_name(_MODELS, name, fn, "model")
        _MODELS[name] = fn
        for table, value in ((_FREEZERS, freeze), (_TAKES, takes), (_CHECKS, check)):
            table.pop(name, None)
            if value is not None:
                table[name] = value
        return fn

    return deco


def freeze_model_args(name: str, model_args: dict) -> dict:
    """`model_args` with every file it names read in, so a run's saved config alone rebuilds its network
    (a DARTS search rewrites its genotype.json; a relative path breaks from another folder), and a number
    given as text (`bn_eps=1e-5`, a string to PyYAML) stored as the number its float argument takes: the
    same command then finds the same config when it resumes. Names and values are checked first (before
    a run scans its data: a typo is said at once)."""
    _check_call(name, model_args)
    floats = {k for k, v in argument_defaults(name).items() if isinstance(v, float)}
    args = {k: number_or_text(v) if k in floats else v for k, v in model_args.items()}
    check = _CHECKS.get(name)
    if check is not None:
        check({**argument_defaults(name), **args})
    freeze = _FREEZERS.get(name)
    return freeze(args) if freeze is not None else args


_LAYOUTS = {"h": "C x time x freq", "w": "C x freq x time"}


def check_time_axis(model_axis: str | None, data_axis: str, field: str = "model_args.time_axis",
                    fix: str = "set {field}={axis}") -> None:
    """UserError when a model reading time along `model_axis` gets features whose time runs along
    `data_axis` (a KWS model on log-mel bands, an ASC one on MFCCs): it would train on swapped axes.
    None or '' (a model without a time axis, data of unknown layout) pass. `fix` says what to do."""
    if model_axis and data_axis and model_axis != data_axis:
        raise UserError(f"config field '{field}': '{model_axis}' reads the input as {_LAYOUTS[model_axis]}, "
                        f"but this data's features are {_LAYOUTS[data_axis]}; "
                        f"{fix.format(field=field, axis=data_axis)}")


def list_models() -> list[str]:
    _import_builtin()
    return sorted(_MODELS)


def _unknown_model(name: str) -> UserError:
    return UserError(f"model '{name}': unknown (known: {', '.join(sorted(_MODELS))}; {IMPORT_HINT})")


def _check_call(name: str, kwargs: dict) -> None:
    """UserError unless `name` is a registered model that takes every argument in `kwargs`."""
    _import_builtin()
    if name not in _MODELS:
        raise _unknown_model(name)
    params = inspect.signature(_MODELS[name]).parameters
    if name in _TAKES or not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = set(kwargs) - set(params) - set(_TAKES.get(name, ()))
        if unknown:
            raise unknown_arguments(name, unknown)


def create_model(name: str, num_classes: int | None = None, input_shape: tuple[int, int, int] | None = None,
                 **kwargs) -> nn.Module:
    """Build a registered model; `num_classes` / `input_shape` left out take the factory's own defaults."""
    if num_classes is not None:
        kwargs["num_classes"] = positive_int(num_classes, "num_classes")  # 0 built an output of no units
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    _check_call(name, kwargs)
    factory = _MODELS[name]
    try:
        return factory(**kwargs)
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as e:
        # Backstop: the factories check their arguments; anything that still fails while building the
        # network from the user's arguments is reported with those arguments, not as a traceback.
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserError(f"model '{name}': cannot be built with {given}: {first_line(e)}") from e


def model_defaults(name: str) -> dict:
    """The factory's own signature defaults for `num_classes` / `input_shape` (only those it declares).

    Lets tools (e.g. `audionas profile`) use a model's natural input: declare
    `def factory(num_classes=9, input_shape=(1, 40, 501), **kwargs)`.
    """
    _import_builtin()
    if name not in _MODELS:
        raise _unknown_model(name)
    return {k: v for k, v in argument_defaults(name).items() if k in ("num_classes", "input_shape")}


def unknown_arguments(name: str, unknown) -> UserError:
    """The error for arguments model `name` does not take (or fixes, as res15 its depth), naming those it
    takes."""
    known = ", ".join(sorted(model_arguments(name))) or "none"
    return UserError(f"model '{name}': unknown argument(s) {', '.join(sorted(unknown))} (known: {known})")


def model_arguments(name: str) -> set[str]:
    """The arguments model `name` takes besides num_classes / input_shape (empty when unknown)."""
    _import_builtin()
    if name not in _MODELS:
        return set()
    own = set(inspect.signature(_MODELS[name]).parameters) | set(_TAKES.get(name, ()))
    return own - {"num_classes", "input_shape", "kwargs"}


def argument_defaults(name: str) -> dict:
    """The default of each argument of model `name` that has one (empty when the model is unknown)."""
    _import_builtin()
    if name not in _MODELS:
        return {}
    return {k: p.default for k, p in inspect.signature(_MODELS[name]).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _import_builtin() -> None:
    import audionas.models  # noqa: F401  (the package imports every built-in model module)
